"""Benchmark the rebalance engine against the current grids and spopt's max-p.

Synthesises a street like the one measured in issue 8 (16 current grids drawn as a Voronoi
of the street, 21,000 clustered houses, 13,900 floating residents), builds H3 blocks at
resolutions 10 and 11, and prints one JSON line with min, max, CV, share within bounds,
Polsby–Popper and seconds for: the current plan, spopt max-p (floor only, killed after
--maxp-timeout seconds), and gridmgr's rebalance on each of --seeds seeds.

    python bench/rebalance.py [--seeds 5] [--maxp-timeout 120] [--skip-maxp]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridmgr.blocks import WGS84, build_blocks  # noqa: E402
from gridmgr.rebalance import compare_with_maxp, describe_grids, rebalance  # noqa: E402

M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True)
class Street:
    """A synthetic street: boundary, houses with floating residents, current grids."""

    boundary: shapely.Polygon
    lon: np.ndarray
    lat: np.ndarray
    floating: np.ndarray
    grids: gpd.GeoDataFrame


def synth_street(
    seed: int = 0,
    houses: int = 21_000,
    floating: int = 13_900,
    grids: int = 16,
    centre: tuple[float, float] = (104.06, 30.66),
    lloyd_steps: int = 1,
) -> Street:
    """A non-convex street of about 4.4 km² with clustered houses and Voronoi grids."""
    rng = np.random.default_rng(seed)
    lon0, lat0 = centre
    mx = 1.0 / (M_PER_DEG_LAT * np.cos(np.radians(lat0)))
    my = 1.0 / M_PER_DEG_LAT
    # An L-shaped street with a notch and wavy edges (metres, then degrees).
    outline_m = np.array(
        [
            (0, 0),
            (2400, 0),
            (2450, 900),
            (2350, 1300),
            (1300, 1250),
            (1250, 2300),
            (700, 2450),
            (600, 1900),
            (350, 1800),
            (0, 2400),
            (-80, 1200),
        ],
        dtype=float,
    )
    ring = shapely.segmentize(shapely.LinearRing(outline_m), 150.0)
    pts = shapely.get_coordinates(ring)
    pts = pts + rng.normal(0, 25, pts.shape)
    boundary_m = shapely.make_valid(shapely.Polygon(pts))
    if boundary_m.geom_type != "Polygon":
        boundary_m = max(shapely.get_parts(boundary_m), key=lambda g: g.area)

    minx, miny, maxx, maxy = boundary_m.bounds
    n_clusters = 36
    centres = np.column_stack(
        [rng.uniform(minx, maxx, n_clusters * 3), rng.uniform(miny, maxy, n_clusters * 3)]
    )
    centres = centres[shapely.contains_xy(boundary_m, centres[:, 0], centres[:, 1])][:n_clusters]
    size = rng.lognormal(0.0, 0.8, centres.shape[0])
    spread = rng.uniform(90, 260, centres.shape[0])
    n_bg = int(houses * 0.25)
    n_cl = houses - n_bg
    which = rng.choice(centres.shape[0], n_cl, p=size / size.sum())
    xy = centres[which] + rng.normal(0, 1, (n_cl, 2)) * spread[which, None]
    bg = np.column_stack([rng.uniform(minx, maxx, n_bg * 3), rng.uniform(miny, maxy, n_bg * 3)])
    xy = np.vstack([xy, bg])
    xy = xy[shapely.contains_xy(boundary_m, xy[:, 0], xy[:, 1])]
    while xy.shape[0] < houses:  # top up points that fell outside with background ones
        extra = np.column_stack([rng.uniform(minx, maxx, houses), rng.uniform(miny, maxy, houses)])
        xy = np.vstack([xy, extra[shapely.contains_xy(boundary_m, extra[:, 0], extra[:, 1])]])
    xy = xy[rng.permutation(xy.shape[0])[:houses]]
    # Urban-village clusters let far more rooms to floating residents than compounds.
    rate = np.where(rng.random(n_clusters) < 0.3, 1.6, 0.5)
    cluster_of = np.full(houses, -1)
    d2 = ((xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    near = d2.argmin(axis=1)
    close = d2[np.arange(houses), near] < (2.0 * spread[near]) ** 2
    cluster_of[close] = near[close]
    house_rate = np.where(cluster_of >= 0, rate[np.maximum(cluster_of, 0)], 0.6)
    residents = rng.multinomial(floating, house_rate / house_rate.sum()).astype(float)

    def to_deg(g: Any) -> Any:
        return shapely.transform(
            g, lambda c: np.column_stack([lon0 + c[:, 0] * mx, lat0 + c[:, 1] * my])
        )

    boundary = to_deg(boundary_m)
    lon = lon0 + xy[:, 0] * mx
    lat = lat0 + xy[:, 1] * my
    gen = np.column_stack([rng.uniform(minx, maxx, grids * 4), rng.uniform(miny, maxy, grids * 4)])
    gen = gen[shapely.contains_xy(boundary_m, gen[:, 0], gen[:, 1])][:grids]
    # A few Lloyd steps over the houses: today's grids were drawn with the houses in mind,
    # roughly, but not balanced on floating residents.
    for _ in range(lloyd_steps):
        nearest = ((xy[:, None, :] - gen[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        for g in range(gen.shape[0]):
            if (nearest == g).any():
                gen[g] = xy[nearest == g].mean(axis=0)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(gen), extend_to=boundary_m)
    )
    cells = shapely.intersection(cells, boundary_m)
    frame = gpd.GeoDataFrame(
        {"grid_id": [f"G{i + 1:02d}" for i in range(len(cells))]},
        geometry=gpd.GeoSeries(to_deg(np.asarray(cells)), crs=WGS84),
    )
    return Street(boundary=boundary, lon=lon, lat=lat, floating=residents, grids=frame)


def grid_loads(street: Street) -> np.ndarray:
    """Floating residents per current grid (point in polygon)."""
    tree = shapely.STRtree(np.asarray(street.grids.geometry.values))
    hp, hg = tree.query(shapely.points(street.lon, street.lat), predicate="intersects")
    first = np.unique(hp, return_index=True)[1]
    return np.bincount(hg[first], weights=street.floating[hp[first]], minlength=len(street.grids))


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Worst and best of per-seed metrics."""

    def col(key: str) -> list[float]:
        return [float(r[key]) for r in runs]

    return {
        "seeds": len(runs),
        "min_load": min(col("min")),
        "max_load": max(col("max")),
        "cv_max": max(col("cv")),
        "cv_mean": round(float(np.mean(col("cv"))), 4),
        "within_bounds_min": min(col("within_bounds")),
        "pp_mean_min": min(col("pp_mean")),
        "pp_mean_mean": round(float(np.mean(col("pp_mean"))), 4),
        "contiguous_all": all(
            bool(r["contiguous_graph"]) and bool(r["contiguous_geometry"]) for r in runs
        ),
        "seconds_max": max(col("seconds")),
        "seconds_mean": round(float(np.mean(col("seconds"))), 3),
        "timed_out_any": any(bool(r["timed_out"]) for r in runs),
        "per_seed": runs,
    }


def co_managers(loads: np.ndarray, ratio: float = 500.0) -> int:
    """Co-managers needed at one per ``ratio`` floating residents, rounded up per grid."""
    return int(np.ceil(np.asarray(loads) / ratio).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--floor", type=float, default=500)
    parser.add_argument("--ceiling", type=float, default=1000)
    parser.add_argument("--street-seed", type=int, default=0)
    parser.add_argument("--resolutions", default="10,11")
    parser.add_argument("--maxp-resolutions", default="10,11")
    parser.add_argument("--maxp-timeout", type=float, default=120)
    parser.add_argument("--maxp-construction", type=int, default=10)
    parser.add_argument("--maxp-sa", type=int, default=2)
    args = parser.parse_args()

    street = synth_street(seed=args.street_seed)
    out: dict[str, Any] = {
        "bench": "rebalance",
        "command": "python bench/rebalance.py " + " ".join(sys.argv[1:]),
        "street": {
            "houses": int(street.lon.size),
            "floating_residents": int(street.floating.sum()),
            "current_grids": len(street.grids),
            "k": args.k,
            "floor": args.floor,
            "ceiling": args.ceiling,
        },
    }
    current_loads = grid_loads(street)
    out["current"] = describe_grids(
        street.grids, current_loads, args.floor, args.ceiling
    ).as_dict() | {"co_managers": co_managers(current_loads)}
    maxp_res = {int(r) for r in args.maxp_resolutions.split(",") if r}
    for res in (int(r) for r in args.resolutions.split(",")):
        t0 = time.perf_counter()
        blockset = build_blocks(
            street.boundary, street.lon, street.lat, street.floating, resolution=res
        )
        build_s = time.perf_counter() - t0
        key = f"res{res}"
        out[key] = {"blocks": len(blockset.blocks), "build_blocks_s": round(build_s, 3)}
        limit = 5.0 if res <= 10 else 10.0
        runs = []
        for seed in range(args.seeds):
            result = rebalance(
                blockset.blocks,
                blockset.adjacency,
                args.k,
                args.floor,
                args.ceiling,
                seed=seed,
                time_limit_s=limit,
            )
            runs.append(result.as_dict() | {"co_managers": co_managers(result.loads)})
        out[key]["gridmgr"] = summarise(runs)
        if res in maxp_res:
            maxp = compare_with_maxp(
                blockset.blocks,
                blockset.adjacency,
                args.floor,
                ceiling=args.ceiling,
                time_limit_s=args.maxp_timeout,
                max_iterations_construction=args.maxp_construction,
                max_iterations_sa=args.maxp_sa,
            )
            row = maxp.as_dict()
            if maxp.metrics is not None:
                row["co_managers"] = co_managers(maxp.metrics.loads)
            out[key]["maxp"] = row
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()
