"""Inspection-frequency map: police inspections due per month per grid, in quantile classes."""

from __future__ import annotations

import geopandas as gpd

from layers.common import (
    Assets,
    GridStyle,
    MapSettings,
    PreparedLayers,
    classify_values,
    prepare_layers,
    render_map,
)

__all__ = ["INSPECTION_PALETTES", "inspection_map", "inspection_style"]

#: ColorBrewer YlGnBu (sequential, colour-blind safe) for 1–7 classes.
INSPECTION_PALETTES: dict[int, list[str]] = {
    1: ["#41b6c4"],
    2: ["#a1dab4", "#2c7fb8"],
    3: ["#edf8b1", "#7fcdbb", "#2c7fb8"],
    4: ["#ffffcc", "#a1dab4", "#41b6c4", "#225ea8"],
    5: ["#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494"],
    6: ["#ffffcc", "#c7e9b4", "#7fcdbb", "#41b6c4", "#2c7fb8", "#253494"],
    7: ["#ffffcc", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8", "#0c2c84"],
}

UNIT = "police inspections / month"


def inspection_style(prepared: PreparedLayers, settings: MapSettings) -> GridStyle:
    """Quantile classes of ``police_inspections_per_month`` (key rentals, weekly visits)."""
    values = prepared.grids["police_inspections_per_month"].to_numpy(dtype=float)
    classes, _, labels = classify_values(values, settings.classes)
    palette = INSPECTION_PALETTES[max(1, len(labels))][: len(labels)] if labels else []
    return GridStyle(
        classes=classes,
        palette=palette,
        labels=labels,
        title="Police inspections due",
        unit=UNIT,
        note="quantile classes; key rentals are visited weekly by the area police",
    )


def inspection_map(
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
    """HTML of the inspection-frequency map (whole page; opens offline with ``assets="inline"``)."""
    settings = settings or MapSettings()
    if prepared is None:
        prepared = prepare_layers(
            grids, areas, area=area, settings=settings, needed=["police_inspections_per_month"]
        )
    return render_map(
        prepared,
        inspection_style(prepared, settings),
        title=title or "Police inspections per month",
        tile_url=tile_url,
        assets=assets,
        static_prefix=static_prefix,
        settings=settings,
    )
