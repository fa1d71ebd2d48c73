"""Benchmark the HTTP API on PostGIS at Chengdu scale, with tipg as the peer for bbox items.

What it does
------------
1. starts a throwaway PostgreSQL 15 + PostGIS cluster (gridmgr.store.pgtemp; loopback only),
2. synthesises the demo city (``gridmgr.demo.make_city(scale)``; scale 1 = Chengdu 2012:
   6.73 M houses, 4.36 M floating residents, 5,155 grids), writes its interchange files and
   loads them with the ordinary loaders (``gridmgr.store.load.load_file``), then ANALYZE,
3. serves the API with uvicorn, 2 workers, on 127.0.0.1 (asyncpg pools, orjson),
4. reads every table and index into memory (pg_prewarm), so no route pays for a cold
   store, then drives each route with ``wrk`` at fixed concurrency (default 4 connections,
   2 threads, 25 s after a 3 s warm-up); a Lua script cycles through 2,000 real inputs
   (house codes, points at houses, grid ids, ~400 m boxes) so requests do not repeat,
5. serves the same database with tipg (2 workers, its own venv), drives its house items
   with the same boxes at ``limit=100``,
6. prints a Markdown table (requests/s, p50, p99, errors) and writes it with the raw wrk
   output to ``--out``.

Run (from the repository root; ~20 min at scale 1, most of it building and loading)::

    python bench/api.py --scale 1 --out bench-out/api
    python bench/api.py --scale 0.1 --duration 10          # a quick reduced run

tipg is run from ``--tipg-python`` (a venv with ``pip install tipg uvicorn``, e.g.
``python -m venv /tmp/tipg && /tmp/tipg/bin/pip install tipg uvicorn``); without it the
tipg row is skipped.  ``--url`` reuses a loaded PostGIS store instead of building one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import wait_http  # noqa: E402

ROUTES = ("residents", "house", "grid_at", "houses_near", "bbox_items", "grid_workload")
LABELS = {
    "residents": "residents of a house  GET /houses/{code}/residents",
    "house": "house by code  GET /houses/{code}",
    "grid_at": "grid at a point  GET /grids/at?lon=&lat=",
    "houses_near": "houses near a point  GET /houses?lon=&lat=&radius_m=300&limit=20",
    "bbox_items": "bbox items  GET /collections/houses/items?bbox=&limit=100",
    "grid_workload": "grid workload  GET /grids/{grid_id}",
    "tipg_bbox_items": "tipg bbox items  GET /collections/public.house/items?bbox=&limit=100",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_store(scale: float, seed: int, data_dir: Path, log: list[str]) -> tuple[Any, str]:
    from sqlalchemy import text

    from gridmgr.demo import make_city
    from gridmgr.store.engine import make_engine
    from gridmgr.store.load import load_file
    from gridmgr.store.pgtemp import start_cluster
    from gridmgr.store.schema import upgrade

    cluster = start_cluster(shared_buffers="2GB", extra={"max_connections": "200",
                                                           "work_mem": "16MB"})
    url = cluster.create_database("bench")
    engine = make_engine(url)
    upgrade(engine)
    t0 = time.perf_counter()
    city = make_city(scale=scale, seed=seed)
    log.append(f"synthesised scale {scale}: {city.counts()} in {time.perf_counter() - t0:.0f} s")
    print(log[-1], flush=True)
    # Through the interchange files, as `gridmgr demo` does (the loaders' own reading);
    # the files (~2 GB at scale 1) are deleted once loaded.
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
        files = city.write(Path(tmp))
        del city
        for kind in ("areas", "grids", "houses", "businesses", "people", "rentals"):
            t1 = time.perf_counter()
            result = load_file(engine, kind, files[kind],
                               report_path=data_dir / f"{kind}.report.csv")
            log.append(f"loaded {kind}: {result.loaded} rows in "
                       f"{time.perf_counter() - t1:.0f} s")
            print(log[-1], flush=True)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    engine.dispose()
    return cluster, url


def prewarm(url: str) -> None:
    """Read the tables and indexes the routes use into shared buffers / the page cache.

    Every server then starts from the same warm state; otherwise whichever route runs
    first pays for reading a cold multi-GB store from disk.
    """
    from sqlalchemy import text

    from gridmgr.store.engine import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
        rels = conn.execute(text(
            "SELECT c.oid::regclass::text, c.relkind FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') "
            "AND c.relname !~ '^(spatial_ref_sys|audit_log)'")).fetchall()
        for rel, kind in rels:
            # tables into the OS page cache, indexes into shared buffers
            conn.execute(text("SELECT pg_prewarm(CAST(:r AS regclass), :mode)"),
                         {"r": rel, "mode": "buffer" if kind == "i" else "read"})
    engine.dispose()


def samples(url: str, n: int, seed: int) -> dict[str, list[str]]:
    """Request paths per route, drawn from the store (every one answers 200)."""
    import numpy as np
    from sqlalchemy import text

    from gridmgr.store.engine import make_engine

    rng = np.random.default_rng(seed)
    engine = make_engine(url)
    with engine.connect() as conn:
        conn.execute(text("SELECT setseed(0.42)"))
        houses = conn.execute(text(
            "SELECT h.house_code, h.lon, h.lat FROM house h JOIN house_grid hg "
            "ON hg.house_id = h.id ORDER BY random() LIMIT :n"), {"n": n}).fetchall()
        lived = conn.execute(text(
            "SELECT DISTINCT h.house_code FROM residence r JOIN house h ON h.id = r.house_id "
            "WHERE r.left_on IS NULL ORDER BY 1 LIMIT :n OFFSET :o"),
            {"n": n, "o": int(rng.integers(0, 1000))}).fetchall()
        grids = [r[0] for r in conn.execute(text(
            "SELECT grid_id FROM grid WHERE plan_id = (SELECT id FROM boundary_plan "
            "WHERE status = 'adopted')")).fetchall()]
    engine.dispose()
    lon = np.array([h[1] for h in houses])
    lat = np.array([h[2] for h in houses])
    boxes = [f"{x - 0.002:.6f},{y - 0.0018:.6f},{x + 0.002:.6f},{y + 0.0018:.6f}"
             for x, y in zip(lon, lat, strict=True)]
    picked = rng.choice(len(grids), size=min(n, len(grids)), replace=False)
    return {
        "residents": [f"/houses/{r[0]}/residents" for r in lived],
        "house": [f"/houses/{h[0]}" for h in houses],
        "grid_at": [f"/grids/at?lon={x:.6f}&lat={y:.6f}" for x, y in zip(lon, lat, strict=True)],
        "houses_near": [f"/houses?lon={x:.6f}&lat={y:.6f}&radius_m=300&limit=20"
                        for x, y in zip(lon, lat, strict=True)],
        "bbox_items": [f"/collections/houses/items?bbox={b}&limit=100" for b in boxes],
        "grid_workload": [f"/grids/{grids[i]}" for i in picked],
        "tipg_bbox_items": [f"/collections/public.house/items?bbox={b}&limit=100"
                            for b in boxes],
    }


def lua_script(path: Path, paths: list[str], token: str | None) -> Path:
    quoted = ",\n".join(json.dumps(p) for p in paths)
    auth = f'["Authorization"] = "Bearer {token}"' if token else ""
    path.write_text(
        f"local paths = {{\n{quoted}\n}}\n"
        "local n = 0\n"
        "local threads = 0\n"
        "function setup(thread)\n"
        "  threads = threads + 1\n"
        "  thread:set('offset', threads * 997)\n"
        "end\n"
        "function request()\n"
        "  n = n + 1\n"
        "  local p = paths[((n + (offset or 0)) % #paths) + 1]\n"
        f"  return wrk.format('GET', p, {{{auth}}})\n"
        "end\n")
    return path


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(value: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", value.strip())
    if not m:
        raise ValueError(f"cannot read a latency from {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, float]:
    res: dict[str, float] = {}
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        res[f"p{pct}_ms"] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"([0-9]+) requests in", out)
    res["requests"] = float(m.group(1)) if m else 0.0
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+([0-9]+)", out)
    errors += int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), "
                  r"timeout ([0-9]+)", out)
    errors += sum(int(g) for g in m.groups()) if m else 0
    res["errors"] = float(errors)
    return res


def run_wrk(base: str, script: Path, duration: int, connections: int, threads: int,
            warmup: int) -> tuple[dict[str, float], str]:
    if warmup:
        subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{warmup}s", "-s",
                        str(script), base], capture_output=True, text=True, check=True)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s",
                          "--latency", "--timeout", "10s", "-s", str(script), base],
                         capture_output=True, text=True, check=True).stdout
    res = parse_wrk(out)
    # The 1-minute load average after the run: this machine is shared, and a number
    # measured next to someone else's job says so.
    res["load1"] = os.getloadavg()[0]
    return res, out


def start_api(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GRIDMGR_API_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host",
         "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-access-log",
         "--log-level", "warning"], env=env, cwd=ROOT, start_new_session=True)


def start_tipg(tipg_python: str, url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    from api.database import asyncpg_dsn

    env = {**os.environ, "DATABASE_URL": asyncpg_dsn(url), "TIPG_DB_SCHEMAS": '["public"]',
           "TIPG_MAX_FEATURES_PER_QUERY": "10000"}
    env.pop("PYTHONPATH", None)
    return subprocess.Popen(
        [tipg_python, "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1", "--port",
         str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
        env=env, cwd="/", start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def table(results: dict[str, dict[str, float]]) -> str:
    lines = ["| route | requests/s | p50 (ms) | p99 (ms) | errors | load (1 min) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in results.items():
        lines.append(f"| {LABELS[name]} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {int(r['errors'])} | {r.get('load1', 0):.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--duration", type=int, default=25, help="seconds per route")
    ap.add_argument("--warmup", type=int, default=3, help="seconds before each measurement")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--routes", default=",".join(ROUTES))
    ap.add_argument("--tipg-python", default=os.environ.get("TIPG_PYTHON", ""),
                    help="python of a venv with tipg and uvicorn installed")
    ap.add_argument("--url", default=None, help="use this loaded PostGIS store instead")
    ap.add_argument("--out", type=Path, default=Path("bench-out/api"))
    ap.add_argument("--keep", action="store_true",
                    help="leave the built PostGIS cluster running (prints its URL) to rerun "
                         "the measurement with --url")
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    log: list[str] = [f"command: python bench/api.py {' '.join(argv or sys.argv[1:])}"]
    cluster = None
    if args.url:
        url = args.url
    else:
        cluster, url = build_store(args.scale, args.seed, args.out / "data", log)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        from gridmgr.store.engine import make_engine
        from gridmgr.store.tokens import create_token

        engine = make_engine(url)
        with engine.begin() as conn:
            _, token = create_token(conn, role="admin", name="bench")
        engine.dispose()
        paths = samples(url, args.samples, args.seed)
        prewarm(url)
        results: dict[str, dict[str, float]] = {}
        raw: dict[str, str] = {}
        port = free_port()
        api = start_api(url, port, args.workers)
        procs.append(api)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health")
        for route in args.routes.split(","):
            script = lua_script(args.out / f"{route}.lua", paths[route], token)
            results[route], raw[route] = run_wrk(base, script, args.duration, args.connections,
                                                 args.threads, args.warmup)
            print(f"{route}: {results[route]}", flush=True)
        stop(api)
        procs.remove(api)
        if args.tipg_python and Path(args.tipg_python).exists():
            tport = free_port()
            tipg = start_tipg(args.tipg_python, url, tport, args.workers)
            procs.append(tipg)
            tbase = f"http://127.0.0.1:{tport}"
            wait_http(f"{tbase}/collections")
            script = lua_script(args.out / "tipg.lua", paths["tipg_bbox_items"], None)
            results["tipg_bbox_items"], raw["tipg_bbox_items"] = run_wrk(
                tbase, script, args.duration, args.connections, args.threads, args.warmup)
            print(f"tipg: {results['tipg_bbox_items']}", flush=True)
        md = table(results)
        if "tipg_bbox_items" in results and "bbox_items" in results:
            ratio = results["bbox_items"]["rps"] / max(results["tipg_bbox_items"]["rps"], 1e-9)
            md += f"\n\nbbox items: {ratio:.0f}× tipg's throughput in the same run."
        print("\n" + md)
        (args.out / "results.md").write_text("\n".join(log) + "\n\n" + md + "\n")
        (args.out / "results.json").write_text(json.dumps(
            {"scale": args.scale, "connections": args.connections, "threads": args.threads,
             "workers": args.workers, "duration_s": args.duration, "log": log,
             "results": results}, indent=2))
        (args.out / "wrk.txt").write_text("\n\n".join(f"## {k}\n{v}" for k, v in raw.items()))
    finally:
        for p in procs:
            stop(p)
        if cluster is not None and args.keep:
            print(f"kept the store: --url {url} (stop: pg_ctl -D {cluster.datadir} stop)")
        elif cluster is not None:
            cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
