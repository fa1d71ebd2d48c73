"""The browser app: its shell at ``/``, static files under ``/web/``, and the JSON it needs.

``GET /`` answers browsers (``Accept: text/html``, or ``?f=html``) with the app shell and
everyone else with the JSON landing page of :mod:`api.routes.meta`, so OGC clients and
scripts keep working. The app is plain JavaScript modules and vendored CSS/JS (no build
step); every asset comes from this server, and the shell's Content-Security-Policy keeps
it that way (no request may leave the origin).

JSON routes added for the app, all behind the same bearer tokens as the rest of the API:

- ``GET /grids/{grid_id}/inspections?week=`` rentals due that week plus overdue ones;
- ``POST /inspections`` record a visit and move the rental's next due date (one transaction);
- ``GET /houses/{house_code}/rental`` a house's let: class, schedule, latest visits;
- ``GET /search/houses?q=`` houses by address text or house-code prefix;
- ``GET /plans/{name}/grids?area=`` a plan's grids as GeoJSON with tier and workload.

A police token sees only its area: a grid or house outside it answers 404 like a missing one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import orjson
import pandas as pd
import shapely
from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection, bindparam, text
from starlette.concurrency import run_in_threadpool

from api.auth import Ctx, CtxDep, require_role
from api.deps import (
    GeoJSONBytes,
    GridIdPath,
    HouseCodePath,
    JSONBytes,
    parse_house_code,
    plan_name,
    reject_unknown_query,
)
from api.deps import grid_id as check_grid_id
from api.models import AreaGeometry
from api.routes.common import AUTHED, errors
from gridmgr.errors import BadInput, NotFound
from gridmgr.privacy import mask_id_number
from gridmgr.store import inspections_store

WEB_DIR = Path(__file__).resolve().parent / "web"
"""Where the app's static files live (index.html, app.js, app.css, i18n/, vendor/)."""

READ_INSPECTIONS: tuple[str, ...] = ("police", "supervisor", "admin")
RECORD_INSPECTIONS: tuple[str, ...] = ("police", "admin")
READ_PLANS: tuple[str, ...] = ("planner", "supervisor", "admin")

CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
       "'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-src 'self'; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'")
"""The shell's policy: nothing from anywhere but this origin. Inline script is allowed
only because the map pages framed by the supervisor view (``/maps/*.html``, folium) carry
inline scripts and a ``srcdoc`` frame inherits this policy; the app itself has none."""

SHELL_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                 "Referrer-Policy": "no-referrer", "X-Frame-Options": "SAMEORIGIN",
                 "Cache-Control": "no-cache"}

router = APIRouter(tags=["web"], default_response_class=JSONBytes)


# ----------------------------------------------------------------------------- the app shell


def wants_html(accept: str | None) -> bool:
    """True when an Accept header ranks text/html above application/json (a browser)."""
    if not accept:
        return False
    best = {"text/html": 0.0, "application/json": 0.0}
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        kind, q = fields[0].lower(), 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue  # q=0 (or a q that is not a number): not acceptable
        for target in best:
            if kind == target or kind == "*/*" or kind == target.split("/")[0] + "/*":
                exact = 1.0 if kind == target else 0.0  # an exact match outranks a wildcard
                best[target] = max(best[target], q + exact * 1e-3)
    return best["text/html"] > best["application/json"]


def _shell() -> Response:
    html = (WEB_DIR / "index.html").read_bytes()
    return Response(html, media_type="text/html; charset=utf-8", headers=SHELL_HEADERS)


@router.get("/", include_in_schema=False, dependencies=[Depends(reject_unknown_query)])
async def shell(request: Request,
                f: Annotated[Literal["html", "json"] | None, Query()] = None) -> Response:
    """The web app for browsers; the JSON landing page for every other client."""
    if f == "html" or (f is None and wants_html(request.headers.get("accept"))):
        return _shell()
    from api.routes.meta import landing

    return await landing(request)


def _etag(path: Path) -> str:
    st = path.stat()
    return '"' + hashlib.sha1(f"{st.st_mtime_ns}-{st.st_size}".encode()).hexdigest()[:20] + '"'


_TYPES = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".json": "application/json",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
          ".md": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8"}


@router.get("/web/{path:path}", include_in_schema=False,
            dependencies=[Depends(reject_unknown_query)])
async def web_file(request: Request, path: str) -> Response:
    """A static file of the app (no token: it holds no data), revalidated by ETag."""
    if not path or path.endswith("/"):
        return _shell()
    target = (WEB_DIR / path).resolve()
    if not target.is_relative_to(WEB_DIR) or not target.is_file() or any(
            part.startswith(".") for part in target.relative_to(WEB_DIR).parts):
        raise NotFound(f"no file /web/{path[:80]}")
    etag = _etag(target)
    headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    kind = _TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0]
    body = await run_in_threadpool(target.read_bytes)
    return Response(body, media_type=kind or "application/octet-stream", headers=headers)


# ----------------------------------------------------------------------------- inspections


class InspectionIn(BaseModel):
    """A visit to a rental house: which house, when, by whom, and what was found."""

    house_code: str = Field(max_length=64, description="canonical or display form",
                            examples=["510104001001-0001-01-0101-X"])
    inspected_on: dt.date = Field(description="day of the visit (not in the future)")
    inspector: str = Field(min_length=1, max_length=100, examples=["王警官"])
    outcome: str = Field(min_length=1, max_length=200, examples=["正常"])


class InspectionOut(BaseModel):
    """The recorded visit and the rental's new schedule."""

    inspection_id: int
    house_code: str
    rental_class: str
    inspected_on: dt.date
    inspector: str
    outcome: str
    last_inspected_on: dt.date
    previous_due_on: dt.date | None
    next_due_on: dt.date | None


class DueRow(BaseModel):
    """A rental to visit: overdue, or due in the week."""

    house_code: str
    address: str | None
    community_code: str | None
    rental_class: str = Field(description="key | uneasy | trusted")
    inspector: str = Field(description="who makes the visit: police | committee | landlord")
    tenants: int
    registered_on: dt.date | None
    last_inspected_on: dt.date | None
    due_on: dt.date
    overdue: bool = Field(description="due before the week starts")
    days_overdue: int = Field(ge=0, description="days between due_on and the week's Monday")


class DueOut(BaseModel):
    """A grid's inspection list for one ISO week, overdue first."""

    grid_id: str
    week_start: dt.date
    week_end: dt.date = Field(description="the Sunday ending the week")
    count: int
    overdue: int
    rows: list[DueRow]


def _week(week: str | None) -> dt.date:
    if week is None:
        return inspections_store.monday_of(dt.date.today())
    try:
        day = dt.date.fromisoformat(week)
    except ValueError:
        raise BadInput(f"week {week[:40]!r} is not a date; use YYYY-MM-DD (any day of "
                       "the week)") from None
    return inspections_store.monday_of(day)


@router.get("/grids/{grid_id}/inspections", response_model=DueOut, responses=AUTHED,
            summary="Rental inspections due in a week, overdue first")
async def grid_inspections(
    request: Request,
    ctx: Annotated[Ctx, Depends(require_role(*READ_INSPECTIONS))],
    grid_id: GridIdPath,
    week: Annotated[str | None, Query(max_length=40, description=(
        "any day of the ISO week (YYYY-MM-DD); default this week"))] = None,
) -> JSONBytes:
    """Rentals of a grid due in the week plus every overdue one, most overdue first."""
    gid = check_grid_id(grid_id)
    start = _week(week)
    settings = _workload_settings(request)
    frame = await ctx.store.run_sync(
        lambda conn: inspections_store.inspections_due(
            conn, grid_id=gid, week_start=start, areas=ctx.caller.areas, settings=settings))
    rows = frame.to_dict("records")
    return JSONBytes({"grid_id": gid, "week_start": start,
                      "week_end": start + dt.timedelta(days=6), "count": len(rows),
                      "overdue": int(frame["overdue"].sum()) if len(frame) else 0,
                      "rows": rows})


def _workload_settings(request: Request) -> Any:
    from gridmgr.settings import WorkloadSettings

    return getattr(request.app.state, "workload_settings", None) or WorkloadSettings()


@router.post("/inspections", status_code=201, response_model=InspectionOut,
             responses=errors(400, 401, 403, 404), summary="Record a rental inspection")
async def post_inspection(
    request: Request,
    ctx: Annotated[Ctx, Depends(require_role(*RECORD_INSPECTIONS))],
    body: InspectionIn,
) -> JSONBytes:
    """Record a visit and move the rental's next due date, in one transaction.

    Police may record visits only to houses in their area (others answer 404).
    """
    from gridmgr.store.events import write_transaction

    code = parse_house_code(body.house_code)
    settings = _workload_settings(request)

    def record() -> dict[str, Any]:
        with write_transaction(ctx.store.engine) as conn:
            return inspections_store.record_inspection(
                conn, house_code=code, inspected_on=body.inspected_on,
                inspector=body.inspector, outcome=body.outcome, areas=ctx.caller.areas,
                settings=settings).as_dict()

    return JSONBytes(await run_in_threadpool(record), status_code=201)


class InspectionBrief(BaseModel):
    """One past visit."""

    inspected_on: dt.date
    inspector: str
    outcome: str


class RentalOut(BaseModel):
    """A let: class, tenants, landlord (masked by role), schedule and latest visits."""

    rental_class: str
    inspector: str
    tenants: int
    landlord_id_number: str | None
    registered_on: dt.date | None
    last_inspected_on: dt.date | None
    next_due_on: dt.date | None
    overdue: bool
    inspections: list[InspectionBrief]


class HouseRentalOut(BaseModel):
    """A house's let, or null when the house is not let."""

    house_code: str
    masked: bool
    rental: RentalOut | None


RENTAL_ACTION = "house_rental"
"""Audit-log action of a rental lookup (it shows the landlord's ID number to some roles)."""


@router.get("/houses/{house_code}/rental", response_model=HouseRentalOut, responses=AUTHED,
            summary="A house's let and inspection schedule")
async def house_rental(ctx: CtxDep, house_code: HouseCodePath) -> JSONBytes:
    """Rental class, next inspection due and the latest visits of a house (null if not let).

    The landlord's ID number is masked unless the role may see it; every lookup is written
    to the audit log in the same transaction as the read, like residents.
    """
    from gridmgr.store.audit import AuditEntry, write_audit
    from gridmgr.store.events import write_transaction

    code = parse_house_code(house_code)
    caller = ctx.caller

    def lookup() -> tuple[bool, dict[str, Any] | None]:
        with write_transaction(ctx.store.engine) as conn:
            try:
                rental = inspections_store.house_rental(conn, house_code=code,
                                                        areas=caller.areas)
                found, outcome = True, "found"
            except NotFound:
                rental, found, outcome = None, False, "not_found"
            write_audit(conn, AuditEntry(actor=caller.actor, role=caller.role,
                                         action=RENTAL_ACTION, target=code,
                                         client_addr=ctx.client, outcome=outcome,
                                         rows=int(rental is not None)))
        return found, rental

    found, rental = await run_in_threadpool(lookup)
    if not found:
        raise NotFound(f"no house with code {code}")
    if rental is not None:
        del rental["house_code"]
        if caller.masked:
            rental["landlord_id_number"] = mask_id_number(rental["landlord_id_number"])
    return JSONBytes({"house_code": code, "masked": caller.masked, "rental": rental})


# ----------------------------------------------------------------------------- house search


class HouseHit(BaseModel):
    """A house matching a search."""

    house_code: str
    address: str | None
    community_code: str | None
    lon: float
    lat: float


class HouseSearchOut(BaseModel):
    """Houses whose address holds the text, or whose code starts with it."""

    q: str
    count: int
    houses: list[HouseHit]


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_SEARCH_HEAD = ("SELECT h.house_code, h.address, h.community_code, h.lon, h.lat FROM house h "
                "WHERE h.house_code IS NOT NULL AND ")
_SEARCH_WHERE = {
    # A code prefix: a range on the unique index of house_code. Codes hold only digits
    # and a final X, and every collation sorts them below "Y".
    "code": "h.house_code >= :lo AND h.house_code < :hi",
    "address": "h.address LIKE :pat ESCAPE '\\'",
}
_SEARCH_SCOPE = " AND h.community_code IN :codes"
_SEARCH_TAIL = " ORDER BY h.house_code LIMIT :lim"


def search_houses(conn: Connection, *, q: str, communities: tuple[str, ...] | None,
                  limit: int) -> list[dict[str, Any]]:
    """Houses by address substring or house-code prefix (digits), within the communities."""
    compact = q.replace("-", "").replace(" ", "").upper()
    params: dict[str, Any] = {"lim": int(limit)}
    if len(compact) >= 6 and all(c.isdigit() or c == "X" for c in compact):
        by = "code"
        params.update(lo=compact, hi=compact + "Y")
    else:
        by = "address"
        params["pat"] = f"%{_like_escape(q)}%"
    if communities is None:
        stmt = text(_SEARCH_HEAD + _SEARCH_WHERE[by] + _SEARCH_TAIL)
    else:
        stmt = text(_SEARCH_HEAD + _SEARCH_WHERE[by] + _SEARCH_SCOPE + _SEARCH_TAIL
                    ).bindparams(bindparam("codes", expanding=True))
        params["codes"] = list(communities) or ["-"]
    rows = conn.execute(stmt, params).mappings().all()
    return [{"house_code": str(r["house_code"]), "address": r["address"],
             "community_code": r["community_code"], "lon": float(r["lon"]),
             "lat": float(r["lat"])} for r in rows]


@router.get("/search/houses", response_model=HouseSearchOut, responses=AUTHED,
            summary="Find houses by address or code prefix")
async def find_houses(
    ctx: CtxDep,
    q: Annotated[str, Query(min_length=2, max_length=100,
                            description="part of the address, or the first digits of a code")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONBytes:
    """Houses whose address contains ``q`` (or whose code starts with it), in code order."""
    text_q = " ".join(q.split())
    if len(text_q) < 2 or not text_q.isprintable():
        raise BadInput("q must hold at least two printable characters")
    houses = await ctx.store.run_sync(search_houses, q=text_q,
                                      communities=ctx.caller.communities, limit=limit)
    return JSONBytes({"q": text_q, "count": len(houses), "houses": houses})


# ----------------------------------------------------------------------------- plan grids

GRID_PROPERTIES: tuple[str, ...] = (
    "tier", "tier_reasons", "houses", "rental_houses", "residents", "floating_residents",
    "key_persons", "inspections_per_month", "police_inspections_per_month",
    "co_managers_needed", "co_managers_assigned", "co_managers_gap", "area_km2",
)


class PlanGridProperties(BaseModel):
    """A plan grid's id, community, lock flag, and (when it has counts) tier and workload."""

    grid_id: str
    community_code: str
    locked: bool
    tier: str | None = None
    tier_reasons: str | None = None
    houses: int | None = None
    rental_houses: int | None = None
    residents: int | None = None
    floating_residents: int | None = None
    key_persons: int | None = None
    inspections_per_month: float | None = None
    police_inspections_per_month: float | None = None
    co_managers_needed: int | None = None
    co_managers_assigned: int | None = None
    co_managers_gap: int | None = None
    area_km2: float | None = None


class PlanGridFeature(BaseModel):
    """One grid of a plan as a GeoJSON Feature (id = grid_id)."""

    type: Literal["Feature"]
    id: str
    properties: PlanGridProperties
    geometry: AreaGeometry


class PlanGridsOut(BaseModel):
    """A plan's grids as a GeoJSON FeatureCollection, with the plan's name and status."""

    type: Literal["FeatureCollection"]
    plan: str
    status: str
    area: str | None
    count: int
    features: list[PlanGridFeature]


_PLAN_GRIDS_SQL = ("SELECT grid_id, community_code, locked, ST_AsBinary(geom) AS wkb FROM grid "
                   "WHERE plan_id = :p")


def plan_grids(conn: Connection, *, plan: str, area: str | None,
               workload: Any, tiers: Any) -> dict[str, Any]:
    """A plan's grids (all, or those of the communities under ``area``) as GeoJSON."""
    from gridmgr.store import plan_ops
    from gridmgr.store.bulk import geometries, read_frame
    from gridmgr.store.tokens import area_subtree

    row = plan_ops.get_plan(conn, plan)
    communities: list[str] | None = None
    if area is not None:
        sub = area_subtree(conn, area)
        if not sub:
            raise NotFound(f"area {area!r} is not loaded")
        communities = [c for c, level in sub if level == "community"]
        if not communities:
            return {"type": "FeatureCollection", "plan": row.name, "status": row.status,
                    "area": area, "count": 0, "features": []}
    if communities is None:
        frame = read_frame(conn, _PLAN_GRIDS_SQL + " ORDER BY grid_id", {"p": row.id})
    else:
        rows = conn.execute(text(_PLAN_GRIDS_SQL + " AND community_code IN :codes ORDER BY grid_id")
                            .bindparams(bindparam("codes", expanding=True)),
                            {"p": row.id, "codes": communities}).mappings().all()
        frame = pd.DataFrame([dict(r) for r in rows],
                             columns=["grid_id", "community_code", "locked", "wkb"])
    load = plan_ops.grid_workload(conn, row.id, communities=communities, settings=workload,
                                  tiers=tiers).set_index("grid_id")
    shapes = geometries(frame.pop("wkb"))
    shapes = shapely.set_precision(shapes, 1e-7) if len(shapes) else shapes
    features = []
    for i, rec in enumerate(frame.to_dict("records")):  # one per grid
        gid = str(rec["grid_id"])
        props: dict[str, Any] = {"grid_id": gid, "community_code": str(rec["community_code"]),
                                 "locked": bool(rec["locked"])}
        if gid in load.index:
            w = load.loc[gid]
            for k in GRID_PROPERTIES:
                v = w[k]
                props[k] = v.item() if isinstance(v, np.generic) else v
        features.append({"type": "Feature", "id": gid, "properties": props,
                         "geometry": orjson.loads(shapely.to_geojson(shapes[i]))})
    return {"type": "FeatureCollection", "plan": row.name, "status": row.status,
            "area": area, "count": len(features), "features": features}


@router.get("/plans/{name}/grids", response_model=PlanGridsOut, response_class=GeoJSONBytes,
            responses=AUTHED, summary="A plan's grids as GeoJSON")
async def get_plan_grids(
    request: Request,
    ctx: Annotated[Ctx, Depends(require_role(*READ_PLANS))],
    name: Annotated[str, PathParam(max_length=100, description="the plan's name",
                                   examples=["draft-2026-03"])],
    area: Annotated[str | None, Query(pattern=r"^[0-9]{1,20}$", description=(
        "only grids of the communities at or under this area"))] = None,
) -> JSONBytes:
    """Grids of a plan (draft or adopted) with lock flag, tier and workload, for the map."""
    plan = plan_name(name)
    state = request.app.state
    out = await ctx.store.run_sync(
        lambda conn: plan_grids(conn, plan=plan, area=area,
                                workload=getattr(state, "workload_settings", None),
                                tiers=getattr(state, "tier_settings", None)))
    return GeoJSONBytes(out)
