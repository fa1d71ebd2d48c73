"""Liveness, the landing page and who-am-I."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.auth import CtxDep
from api.deps import JSONBytes, StoreDep
from api.models import HealthOut, LandingOut, MeOut
from api.routes.common import PUBLIC, errors

router = APIRouter(tags=["meta"], default_response_class=JSONBytes, dependencies=PUBLIC)


@router.get("/health", response_model=HealthOut, summary="Liveness (no token)")
async def health(store: StoreDep) -> JSONBytes:
    """The server is up; names the kind of store it reads."""
    return JSONBytes({"status": "ok", "store": store.dialect})


@router.get("/", response_model=LandingOut, summary="Landing page (no token)")
async def landing(request: Request) -> JSONBytes:
    """What this server is and where to go (OGC API landing page)."""
    def link(name: str, rel: str, kind: str, title: str) -> dict[str, str]:
        return {"href": str(request.url_for(name)), "rel": rel, "type": kind, "title": title}

    return JSONBytes({
        "title": "gridmgr",
        "description": "Grid management for floating-population service management "
                       "(以图定位、以房找人、以房管人). Every route but /health, this page and "
                       "the OpenAPI document needs a bearer token.",
        "links": [
            {"href": str(request.url), "rel": "self", "type": "application/json",
             "title": "this document"},
            link("openapi", "service-desc", "application/vnd.oai.openapi+json;version=3.0",
                 "the API definition"),
            link("conformance", "conformance", "application/json", "OGC conformance classes"),
            link("collections", "data", "application/json", "feature collections"),
        ],
    })


@router.get("/me", response_model=MeOut, responses=errors(400, 401),
            summary="Who the token is")
async def me(ctx: CtxDep) -> JSONBytes:
    """The token's name, role and area, and whether identifiers are masked for it."""
    c = ctx.caller
    return JSONBytes({"name": c.name, "role": c.role, "area_code": c.area_code,
                      "masked": c.masked})
