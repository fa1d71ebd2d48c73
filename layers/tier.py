"""Grid tier map: strengthened / key / routine in a colour-blind-safe palette (Okabe–Ito)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np

from layers.common import (
    TIERS,
    Assets,
    GridStyle,
    MapSettings,
    PreparedLayers,
    prepare_layers,
    render_map,
)

__all__ = ["TIER_COLOURS", "tier_map", "tier_style"]

#: Okabe & Ito (2008) colours, distinguishable with every common colour-vision deficiency.
TIER_COLOURS: dict[str, str] = {
    "strengthened": "#D55E00",  # vermillion
    "key": "#E69F00",  # orange
    "routine": "#56B4E9",  # sky blue
}


def tier_style(prepared: PreparedLayers) -> GridStyle:
    """Colour each grid by its tier; grids with no (or an unknown) tier are 'no data'."""
    tiers = prepared.grids["tier_name"].astype(object).to_numpy()
    classes = np.full(len(tiers), -1, dtype=np.int64)
    for i, name in enumerate(TIERS):
        classes[tiers == name] = i
    return GridStyle(
        classes=classes,
        palette=[TIER_COLOURS[t] for t in TIERS],
        labels=list(TIERS),
        title="Grid tier",
        unit="management tier from the workload rules (hover a grid for its reasons)",
    )


def tier_map(
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
    """HTML of the grid-tier map (whole page; opens offline with ``assets="inline"``)."""
    settings = settings or MapSettings()
    if prepared is None:
        prepared = prepare_layers(grids, areas, area=area, settings=settings, needed=["tier"])
    return render_map(
        prepared,
        tier_style(prepared),
        title=title or "Grid tiers",
        tile_url=tile_url,
        assets=assets,
        static_prefix=static_prefix,
        settings=settings,
    )
