"""Read-side queries shared by the CLI and the API: workload, areas, grids, houses."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Connection

from gridmgr.errors import BadInput, NotFound
from gridmgr.settings import TierSettings, WorkloadSettings
from gridmgr.store.bulk import geometries, read_frame
from gridmgr.store.models import GRID_COUNT_COLUMNS
from gridmgr.store.plans import adopted_plan_id
from gridmgr.workload import Level, derive_workload, rollup, staffing


def require_plan(conn: Connection, plan_id: int | None = None) -> int:
    """The given plan or the adopted one; BadInput when no grids are loaded."""
    if plan_id is not None:
        return int(plan_id)
    plan = adopted_plan_id(conn)
    if plan is None:
        raise BadInput("no grids are loaded yet: load areas and grids first "
                       "(gridmgr load areas FILE; gridmgr load grids FILE) or run gridmgr demo")
    return plan


def grid_counts(conn: Connection, plan_id: int | None = None) -> pd.DataFrame:
    """Maintained per-grid counts of a plan with grid_id, community and staff assigned."""
    plan = require_plan(conn, plan_id)
    cols = ", ".join(f"c.{c}" for c in GRID_COUNT_COLUMNS)
    df = read_frame(conn, (
        f"SELECT g.id AS grid_pk, g.grid_id, g.community_code, g.co_managers_assigned, "
        f"g.area_km2, {cols} FROM grid g JOIN grid_count c ON c.grid_pk = g.id "
        "WHERE g.plan_id = :p ORDER BY g.grid_id"), {"p": plan}, fast=True)
    for c in (*GRID_COUNT_COLUMNS, "co_managers_assigned", "grid_pk"):
        df[c] = df[c].to_numpy(dtype=np.int64)
    df["area_km2"] = df["area_km2"].to_numpy(dtype=float)
    df["grid_id"] = df["grid_id"].astype(str)
    df["community_code"] = df["community_code"].astype(str)
    return df


def areas_frame(conn: Connection) -> pd.DataFrame:
    """Every admin area's code, name, level and parent code."""
    df = read_frame(conn, "SELECT code, name, level, parent_code FROM admin_area ORDER BY code")
    return df.astype({"code": str, "name": str, "level": str}).assign(
        parent_code=df["parent_code"].where(df["parent_code"].notna(), None))


def areas_geoframe(conn: Connection) -> gpd.GeoDataFrame:
    """Every admin area with its boundary, as a GeoDataFrame in EPSG:4326."""
    df = read_frame(conn, "SELECT code, name, level, parent_code, ST_AsBinary(geom) AS wkb "
                          "FROM admin_area ORDER BY code", {})
    geom = geometries(df.pop("wkb"))
    return gpd.GeoDataFrame(df, geometry=geom, crs=4326)


def grids_geoframe(conn: Connection, plan_id: int | None = None) -> gpd.GeoDataFrame:
    """A plan's grids with their boundaries, as a GeoDataFrame in EPSG:4326."""
    plan = require_plan(conn, plan_id)
    df = read_frame(conn, "SELECT grid_id, ST_AsBinary(geom) AS wkb FROM grid "
                          "WHERE plan_id = :p ORDER BY grid_id", {"p": plan})
    geom = geometries(df.pop("wkb"))
    return gpd.GeoDataFrame(df.astype({"grid_id": str}), geometry=geom, crs=4326)


def grid_workload(conn: Connection, settings: WorkloadSettings | None = None,
                  tiers: TierSettings | None = None, plan_id: int | None = None
                  ) -> pd.DataFrame:
    """Per-grid workload (counts, inspections, staffing, KPIs, tier) of a plan."""
    counts = grid_counts(conn, plan_id)
    pks = counts.pop("grid_pk")
    out = derive_workload(counts, settings or WorkloadSettings(), tiers or TierSettings())
    out.insert(0, "grid_pk", pks.to_numpy())
    return out


def workload_at(conn: Connection, level: Level, *, parent: str | None = None,
                settings: WorkloadSettings | None = None, tiers: TierSettings | None = None,
                plan_id: int | None = None) -> pd.DataFrame:
    """Workload rows at a level, optionally only those under `parent` (an area code)."""
    grid = grid_workload(conn, settings, tiers, plan_id).drop(columns=["grid_pk"])
    areas = areas_frame(conn)
    rows = rollup(grid, areas, level)
    if parent:
        rows = rows[under(rows, areas, parent, level)]
    return rows.reset_index(drop=True)


def staffing_at(conn: Connection, level: Level, ratio: int, *, parent: str | None = None,
                settings: WorkloadSettings | None = None) -> pd.DataFrame:
    """Co-managers needed at `ratio` vs assigned, at a level."""
    grid = grid_workload(conn, settings).drop(columns=["grid_pk"])
    areas = areas_frame(conn)
    rows = staffing(grid, ratio, level, areas)
    if parent:
        rows = rows[under(rows, areas, parent, level)]
    return rows.reset_index(drop=True)


def under(rows: pd.DataFrame, areas: pd.DataFrame, parent: str, level: str) -> np.ndarray:
    """Mask of rows (keyed by area_code, or community_code at grid level) under `parent`."""
    if parent not in set(areas["code"]):
        raise NotFound(f"area {parent!r} is not loaded")
    up = dict(zip(areas["code"], areas["parent_code"], strict=True))

    def chain(code: str | None) -> set[str]:
        seen: set[str] = set()
        while code and code not in seen:
            seen.add(code)
            code = up.get(code)
        return seen

    if level == "grid":
        key = rows["community_code"] if "community_code" in rows else rows["parent_code"]
    else:
        key = rows["area_code"]
    cache: dict[str, bool] = {}
    out = []
    for code in key.astype(str):  # one per area, not per house
        if code not in cache:
            cache[code] = parent in chain(code)
        out.append(cache[code])
    return np.asarray(out, dtype=bool)
