"""Grids: the grid at a point, a grid's boundary, tier and workload, and its houses by page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import CtxDep
from api.deps import (
    GridIdPath,
    JSONBytes,
    Lat,
    Lon,
    PageLimit,
    decode_cursor,
    encode_cursor,
)
from api.deps import grid_id as check_grid_id
from api.errors import BadCursor
from api.models import GridHousesOut, GridOut
from api.routes.common import AUTHED, errors

router = APIRouter(tags=["grids"], responses=AUTHED, default_response_class=JSONBytes)


@router.get("/grids/at", response_model=GridOut, summary="The grid containing a point")
async def grid_at(ctx: CtxDep, lon: Lon, lat: Lat) -> JSONBytes:
    """The adopted plan's grid that holds (lon, lat); on a shared edge, the smallest grid_id."""
    return JSONBytes(await ctx.store.grid(ctx.caller, lon=lon, lat=lat))


@router.get("/grids/{grid_id}", response_model=GridOut, summary="A grid: boundary, tier, workload")
async def get_grid(ctx: CtxDep, grid_id: GridIdPath) -> JSONBytes:
    """A grid of the adopted plan with its boundary, derived tier and workload."""
    return JSONBytes(await ctx.store.grid(ctx.caller, grid_id=check_grid_id(grid_id)))


@router.get("/grids/{grid_id}/houses", response_model=GridHousesOut,
            responses=errors(409), summary="A grid's houses, one page at a time")
async def grid_houses(
    ctx: CtxDep, grid_id: GridIdPath, limit: PageLimit = 100,
    cursor: Annotated[str | None, Query(max_length=512,
                                        description="next_cursor of the previous page")] = None,
) -> JSONBytes:
    """Houses of a grid in a stable order; follow ``next_cursor`` until it is null."""
    gid = check_grid_id(grid_id)
    after, plan = 0, None
    if cursor is not None:
        data = decode_cursor(cursor, {"p": int, "g": str, "a": int})
        if data["g"] != gid:
            raise BadCursor(f"this cursor belongs to grid {data['g']!r}, not {gid!r}")
        after, plan = int(data["a"]), int(data["p"])
    plan_id, houses, more = await ctx.store.grid_houses(gid, ctx.caller, after=after,
                                                        limit=limit, plan_id=plan)
    next_cursor = (encode_cursor({"p": plan_id, "g": gid, "a": houses[-1]["id"]})
                   if more and houses else None)
    for h in houses:
        del h["id"]
    return JSONBytes({"grid_id": gid, "count": len(houses), "houses": houses,
                      "next_cursor": next_cursor})
