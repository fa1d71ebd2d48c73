"""What the benchmarks share: a log line, building the demo city into a store, waiting for HTTP."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ORDER = ("areas", "grids", "houses", "businesses", "people", "rentals")


def log(msg: str) -> None:
    """One timestamped progress line on stderr (stdout carries the JSON result)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def build_store(url: str, scale: float, seed: int, workdir: Path) -> dict[str, Any]:
    """Synthesise the demo city and load it with the ordinary loaders; return timings."""
    from sqlalchemy import text

    from gridmgr.demo import make_city
    from gridmgr.store.engine import make_engine
    from gridmgr.store.load import load_file
    from gridmgr.store.schema import upgrade

    t0 = time.perf_counter()
    city = make_city(scale=scale, seed=seed)
    files = city.write(workdir / "data")
    made = time.perf_counter() - t0
    log(f"city synthesised in {made:.0f} s: {city.counts()}")
    del city
    engine = make_engine(url)
    upgrade(engine)
    seconds = {}
    for kind in ORDER:
        t = time.perf_counter()
        load_file(engine, kind, files[kind], report_path=workdir / f"{kind}.report.csv")
        seconds[kind] = round(time.perf_counter() - t, 1)
        log(f"loaded {kind} in {seconds[kind]} s")
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    engine.dispose()
    return {"synthesise_s": round(made, 1), "load_s": seconds}


def store_counts(url: str) -> tuple[str, int, int]:
    """The store's dialect, the adopted plan's grids and the houses."""
    from sqlalchemy import text

    from gridmgr.store.engine import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        houses = int(conn.execute(text("SELECT count(*) FROM house")).scalar_one())
        grids = int(conn.execute(text(
            "SELECT count(*) FROM grid WHERE plan_id = (SELECT id FROM boundary_plan "
            "WHERE status = 'adopted')")).scalar_one())
    name = engine.dialect.name
    engine.dispose()
    return {"postgresql": "postgis", "sqlite": "spatialite"}.get(name, name), grids, houses


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None,
              timeout: float = 120.0) -> None:
    """Wait until `url` answers 200; fail early if the server process `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def new_store(store: str, workdir: Path) -> tuple[str, Any]:
    """URL of an empty store of the kind named, and its throwaway cluster (None for files)."""
    if store == "postgis":
        from gridmgr.store.pgtemp import start_cluster

        cluster = start_cluster(shared_buffers="1GB")
        return cluster.create_database("bench"), cluster
    return f"sqlite:///{workdir / 'bench.db'}", None
