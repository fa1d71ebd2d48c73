"""Maps as HTML pages: inspection frequency, tier and staffing, for the caller's area."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection

from api.auth import CtxDep
from api.hotpath import Caller
from api.routes.common import AUTHED
from gridmgr.errors import NotFound

router = APIRouter(tags=["maps"], responses=AUTHED)

MapKind = Literal["inspection", "tier", "staffing"]


def _area(caller: Caller, area: str | None) -> str | None:
    if area is None:
        return caller.area_code
    if not caller.sees_area(area):
        raise NotFound(f"area {area!r} is not loaded")
    return area


def render_map(conn: Connection, kind: str, area: str | None, workload: Any, tiers: Any) -> str:
    """The HTML of one map, built by ``layers.build_map`` from the store's grids and areas."""
    from gridmgr.store.plans import adopted_plan_id
    from gridmgr.store.queries import areas_geoframe, grid_workload, grids_geoframe
    from layers import build_map  # type: ignore[attr-defined]

    if adopted_plan_id(conn) is None:
        raise NotFound("no grids are loaded yet: load areas and grids first")
    areas = areas_geoframe(conn)
    if area is not None and area not in set(areas["code"]):
        raise NotFound(f"area {area!r} is not loaded")
    grids = grids_geoframe(conn).merge(
        grid_workload(conn, workload, tiers).drop(columns=["grid_pk"]), on="grid_id")
    made = build_map(kind, grids, areas, area=area, assets="static")
    if isinstance(made, str):
        return made
    return str(made.get_root().render())


@router.get("/maps/{kind}.html", response_class=HTMLResponse, summary="A map as an HTML page",
            responses={200: {"content": {"text/html": {}}, "description": "the map page"}})
async def map_page(
    request: Request, ctx: CtxDep,
    kind: Annotated[MapKind, Path(description="inspection | tier | staffing")],
    area: Annotated[str | None, Query(pattern=r"^[0-9]{1,20}$",
                                      description="only this area (police: their own)")] = None,
) -> HTMLResponse:
    """An offline map page (Leaflet assets from /static) of the grids in an area."""
    state = request.app.state
    html = await ctx.store.run_sync(render_map, kind, _area(ctx.caller, area),
                                    state.workload_settings,
                                    state.tier_settings)
    return HTMLResponse(html)
