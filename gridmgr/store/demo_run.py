"""`gridmgr demo`: synthesise a city, load it through the ordinary loaders, map it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from gridmgr.errors import BadInput
from gridmgr.progress import default_reporter
from gridmgr.store.engine import make_engine
from gridmgr.store.load import load_file
from gridmgr.store.schema import holds_data, upgrade, wipe

LOAD_ORDER = ("areas", "grids", "houses", "businesses", "people", "rentals")


def run_demo(db: str | None, *, scale: float, seed: int, out: Path, replace: bool
             ) -> dict[str, str]:
    """Build the demo city into the store at `db`; return the outputs' locations."""
    from gridmgr.demo import make_city

    engine = make_engine(db)
    if holds_data(engine):
        if not replace:
            raise BadInput(f"the store {engine.url.render_as_string()} already holds data; "
                           "pass --replace to wipe it or --db to use another store")
        wipe(engine)
        engine = make_engine(db)
    upgrade(engine)
    reporter = default_reporter()
    out.mkdir(parents=True, exist_ok=True)
    with reporter.step("synthesising the city", None):
        city = make_city(scale=scale, seed=seed)
    files = city.write(out / "data")
    outputs: dict[str, str] = {"store": engine.url.render_as_string(hide_password=True),
                               "input files": str(out / "data")}
    for kind in LOAD_ORDER:
        load_file(engine, kind, files[kind], reporter=reporter,
                  report_path=out / f"{kind}.report.csv")
    from gridmgr.store.export import export

    export(engine, "workload", out / "workload.csv")
    outputs["workload"] = str(out / "workload.csv")
    export(engine, "houses", out / "houses.csv")
    outputs["houses"] = str(out / "houses.csv")
    outputs.update(_maps(engine, out))
    return outputs


def _maps(engine: Engine, out: Path) -> dict[str, str]:
    try:
        from gridmgr.store.maps import write_maps
    except ImportError:
        return {}
    return {f"{k} map": str(v) for k, v in write_maps(engine, out).items()}
