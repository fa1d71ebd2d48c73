"""Houses and people: a house by code, its residents (以房找人), a person's houses, houses near."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.auth import CtxDep
from api.deps import MAX_ID, HouseCodePath, JSONBytes, Lat, Lon, PageLimit, parse_house_code
from api.models import HouseOut, HousesNearOut, PersonHousesOut, ResidentsOut
from api.routes.common import AUTHED
from gridmgr.errors import BadInput

router = APIRouter(tags=["houses"], responses=AUTHED, default_response_class=JSONBytes)


@router.get("/houses/{house_code}", response_model=HouseOut, summary="A house by its code")
async def get_house(ctx: CtxDep, house_code: HouseCodePath) -> JSONBytes:
    """The house, its grid in the adopted plan and its location."""
    return JSONBytes(await ctx.store.house(parse_house_code(house_code), ctx.caller))


@router.get("/houses/{house_code}/residents", response_model=ResidentsOut,
            summary="Who lives at a house now (以房找人)")
async def get_residents(ctx: CtxDep, house_code: HouseCodePath) -> JSONBytes:
    """Current residents; ID and phone numbers masked unless admin or in-area police.

    Every call is written to the audit log in the same transaction as the read.
    """
    code = parse_house_code(house_code)
    return JSONBytes(await ctx.store.residents(code, ctx.caller, ctx.client))


@router.get("/people/{person_id}/houses", response_model=PersonHousesOut,
            summary="Where a person lives and has lived")
async def get_person_houses(
    ctx: CtxDep,
    person_id: Annotated[int, Path(ge=1, le=MAX_ID, description="person id (from residents)")],
) -> JSONBytes:
    """A person's stays, current first then newest; audited like residents."""
    return JSONBytes(await ctx.store.person_houses(person_id, ctx.caller, ctx.client))


@router.get("/houses", response_model=HousesNearOut, summary="Houses near a point")
async def houses_near(
    ctx: CtxDep, lon: Lon, lat: Lat,
    radius_m: Annotated[float, Query(gt=0, le=50_000, allow_inf_nan=False,
                                     description="radius in metres (geodesic)")] = 200.0,
    limit: PageLimit = 100,
) -> JSONBytes:
    """Houses within ``radius_m`` metres of (lon, lat), nearest first, at most ``limit``."""
    if radius_m > ctx.settings.max_radius_m:
        raise BadInput(f"radius_m {radius_m:g} is above this server's maximum "
                       f"{ctx.settings.max_radius_m:g} m; use a smaller radius")
    return JSONBytes(await ctx.store.houses_near(lon, lat, radius_m, limit, ctx.caller))
