"""The gridmgr command line: thin wrappers over the same functions the API uses."""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from gridmgr.errors import GridmgrError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="gridmgr: grid management for floating-population service management.")

DbOpt = Annotated[str | None, typer.Option(
    "--db", help="store URL (default $GRIDMGR_DATABASE_URL or sqlite:///gridmgr.db)")]
F = TypeVar("F", bound=Callable[..., Any])
LEVELS = ("grid", "community", "street", "district", "city")


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error on stderr and exit with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def handled(fn: F) -> F:
    """Turn gridmgr errors into exit 2 and anything else into exit 1, one line each."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except GridmgrError as exc:
            fail(" ".join(str(exc).split()))
        except KeyboardInterrupt:
            fail("interrupted; nothing half-written was kept", 130)
        except Exception as exc:
            if os.environ.get("GRIDMGR_DEBUG"):
                raise
            fail(f"internal error: {type(exc).__name__}: {exc} (GRIDMGR_DEBUG=1 shows the "
                 "traceback)", 1)

    return wrapper  # type: ignore[return-value]


def engine_for(db: str | None) -> Any:
    """Open the store at `db` and bring its schema up to date."""
    from gridmgr.store.engine import make_engine
    from gridmgr.store.schema import upgrade

    engine = make_engine(db)
    try:
        upgrade(engine)
    except GridmgrError:
        raise
    except Exception as exc:
        from gridmgr.errors import BadInput

        raise BadInput(f"cannot open the store {engine.url.render_as_string()}: "
                       f"{str(exc).splitlines()[0]}") from exc
    return engine


def _check_level(level: str) -> str:
    if level not in LEVELS:
        from gridmgr.errors import BadInput

        raise BadInput(f"--level {level!r} is unknown; use one of {', '.join(LEVELS)}")
    return level


def _emit(df: Any, fmt: str) -> None:
    if fmt == "json":
        typer.echo(df.to_json(orient="records", force_ascii=False, double_precision=4))
    elif fmt == "csv":
        df.to_csv(sys.stdout, index=False)
    elif fmt == "table":
        import pandas as pd

        with pd.option_context("display.max_rows", 60, "display.max_columns", 20,
                               "display.width", 200):
            typer.echo(df.to_string(index=False, max_rows=60))
    else:
        from gridmgr.errors import BadInput

        raise BadInput(f"--format {fmt!r} is unknown; use table, csv or json")


@app.command()
@handled
def load(
    kind: Annotated[str, typer.Argument(help="areas|grids|houses|people|businesses|rentals")],
    file: Annotated[Path, typer.Argument(help="CSV, GeoJSON, GeoPackage, GeoParquet or SHP")],
    crs: Annotated[int | None, typer.Option(help="EPSG of the file (4326 or 4490)")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="load the good rows")] = False,
    report: Annotated[Path | None, typer.Option(help="where to write the row report")] = None,
    db: DbOpt = None,
) -> None:
    """Validate a whole file and load it; a bad row rejects the file unless --skip-bad."""
    from gridmgr.interchange import KINDS
    from gridmgr.progress import default_reporter
    from gridmgr.store.load import load_file

    if kind not in KINDS:
        fail(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    result = load_file(engine_for(db), kind, file, crs=crs, skip_bad=skip_bad,
                       report_path=report, reporter=default_reporter())
    typer.echo(result.summary())


@app.command()
@handled
def assign(
    engine: Annotated[str, typer.Option(help="store: the store's houses and adopted grids; "
                                             "dask: files in, file out, on a dask cluster")
                      ] = "store",
    houses: Annotated[Path | None, typer.Option(help="dask: houses GeoParquet/Parquet/CSV")
                      ] = None,
    grids: Annotated[Path | None, typer.Option(help="dask: grids GeoParquet/GeoJSON")] = None,
    out: Annotated[Path | None, typer.Option(help="dask: output Parquet (source_id, grid_id)")
                   ] = None,
    scheduler: Annotated[str | None, typer.Option(help="dask: scheduler address, e.g. "
                                                       "tcp://host:8786 (default: local)")
                         ] = None,
    db: DbOpt = None,
) -> None:
    """(Re)assign every house to the adopted plan's grids and rebuild the counts."""
    if engine == "dask":
        _assign_dask(houses, grids, out, scheduler)
        return
    if engine != "store":
        fail(f"--engine {engine!r} is unknown; use store or dask")
    from gridmgr.progress import default_reporter
    from gridmgr.store.load import assign_plan, require_loaded
    from gridmgr.store.queries import require_plan

    store = engine_for(db)
    with store.begin() as conn:
        require_loaded(conn, "houses")
        stats = assign_plan(conn, require_plan(conn), reporter=default_reporter())
    typer.echo(f"assigned {stats.assigned} of {stats.houses} houses in {stats.seconds:.1f} s; "
               f"{len(stats.unassigned_source_ids)} in no grid (kept, unassigned)")
    if stats.unassigned_source_ids:
        shown = ", ".join(stats.unassigned_source_ids[:10])
        typer.echo(f"unassigned: {shown}{' …' if len(stats.unassigned_source_ids) > 10 else ''}")


def _assign_dask(houses: Path | None, grids: Path | None, out: Path | None,
                 scheduler: str | None) -> None:
    missing = [n for n, v in (("--houses", houses), ("--grids", grids), ("--out", out))
               if v is None]
    if missing:
        fail(f"--engine dask reads files: give {', '.join(missing)}")
    from gridmgr.assign_dask import assign_files

    client = None
    if scheduler:
        from dask.distributed import Client

        client = Client(scheduler)
    summary = assign_files(houses, grids, out, client=client)  # type: ignore[arg-type]
    typer.echo(f"wrote {out}: {summary}")


@app.command()
@handled
def export(
    what: Annotated[str, typer.Argument(help="houses|grids|workload")],
    out: Annotated[Path, typer.Argument(help="file; format from suffix .csv .parquet "
                                              ".geojson .gpkg")],
    level: Annotated[str, typer.Option(help="workload level")] = "grid",
    db: DbOpt = None,
) -> None:
    """Export houses (with their grid), grids or workload."""
    from gridmgr.store import export as ex

    engine = engine_for(db)
    n = ex.export(engine, what, out, level=_check_level(level))
    typer.echo(f"wrote {n} rows to {out}")


@app.command()
@handled
def workload(
    level: Annotated[str, typer.Option(help="grid|community|street|district|city")] = "grid",
    fmt: Annotated[str, typer.Option("--format", help="table|csv|json")] = "table",
    parent: Annotated[str | None, typer.Option(help="only areas under this code")] = None,
    db: DbOpt = None,
) -> None:
    """Workload, tier, staffing and KPIs per grid or rolled up to a level."""
    from gridmgr.store.queries import workload_at

    engine = engine_for(db)
    with engine.connect() as conn:
        rows = workload_at(conn, _check_level(level), parent=parent)  # type: ignore[arg-type]
    _emit(_workload_columns(rows, fmt), fmt)


def _workload_columns(rows: Any, fmt: str) -> Any:
    if fmt != "table":
        return rows
    key = "grid_id" if "grid_id" in rows.columns else "area_code"
    cols = [key, "tier", "houses", "rental_houses", "businesses", "residents",
            "floating_residents", "inspections_per_month", "co_managers_needed",
            "co_managers_assigned", "floating_registration_rate", "rental_registration_rate",
            "consistency_rate"]
    return rows[[c for c in cols if c in rows.columns]].round(3)


@app.command()
@handled
def staffing(
    ratio: Annotated[int, typer.Option(help="floating residents per co-manager")] = 500,
    level: Annotated[str, typer.Option(help="grid|community|street|district|city")] = "grid",
    fmt: Annotated[str, typer.Option("--format", help="table|csv|json")] = "table",
    parent: Annotated[str | None, typer.Option(help="only areas under this code")] = None,
    db: DbOpt = None,
) -> None:
    """Co-managers needed at RATIO floating residents each, assigned, and the gap."""
    from gridmgr.store.queries import staffing_at

    engine = engine_for(db)
    with engine.connect() as conn:
        rows = staffing_at(conn, _check_level(level), ratio, parent=parent)  # type: ignore[arg-type]
    _emit(rows, fmt)


@app.command()
@handled
def demo(
    scale: Annotated[float, typer.Option(help="1 = Chengdu 2012 (6.73 M houses)")] = 0.03,
    seed: Annotated[int, typer.Option(help="random seed; same seed, same city")] = 0,
    out: Annotated[Path, typer.Option(help="where files and maps go")] = Path("demo-out"),
    replace: Annotated[bool, typer.Option("--replace", help="wipe a store that holds data")
                       ] = False,
    db: DbOpt = None,
) -> None:
    """Build a realistic demo city on Chengdu's real districts, load it, assign, map it."""
    from gridmgr.store.demo_run import run_demo

    if not 0 < scale <= 2:
        fail(f"--scale {scale} must be in (0, 2]")
    t0 = time.perf_counter()
    outputs = run_demo(db, scale=scale, seed=seed, out=out, replace=replace)
    typer.echo(f"demo city ready in {time.perf_counter() - t0:.1f} s")
    for name, path in outputs.items():
        typer.echo(f"  {name}: {path}")


@app.command("map")
@handled
def map_(
    kind: Annotated[str, typer.Argument(help="inspection|tier|staffing")],
    out: Annotated[Path, typer.Option(help="HTML file to write")],
    area: Annotated[str | None, typer.Option(help="frame this area (code) or grid_id")] = None,
    db: DbOpt = None,
) -> None:
    """Write an offline map (opens from disk with no server and no internet)."""
    from gridmgr.store.maps import MAP_KINDS, render_map

    if kind not in MAP_KINDS:
        fail(f"unknown map {kind!r}; use one of {', '.join(MAP_KINDS)}")
    if not out.parent.exists():
        fail(f"--out {out}: directory {out.parent} does not exist")
    out.write_text(render_map(engine_for(db), kind, area=area), encoding="utf-8")
    typer.echo(f"wrote {out}")


from gridmgr.cli_plan import plan_app  # noqa: E402
from gridmgr.cli_register import permits_app, register_app  # noqa: E402
from gridmgr.cli_serve import serve, token_app  # noqa: E402

app.add_typer(plan_app, name="plan")
app.add_typer(register_app, name="register")
app.add_typer(permits_app, name="permits")
app.add_typer(token_app, name="token")
app.command()(serve)


def main() -> None:
    """Entry point for `python -m gridmgr`."""
    app()


if __name__ == "__main__":
    main()
