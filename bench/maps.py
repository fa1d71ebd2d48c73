"""Benchmark the three offline maps at Chengdu scale against naive folium GeoJSON.

    python bench/maps.py                      # 5,155 synthetic grids (Voronoi, ~100 x 80 km)
    python bench/maps.py --source demo        # gridmgr.demo.make_city(scale=1) geometry
    python bench/maps.py --out out/bench-maps # keep the HTML files

For each map: HTML size, build seconds (simplification included, from the GeoDataFrames),
first full paint in headless Chromium (navigation start to two animation frames after the
layers are added) and JS heap after a forced GC, the same for naive folium GeoJSON of the
same grids (full-precision geometry, every column, default SVG renderer; Leaflet inlined
so it can run offline), and the ratios. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import shapely
from branca.element import Element

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import basemaps  # noqa: E402
from layers import build_map  # noqa: E402
from layers.common import prepare_layers  # noqa: E402
from layers.simplify import coverage_overlaps  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CENTRE = (104.06, 30.66)
TIERS = np.array(["strengthened", "key", "routine"], dtype=object)


# ----------------------------------------------------------------------------- data


def _wiggle(xy: np.ndarray, seed: int) -> np.ndarray:
    """A smooth, injective displacement (≤ ~25 m) so edges have street-like detail."""
    out = xy.copy()
    for axis, k in ((0, seed + 1), (1, seed + 2)):
        r = np.random.default_rng(k)
        d = np.zeros(len(xy))
        for amp, lam in ((0.00012, 0.006), (0.00012, 0.009), (0.00001, 0.0005)):
            a, ph = r.uniform(0, 2 * np.pi, 2)
            d += amp * np.sin(2 * np.pi / lam * (np.cos(a) * xy[:, 0] + np.sin(a) * xy[:, 1]) + ph)
        out[:, axis] += d
    return out


def _dissolve(geoms: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    order = np.argsort(owner, kind="stable")
    cuts = np.flatnonzero(np.diff(owner[order])) + 1
    out = np.empty(n, dtype=object)
    for group in np.split(order, cuts):
        out[owner[group[0]]] = shapely.coverage_union_all(geoms[group])
    return out


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    tree = shapely.STRtree(shapely.points(centres))
    return np.asarray(tree.query_nearest(shapely.points(points), all_matches=False)[1])


def synthetic_city(
    n_grids: int = 5155, n_comm: int = 3182, n_street: int = 319, n_dist: int = 20, seed: int = 7
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Grids as a wiggled Voronoi coverage, nested in communities, streets and districts."""
    rng = np.random.default_rng(seed)
    cx, cy = CENTRE
    w, h = 100 / 96.5 / 2, 80 / 111.0 / 2  # half extent in degrees
    core = n_grids * 2 // 3
    pts = np.vstack(
        [
            np.column_stack([rng.normal(cx, w / 3, core), rng.normal(cy, h / 3, core)]),
            np.column_stack(
                [
                    rng.uniform(cx - w, cx + w, n_grids - core),
                    rng.uniform(cy - h, cy + h, n_grids - core),
                ]
            ),
        ]
    )
    pts[:, 0] = np.clip(pts[:, 0], cx - 0.99 * w, cx + 0.99 * w)
    pts[:, 1] = np.clip(pts[:, 1], cy - 0.99 * h, cy + 0.99 * h)
    frame = shapely.box(cx - w, cy - h, cx + w, cy + h)
    cells = shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=frame, ordered=True)
    cells = shapely.intersection(shapely.get_parts(cells), frame)
    cells = shapely.segmentize(cells, 0.0003)
    xy = np.round(_wiggle(shapely.get_coordinates(cells), seed), 7)
    cells = shapely.set_coordinates(cells, xy)
    # communities: grids around the first n_comm seeds; streets and districts likewise
    comm_of_grid = _nearest(pts, pts[:n_comm])
    comm_geom = _dissolve(cells, comm_of_grid, n_comm)
    street_of_comm = _nearest(pts[:n_comm], pts[:n_street])
    street_geom = _dissolve(comm_geom, street_of_comm, n_street)
    dist_of_street = _nearest(pts[:n_street], pts[:n_dist])
    dist_geom = _dissolve(street_geom, dist_of_street, n_dist)
    d_code = np.array([f"5101{i:02d}" for i in range(n_dist)], dtype=object)
    s_code = np.array(
        [f"{d_code[dist_of_street[i]]}{i:03d}" for i in range(n_street)], dtype=object
    )
    c_code = np.array([f"{s_code[street_of_comm[i]]}{i:04d}" for i in range(n_comm)], dtype=object)
    areas = gpd.GeoDataFrame(
        {
            "code": np.concatenate([d_code, s_code, c_code]),
            "name": [f"District {i}" for i in range(n_dist)]
            + [f"Street {i}" for i in range(n_street)]
            + [f"Community {i}" for i in range(n_comm)],
            "level": ["district"] * n_dist + ["street"] * n_street + ["community"] * n_comm,
            "parent_code": [None] * n_dist
            + list(d_code[dist_of_street])
            + list(s_code[street_of_comm]),
        },
        geometry=np.concatenate([dist_geom, street_geom, comm_geom]),
        crs=4326,
    )
    grids = gpd.GeoDataFrame(
        {
            "grid_id": [f"{c_code[comm_of_grid[i]]}-{i:05d}" for i in range(n_grids)],
            "community_code": c_code[comm_of_grid],
        },
        geometry=cells,
        crs=4326,
    )
    return with_workload(grids, seed), areas


def with_workload(grids: gpd.GeoDataFrame, seed: int = 0) -> gpd.GeoDataFrame:
    """Add workload columns at Chengdu's averages (6.73 M houses, 4.36 M floating)."""
    rng = np.random.default_rng(seed)
    n = len(grids)
    out = grids.copy()
    houses = rng.gamma(4, 6.73e6 / 5155 / 4, n).round().astype(int)
    rental = rng.binomial(houses, 915 / 6730)
    key = rng.binomial(rental, 0.08)
    floating = rng.gamma(3, 4.36e6 / 5155 / 3, n).round().astype(int)
    police = np.round(key * 52 / 12, 2)
    needed = np.ceil(floating / 500)
    assigned = (
        out["co_managers"].to_numpy()
        if "co_managers" in out
        else np.maximum(0, needed + rng.integers(-2, 2, n))
    )
    score = police + rng.normal(0, 10, n)
    tier = TIERS[2 - np.digitize(score, np.quantile(score, [0.6, 0.9]))]
    out["tier"] = tier
    out["tier_reasons"] = [
        f"{t}: {r / max(h, 1):.0%} rentals ≥ 30 %; {k} key rentals"
        if t != "routine"
        else "routine: no trigger"
        for t, r, h, k in zip(tier, rental, houses, key, strict=True)
    ]
    out["houses"] = houses
    out["rental_houses"] = rental
    out["floating_residents"] = floating
    out["police_inspections_per_month"] = police
    out["inspections_per_month"] = np.round(police + (rental - key) * 0.3 * 2, 2)
    out["co_managers_needed"] = needed
    out["co_managers_assigned"] = assigned
    out["co_managers_gap"] = needed - assigned
    return out


def demo_city() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Geometry of gridmgr.demo.make_city(scale=1) with synthetic workload columns.

    The areas and grids are built before any house, so 1 % of the houses, people and
    employers gives the same geometry in a fraction of the time and memory.
    """
    from gridmgr.demo import DemoSettings, make_city

    light = DemoSettings(
        houses=67_300, rented_houses=9_150, floating_residents=43_600, businesses=387
    )
    city = make_city(scale=1, settings=light)
    return with_workload(city.grids), city.areas


# ----------------------------------------------------------------------------- naive


def naive_folium(grids: gpd.GeoDataFrame) -> str:
    """What folium does out of the box: every column, full precision, SVG, CDN assets.

    The CDN assets are swapped for the same inlined Leaflet so the page can run offline;
    everything else is folium's default.
    """

    class Offline(folium.Map):
        default_js: list[tuple[str, str]] = []
        default_css: list[tuple[str, str]] = []

    b = grids.total_bounds
    fmap = Offline(location=[(b[1] + b[3]) / 2, (b[0] + b[2]) / 2], zoom_start=10, tiles=None)
    root: Any = fmap.get_root()
    root.header.add_child(Element(basemaps.head_tags("inline")), index=0)
    colours = {"strengthened": "#D55E00", "key": "#E69F00", "routine": "#56B4E9"}
    fields = [c for c in grids.columns if c != "geometry"]
    folium.GeoJson(
        grids,
        style_function=lambda f: {
            "fillColor": colours.get(f["properties"]["tier"], "#999"),
            "color": "#fff",
            "weight": 0.5,
            "fillOpacity": 0.8,
        },
        tooltip=folium.GeoJsonTooltip(fields=fields),
    ).add_to(fmap)
    fmap.fit_bounds([[b[1], b[0]], [b[3], b[2]]])
    root.script.add_child(
        Element(
            "requestAnimationFrame(function(){requestAnimationFrame(function(){"
            "window.gridmgrPaintedAt=performance.now();"
            "document.documentElement.setAttribute('data-gridmgr-painted','1');});});"
        )
    )
    return str(fmap.get_root().render())


# ----------------------------------------------------------------------------- browser


def _block_outside(seen: list[str]) -> Any:
    """A route handler that lets file:/data: through and aborts (and records) the rest."""

    def handle(route: Any) -> None:
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            seen.append(route.request.url)
            route.abort()

    return handle


def browser_figures(paths: dict[str, Path], repeats: int = 3) -> dict[str, dict[str, float]]:
    """First full paint (median of ``repeats`` cold page loads) and JS heap after GC."""
    from playwright.sync_api import sync_playwright

    out: dict[str, dict[str, float]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name, path in paths.items():
            paints: list[float] = []
            heaps: list[float] = []
            outside: list[str] = []
            for _ in range(repeats):
                ctx = browser.new_context(viewport={"width": 1280, "height": 800})
                page = ctx.new_page()
                page.route("**/*", _block_outside(outside))
                page.goto(path.as_uri(), wait_until="load", timeout=120_000)
                page.wait_for_selector("html[data-gridmgr-painted]", timeout=120_000)
                paints.append(float(page.evaluate("window.gridmgrPaintedAt")))
                cdp = ctx.new_cdp_session(page)
                cdp.send("HeapProfiler.enable")
                cdp.send("HeapProfiler.collectGarbage")
                usage = cdp.send("Runtime.getHeapUsage")
                heaps.append(usage["usedSize"] / 1e6)
                ctx.close()
            out[name] = {
                "paint_ms": round(float(np.median(paints)), 0),
                "heap_mb": round(float(np.median(heaps)), 1),
                "requests_outside": len(outside),
            }
        browser.close()
    return out


# ----------------------------------------------------------------------------- main


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["synthetic", "demo"], default="synthetic")
    parser.add_argument("--out", type=Path, default=None, help="keep the HTML files here")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    t0 = time.perf_counter()
    import mapclassify  # noqa: F401  (layers imports it on first use; time it apart)

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    grids, areas = synthetic_city() if args.source == "synthetic" else demo_city()
    data_s = time.perf_counter() - t0
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="gridmgr-bench-maps-"))
    out_dir.mkdir(parents=True, exist_ok=True)

    result: dict[str, Any] = {
        "bench": "maps",
        "source": args.source,
        "grids": len(grids),
        "areas": {k: int(v) for k, v in areas["level"].value_counts().items()},
        "vertices_in": int(shapely.get_num_coordinates(grids.geometry.values).sum()),
        "data_s": round(data_s, 2),
        "mapclassify_import_s": round(import_s, 2),
        "load_avg": round(os.getloadavg()[0], 1),
    }
    paths: dict[str, Path] = {}
    maps: dict[str, dict[str, float]] = {}
    for kind in ("inspection", "tier", "staffing"):
        t, cpu = time.perf_counter(), time.process_time()
        page = build_map(kind, grids, areas)
        build_s, build_cpu_s = time.perf_counter() - t, time.process_time() - cpu
        path = out_dir / f"{kind}.html"
        path.write_text(page, encoding="utf-8")
        paths[kind] = path
        maps[kind] = {
            "html_mb": round(len(page.encode()) / 1e6, 2),
            "build_s": round(build_s, 2),
            "build_cpu_s": round(build_cpu_s, 2),
        }
    prepared = prepare_layers(grids, areas)
    result["simplify"] = {
        "method": prepared.stats["method"],
        "vertices_out": prepared.stats["vertices_out"],
        "tolerance_deg": prepared.stats["tolerance_deg"],
        "overlaps": coverage_overlaps(prepared.coverage.geometries),
        "coverage_valid": bool(shapely.coverage_is_valid(prepared.coverage.geometries)),
        "prepare_s": round(prepared.stats["prepare_s"], 2),
    }
    t, cpu = time.perf_counter(), time.process_time()
    naive = naive_folium(grids)
    naive_s, naive_cpu_s = time.perf_counter() - t, time.process_time() - cpu
    paths["naive"] = out_dir / "naive.html"
    paths["naive"].write_text(naive, encoding="utf-8")
    maps["naive"] = {
        "html_mb": round(len(naive.encode()) / 1e6, 2),
        "build_s": round(naive_s, 2),
        "build_cpu_s": round(naive_cpu_s, 2),
    }

    for name, figures in browser_figures(paths, args.repeats).items():
        maps[name].update(figures)
    result["maps"] = maps
    tier = maps["tier"]
    result["naive_over_tier"] = {
        k: round(maps["naive"][k] / tier[k], 1) if tier[k] else None
        for k in ("html_mb", "build_s", "paint_ms", "heap_mb")
    }
    result["out"] = str(out_dir)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
