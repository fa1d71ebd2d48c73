"""Workload and staffing at any level (grid, community, street, district, city)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from sqlalchemy import Connection

from api.auth import CtxDep
from api.deps import JSONBytes
from api.hotpath import Caller
from api.models import ROW_KEYS, StaffingOut, StaffingRow, WorkloadOut, WorkloadRow, fields_of
from api.routes.common import AUTHED
from gridmgr.errors import NotFound
from gridmgr.store.plans import adopted_plan_id
from gridmgr.store.queries import staffing_at, workload_at

router = APIRouter(tags=["workload"], responses=AUTHED,
                   default_response_class=JSONBytes)

LevelParam = Annotated[Literal["grid", "community", "street", "district", "city"],
                       Query(description="grid | community | street | district | city")]
ParentParam = Annotated[str | None, Query(
    pattern=r"^[0-9]{1,20}$", description="only rows under this area code "
    "(police tokens: defaults to, and must lie within, their area)")]


def _parent(caller: Caller, parent: str | None) -> str | None:
    """The area to filter by: a police token's own area unless it names one inside it."""
    if parent is None:
        return caller.area_code
    if not caller.sees_area(parent):
        raise NotFound(f"area {parent!r} is not loaded")
    return parent


def _with_plan(conn: Connection, fn: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    if adopted_plan_id(conn) is None:
        raise NotFound("no grids are loaded yet: load areas and grids first")
    rows: list[dict[str, Any]] = fn(conn, *args, **kwargs).to_dict("records")
    return rows


@router.get("/workload", response_model=WorkloadOut, summary="Workload rows at a level")
async def workload(request: Request, ctx: CtxDep, level: LevelParam = "grid",
                   parent: ParentParam = None) -> JSONBytes:
    """Counts, inspections, staffing, registration KPIs and tiers per grid or area."""
    area = _parent(ctx.caller, parent)
    state = request.app.state
    rows = await ctx.store.run_sync(_with_plan, workload_at, level, parent=area,
                                settings=state.workload_settings, tiers=state.tier_settings)
    out = [fields_of(WorkloadRow, r, ROW_KEYS) for r in rows]
    return JSONBytes({"level": level, "parent": area, "count": len(out), "rows": out})


@router.get("/staffing", response_model=StaffingOut,
            summary="Co-managers needed at a ratio vs assigned")
async def staffing(
    request: Request, ctx: CtxDep, level: LevelParam = "grid",
    ratio: Annotated[int, Query(ge=1, le=1_000_000,
                                description="floating residents per co-manager")] = 500,
    parent: ParentParam = None,
) -> JSONBytes:
    """Co-managers (协管员) needed at ``ratio`` floating residents each, assigned, and the gap."""
    area = _parent(ctx.caller, parent)
    rows = await ctx.store.run_sync(_with_plan, staffing_at, level, ratio, parent=area,
                                settings=request.app.state.workload_settings)
    out = [fields_of(StaffingRow, r) for r in rows]
    return JSONBytes({"level": level, "ratio": ratio, "parent": area, "count": len(out),
                      "rows": out})
