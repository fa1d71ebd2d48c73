"""Workload at Chengdu scale: reading maintained counts vs recomputing them, on both stores.

    python bench/workload.py [--scale 1] [--db URL ...]

Without --db, builds the demo city at --scale into a SpatiaLite file and a throwaway PostGIS
cluster (through the ordinary loaders), then for each store times:
- read: workload and tiers for every grid from the maintained counts (what a dashboard does),
- recompute: the full recomputation from the base tables (the check / repair path),
- naive: one GROUP BY query with joins over houses, people and rentals (what one would write
  first), as the peer in the same run,
and checks maintained == recomputed. Prints one JSON line per store.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

NAIVE_SQL = """
SELECT g.id, count(DISTINCT hg.house_id) AS houses, count(DISTINCT r.id) AS rentals,
       count(DISTINCT res.person_id) AS residents,
       sum(CASE WHEN p.floating THEN 1 ELSE 0 END) AS floating
FROM grid g
JOIN house_grid hg ON hg.grid_pk = g.id AND hg.plan_id = g.plan_id
LEFT JOIN rental_record r ON r.house_id = hg.house_id
LEFT JOIN residence res ON res.house_id = hg.house_id AND res.left_on IS NULL
LEFT JOIN person p ON p.id = res.person_id
WHERE g.plan_id = :plan
GROUP BY g.id
"""


def time_store(url: str) -> dict[str, object]:
    from gridmgr.store import counts
    from gridmgr.store.engine import make_engine
    from gridmgr.store.plans import adopted_plan_id
    from gridmgr.store.queries import grid_workload

    engine = make_engine(url)
    with engine.connect() as conn:
        plan = adopted_plan_id(conn)
        assert plan is not None
        grid_workload(conn)  # warm caches and imports
        reads = []
        for _ in range(5):
            t0 = time.perf_counter()
            wl = grid_workload(conn)
            reads.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fresh = counts.recompute(conn, plan)
        recompute = time.perf_counter() - t0
        kept = counts.maintained(conn, plan)
        equal = bool((kept.sort_index() == fresh.sort_index()).all().all())
        t0 = time.perf_counter()
        conn.execute(text(NAIVE_SQL), {"plan": plan}).fetchall()
        naive = time.perf_counter() - t0
    return {"grids": len(wl), "read_seconds": round(statistics.median(reads), 4),
            "recompute_seconds": round(recompute, 2), "naive_group_by_seconds": round(naive, 2),
            "maintained_equals_recomputed": equal,
            "recompute_speedup_vs_group_by": round(naive / recompute, 1)}


def build(scale: float, seed: int, url: str) -> None:
    from gridmgr.demo import make_city
    from gridmgr.store.engine import make_engine
    from gridmgr.store.load import load_frame
    from gridmgr.store.schema import upgrade

    city = make_city(scale=scale, seed=seed)
    files = city.write(Path(tempfile.mkdtemp(prefix="gridmgr-bench-wl-")))
    engine = make_engine(url)
    upgrade(engine)
    from gridmgr.interchange import read_table

    for kind in ("areas", "grids", "houses", "businesses", "people", "rentals"):
        load_frame(engine, kind, read_table(files[kind], kind), report_path=None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--db", action="append", help="time an already loaded store instead")
    args = ap.parse_args()
    if args.db:
        for url in args.db:
            print(json.dumps({"store": url.split(":")[0], **time_store(url)}), flush=True)
        return
    from gridmgr.store.pgtemp import start_cluster

    work = Path(tempfile.mkdtemp(prefix="gridmgr-bench-wl-"))
    cluster = start_cluster(shared_buffers="1GB", extra={"maintenance_work_mem": "'1GB'"})
    try:
        for name, url in (("spatialite", f"sqlite:///{work / 'wl.db'}"),
                          ("postgis", cluster.create_database("wl"))):
            build(args.scale, args.seed, url)
            print(json.dumps({"store": name, "scale": args.scale, **time_store(url)}),
                  flush=True)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
