"""Maps from the store: join grid boundaries with their workload and hand them to layers/."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import geopandas as gpd
from sqlalchemy import Engine

from gridmgr.store.queries import areas_geoframe, grid_workload, grids_geoframe

MAP_KINDS = ("inspection", "tier", "staffing")


def map_frames(engine: Engine) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The adopted grids with workload columns, and the admin areas."""
    with engine.connect() as conn:
        geo = grids_geoframe(conn)
        wl = grid_workload(conn).drop(columns=["grid_pk"])
        areas = areas_geoframe(conn)
    grids = geo.merge(wl, on="grid_id", how="left")
    return gpd.GeoDataFrame(grids, geometry="geometry", crs=4326), areas


def render_map(engine: Engine, kind: str, *, area: str | None = None,
               assets: Literal["inline", "static"] = "inline") -> str:
    """The HTML of one map, framed on `area` when given."""
    from layers import build_map

    grids, areas = map_frames(engine)
    return build_map(kind, grids, areas, area=area, assets=assets,
                     tile_url=os.environ.get("GRIDMGR_TILE_URL") or None)


def write_maps(engine: Engine, out: Path, area: str | None = None) -> dict[str, Path]:
    """Write the three maps as self-contained HTML files into `out`."""
    from layers import build_maps

    grids, areas = map_frames(engine)
    pages = build_maps(grids, areas, area=area, assets="inline",
                       tile_url=os.environ.get("GRIDMGR_TILE_URL") or None)
    paths = {}
    for kind in MAP_KINDS:
        path = out / f"{kind}.html"
        path.write_text(pages[kind], encoding="utf-8")
        paths[kind] = path
    return paths
