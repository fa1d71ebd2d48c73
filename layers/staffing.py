"""Staffing map: co-managers needed vs assigned per grid, shortfall and surplus diverging."""

from __future__ import annotations

import geopandas as gpd
import numpy as np

from layers.common import (
    Assets,
    GridStyle,
    MapSettings,
    PreparedLayers,
    classify_values,
    prepare_layers,
    render_map,
)

__all__ = ["BALANCED", "SHORTFALL", "SURPLUS", "staffing_map", "staffing_style"]

#: ColorBrewer RdBu (diverging, colour-blind safe): reds for shortfall, blues for surplus,
#: each from small to large.
SHORTFALL = ["#f4a582", "#d6604d", "#b2182b"]
SURPLUS = ["#92c5de", "#4393c3", "#2166ac"]
BALANCED = "#f7f7f7"


def staffing_style(prepared: PreparedLayers) -> GridStyle:
    """Diverging classes of ``co_managers_gap`` (needed − assigned); shortfalls outlined."""
    gap = prepared.grids["co_managers_gap"].to_numpy(dtype=float)
    known = np.isfinite(gap)
    classes = np.full(len(gap), -1, dtype=np.int64)
    short = known & (gap > 0)
    spare = known & (gap < 0)
    s_cls, s_bins, s_labels = classify_values(np.where(short, gap, np.nan), len(SHORTFALL))
    u_cls, u_bins, u_labels = classify_values(np.where(spare, -gap, np.nan), len(SURPLUS))
    n_short, n_spare = len(s_bins), len(u_bins)
    short_colours = SHORTFALL[len(SHORTFALL) - n_short :] if n_short < 3 else SHORTFALL
    # legend order, top to bottom: largest shortfall … balanced … largest surplus
    palette = [*reversed(short_colours), BALANCED, *SURPLUS[:n_spare]]
    labels = [
        *(f"short {label}" for label in reversed(s_labels)),
        "balanced (0)",
        *(f"surplus {label}" for label in u_labels),
    ]
    classes[short] = n_short - 1 - s_cls[short]
    classes[known & (gap == 0)] = n_short
    classes[spare] = n_short + 1 + u_cls[spare]
    return GridStyle(
        classes=classes,
        palette=palette,
        labels=labels,
        title="Co-manager gap",
        unit="co-managers per grid: needed − assigned",
        emphasis=short,
        emphasis_label="grid short of co-managers",
    )


def staffing_map(
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
    """HTML of the staffing map (whole page; opens offline with ``assets="inline"``)."""
    settings = settings or MapSettings()
    if prepared is None:
        prepared = prepare_layers(
            grids,
            areas,
            area=area,
            settings=settings,
            needed=["co_managers_needed", "co_managers_assigned"],
        )
    return render_map(
        prepared,
        staffing_style(prepared),
        title=title or "Co-manager staffing",
        tile_url=tile_url,
        assets=assets,
        static_prefix=static_prefix,
        settings=settings,
    )
