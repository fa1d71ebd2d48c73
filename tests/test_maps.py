"""The three offline maps: coverage simplification, framing, and the pages in Chromium."""

from __future__ import annotations

import functools
import http.server
import io
import re
import threading
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely

import basemaps
from gridmgr.errors import BadInput, NotFound
from layers import MAP_KINDS, build_map, build_maps, prepare_layers
from layers import simplify as simp
from layers.common import (
    BASE_FILL,
    MapSettings,
    classify_values,
    pack_lines,
    pack_polygons,
)
from layers.simplify import coverage_overlaps, simplify_coverage, simplify_lines
from layers.staffing import staffing_style

X0, Y0 = 104.00, 30.60  # south-west corner of the test city
CELL = 0.02  # one community is CELL x CELL degrees


# ----------------------------------------------------------------------------- data


def wiggly_cells(box: shapely.Polygon, pts: np.ndarray, seed: int) -> np.ndarray:
    """A Voronoi coverage of ``box`` with detailed, curvy shared edges and a straight outline."""
    x0, y0, x1, y1 = box.bounds
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=box, ordered=True)
    )
    cells = shapely.segmentize(shapely.intersection(cells, box), 0.0002)
    xy = shapely.get_coordinates(cells)
    # a smooth displacement that vanishes on the outline, so the outline stays straight
    bump = np.sin(np.pi * (xy[:, 0] - x0) / (x1 - x0)) * np.sin(np.pi * (xy[:, 1] - y0) / (y1 - y0))
    dx = 0.0003 * np.sin(xy[:, 1] * 900 + seed) * bump
    dy = 0.0003 * np.sin(xy[:, 0] * 800 + 2 * seed) * bump
    return np.asarray(shapely.set_coordinates(cells, np.round(xy + np.column_stack([dx, dy]), 7)))


def make_city(seed: int = 1) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """3 communities of 12 grids; C0 and C1 in street S1 (district D1), C2 in S2 (D2)."""
    rng = np.random.default_rng(seed)
    # one Voronoi over the whole city (a clean coverage), 12 seeds per community box
    community = np.repeat(np.arange(3), 12)
    pts = np.column_stack(
        [
            X0 + (community + rng.uniform(0.1, 0.9, 36)) * CELL,
            Y0 + rng.uniform(0.05, 0.95, 36) * CELL,
        ]
    )
    cells = wiggly_cells(shapely.box(X0, Y0, X0 + 3 * CELL, Y0 + CELL), pts, seed)
    index = np.tile(np.arange(12), 3)
    grids = gpd.GeoDataFrame(
        {
            "grid_id": [f"G{c}-{i:02d}" for c, i in zip(community, index, strict=True)],
            "community_code": [f"C{c}" for c in community],
        },
        geometry=cells,
        crs=4326,
    )
    n = len(grids)
    grids["tier"] = np.array(["strengthened", "key", "routine"])[np.arange(n) % 3]
    grids["tier_reasons"] = grids["tier"] + ": 38 % rentals ≥ 30 % <b>"  # markup must be escaped
    grids["houses"] = rng.integers(200, 2000, n)
    grids["rental_houses"] = (grids["houses"] * 0.15).astype(int)
    grids["floating_residents"] = rng.integers(100, 1500, n)
    grids["police_inspections_per_month"] = np.round(rng.integers(0, 9, n) * 52 / 12, 2)
    grids["inspections_per_month"] = grids["police_inspections_per_month"] + 2.0
    grids["co_managers_needed"] = np.ceil(grids["floating_residents"] / 500)
    grids["co_managers_assigned"] = grids["co_managers_needed"] + (np.arange(n) % 4) - 1
    grids["co_managers_gap"] = grids["co_managers_needed"] - grids["co_managers_assigned"]

    def box(c0: int, c1: int) -> shapely.Polygon:
        return shapely.box(X0 + c0 * CELL, Y0, X0 + c1 * CELL, Y0 + CELL)

    areas = gpd.GeoDataFrame(
        {
            "code": ["D1", "D2", "S1", "S2", "C0", "C1", "C2"],
            "name": ["District 1", "District 2", "Street 1", "Street 2", "Co 0", "Co 1", "Co 2"],
            "level": ["district", "district", "street", "street", *["community"] * 3],
            "parent_code": [None, None, "D1", "D2", "S1", "S1", "S2"],
        },
        geometry=[box(0, 2), box(2, 3), box(0, 2), box(2, 3), box(0, 1), box(1, 2), box(2, 3)],
        crs=4326,
    )
    return grids, areas


@pytest.fixture(scope="module")
def city() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    return make_city()


def on_grid(geoms: Any, grid: float = 1e-5) -> bool:
    xy = shapely.get_coordinates(np.asarray(geoms, dtype=object)) / grid
    return bool(np.abs(xy - np.rint(xy)).max() < 1e-6)


# ----------------------------------------------------------------------------- simplification


def test_simplify_keeps_a_clean_coverage_exact(city):
    grids, _ = city
    frame = shapely.box(X0, Y0, X0 + 3 * CELL, Y0 + CELL)
    result = simplify_coverage(grids.geometry.to_numpy(), 1e-4)
    out = result.geometries
    assert result.method == "arcs"
    assert result.vertices_out < result.vertices_in / 2
    assert shapely.is_valid(out).all()
    assert shapely.coverage_is_valid(out)
    assert coverage_overlaps(out) == 0
    # no gaps: the pieces still fill the outline (whose own simplification moves it by
    # at most the tolerance) and their union has no holes
    union = shapely.union_all(out)
    assert union.geom_type == "Polygon" and len(union.interiors) == 0
    assert abs(shapely.area(out).sum() - frame.area) <= 1e-4 * frame.length
    assert abs(union.area - shapely.area(out).sum()) < 1e-12
    assert on_grid(out)
    # each shared border is one arc: fewer arcs than ring pieces
    assert len(result.arcs) < sum(len(shapely.get_coordinates(g)) for g in out)


def messy(grids: gpd.GeoDataFrame) -> np.ndarray:
    """Shift some grids (overlaps and thin gaps), add a bow-tie and a duplicate."""
    geoms = grids.geometry.to_numpy().copy()
    rng = np.random.default_rng(5)
    for i in (3, 8, 17, 25):
        geoms[i] = shapely.affinity.translate(geoms[i], *rng.normal(0, 4e-5, 2))
    c = shapely.centroid(geoms[30])
    bow = shapely.Polygon(
        [(c.x - 1e-3, c.y - 1e-3), (c.x + 1e-3, c.y + 1e-3), (c.x + 1e-3, c.y - 1e-3),
         (c.x - 1e-3, c.y + 1e-3)]
    )  # fmt: skip
    assert not bow.is_valid
    geoms[30] = shapely.union(geoms[30], shapely.make_valid(bow)).buffer(0)
    geoms[31] = shapely.Polygon(
        [*shapely.get_coordinates(shapely.get_exterior_ring(geoms[31]))[:-1], (c.x, c.y)]
    )  # a self-intersecting ring
    return geoms


def test_simplify_repairs_a_messy_input_without_overlaps(city):
    grids, _ = city
    geoms = messy(grids)
    assert not shapely.coverage_is_valid(geoms) or not shapely.is_valid(geoms).all()
    result = simplify_coverage(geoms, 1e-4)
    out = result.geometries
    assert result.method.startswith("cleaned+")
    assert result.repaired > 0
    assert shapely.is_valid(out).all()
    assert shapely.coverage_is_valid(out)
    assert coverage_overlaps(out) == 0
    assert on_grid(out)
    assert (~shapely.is_empty(out)).sum() >= len(out) - 1


def test_repair_coverage_once_then_the_fast_path(city):
    grids, _ = city
    repaired, rebuilt = simp.repair_coverage(messy(grids))
    assert rebuilt > 0 and shapely.coverage_is_valid(repaired)
    again, rebuilt_again = simp.repair_coverage(repaired)
    assert rebuilt_again == 0
    assert simplify_coverage(repaired, 1e-4).method == "arcs"


def test_repair_creates_no_gap_the_source_did_not_have(city):
    grids, _ = city
    geoms = messy(grids)
    frame = shapely.box(X0, Y0, X0 + 3 * CELL, Y0 + CELL)
    source_gaps = frame.difference(shapely.union_all(shapely.make_valid(geoms)))
    for tolerance in (0.0, 1e-4):
        out = simplify_coverage(geoms, tolerance).geometries
        assert coverage_overlaps(out) == 0
        # inside the outline (which simplification may cut by up to the tolerance), every
        # gap left lies in a gap of the source, give or take the 1e-5 snapping (and the
        # tolerance where a gap's edges were simplified): less than one 1e-5° cell
        slack = max(tolerance, 1e-5) * 1.5
        inside = frame.buffer(-2 * slack)
        out_gaps = inside.difference(shapely.union_all(out))
        assert out_gaps.difference(source_gaps.buffer(slack)).area < 1e-10


def test_independently_drawn_communities_become_one_coverage():
    # each community's grids drawn on its own: along community borders the vertices of
    # the two sides do not match (T-junctions), as in real grid files
    rng = np.random.default_rng(3)
    parts = []
    for c in range(3):
        box = shapely.box(X0 + c * CELL, Y0, X0 + (c + 1) * CELL, Y0 + CELL)
        x0, y0, x1, y1 = box.bounds
        pts = np.column_stack([rng.uniform(x0, x1, 10), rng.uniform(y0, y1, 10)])
        parts.append(wiggly_cells(box, pts, c))
    geoms = np.concatenate(parts)
    assert not shapely.coverage_is_valid(shapely.set_precision(geoms, 1e-5))
    out = simplify_coverage(geoms, 1e-4).geometries
    assert shapely.coverage_is_valid(out)
    assert coverage_overlaps(out) == 0
    union = shapely.union_all(out)
    assert union.geom_type == "Polygon" and len(union.interiors) == 0


def test_polygonize_repair_fallback_is_a_coverage(city):
    # the path used when shapely has no coverage_clean (GEOS < 3.14)
    grids, _ = city
    snapped = simp._snap(simp.polygonal(messy(grids)), 1e-5)
    out = simp._clean_by_faces(snapped, 1e-5)
    assert shapely.is_valid(out).all()
    assert shapely.coverage_is_valid(out)
    assert coverage_overlaps(out) == 0
    assert on_grid(out)


def test_geos_fallback_when_arcs_fail(city, monkeypatch):
    grids, _ = city

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise simp._NotACoverage("forced")

    monkeypatch.setattr(simp, "_arc_simplify", fail)
    result = simplify_coverage(grids.geometry.to_numpy(), 1e-4)
    assert result.method == "geos"
    assert shapely.coverage_is_valid(result.geometries)
    assert coverage_overlaps(result.geometries) == 0
    assert len(result.arcs) > 0


def test_simplify_lines_draws_each_shared_border_once(city):
    _, areas = city
    communities = areas.loc[areas["level"] == "community"].geometry.to_numpy()
    lines = simplify_lines(communities, 1e-4)
    # three boxes in a row: the two inner borders are drawn once, not twice
    total = shapely.length(lines).sum()
    outline = 2 * (3 * CELL + CELL) + 2 * CELL
    assert total == pytest.approx(outline, rel=1e-6)


def decode(pack: dict[str, Any]) -> list[np.ndarray]:
    """The JavaScript decoder, in Python: delta-encoded ints to one array per ring/line."""
    xy = np.cumsum(np.asarray(pack["xy"], dtype=np.int64).reshape(-1, 2), axis=0) / pack["scale"]
    ends = np.cumsum(pack["rings"])
    return np.split(xy, ends[:-1]) if len(ends) else []


def test_packing_round_trips(city):
    grids, _ = city
    out = simplify_coverage(grids.geometry.to_numpy(), 1e-4)
    geoms = np.concatenate([out.geometries, [shapely.Polygon()]])
    pack = pack_polygons(geoms)
    assert list(pack["feats"][-1:]) == [0]  # empty: nothing to draw
    rings = decode(pack)
    expected = [
        shapely.get_coordinates(r)[:-1]
        for g in geoms[:-1]
        for p in shapely.get_parts(g)
        for r in shapely.get_rings(p)
    ]
    assert len(rings) == len(expected) == int(np.sum(pack["rings"] > 0))
    for got, want in zip(rings, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-9)
    lines = pack_lines(out.arcs)
    for got, want in zip(decode(lines), out.arcs, strict=True):
        np.testing.assert_allclose(got, shapely.get_coordinates(want), atol=1e-9)


# ----------------------------------------------------------------------------- classes


def test_classes_few_values_each_their_own():
    classes, bins, labels = classify_values([0, 4.33, 4.33, 8.67, np.nan], 5)
    assert list(classes) == [0, 1, 1, 2, -1]
    assert labels == ["0", "4.3", "8.7"]


def test_classes_quantiles_when_many_values():
    values = np.arange(100, dtype=float)
    classes, bins, labels = classify_values(values, 5)
    assert len(labels) == 5 and set(classes) == set(range(5))
    assert np.bincount(classes).min() >= 19
    assert labels[0].startswith("0 –") and labels[-1].endswith("99")


def test_staffing_diverges_around_balance(city):
    grids, areas = city
    prepared = prepare_layers(grids, areas)
    style = staffing_style(prepared)
    gap = prepared.grids["co_managers_gap"].to_numpy()
    balanced = style.labels.index("balanced (0)")
    assert (style.classes[gap > 0] < balanced).all()
    assert (style.classes[gap == 0] == balanced).all()
    assert (style.classes[gap < 0] > balanced).all()
    assert style.labels[0].startswith("short") and style.labels[-1].startswith("surplus")
    assert style.emphasis is not None and (style.emphasis == (gap > 0)).all()
    # larger shortfalls are darker: they come first in the legend
    assert style.classes[np.argmax(gap)] == 0


# ----------------------------------------------------------------------------- framing


@pytest.mark.parametrize(
    ("area", "expected"),
    [
        (None, 36),
        ("D1", 24),
        ("S2", 12),
        ("C1", 12),
        ("G2-03", 1),
    ],
)
def test_area_frames_its_grids(city, area, expected):
    grids, areas = city
    prepared = prepare_layers(grids, areas, area=area)
    assert len(prepared.grids) == expected
    if area and area.startswith("C"):
        assert set(prepared.grids["community_code"]) == {area}
    (south, west), (north, east) = prepared.bounds
    shown = grids.loc[grids["grid_id"].isin(prepared.grids["grid_id"])]
    minx, miny, maxx, maxy = shown.total_bounds
    assert west <= minx and east >= maxx and south <= miny and north >= maxy


def test_unknown_area_is_not_found(city):
    grids, areas = city
    with pytest.raises(NotFound, match="X9"):
        build_map("tier", grids, areas, area="X9")


def test_bad_input_names_what_to_fix(city):
    grids, areas = city
    with pytest.raises(BadInput, match="police_inspections_per_month"):
        build_map("inspection", grids.drop(columns="police_inspections_per_month"), areas)
    with pytest.raises(BadInput, match="unknown map"):
        build_map("heat", grids, areas)
    with pytest.raises(BadInput, match="grid_id"):
        build_map("tier", grids.assign(grid_id="same"), areas)


def test_other_crs_is_reprojected(city):
    grids, areas = city
    a = prepare_layers(grids, areas, area="C0")
    b = prepare_layers(grids.to_crs(32648), areas.to_crs(32648), area="C0")
    assert len(a.grids) == len(b.grids)
    np.testing.assert_allclose(a.bounds, b.bounds, atol=1e-6)


# ----------------------------------------------------------------------------- the HTML


EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def markup(page: str) -> str:
    """The page without the bodies of inline scripts and styles (Leaflet's own strings)."""
    page = re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", page, flags=re.S)
    return re.sub(r"(<style[^>]*>).*?(</style>)", r"\1\2", page, flags=re.S)


def test_inline_page_references_nothing_outside(city):
    grids, areas = city
    page = build_map("tier", grids, areas)
    assert not EXTERNAL.search(markup(page))
    assert "<script src" not in page and "<link" not in page
    for cdn in ("cdn.", "jsdelivr", "unpkg", "cdnjs", "jquery", "bootstrap", "d3.", "d3@"):
        assert cdn not in page.lower()
    assert '"1.9.4"' in page  # Leaflet is inlined
    island = re.search(
        r'<script type="application/json" id="gridmgr_layers_\w+">(.*?)</script>', page, re.S
    )
    assert island is not None
    assert "<" not in island.group(1)  # data can never close the script or inject markup
    assert "&lt;b&gt;" in island.group(1)  # the reasons' markup is shown as text


def test_static_page_links_the_static_mount(city):
    grids, areas = city
    page = build_map("tier", grids, areas, assets="static", static_prefix="/static")
    links = re.findall(r"""(?:src|href)="(/static/[^"]+)\"""", page)
    assert "/static/leaflet/leaflet.js" in links and "/static/leaflet/leaflet.css" in links
    for link in links:
        assert (basemaps.static_dir() / link.removeprefix("/static/")).is_file()
    assert not EXTERNAL.search(markup(page))
    assert "leaflet.js.map" not in basemaps.inline_js("leaflet/leaflet.js")


def test_build_maps_shares_the_geometry(city):
    grids, areas = city
    pages = build_maps(grids, areas, area="S1")
    assert set(pages) == set(MAP_KINDS)
    titles = {m.group(1) for p in pages.values() if (m := re.search(r"<title>(.*?)</title>", p))}
    assert len(titles) == 3


# ----------------------------------------------------------------------------- in Chromium


def hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


@pytest.fixture(scope="module")
def chromium(playwright_browser: Any) -> Any:
    return playwright_browser


def open_page(browser: Any, url: str) -> tuple[Any, list[str]]:
    """A page with every request that is not file:// or localhost aborted and recorded."""
    outside: list[str] = []
    page = browser.new_page(viewport={"width": 1000, "height": 700})

    def route(r: Any) -> None:
        u = r.request.url
        if u.startswith(("file:", "data:", "http://127.0.0.1", "http://localhost")):
            r.continue_()
        else:
            outside.append(u)
            r.abort()

    page.route("**/*", route)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("html[data-gridmgr-painted]", timeout=30_000)
    assert errors == []
    return page, outside


def grid_pixels(page: Any, prepared: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Screen pixel at an interior point of every grid, the point, and whether the map's
    canvas is what shows there (not the legend, title or a control)."""
    from PIL import Image

    inside = shapely.point_on_surface(prepared.coverage.geometries)
    latlng = [[p.y, p.x] for p in inside]
    found = page.evaluate(
        """(pts) => {
            const map = window[document.querySelector('.folium-map').id];
            return pts.map(p => {
                const c = map.latLngToContainerPoint(p);
                const top = document.elementFromPoint(Math.round(c.x), Math.round(c.y));
                return [c.x, c.y, top !== null && top.tagName === 'CANVAS' ? 1 : 0];
            });
        }""",
        latlng,
    )
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"), dtype=float)
    found = np.asarray(found)
    xy = np.rint(found[:, :2]).astype(int)
    return shot[xy[:, 1], xy[:, 0]], xy, found[:, 2] == 1


@pytest.mark.browser
@pytest.mark.parametrize("kind", MAP_KINDS)
def test_map_draws_offline_in_chromium(city, chromium, tmp_path, artifacts_dir, kind):
    grids, areas = city
    settings = MapSettings()
    prepared = prepare_layers(grids, areas)
    page_html = build_map(kind, grids, areas, prepared=prepared)
    path = tmp_path / f"{kind}.html"
    path.write_text(page_html, encoding="utf-8")
    page, outside = open_page(chromium, path.as_uri())
    try:
        assert outside == []
        assert page.get_attribute("html", "data-gridmgr-grids") == str(len(grids))
        # the legend is there, with its units and one row per class
        legend = page.locator(".gridmgr-legend")
        assert legend.is_visible()
        text = legend.inner_text()
        unit = {"inspection": "police inspections / month", "tier": "tier",
                "staffing": "needed − assigned"}[kind]  # fmt: skip
        assert unit in text
        assert (
            page.locator(".gridmgr-title")
            .inner_text()
            .startswith(
                {"inspection": "Police", "tier": "Grid tiers", "staffing": "Co-manager"}[kind]
            )
        )
        assert page.locator(".leaflet-control-scale-line").count() >= 1
        # every grid is painted in its class colour (sampled on the canvas)
        data = page.evaluate(
            "JSON.parse(document.querySelector('script[type=\"application/json\"]').textContent)"
        )
        palette = [hex_rgb(c) for c in data["style"]["palette"]]
        alpha = settings.fill_opacity
        blended = np.array([alpha * c + (1 - alpha) * hex_rgb(BASE_FILL) for c in palette])
        pixels, xy, visible = grid_pixels(page, prepared)
        assert visible.sum() >= 0.75 * len(visible)  # most of the map is not under controls
        classes = np.asarray(data["grids"]["cls"])[visible]
        distance = np.linalg.norm(pixels[visible, None, :] - blended[None, :, :], axis=2)
        nearest = distance.argmin(axis=1)
        hit = (nearest == classes) & (distance.min(axis=1) < 30)
        assert hit.mean() >= 0.9, f"{hit.sum()} of {len(hit)} grids in their colour"
        rows = page.locator(".gridmgr-legend .gm-legend-row[data-class]")
        assert rows.count() == len(palette)
        page.screenshot(path=str(artifacts_dir / f"map-{kind}.png"))
        # hovering a grid shows its tooltip
        first = int(np.flatnonzero(visible)[0])
        page.mouse.move(float(xy[first, 0]), float(xy[first, 1]))
        tip = page.locator(".leaflet-tooltip")
        tip.wait_for(timeout=5_000)
        assert f"Grid {prepared.grids['grid_id'][first]}" in tip.inner_text()
        assert "Co-managers" in tip.inner_text() and "<b>" in tip.inner_text()
    finally:
        page.close()


@pytest.mark.browser
def test_area_map_draws_only_its_grids(city, chromium, tmp_path, artifacts_dir):
    grids, areas = city
    path = tmp_path / "tier-S2.html"
    path.write_text(build_map("tier", grids, areas, area="S2"), encoding="utf-8")
    page, outside = open_page(chromium, path.as_uri())
    try:
        assert outside == []
        assert page.get_attribute("html", "data-gridmgr-grids") == "12"
        view = page.evaluate(
            """() => { const m = window[document.querySelector('.folium-map').id];
                       const b = m.getBounds(); return [b.getWest(), b.getEast()]; }"""
        )
        # framed on street S2 (the third community), not on the whole city
        assert view[0] > X0 + 1.5 * CELL and view[1] < X0 + 3.5 * CELL
        page.screenshot(path=str(artifacts_dir / "map-tier-S2.png"))
        # community outlines come and go with the zoom level (drawn from zoom 12 on)
        shown = page.evaluate(
            """async () => {
                const m = window[document.querySelector('.folium-map').id];
                const lines = m.gridmgr.overlays['community boundaries'];
                const seen = [];
                for (const z of [14, 10, 13, 11]) {
                    m.setZoom(z, {animate: false});
                    seen.push(m.hasLayer(lines));
                }
                return seen;
            }"""
        )
        assert shown == [True, False, True, False]
    finally:
        page.close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.browser
def test_static_assets_page_draws_from_localhost(city, chromium, tmp_path):
    grids, areas = city
    (tmp_path / "static").symlink_to(basemaps.static_dir(), target_is_directory=True)
    (tmp_path / "tier.html").write_text(
        build_map("tier", grids, areas, assets="static", static_prefix="/static"),
        encoding="utf-8",
    )
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page, outside = open_page(chromium, f"http://127.0.0.1:{server.server_port}/tier.html")
        try:
            assert outside == []
            assert page.get_attribute("html", "data-gridmgr-grids") == str(len(grids))
            assert page.locator(".gridmgr-legend").is_visible()
        finally:
            page.close()
    finally:
        server.shutdown()
        server.server_close()
