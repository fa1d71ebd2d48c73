"""Offline maps of grid workload: inspection frequency, tier and staffing.

Each map is a pure function from a grids GeoDataFrame (with workload columns) and an
areas GeoDataFrame to one self-contained HTML page (folium + vendored Leaflet, no CDN).
"""

from __future__ import annotations

from collections.abc import Iterable

import geopandas as gpd

from layers.common import Assets, MapKind, MapSettings, PreparedLayers, prepare_layers
from layers.inspection import inspection_map
from layers.staffing import staffing_map
from layers.tier import tier_map

__all__ = [
    "MAP_KINDS",
    "NEEDED_COLUMNS",
    "MapKind",
    "MapSettings",
    "PreparedLayers",
    "build_map",
    "build_maps",
    "inspection_map",
    "prepare_layers",
    "staffing_map",
    "tier_map",
]

MAP_KINDS: tuple[MapKind, ...] = ("inspection", "tier", "staffing")
_BUILDERS = {"inspection": inspection_map, "tier": tier_map, "staffing": staffing_map}
#: Columns each map cannot do without (besides grid_id, community_code and geometry).
NEEDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "inspection": ("police_inspections_per_month",),
    "tier": ("tier",),
    "staffing": ("co_managers_needed", "co_managers_assigned"),
}


def build_map(
    kind: str,
    grids: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    *,
    area: str | None = None,
    title: str | None = None,
    tile_url: str | None = None,
    assets: Assets = "inline",
    static_prefix: str = "/static",
    settings: MapSettings | None = None,
    prepared: PreparedLayers | None = None,
) -> str:
    """HTML of the map named ``kind`` (inspection, tier or staffing)."""
    from gridmgr.errors import BadInput

    builder = _BUILDERS.get(kind)
    if builder is None:
        raise BadInput(f"unknown map {kind!r}: use one of {', '.join(MAP_KINDS)}")
    return builder(
        grids,
        areas,
        area=area,
        title=title,
        tile_url=tile_url,
        assets=assets,
        static_prefix=static_prefix,
        settings=settings,
        prepared=prepared,
    )


def build_maps(
    grids: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    *,
    kinds: Iterable[str] = MAP_KINDS,
    area: str | None = None,
    tile_url: str | None = None,
    assets: Assets = "inline",
    static_prefix: str = "/static",
    settings: MapSettings | None = None,
) -> dict[str, str]:
    """HTML of several maps, simplifying the geometry once (what the demo and CLI use)."""
    from gridmgr.errors import BadInput

    kinds = list(kinds)
    unknown = [k for k in kinds if k not in _BUILDERS]
    if unknown:
        raise BadInput(f"unknown map {unknown[0]!r}: use one of {', '.join(MAP_KINDS)}")
    settings = settings or MapSettings()
    needed = sorted({c for k in kinds for c in NEEDED_COLUMNS[k]})
    prepared = prepare_layers(grids, areas, area=area, settings=settings, needed=needed)
    return {
        kind: build_map(
            kind,
            grids,
            areas,
            tile_url=tile_url,
            assets=assets,
            static_prefix=static_prefix,
            settings=settings,
            prepared=prepared,
        )
        for kind in kinds
    }
