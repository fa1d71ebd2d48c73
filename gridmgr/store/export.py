"""Export houses, grids and workload to files."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Engine

from gridmgr.errors import BadInput
from gridmgr.interchange import write_table
from gridmgr.store.bulk import read_frame
from gridmgr.store.queries import grid_workload, grids_geoframe, require_plan, workload_at

HOUSE_COLUMNS = ("source_id", "house_code", "lon", "lat", "grid_id", "community_code",
                 "address", "building", "unit", "room", "outside_areas")


def houses_frame(engine: Engine) -> gpd.GeoDataFrame:
    """Every house with its grid in the adopted plan (empty grid_id when unassigned)."""
    with engine.connect() as conn:
        plan = require_plan(conn)
        df = read_frame(conn, (
            "SELECT h.source_id, h.house_code, h.lon, h.lat, g.grid_id, h.community_code, "
            "h.address, h.building, h.unit, h.room, "
            "CASE WHEN h.outside_areas THEN 1 ELSE 0 END AS outside_areas "
            "FROM house h LEFT JOIN house_grid hg ON hg.house_id = h.id AND hg.plan_id = :p "
            "LEFT JOIN grid g ON g.id = hg.grid_pk ORDER BY h.id"), {"p": plan})
    df["grid_id"] = df["grid_id"].fillna("")
    df["outside_areas"] = df["outside_areas"].astype(int).astype(bool)
    return gpd.GeoDataFrame(df[list(HOUSE_COLUMNS)],
                            geometry=shapely.points(df["lon"].to_numpy(dtype=float),
                                                    df["lat"].to_numpy(dtype=float)),
                            crs=4326)


def export(engine: Engine, what: str, out: Path, level: str = "grid") -> int:
    """Write houses, grids or workload to `out`; return the number of rows."""
    if what == "houses":
        frame = houses_frame(engine)
        if out.suffix.lower() in (".csv", ".parquet"):
            frame = frame.drop(columns="geometry")
    elif what == "grids":
        with engine.connect() as conn:
            geo = grids_geoframe(conn)
            wl = grid_workload(conn).drop(columns=["grid_pk"])
        frame = geo.merge(wl, on="grid_id", how="left")
    elif what == "workload":
        with engine.connect() as conn:
            frame = workload_at(conn, level)  # type: ignore[arg-type]
    else:
        raise BadInput(f"cannot export {what!r}; use houses, grids or workload")
    write_table(frame, out)
    return int(np.int64(len(frame)))
