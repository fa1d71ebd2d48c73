"""Benchmark: assign Chengdu-scale houses to grids, against geopandas.sjoin and PostGIS.

    python bench/assign.py [--houses 6730000 --grids 5155] [--seed 0]
                           [--skip-sjoin] [--skip-postgis] [--workers N] [--dask NPART]

Synthesises a city (grids: clipped Voronoi of clustered seeds over a ~100 x 80 km box
around 104.06E 30.66N, denser to the centre; houses clustered, ~0.5 % outside every
grid), then times, on the same data:

- ``gridmgr.assign.assign_points`` (best of 3, in a fresh subprocess that also reports
  its peak RSS, and that RSS above the loaded input arrays);
- ``geopandas.sjoin(predicate="within")`` in its own subprocess (so its memory does not
  pollute ours; building the point GeoDataFrame is timed apart from the join);
- PostGIS: a throwaway cluster, binary COPY of EWKB points, GiST on the grids, then
  ``CREATE TABLE AS ... JOIN ... ON ST_Contains``;
- incremental reassignment after reshaping the busiest grid (checked equal to a full run);
- with ``--dask N``: ``gridmgr.assign_dask.assign_files`` Parquet -> Parquet on the local
  threaded scheduler (checked equal to the in-memory result).

All results are checked to agree on every point not lying on a grid edge.  Progress goes
to stderr; stdout gets ONE JSON line.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely

LON0, LAT0 = 104.06, 30.66
KM_LON = 1 / (111.32 * np.cos(np.radians(LAT0)))
KM_LAT = 1 / 110.57


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rss_now_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------ synthetic city
def city_outline() -> shapely.Polygon:
    """A wobbly ellipse of about 96 x 76 km: the area the grids tile."""
    t = np.linspace(0, 2 * np.pi, 721)[:-1]
    r = 1 + 0.06 * np.sin(3 * t + 0.7) + 0.04 * np.sin(7 * t + 1.3) + 0.02 * np.sin(13 * t)
    return shapely.Polygon(
        np.c_[LON0 + 48 * KM_LON * r * np.cos(t), LAT0 + 38 * KM_LAT * r * np.sin(t)]
    )


def clustered(rng: np.random.Generator, n: int, centres: np.ndarray, weights: np.ndarray,
              sigma_km: np.ndarray, background: float, bbox: tuple[float, ...]
              ) -> tuple[np.ndarray, np.ndarray]:
    nb = int(n * background)
    k = rng.choice(len(centres), size=n - nb, p=weights)
    off = rng.standard_normal((n - nb, 2)) * sigma_km[k, None]
    x = np.r_[centres[k, 0] + off[:, 0] * KM_LON, rng.uniform(bbox[0], bbox[2], nb)]
    y = np.r_[centres[k, 1] + off[:, 1] * KM_LAT, rng.uniform(bbox[1], bbox[3], nb)]
    return x, y


def synthesise(n_houses: int, n_grids: int, seed: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Houses (x, y) and grid polygons sorted by a grid_id-like (spatially unrelated) order."""
    rng = np.random.default_rng(seed)
    city = city_outline()
    bbox = (LON0 - 50 * KM_LON, LAT0 - 40 * KM_LAT, LON0 + 50 * KM_LON, LAT0 + 40 * KM_LAT)
    n_centres = 40  # the core plus satellite towns
    centres = np.c_[
        np.r_[LON0, LON0 + rng.normal(0, 18, n_centres - 1) * KM_LON],
        np.r_[LAT0, LAT0 + rng.normal(0, 14, n_centres - 1) * KM_LAT],
    ]
    weights = np.r_[8.0, rng.pareto(1.5, n_centres - 1) + 0.3]
    weights /= weights.sum()
    sigma = np.r_[7.0, rng.uniform(1.0, 4.0, n_centres - 1)]

    sx, sy = clustered(rng, n_grids * 4, centres, weights, sigma, 0.08, bbox)
    inside = shapely.contains_xy(city, sx, sy)
    sx, sy = sx[inside][:n_grids], sy[inside][:n_grids]
    cells = shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(np.c_[sx, sy]), extend_to=shapely.box(*bbox).buffer(0.5)))
    cells = shapely.intersection(cells, city)
    cells = cells[~shapely.is_empty(cells)]
    # Grid ids in real data are administrative codes, unrelated to position.
    cells = cells[rng.permutation(cells.size)]

    hx, hy = clustered(rng, int(n_houses * 1.15), centres, weights, sigma * 0.8, 0.05, bbox)
    ins = shapely.contains_xy(city, hx, hy)
    n_out = int(round(n_houses * 0.005))
    x = np.r_[hx[ins][: n_houses - n_out], hx[~ins][:n_out]]
    y = np.r_[hy[ins][: n_houses - n_out], hy[~ins][:n_out]]
    if x.size < n_houses:
        raise SystemExit("synthesis produced too few houses; change --seed")
    perm = rng.permutation(x.size)
    return x[perm], y[perm], cells


def reshaped(grid: shapely.Geometry) -> shapely.Geometry:
    """A planner's redraw: rotate the grid 10 degrees and grow it ~100 m."""
    from shapely import affinity

    return affinity.rotate(grid, 10).buffer(0.001)


# ------------------------------------------------------------------ children
def child_ours(data: Path, workers: int | None) -> dict:
    from gridmgr.assign import assign_points, reassign_incremental

    x, y = np.load(data / "x.npy"), np.load(data / "y.npy")
    grids = shapely.from_wkb(pickle.loads((data / "grids.pkl").read_bytes()))
    base = rss_now_mb()
    runs = []
    found: np.ndarray | None = None
    for _ in range(3):
        found = None  # the previous result is not part of the working set
        t = time.perf_counter()
        found = assign_points(x, y, grids, workers=workers)
        runs.append(time.perf_counter() - t)
    assert found is not None
    peak = peak_rss_mb()
    np.save(data / "ours.npy", found)

    busiest = int(np.bincount(found[found >= 0]).argmax())
    new = grids.copy()
    new[busiest] = reshaped(grids[busiest])
    inc_runs, inplace_runs = [], []
    for _ in range(3):
        t = time.perf_counter()
        inc = reassign_incremental(x, y, found, new, [busiest], [grids[busiest]])
        inc_runs.append(time.perf_counter() - t)
    buf = found.copy()
    for _ in range(3):
        buf[:] = found
        t = time.perf_counter()
        reassign_incremental(x, y, buf, new, [busiest], [grids[busiest]], out=buf)
        inplace_runs.append(time.perf_counter() - t)
    full_new = assign_points(x, y, new, workers=workers)
    return {
        "runs": runs, "base_rss_mb": base, "peak_rss_mb": peak,
        "incremental_runs": inc_runs, "incremental_inplace_runs": inplace_runs,
        "incremental_equal_full": bool(np.array_equal(inc, full_new))
        and bool(np.array_equal(buf, full_new)),
        "incremental_moved": int((inc != found).sum()),
        "busiest_grid_houses": int((found == busiest).sum()),
        "unassigned": int((found < 0).sum()),
    }


def child_sjoin(data: Path) -> dict:
    import geopandas as gpd

    x, y = np.load(data / "x.npy"), np.load(data / "y.npy")
    grids = gpd.GeoDataFrame(
        geometry=shapely.from_wkb(pickle.loads((data / "grids.pkl").read_bytes())),
        crs="EPSG:4326")
    t = time.perf_counter()
    houses = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs="EPSG:4326")
    t_points = time.perf_counter() - t
    del x, y
    t = time.perf_counter()
    joined = gpd.sjoin(houses, grids, how="left", predicate="within")
    t_join = time.perf_counter() - t
    right = joined["index_right"].to_numpy()
    pos = joined.index.to_numpy()
    np.savez(data / "sjoin.npz", pos=pos, right=np.where(np.isnan(right), -1, right)
             .astype(np.int64))
    return {"seconds": t_join, "points_seconds": t_points, "peak_rss_mb": peak_rss_mb()}


def run_child(kind: str, data: Path, workers: int | None) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--data", str(data)]
    if workers:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ PostGIS
def copy_points_binary(cur, x: np.ndarray, y: np.ndarray, chunk: int = 1_000_000) -> None:
    """Binary COPY of (id int4, geom EWKB point SRID 4326), built with numpy, in chunks."""
    row = np.dtype([
        ("nfields", ">i2"), ("len_id", ">i4"), ("id", ">i4"), ("len_geom", ">i4"),
        ("order", "u1"), ("type", "<u4"), ("srid", "<u4"), ("x", "<f8"), ("y", "<f8"),
    ])
    for lo in range(0, x.size, chunk):
        hi = min(lo + chunk, x.size)
        rows = np.zeros(hi - lo, dtype=row)
        rows["nfields"], rows["len_id"], rows["id"] = 2, 4, np.arange(lo, hi)
        rows["len_geom"], rows["order"], rows["type"], rows["srid"] = 25, 1, 0x20000001, 4326
        rows["x"], rows["y"] = x[lo:hi], y[lo:hi]
        buf = io.BytesIO()
        buf.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
        buf.write(rows.tobytes())
        buf.write(struct.pack(">h", -1))
        buf.seek(0)
        cur.copy_expert("COPY houses (id, geom) FROM STDIN WITH (FORMAT binary)", buf)


def peer_postgis(x: np.ndarray, y: np.ndarray, grids: np.ndarray) -> tuple[dict, np.ndarray]:
    import pandas as pd
    import psycopg2

    from gridmgr.store.pgtemp import start_cluster

    cluster = start_cluster(shared_buffers="1GB", extra={"work_mem": "'256MB'",
                                                         "maintenance_work_mem": "'1GB'"})
    try:
        url = cluster.create_database("bench")
        conn = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("CREATE UNLOGGED TABLE grids (idx integer PRIMARY KEY, geom geometry)")
        cur.execute("CREATE UNLOGGED TABLE houses (id integer, geom geometry(Point, 4326))")
        wkb = shapely.to_wkb(grids, include_srid=False)
        cur.executemany("INSERT INTO grids VALUES (%s, ST_GeomFromWKB(%s, 4326))",
                        [(i, psycopg2.Binary(w)) for i, w in enumerate(wkb)])
        t = time.perf_counter()
        copy_points_binary(cur, x, y)
        t_load = time.perf_counter() - t
        t = time.perf_counter()
        cur.execute("CREATE INDEX grids_geom ON grids USING gist (geom)")
        cur.execute("ANALYZE grids")
        cur.execute("ANALYZE houses")
        t_index = time.perf_counter() - t
        t = time.perf_counter()
        cur.execute(
            "CREATE UNLOGGED TABLE assigned AS SELECT h.id, g.idx FROM houses h "
            "JOIN grids g ON ST_Contains(g.geom, h.geom)"
        )
        t_join = time.perf_counter() - t
        buf = io.StringIO()
        cur.copy_expert("COPY assigned TO STDOUT WITH (FORMAT csv)", buf)
        buf.seek(0)
        pairs = pd.read_csv(buf, header=None, names=["id", "idx"], dtype="int64").to_numpy()
        conn.close()
    finally:
        cluster.stop()
    return {"seconds": t_join, "load_seconds": t_load, "index_seconds": t_index}, pairs


# ------------------------------------------------------------------ dask, file to file
def peer_dask(data: Path, x: np.ndarray, y: np.ndarray, grids: np.ndarray, ours: np.ndarray,
              npartitions: int) -> dict:
    """Time gridmgr.assign_dask.assign_files on Parquet files of the same city."""
    import geopandas as gpd
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gridmgr.assign_dask import assign_files

    houses = pa.table({"source_id": np.arange(x.size), "lon": x, "lat": y})
    pq.write_table(houses, data / "houses.parquet", row_group_size=1_000_000)
    del houses
    gpd.GeoDataFrame({"grid_id": np.arange(grids.size)}, geometry=grids,
                     crs="EPSG:4326").to_parquet(data / "grids.parquet")
    t = time.perf_counter()
    summary = assign_files(data / "houses.parquet", data / "grids.parquet", data / "out",
                           npartitions=npartitions)
    seconds = time.perf_counter() - t
    got = pd.read_parquet(data / "out")
    back = np.full(x.size, -1, dtype=np.int64)
    gid = got["grid_id"].to_numpy(dtype="float64", na_value=np.nan)
    back[got["source_id"].to_numpy()] = np.where(np.isnan(gid), -1, gid).astype(np.int64)
    return {"seconds": round(seconds, 3), "partitions": summary.partitions,
            "equal": bool(np.array_equal(back, ours))}


# ------------------------------------------------------------------ agreement
def compare(ours: np.ndarray, pos: np.ndarray, right: np.ndarray, x: np.ndarray, y: np.ndarray,
            grids: np.ndarray) -> dict:
    """Compare with a peer's (point, polygon) pairs; peers use interior-only predicates."""
    n = ours.size
    count = np.bincount(pos[right >= 0], minlength=n)
    single = np.full(n, -1, dtype=np.int64)
    one = right >= 0
    single[pos[one]] = right[one]
    ok_single = (count == 1) & (single == ours)
    ok_none = (count == 0) & (ours < 0)
    bad = np.flatnonzero(~(ok_single | ok_none))
    # A disagreement is fine only where the point lies on our grid's boundary
    # (peer used contains/within, which leave boundary points out).
    on_edge = np.zeros(bad.size, dtype=bool)
    if bad.size:
        g = ours[bad]
        has = g >= 0
        on_edge[has] = shapely.intersects_xy(shapely.boundary(grids[g[has]]), x[bad[has]],
                                             y[bad[has]])
    return {"disagree": int(bad.size), "disagree_not_on_edge": int((~on_edge).sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--houses", type=int, default=6_730_000)
    ap.add_argument("--grids", type=int, default=5155)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--skip-sjoin", action="store_true")
    ap.add_argument("--skip-postgis", action="store_true")
    ap.add_argument("--dask", type=int, default=0, metavar="NPARTITIONS",
                    help="also time the dask file-to-file path with this many partitions")
    ap.add_argument("--child", choices=["ours", "sjoin"], help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child == "ours":
        print(json.dumps(child_ours(args.data, args.workers)))
        return
    if args.child == "sjoin":
        print(json.dumps(child_sjoin(args.data)))
        return

    with tempfile.TemporaryDirectory(prefix="gridmgr-bench-") as tmp:
        data = Path(tmp)
        log(f"synthesising {args.houses} houses, {args.grids} grids")
        x, y, grids = synthesise(args.houses, args.grids, args.seed)
        np.save(data / "x.npy", x)
        np.save(data / "y.npy", y)
        (data / "grids.pkl").write_bytes(pickle.dumps(list(shapely.to_wkb(grids))))

        log("gridmgr.assign_points (subprocess)")
        ours_stats = run_child("ours", data, args.workers)
        ours = np.load(data / "ours.npy")
        log(f"  runs {ours_stats['runs']}")
        peers: dict[str, float | None] = {"sjoin": None, "postgis": None}
        extra: dict[str, object] = {}

        if not args.skip_sjoin:
            log("geopandas.sjoin(predicate='within') (subprocess)")
            sj = run_child("sjoin", data, None)
            z = np.load(data / "sjoin.npz")
            peers["sjoin"] = round(sj["seconds"], 3)
            extra["sjoin"] = {
                "points_seconds": round(sj["points_seconds"], 3),
                "peak_rss_mb": round(sj["peak_rss_mb"]),
                **compare(ours, z["pos"], z["right"], x, y, grids),
            }
            log(f"  {extra['sjoin']} join {peers['sjoin']} s")

        if not args.skip_postgis:
            log("PostGIS CREATE TABLE AS ... ST_Contains")
            pg, pairs = peer_postgis(x, y, grids)
            peers["postgis"] = round(pg["seconds"], 3)
            extra["postgis"] = {
                "load_seconds": round(pg["load_seconds"], 3),
                "index_seconds": round(pg["index_seconds"], 3),
                **compare(ours, pairs[:, 0], pairs[:, 1], x, y, grids),
            }
            log(f"  {extra['postgis']} join {peers['postgis']} s")

        if args.dask:
            log(f"gridmgr.assign_dask.assign_files, {args.dask} partitions (threads)")
            extra["dask"] = peer_dask(data, x, y, grids, ours, args.dask)
            log(f"  {extra['dask']}")

    best = min(ours_stats["runs"])
    result = {
        "houses": int(x.size),
        "grids": int(grids.size),
        "seconds": round(best, 3),
        "peak_rss_mb": round(ours_stats["peak_rss_mb"]),
        "peak_rss_above_inputs_mb": round(ours_stats["peak_rss_mb"] - ours_stats["base_rss_mb"]),
        "incremental_seconds": round(min(ours_stats["incremental_runs"]), 3),
        "peers": peers,
        "speedup_vs_sjoin": round(peers["sjoin"] / best, 1) if peers["sjoin"] else None,
        "runs_seconds": [round(r, 3) for r in ours_stats["runs"]],
        "incremental_inplace_seconds": round(min(ours_stats["incremental_inplace_runs"]), 3),
        "incremental_equal_full": ours_stats["incremental_equal_full"],
        "incremental_moved": ours_stats["incremental_moved"],
        "unassigned": ours_stats["unassigned"],
        "workers": args.workers or os.cpu_count(),
        "checks": extra,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
