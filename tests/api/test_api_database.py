"""The API's PostGIS pools: point lookups keep one plan per statement, bbox pages do not."""

from __future__ import annotations

import asyncio

from api.database import PgDb


def _plan_modes(url: str) -> tuple[str, str]:
    async def run() -> tuple[str, str]:
        db = PgDb(url)
        await db.open()
        try:
            async with db.unit(generic=True) as u:
                fixed = await u.fetchrow("SHOW plan_cache_mode")
            async with db.unit() as u:
                default = await u.fetchrow("SHOW plan_cache_mode")
        finally:
            await db.close()
        assert fixed is not None and default is not None
        return str(fixed["plan_cache_mode"]), str(default["plan_cache_mode"])

    return asyncio.run(run())


def test_generic_units_keep_one_plan_and_others_plan_per_call(postgis_url: str) -> None:
    fixed, default = _plan_modes(postgis_url)
    assert fixed == "force_generic_plan"
    assert default == "auto"
