"""Whole path file → store → assigned and indexed, on SpatiaLite and PostGIS, at Chengdu scale.

    python bench/load.py [--scale 1] [--seed 0] [--stores spatialite,postgis] [--data DIR]

Builds the demo city once (gridmgr.demo.make_city), writes the interchange files, then for
each store times loading areas + grids + houses (houses get codes, communities, grid links
and counts in the same transaction) and the other files, and measures the process's peak
RSS in a fresh subprocess per store so one store's memory does not count for the other.
Prints one JSON line per store (with the 1-minute load average before and after it) and a
final summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ORDER


def run_store(url: str, files: dict[str, str]) -> dict[str, object]:
    from gridmgr.store.engine import make_engine
    from gridmgr.store.load import load_file
    from gridmgr.store.schema import upgrade

    engine = make_engine(url)
    upgrade(engine)
    seconds: dict[str, float] = {}
    peaks: dict[str, float] = {}
    for kind in ORDER:
        t0 = time.perf_counter()
        load_file(engine, kind, files[kind], report_path=Path(files[kind] + ".report.csv"))
        seconds[kind] = round(time.perf_counter() - t0, 2)
        peaks[kind] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak = peaks[ORDER[-1]]
    return {"seconds": seconds,
            "houses_path_seconds": round(seconds["areas"] + seconds["grids"]
                                         + seconds["houses"], 2),
            "all_files_seconds": round(sum(seconds.values()), 2),
            "peak_rss_mb": round(peak),
            # the peak is monotonic: after the houses file it is the houses path's own
            "houses_path_peak_rss_mb": round(peaks["houses"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stores", default="spatialite,postgis")
    ap.add_argument("--data", type=Path,
                    help="reuse the interchange files in DIR (written there on first use)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--files", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_store(args.child, json.loads(args.files))))
        return
    from gridmgr.demo import make_city

    work = Path(tempfile.mkdtemp(prefix="gridmgr-bench-load-"))
    t0 = time.perf_counter()
    saved = args.data / "files.json" if args.data else None
    if saved is not None and saved.exists():  # the same city again: skip generating it
        meta = json.loads(saved.read_text())
        files, houses = meta["files"], int(meta["houses"])
    else:
        city = make_city(scale=args.scale, seed=args.seed)
        files = {k: str(v) for k, v in city.write(args.data or work / "data").items()}
        houses = len(city.houses)
        del city
        if saved is not None:
            saved.write_text(json.dumps({"files": files, "houses": houses,
                                         "scale": args.scale, "seed": args.seed}))
    gen = time.perf_counter() - t0
    results = {}
    for store in args.stores.split(","):
        cluster = None
        if store == "spatialite":
            url = f"sqlite:///{work / 'bench.db'}"
        else:
            from gridmgr.store.pgtemp import start_cluster

            cluster = start_cluster(shared_buffers="1GB",
                                    extra={"maintenance_work_mem": "'1GB'",
                                           "work_mem": "'64MB'"})
            url = cluster.create_database("bench")
        try:
            # Other jobs on a shared machine inflate wall times: record how busy it was.
            before = os.getloadavg()[0]
            out = subprocess.run([sys.executable, __file__, "--child", url, "--files",
                                  json.dumps(files)], capture_output=True, text=True,
                                 check=True)
            results[store] = json.loads(out.stdout.strip().splitlines()[-1])
            results[store]["load_average"] = [round(before, 2), round(os.getloadavg()[0], 2)]
        finally:
            if cluster:
                cluster.stop()
        print(json.dumps({"store": store, "houses": houses, **results[store]}), flush=True)
    print(json.dumps({"houses": houses, "generate_and_write_seconds": round(gen, 1),
                      "stores": results}))


if __name__ == "__main__":
    main()
