"""Benchmark boundary plans at Chengdu scale: reshape one grid + diff, and the rebalance.

    python bench/plans.py [--scale 1] [--seed 0] [--store spatialite|postgis] [--db URL]
                          [--reshapes 7] [--rebalance-seeds 3] [--maxp-timeout 120]
                          [--skip-rebalance] [--skip-maxp] [--keep-draft]

1. A store holding the demo city at ``--scale`` (1 = Chengdu: 6.73 M houses, 5,155 grids),
   built with the ordinary loaders (or ``--db`` to reuse one already loaded).
2. ``plan new`` (a draft copy of the adopted plan), timed.
3. ``--reshapes`` times (each on a different busy grid): reshape the grid to take a strip of
   a neighbour, commit, then diff the draft against the adopted plan — the time of both is
   the figure (target ≤ 0.2 s), with the houses re-tested next to the city's total; then
   undo (not timed) so every reshape starts from the same plan. The first edit of the
   process (cold: pyproj tables, caches) is reported apart and not in the median. Each run
   also gives the process's CPU seconds and the load average: other jobs on the machine
   stretch wall time, not CPU time.
4. Rebalance figures from ``gridmgr.rebalance`` on the synthetic 16-grid street of issue 8
   (``bench/rebalance.synth_street``): today's grids, spopt's max-p and gridmgr at H3
   resolutions 10 and 11, all from this run; and ``plan rebalance`` of one demo street in
   the store (blocks, search, writing the grids and relinking its houses).

Progress goes to stderr; stdout gets ONE JSON line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import build_store, log, new_store, store_counts  # noqa: E402
from sqlalchemy import text  # noqa: E402

from gridmgr.store import plan_ops  # noqa: E402
from gridmgr.store.bulk import geometries, read_frame  # noqa: E402
from gridmgr.store.engine import make_engine  # noqa: E402

M = 1 / 111_000


def _main_part(geom: shapely.Geometry) -> shapely.Geometry:
    parts = shapely.get_parts(geom)
    return parts[int(np.argmax(shapely.area(parts)))]


def reshape_targets(conn: Any, plan_id: int, n: int) -> list[tuple[str, shapely.Geometry]]:
    """Busy grids with a same-community neighbour, and a new boundary taking a strip of it."""
    df = read_frame(conn, (
        "SELECT g.grid_id, g.community_code, c.houses, ST_AsBinary(g.geom) AS wkb FROM grid g "
        "JOIN grid_count c ON c.grid_pk = g.id WHERE g.plan_id = :p ORDER BY g.grid_id"),
        {"p": plan_id})
    df["geom"] = geometries(df["wkb"])
    by_comm = {c: grp for c, grp in df.groupby("community_code") if len(grp) >= 2}
    picks: list[tuple[str, shapely.Geometry]] = []
    used: set[str] = set()
    for row in df.sort_values("houses", ascending=False).itertuples(index=False):
        if len(picks) >= n:
            break
        grp = by_comm.get(row.community_code)
        if grp is None or row.grid_id in used:
            continue
        main = _main_part(row.geom)
        for nb in grp.itertuples(index=False):
            if nb.grid_id == row.grid_id or nb.grid_id in used:
                continue
            edge = shapely.length(shapely.intersection(main.boundary, nb.geom.boundary))
            if edge < 100 * M:
                continue
            strip = shapely.intersection(nb.geom, shapely.buffer(main, 80 * M))
            rest = shapely.difference(nb.geom, strip)
            if len(shapely.get_parts(rest)) != len(shapely.get_parts(nb.geom)):
                continue
            picks.append((row.grid_id, shapely.union(row.geom, strip)))
            used |= {row.grid_id, nb.grid_id}
            break
    return picks


def bench_reshapes(url: str, n: int) -> dict[str, Any]:
    """Time reshape + diff on n grids (undoing each), and plan new."""
    _, grids, houses = store_counts(url)
    engine = make_engine(url)
    name = f"bench-{int(time.time())}"
    t0 = time.perf_counter()
    with engine.begin() as conn:
        plan_ops.create_draft(conn, name=name, actor="bench")
    new_s = time.perf_counter() - t0
    log(f"plan new {name}: {new_s:.1f} s")
    with engine.connect() as conn:
        targets = reshape_targets(conn, plan_ops.get_plan(conn, name).id, n)
    from gridmgr.settings import TierSettings, WorkloadSettings

    wl, tiers = WorkloadSettings(), TierSettings()  # read once, as a server does
    runs: list[dict[str, Any]] = []
    cold: dict[str, Any] | None = None
    for i, (grid_id, geom) in enumerate(targets):
        t0, c0 = time.perf_counter(), time.process_time()
        with engine.begin() as conn:
            op = plan_ops.reshape(conn, plan=name, grid_id=grid_id, geometry=geom, actor="bench")
        t1 = time.perf_counter()
        with engine.connect() as conn:
            d = plan_ops.diff(conn, plan=name, settings=wl, tiers=tiers)
        t2, c2 = time.perf_counter(), time.process_time()
        run: dict[str, Any] = {"grid_id": grid_id, "reshape_s": round(t1 - t0, 4),
               "diff_s": round(t2 - t1, 4), "total_s": round(t2 - t0, 4),
               "cpu_s": round(c2 - c0, 4), "load_avg_1min": round(os.getloadavg()[0], 2),
               "houses_tested": op.houses_tested, "houses_moved": op.houses_moved,
               "diff_houses_moved": d.houses_moved, "grids_in_diff": len(d.grids)}
        log(f"reshape {grid_id}: {run}")
        if i == 0:  # the first edit of a process also loads pyproj's tables and warms caches
            cold = run
        else:
            runs.append(run)
        with engine.begin() as conn:
            plan_ops.undo(conn, plan=name, actor="bench")
    totals = [float(r["total_s"]) for r in runs]
    cpus = [float(r["cpu_s"]) for r in runs]
    engine.dispose()
    return {"houses": houses, "grids": grids, "plan_new_s": round(new_s, 2),
            "first_edit_of_process": cold, "runs": runs,
            "total_s_median": round(statistics.median(totals), 4) if totals else None,
            "total_s_max": round(max(totals), 4) if totals else None,
            "cpu_s_median": round(statistics.median(cpus), 4) if cpus else None,
            "houses_tested_max": max((int(r["houses_tested"]) for r in runs), default=0),
            "draft": name}


def bench_engine(seeds: int, maxp_timeout: float, skip_maxp: bool) -> dict[str, Any]:
    """gridmgr.rebalance on the issue's synthetic street, with max-p from the same run."""
    from gridmgr.blocks import build_blocks
    from gridmgr.rebalance import compare_with_maxp, describe_grids, rebalance

    spec = importlib.util.spec_from_file_location("bench_rebalance", ROOT / "bench" /
                                                  "rebalance.py")
    assert spec is not None and spec.loader is not None
    rb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rb)
    street = rb.synth_street(seed=0)
    k, floor, ceiling = 16, 500.0, 1000.0
    loads = rb.grid_loads(street)
    out: dict[str, Any] = {
        "street": {"houses": int(street.lon.size),
                   "floating_residents": int(street.floating.sum()),
                   "k": k, "floor": floor, "ceiling": ceiling},
        "current": describe_grids(street.grids, loads, floor, ceiling).as_dict()
        | {"co_managers": rb.co_managers(loads)},
    }
    for res in (10, 11):
        t0 = time.perf_counter()
        bs = build_blocks(street.boundary, street.lon, street.lat, street.floating,
                          resolution=res)
        key = f"res{res}"
        out[key] = {"blocks": len(bs.blocks), "build_blocks_s": round(time.perf_counter() - t0,
                                                                       3)}
        runs = []
        for seed in range(seeds):
            r = rebalance(bs.blocks, bs.adjacency, k, floor, ceiling, seed=seed,
                          time_limit_s=5.0 if res == 10 else 10.0)
            runs.append(r.as_dict() | {"co_managers": rb.co_managers(r.loads)})
        out[key]["gridmgr"] = rb.summarise(runs)
        for run in out[key]["gridmgr"]["per_seed"]:
            run.pop("restarts", None)
        log(f"rebalance res {res}: cv_max {out[key]['gridmgr']['cv_max']}, "
            f"seconds_max {out[key]['gridmgr']['seconds_max']}")
        if not skip_maxp and res == 10:
            mp = compare_with_maxp(bs.blocks, bs.adjacency, floor, ceiling=ceiling,
                                   time_limit_s=maxp_timeout, max_iterations_construction=10,
                                   max_iterations_sa=2)
            row = mp.as_dict()
            if mp.metrics is not None:
                row["co_managers"] = rb.co_managers(mp.metrics.loads)
            out[key]["maxp"] = row
            log(f"max-p res {res}: {row.get('k')} grids, cv {row.get('cv')}, "
                f"{row['seconds']} s")
    return out


def bench_store_rebalance(url: str, draft: str) -> dict[str, Any]:
    """plan rebalance of the street with the most grids, keeping its number of grids."""
    engine = make_engine(url)
    with engine.connect() as conn:
        pid = plan_ops.get_plan(conn, draft).id
        row = conn.execute(text(
            "SELECT a.parent_code, count(*) AS n, sum(c.floating_residents) AS fl FROM grid g "
            "JOIN grid_count c ON c.grid_pk = g.id JOIN admin_area a ON a.code = "
            "g.community_code WHERE g.plan_id = :p GROUP BY a.parent_code "
            "ORDER BY n DESC, a.parent_code LIMIT 1"), {"p": pid}).first()
    if row is None:
        raise SystemExit("the store holds no grids to rebalance")
    street, k, load = str(row[0]), int(row[1]), float(row[2])
    floor, ceiling = 0.6 * load / k, 1.4 * load / k
    t0 = time.perf_counter()
    with engine.begin() as conn:
        rep = plan_ops.rebalance_area(conn, plan=draft, area=street, grids=k, floor=floor,
                                      ceiling=ceiling, resolution=10, seed=0, actor="bench")
    total = time.perf_counter() - t0
    with engine.begin() as conn:
        plan_ops.undo(conn, plan=draft, actor="bench")
    engine.dispose()
    log(f"plan rebalance {street}: {total:.1f} s")
    return {"street": street, "grids": k, "communities": len(rep.communities),
            "floor": round(floor), "ceiling": round(ceiling), "blocks": rep.blocks,
            "houses": rep.houses, "total_s": round(total, 2), "current": rep.current,
            "proposal": rep.proposal, "houses_moved": rep.op.houses_moved,
            "write_relink_s": round(rep.op.seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", choices=("spatialite", "postgis"), default="spatialite")
    ap.add_argument("--db", help="reuse a store that holds the demo city (built there if "
                                 "it is empty)")
    ap.add_argument("--reshapes", type=int, default=8)
    ap.add_argument("--rebalance-seeds", type=int, default=3)
    ap.add_argument("--maxp-timeout", type=float, default=120.0)
    ap.add_argument("--skip-rebalance", action="store_true")
    ap.add_argument("--skip-maxp", action="store_true")
    ap.add_argument("--keep-draft", action="store_true",
                    help="leave the benchmark's draft in the store (by default it is "
                         "discarded: every open draft keeps a link per house current)")
    args = ap.parse_args()

    out: dict[str, Any] = {"bench": "plans", "command": "python bench/plans.py "
                           + " ".join(sys.argv[1:]), "cpus": os.cpu_count()}
    cluster = None
    with tempfile.TemporaryDirectory(prefix="gridmgr-bench-plans-") as tmp:
        workdir = Path(tmp)
        url = args.db
        if url is None:
            url, cluster = new_store(args.store, workdir)
        from gridmgr.store.schema import holds_data

        if not holds_data(make_engine(url)):  # a new store, or --db naming an empty one
            out["build"] = build_store(url, args.scale, args.seed, workdir)
        out["store"] = make_engine(url).dialect.name
        try:
            out["reshape_diff"] = bench_reshapes(url, args.reshapes)
            if not args.skip_rebalance:
                out["store_rebalance"] = bench_store_rebalance(url, out["reshape_diff"]["draft"])
            if not args.keep_draft:
                with make_engine(url).begin() as conn:
                    plan_ops.discard(conn, plan=out["reshape_diff"]["draft"], actor="bench")
        finally:
            if cluster is not None:
                cluster.stop()
    if not args.skip_rebalance:
        out["rebalance"] = bench_engine(args.rebalance_seeds, args.maxp_timeout, args.skip_maxp)
    print(json.dumps(out, separators=(",", ":"), default=str))


if __name__ == "__main__":
    main()
