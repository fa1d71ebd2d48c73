"""What the three maps share: input checks, area framing, light geometry, the HTML shell.

A map is built in two steps. ``prepare_layers`` checks the frames, picks what the map
frames (the city, one district, street or community, or one grid), simplifies the grid
and boundary geometry and packs it compactly; that is the slow part and is shared when
several maps are built from the same data (``layers.build_maps``). ``render_map`` then
colours the grids (a ``GridStyle`` from one of the map modules) and writes the HTML:
a folium map whose default CDN assets are replaced by the vendored ones in
``basemaps``, so the page opens with no network at all.
"""

from __future__ import annotations

import html
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import folium
import geopandas as gpd
import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.template import Template
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

import basemaps
from gridmgr.errors import BadInput, NotFound
from layers.simplify import Coverage, simplify_coverage, simplify_lines

__all__ = [
    "AREA_LEVELS",
    "GRID_COLUMNS",
    "TIERS",
    "Frame",
    "GridStyle",
    "MapSettings",
    "PreparedLayers",
    "classify_values",
    "format_number",
    "pack_lines",
    "pack_polygons",
    "prepare_layers",
    "render_map",
    "resolve_frame",
]

MapKind = Literal["inspection", "tier", "staffing"]
Assets = basemaps.Assets

AREA_LEVELS: tuple[str, ...] = ("district", "street", "community")
TIERS: tuple[str, ...] = ("strengthened", "key", "routine")

#: Columns a grids frame may carry; only grid_id, community_code and geometry are
#: required by every map (each map names the one it colours by).
GRID_COLUMNS: tuple[str, ...] = (
    "grid_id",
    "community_code",
    "tier",
    "tier_reasons",
    "houses",
    "rental_houses",
    "floating_residents",
    "inspections_per_month",
    "police_inspections_per_month",
    "co_managers_needed",
    "co_managers_assigned",
    "co_managers_gap",
)
_NUMERIC = GRID_COLUMNS[4:]
_AREA_COLUMNS = ("code", "level", "parent_code")

#: Colours shared by every map (the tests sample the canvas against these).
BASE_FILL = "#dcd9d0"
NO_DATA = "#b0b0b0"
GRID_LINE = "#ffffff"
LINE_STYLES: dict[str, dict[str, Any]] = {
    "community": {"color": "#555555", "weight": 0.8, "opacity": 0.75},
    "street": {"color": "#2b2b2b", "weight": 1.6, "opacity": 0.85},
    "district": {"color": "#000000", "weight": 2.6, "opacity": 0.9},
}
#: Community outlines at city scale are a blur of lines over the grid outlines: they are
#: drawn from this zoom on (≈ 1:70,000), where they can be told apart.
COMMUNITY_MIN_ZOOM = 12


class MapSettings(BaseSettings):
    """How maps are simplified and drawn (env GRIDMGR_MAP_*)."""

    model_config = SettingsConfigDict(env_prefix="GRIDMGR_MAP_", extra="ignore")

    tolerance_deg: float = Field(
        default=1e-4,
        ge=0,
        description="largest distance (degrees, 1e-4 ≈ 10 m) an edge may move; whole city",
    )
    tolerance_fraction: float = Field(
        default=1 / 10000,
        gt=0,
        description="smaller frames use this fraction of their extent when it is smaller",
    )
    precision_deg: float = Field(default=1e-5, gt=0, description="vertex grid (≈ 1 m)")
    gap_width_deg: float = Field(
        default=0.0, ge=0, description="close gaps narrower than this when repairing grids"
    )
    classes: int = Field(default=5, ge=2, le=7, description="choropleth classes")
    fill_opacity: float = Field(default=0.8, gt=0, le=1)


@dataclass(frozen=True)
class Frame:
    """What a map shows: the whole city, one area (and everything under it) or one grid."""

    code: str | None
    level: str  # city | district | street | community | grid
    name: str
    grid_mask: npt.NDArray[np.bool_]
    line_codes: dict[str, set[str] | None]  # per area level, codes to outline (None: all)


@dataclass(frozen=True)
class GridStyle:
    """Colour class of every grid and how the legend explains them."""

    classes: npt.NDArray[np.int64]  # index into palette per grid; -1 = no data
    palette: list[str]
    labels: list[str]
    title: str
    unit: str
    emphasis: npt.NDArray[np.bool_] | None = None  # grids drawn with a strong outline
    emphasis_label: str = ""
    note: str = ""
    emphasis_color: str = "#67001f"


@dataclass
class PreparedLayers:
    """Simplified, packed geometry of one frame, ready to be coloured by any map."""

    frame: Frame
    grids: pd.DataFrame  # attributes of the grids shown, in drawing order
    coverage: Coverage  # simplified grid polygons (same order as ``grids``)
    geometry: dict[str, Any]  # packed grid polygons
    base: dict[str, Any] | None  # packed district polygons
    lines: list[dict[str, Any]]  # packed boundary lines per level, bottom to top
    bounds: list[list[float]]  # [[south, west], [north, east]]
    tables: dict[str, list[str]]
    stats: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- inputs and framing


def _as_4326(frame: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    if not isinstance(frame, gpd.GeoDataFrame):
        raise BadInput(f"{what} must be a GeoDataFrame with a geometry column")
    if frame.crs is None:
        return frame.set_crs(4326)
    if frame.crs.to_epsg() != 4326:
        return frame.to_crs(4326)
    return frame


def _missing(frame: pd.DataFrame, needed: Sequence[str], what: str) -> None:
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise BadInput(
            f"{what} lack column(s) {', '.join(absent)}: add them (see docs/maps.md for the "
            "columns each map uses)"
        )


def check_grids(grids: gpd.GeoDataFrame, needed: Sequence[str] = ()) -> gpd.GeoDataFrame:
    """Grids in EPSG:4326 with string ids and numeric workload columns (NaN where absent)."""
    grids = _as_4326(grids, "grids")
    _missing(grids, ["grid_id", "community_code", *needed], "grids")
    out = grids.copy()
    out["grid_id"] = out["grid_id"].astype(str)
    out["community_code"] = out["community_code"].map(lambda c: None if pd.isna(c) else str(c))
    if out["grid_id"].duplicated().any():
        dup = out.loc[out["grid_id"].duplicated(), "grid_id"].iloc[0]
        raise BadInput(f"grids: grid_id {dup!r} appears more than once; grid ids must be unique")
    for col in _NUMERIC:
        if col in out.columns:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
        else:
            out[col] = np.nan
    if "co_managers_gap" not in grids.columns:
        out["co_managers_gap"] = out["co_managers_needed"] - out["co_managers_assigned"]
    for col in ("tier", "tier_reasons"):
        if col not in out.columns:
            out[col] = None
    return out


def check_areas(areas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Admin areas in EPSG:4326 with string codes and lower-case levels."""
    areas = _as_4326(areas, "areas")
    _missing(areas, _AREA_COLUMNS, "areas")
    out = areas.copy()
    out["code"] = out["code"].astype(str)
    out["parent_code"] = out["parent_code"].where(out["parent_code"].notna(), None)
    out["parent_code"] = out["parent_code"].map(lambda c: None if c is None else str(c))
    out["level"] = out["level"].astype(str).str.lower()
    if "name" not in out.columns:
        out["name"] = out["code"]
    out["name"] = out["name"].fillna(out["code"]).astype(str)
    return out


def _descendants(areas: pd.DataFrame, code: str) -> set[str]:
    """Codes of the area and everything below it (a loop per level, not per row)."""
    found = {code}
    frontier = {code}
    for _ in range(len(AREA_LEVELS) + 2):
        children = set(areas.loc[areas["parent_code"].isin(frontier), "code"]) - found
        if not children:
            break
        found |= children
        frontier = children
    return found


def _ancestors(areas: pd.DataFrame, code: str) -> set[str]:
    parents = dict(zip(areas["code"], areas["parent_code"], strict=True))
    found: set[str] = set()
    current = parents.get(code)
    while current is not None and current not in found:
        found.add(current)
        current = parents.get(current)
    return found


def resolve_frame(grids: pd.DataFrame, areas: pd.DataFrame, area: str | None) -> Frame:
    """Which grids and outlines a map shows for ``area`` (None: everything).

    ``area`` is a district, street or community code from ``areas`` or a ``grid_id``;
    anything else raises NotFound.
    """
    everything: dict[str, set[str] | None] = {level: None for level in AREA_LEVELS}
    if area is None or str(area).strip() == "":
        mask = np.ones(len(grids), dtype=bool)
        return Frame(None, "city", "whole city", mask, everything)
    code = str(area).strip()
    hit = areas.loc[areas["code"] == code]
    if len(hit):
        row = hit.iloc[0]
        below = _descendants(areas, code)
        above = _ancestors(areas, code)
        mask = grids["community_code"].isin(below).to_numpy()
        lines: dict[str, set[str] | None] = {
            level: below | above for level in AREA_LEVELS if level != "district"
        }
        lines["district"] = None
        return Frame(code, str(row["level"]), str(row["name"]), mask, lines)
    grid_hit = (grids["grid_id"] == code).to_numpy()
    if grid_hit.any():
        community = str(grids.loc[grid_hit, "community_code"].iloc[0])
        around = {community} | _ancestors(areas, community)
        lines = {level: around for level in AREA_LEVELS if level != "district"}
        lines["district"] = None
        return Frame(code, "grid", f"grid {code}", grid_hit, lines)
    raise NotFound(
        f"no area or grid with code {code!r}: use a district, street or community code "
        "from the areas, or a grid_id"
    )


# ---------------------------------------------------------------- packing


def _delta_ints(xy: npt.NDArray[np.float64], grid: float) -> npt.NDArray[np.int64]:
    """Flat [x0, y0, dx1, dy1, ...] in grid units (vertices are already on the grid)."""
    q = np.rint(xy / grid).astype(np.int64)
    if len(q) == 0:
        return np.zeros(0, dtype=np.int64)
    d = np.diff(q, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    return d.ravel()


def pack_polygons(geoms: npt.ArrayLike, grid: float = 1e-5) -> dict[str, Any]:
    """Polygons as delta-encoded integers with ring/part/feature counts (see gridmgr-map.js).

    Rings are written open (no repeated closing vertex). A feature with no polygon
    (an empty geometry) has a count of 0 and is not drawn.
    """
    arr = np.asarray(geoms, dtype=object)
    live = ~shapely.is_empty(arr) & ~shapely.is_missing(arr)
    feats = np.zeros(len(arr), dtype=np.int64)
    feats[live] = shapely.get_num_geometries(arr[live])
    if not live.any():
        return {"scale": round(1 / grid), "xy": [], "rings": [], "parts": [], "feats": feats}
    _, xy, offsets = shapely.to_ragged_array(arr[live], include_z=False)
    ring_off, poly_off = np.asarray(offsets[0]), np.asarray(offsets[1])
    ring_len = np.diff(ring_off)
    keep = np.ones(len(xy), dtype=bool)
    keep[ring_off[1:] - 1] = False  # closing vertex
    return {
        "scale": round(1 / grid),
        "xy": _delta_ints(np.asarray(xy)[keep], grid),
        "rings": ring_len - 1,
        "parts": np.diff(poly_off),
        "feats": feats,
    }


def pack_lines(lines: npt.ArrayLike, grid: float = 1e-5) -> dict[str, Any]:
    """LineStrings as delta-encoded integers with a vertex count per line."""
    arr = np.asarray(lines, dtype=object)
    arr = shapely.get_parts(arr[~shapely.is_empty(arr)])
    if len(arr) == 0:
        return {"scale": round(1 / grid), "xy": [], "rings": []}
    xy, owner = shapely.get_coordinates(arr, return_index=True)
    return {
        "scale": round(1 / grid),
        "xy": _delta_ints(xy, grid),
        "rings": np.bincount(owner, minlength=len(arr)),
    }


# ---------------------------------------------------------------- classes and labels


def format_number(value: float) -> str:
    """A short label for a class bound: whole numbers plain, others with one decimal."""
    if not np.isfinite(value):
        return "–"
    if abs(value - round(value)) < 1e-9:
        return f"{round(value):,}"
    return f"{value:,.1f}"


def classify_values(
    values: npt.ArrayLike, k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], list[str]]:
    """Quantile classes (mapclassify) of values, with labels; -1 for missing values.

    With k or fewer distinct values every value is its own class (labelled by itself),
    so a map of a few frequencies never shows empty or repeated classes.
    """
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    classes = np.full(len(v), -1, dtype=np.int64)
    distinct = np.unique(v[ok])
    if len(distinct) == 0:
        return classes, np.zeros(0), []
    if len(distinct) <= k:
        bins = distinct
        labels = [format_number(b) for b in bins]
    else:
        import mapclassify  # here, not at the top: it imports scipy, scikit-learn, matplotlib

        with warnings.catch_warnings():  # ties: mapclassify lowers k and says so
            warnings.simplefilter("ignore", UserWarning)
            quantiles = mapclassify.Quantiles(v[ok], k=k)
        bins = np.unique(np.asarray(quantiles.bins, dtype=float))
        lows = np.concatenate([[distinct[0]], bins[:-1]])
        labels = [
            f"{format_number(lo)} – {format_number(hi)}" for lo, hi in zip(lows, bins, strict=True)
        ]
    classes[ok] = np.searchsorted(bins, v[ok], side="left")
    return classes, bins, labels


# ---------------------------------------------------------------- preparing geometry


def _frame_tolerance(bounds: Sequence[float], settings: MapSettings) -> float:
    extent = max(bounds[2] - bounds[0], bounds[3] - bounds[1], 0.0)
    return float(min(settings.tolerance_deg, extent * settings.tolerance_fraction))


def _json_column(values: pd.Series, digits: int = 2) -> npt.NDArray[Any]:
    v = values.to_numpy(dtype=float)
    finite = np.isfinite(v)
    if finite.all() and np.all(v == np.round(v)):
        return v.astype(np.int64)
    return np.round(v, digits)  # orjson writes NaN as null


def _codes(values: pd.Series, table: list[str]) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Index of each value into a table of distinct escaped texts (-1 for missing)."""
    present = values.notna() & (values.astype(str) != "")
    codes, uniques = pd.factorize(values.where(present).astype(object), sort=False)
    table.extend(html.escape(str(u)) for u in uniques)
    return codes.astype(np.int64), table


def prepare_layers(
    grids: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    *,
    area: str | None = None,
    settings: MapSettings | None = None,
    needed: Sequence[str] = (),
) -> PreparedLayers:
    """Frame, simplify and pack the grids and boundaries once for any of the three maps."""
    settings = settings or MapSettings()
    started = time.perf_counter()
    grids = check_grids(grids, needed)
    areas = check_areas(areas)
    frame = resolve_frame(grids, areas, area)
    shown = grids.loc[frame.grid_mask].reset_index(drop=True)
    if frame.level in ("city", "grid"):
        frame_geoms = shown.geometry.to_numpy()
    else:
        frame_geoms = np.concatenate(
            [shown.geometry.to_numpy(), areas.loc[areas["code"] == frame.code].geometry]
        )
    if frame.level == "city" and len(shown) == 0:
        frame_geoms = areas.geometry.to_numpy()
    frame_geoms = np.asarray(frame_geoms, dtype=object)
    live = frame_geoms[~shapely.is_missing(frame_geoms) & ~shapely.is_empty(frame_geoms)]
    if len(live) == 0:
        raise BadInput(
            f"nothing to draw for {frame.name}: the grids and areas have no geometry there"
        )
    bounds = shapely.total_bounds(live)
    tolerance = _frame_tolerance(bounds, settings)
    grid = settings.precision_deg

    coverage = simplify_coverage(
        shown.geometry.to_numpy(), tolerance, grid_size=grid, gap_width=settings.gap_width_deg
    )
    districts = areas.loc[areas["level"] == "district"]
    base_pack: dict[str, Any] | None = None
    lines: list[dict[str, Any]] = []
    district_lines = None
    if len(districts):
        base = simplify_coverage(
            districts.geometry.to_numpy(), tolerance, grid_size=grid, gap_width=0.0
        )
        base_pack = pack_polygons(base.geometries, grid)
        district_lines = base.arcs
    for level in ("community", "street", "district"):
        if level == "district" and district_lines is not None:
            level_lines = district_lines
        else:
            at_level = areas.loc[areas["level"] == level]
            wanted = frame.line_codes.get(level)
            if wanted is not None:
                at_level = at_level.loc[at_level["code"].isin(wanted)]
            if len(at_level) == 0:
                continue
            level_lines = simplify_lines(at_level.geometry.to_numpy(), tolerance, grid_size=grid)
        if len(level_lines):
            lines.append(
                {
                    "level": level,
                    "label": f"{level} boundaries",
                    "pack": pack_lines(level_lines, grid),
                    "minZoom": COMMUNITY_MIN_ZOOM if level == "community" else 0,
                    **LINE_STYLES[level],
                }
            )

    names = dict(zip(areas["code"], areas["name"], strict=False))
    tables: dict[str, list[str]] = {"tier": [], "reasons": [], "community": []}
    community_names = shown["community_code"].map(lambda c: names.get(c, c))
    attrs = pd.DataFrame(
        {
            "id": shown["grid_id"].map(html.escape),
            "community": _codes(community_names, tables["community"])[0],
            "tier_name": shown["tier"],
            "reasons": _codes(shown["tier_reasons"], tables["reasons"])[0],
        }
    )
    tier_text = shown["tier"].where(shown["tier"].notna(), "no tier").astype(str)
    tables["tier"] = [html.escape(t) for t in (*TIERS, "no tier")]
    extra = sorted(set(tier_text) - set(tables["tier"]))
    tables["tier"].extend(html.escape(t) for t in extra)
    order = {t: i for i, t in enumerate([*TIERS, "no tier", *extra])}
    attrs["tier"] = tier_text.map(order).astype(np.int64)
    for col in _NUMERIC:
        attrs[col] = shown[col].to_numpy()

    south, west = float(bounds[1]), float(bounds[0])
    north, east = float(bounds[3]), float(bounds[2])
    return PreparedLayers(
        frame=frame,
        grids=pd.concat([attrs, shown[["grid_id", "community_code"]]], axis=1),
        coverage=coverage,
        geometry=pack_polygons(coverage.geometries, grid),
        base=base_pack,
        lines=lines,
        bounds=[[south, west], [north, east]],
        tables=tables,
        stats={
            "grids": len(shown),
            "tolerance_deg": tolerance,
            "method": coverage.method,
            "repaired": coverage.repaired,
            "vertices_in": coverage.vertices_in,
            "vertices_out": coverage.vertices_out,
            "prepare_s": time.perf_counter() - started,
        },
    )


# ---------------------------------------------------------------- HTML


class _OfflineMap(folium.Map):
    """folium.Map without folium's CDN links (Leaflet comes from ``basemaps`` instead)."""

    default_js: list[tuple[str, str]] = []
    default_css: list[tuple[str, str]] = []


class _GridLayers(MacroElement):
    """The packed layers as a JSON island, and the call that hands them to gridmgr-map.js.

    JSON.parse of a ``<script type="application/json">`` is several times faster for
    browsers than parsing the same data as a JavaScript literal.
    """

    _template = Template(
        """
        {% macro html(this, kwargs) %}
            <script type="application/json" id="{{ this.get_name() }}">{{ this.payload }}</script>
        {% endmacro %}
        {% macro script(this, kwargs) %}
            GridmgrMap.render({{ this._parent.get_name() }}, {{ this.get_name()|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, payload: str) -> None:
        super().__init__()
        self._name = "GridmgrLayers"
        self.payload = payload


def _legend_html(style: GridStyle, prepared: PreparedLayers) -> str:
    rows = [
        f'<div class="gm-legend-title">{html.escape(style.title)}</div>',
        f'<div class="gm-legend-unit">{html.escape(style.unit)}</div>',
    ]
    used = set(style.classes.tolist())
    for i, (colour, label) in enumerate(zip(style.palette, style.labels, strict=True)):
        rows.append(
            f'<div class="gm-legend-row" data-class="{i}">'
            f'<span class="gm-swatch" style="background:{colour}"></span>'
            f"{html.escape(label)}{'' if i in used else ' (none)'}</div>"
        )
    if -1 in used:
        rows.append(
            f'<div class="gm-legend-row" data-class="-1"><span class="gm-swatch" '
            f'style="background:{NO_DATA}"></span>no data</div>'
        )
    if style.emphasis is not None and style.emphasis.any():
        rows.append(
            f'<div class="gm-legend-row"><span class="gm-swatch" style="background:#fff;'
            f'border:2px solid {style.emphasis_color}"></span>'
            f"{html.escape(style.emphasis_label)}</div>"
        )
    for spec in reversed(prepared.lines):
        when = " (when zoomed in)" if spec.get("minZoom") else ""
        rows.append(
            f'<div class="gm-legend-row"><span class="gm-line" style="border-top-width:'
            f'{max(1.0, spec["weight"]):.1f}px;border-top-color:{spec["color"]}"></span>'
            f"{html.escape(spec['label'])}{when}</div>"
        )
    if style.note:
        rows.append(f'<div class="gm-legend-note">{html.escape(style.note)}</div>')
    return "".join(rows)


def _payload(
    prepared: PreparedLayers, style: GridStyle, title_html: str, settings: MapSettings, tiles: bool
) -> str:
    g = prepared.grids
    grids: dict[str, Any] = {
        "id": g["id"].tolist(),
        "community": g["community"].to_numpy(),
        "tier": g["tier"].to_numpy(),
        "reasons": g["reasons"].to_numpy(),
        "houses": _json_column(g["houses"]),
        "rental": _json_column(g["rental_houses"]),
        "floating": _json_column(g["floating_residents"]),
        "inspections": _json_column(g["inspections_per_month"]),
        "police": _json_column(g["police_inspections_per_month"]),
        "needed": _json_column(g["co_managers_needed"]),
        "assigned": _json_column(g["co_managers_assigned"]),
        "gap": _json_column(g["co_managers_gap"]),
        "cls": style.classes,
    }
    if style.emphasis is not None:
        grids["emph"] = style.emphasis.astype(np.int8)
    data = {
        "geometry": prepared.geometry,
        "base": prepared.base,
        "lines": prepared.lines,
        "grids": grids,
        "tables": prepared.tables,
        "bounds": prepared.bounds,
        "legend": _legend_html(style, prepared),
        "title": title_html,
        "labels": {"grids": "grids"},
        "style": {
            "palette": style.palette,
            "noData": NO_DATA,
            "fillOpacity": settings.fill_opacity,
            "baseFill": BASE_FILL,
            "baseOpacity": 0.35 if tiles else 1.0,
            "gridLine": GRID_LINE,
            "gridWeight": 0.5,
            "emphColor": style.emphasis_color,
            "emphWeight": 1.2,
            "hoverColor": "#000000",
            "hoverWeight": 2.5,
        },
    }
    text = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY).decode("utf-8")
    # JSON has "<" only inside strings: escaping it keeps the HTML parser out of the island
    return text.replace("<", "\\u003c")


def render_map(
    prepared: PreparedLayers,
    style: GridStyle,
    *,
    title: str,
    tile_url: str | None = None,
    assets: Assets = "inline",
    static_prefix: str = "/static",
    settings: MapSettings | None = None,
) -> str:
    """The whole HTML page of one map from prepared layers and a grid style."""
    settings = settings or MapSettings()
    if len(style.classes) != len(prepared.grids):
        raise BadInput("style has a class for a different number of grids than the layers")
    head = basemaps.head_tags(assets, static_prefix)
    (south, west), (north, east) = prepared.bounds
    fmap = _OfflineMap(
        location=[(south + north) / 2, (west + east) / 2],
        zoom_start=11,
        tiles=None,
        control_scale=True,
        prefer_canvas=True,
        zoom_snap=0.25,
        max_zoom=19,
    )
    if tile_url:
        folium.TileLayer(
            tiles=tile_url, attr="local tiles", name="tiles", max_zoom=19, control=False
        ).add_to(fmap)
    figure = fmap.get_root()
    figure.title = html.escape(title)  # type: ignore[attr-defined]
    figure.header.add_child(Element(head), name="gridmgr_assets", index=0)  # type: ignore[attr-defined]
    n = int((~shapely.is_empty(prepared.coverage.geometries)).sum())
    subtitle = f"{prepared.frame.name} · {n:,} grid{'s' if n != 1 else ''}"
    title_html = f"{html.escape(title)}<small>{html.escape(subtitle)}</small>"
    fmap.add_child(_GridLayers(_payload(prepared, style, title_html, settings, bool(tile_url))))
    return str(figure.render())
