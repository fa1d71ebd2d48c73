"""`gridmgr plan …`: draft, edit, compare, rebalance and adopt grid boundary plans.

Thin wrappers over :mod:`gridmgr.store.plan_ops`; each command runs in one transaction, so
a rejected edit leaves the draft as it was (exit code 2 and one line saying why).
"""

from __future__ import annotations

import functools
import getpass
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from gridmgr.errors import BadInput

F = TypeVar("F", bound=Callable[..., Any])

plan_app = typer.Typer(no_args_is_help=True, help=(
    "Boundary plans (网格划分方案): draft a copy of the adopted grids, reshape, split, merge, "
    "move, lock, undo, compare, rebalance, adopt."))

DbOpt = Annotated[str | None, typer.Option(
    "--db", help="store URL (default $GRIDMGR_DATABASE_URL or sqlite:///gridmgr.db)")]
NameArg = Annotated[str, typer.Argument(help="the draft plan's name")]
FmtOpt = Annotated[str, typer.Option("--format", help="table|json")]
ActorOpt = Annotated[str | None, typer.Option("--actor", help="who makes the change "
                                                              "(default: the login name)")]


def handled(fn: F) -> F:
    """Exit 2 with one line on gridmgr errors, 1 on anything else (as gridmgr.cli does)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from gridmgr.cli import handled as outer  # late: gridmgr.cli imports this module

        return outer(fn)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _engine(db: str | None) -> Any:
    from gridmgr.cli import engine_for

    return engine_for(db)


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers): say so rather than fail
        return "cli"


def _fmt(fmt: str) -> str:
    if fmt not in ("table", "json"):
        raise BadInput(f"--format {fmt!r} is unknown; use table or json")
    return fmt


def read_geometry(source: str | Path) -> Any:
    """A lon/lat geometry from a file (GeoJSON, WKT, GeoPackage, Shapefile…) or WKT text.

    GeoJSON without a CRS is taken as EPSG:4326; other files are reprojected from their own
    CRS. Several features are unioned.
    """
    import shapely

    text_ = str(source).strip()
    if text_.upper().startswith(("POLYGON", "MULTIPOLYGON", "LINESTRING", "MULTILINESTRING")):
        try:
            return shapely.from_wkt(text_)
        except Exception as exc:
            raise BadInput(f"cannot read the WKT: {str(exc).splitlines()[0]}") from exc
    path = Path(source)
    if not path.is_file():
        raise BadInput(f"{path}: no such file; give a GeoJSON or WKT file, or WKT text")
    suffix = path.suffix.lower()
    raw = path.read_text(encoding="utf-8", errors="replace") if suffix in (
        ".wkt", ".txt", ".geojson", ".json") else ""
    try:
        if suffix in (".wkt", ".txt"):
            return shapely.from_wkt(raw.strip())
        if suffix in (".geojson", ".json"):
            doc = json.loads(raw)
            if doc.get("type") == "FeatureCollection":
                geoms = [shapely.geometry.shape(f["geometry"]) for f in doc.get("features", [])
                         if f.get("geometry")]
            elif doc.get("type") == "Feature":
                geoms = [shapely.geometry.shape(doc["geometry"])]
            else:
                geoms = [shapely.geometry.shape(doc)]
            if not geoms:
                raise BadInput(f"{path}: the file holds no geometry")
            return geoms[0] if len(geoms) == 1 else shapely.union_all(geoms)
        import geopandas as gpd

        frame = gpd.read_file(path)
        if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
            frame = frame.to_crs(4326)
        if frame.empty:
            raise BadInput(f"{path}: the file holds no geometry")
        return shapely.union_all(frame.geometry.to_numpy())
    except BadInput:
        raise
    except Exception as exc:
        raise BadInput(f"{path}: cannot read a geometry ({str(exc).splitlines()[0]}); "
                       "give GeoJSON in lon/lat or WKT") from exc


def _echo_op(result: Any, fmt: str = "table", limit: int = 20) -> None:
    if fmt == "json":
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, default=str))
        return
    typer.echo(result.summary())
    for m in result.moved[:limit]:
        typer.echo(f"  {m['house_code']}: {m['from'] or '-'} → {m['to'] or '-'}")
    if len(result.moved) > limit:
        typer.echo(f"  … and {len(result.moved) - limit} more (--format json lists all)")


@plan_app.command("new")
@handled
def new(name: NameArg,
        source: Annotated[str | None, typer.Option("--from", help="plan to copy "
                                                                  "(default: the adopted one)")]
        = None,
        note: Annotated[str | None, typer.Option(help="a note kept with the plan")] = None,
        actor: ActorOpt = None, db: DbOpt = None) -> None:
    """Create draft NAME: a copy of the adopted grids, their links and counts."""
    from gridmgr.store import plan_ops

    with _engine(db).begin() as conn:
        info = plan_ops.create_draft(conn, name=name, source=source, actor=_actor(actor),
                                     note=note)
    typer.echo(f"draft {info.name} created from {info.base} with {info.grids} grids")


@plan_app.command("list")
@handled
def list_(fmt: FmtOpt = "table", db: DbOpt = None) -> None:
    """List the plans: status, base, grids, edits, when each was in force."""
    import pandas as pd

    from gridmgr.store import plan_ops

    with _engine(db).connect() as conn:
        plans = plan_ops.list_plans(conn)
    if _fmt(fmt) == "json":
        typer.echo(json.dumps([p.as_dict() for p in plans], ensure_ascii=False))
        return
    rows = [{"name": p.name, "status": p.status, "base": p.base or "", "grids": p.grids,
             "edits": p.edits, "created": f"{p.created_at:%Y-%m-%d %H:%M}" if p.created_at
             else "", "in force": "; ".join(
                 f"{a['adopted_at']:%Y-%m-%d %H:%M}–"
                 f"{'' if a['retired_at'] is None else format(a['retired_at'], '%Y-%m-%d %H:%M')}"
                 for a in p.adoptions)} for p in plans]
    typer.echo(pd.DataFrame(rows).to_string(index=False) if rows else "no plans yet")


@plan_app.command("history")
@handled
def history_(name: NameArg, db: DbOpt = None) -> None:
    """The edits of a plan, in order, with who made them and which were undone."""
    from gridmgr.store import plan_ops

    with _engine(db).connect() as conn:
        rows = plan_ops.history(conn, name)
    if not rows:
        typer.echo(f"plan {name} has no edits")
    for r in rows:
        done = f" (undone {r['undone_at']:%Y-%m-%d %H:%M})" if r["undone_at"] else ""
        s = r["summary"]
        typer.echo(f"{r['seq']:>3} {r['at']:%Y-%m-%d %H:%M} {r['actor'] or '-'}: {r['op']} "
                   f"{json.dumps(r['args'], ensure_ascii=False)}; added {s.get('added', [])}, "
                   f"removed {s.get('removed', [])}, {s.get('houses_moved', 0)} houses moved"
                   f"{done}")


@plan_app.command("reshape")
@handled
def reshape(name: NameArg, grid_id: Annotated[str, typer.Argument(help="grid to reshape")],
            file: Annotated[str, typer.Argument(help="new boundary: GeoJSON or WKT file, or "
                                                     "WKT text (lon/lat)")],
            fmt: FmtOpt = "table", actor: ActorOpt = None, db: DbOpt = None) -> None:
    """Give GRID_ID a new boundary; its neighbours in the community adjust."""
    from gridmgr.store import plan_ops

    geom = read_geometry(file)
    with _engine(db).begin() as conn:
        res = plan_ops.reshape(conn, plan=name, grid_id=grid_id, geometry=geom,
                               actor=_actor(actor))
    _echo_op(res, _fmt(fmt))


@plan_app.command("split")
@handled
def split(name: NameArg, grid_id: Annotated[str, typer.Argument(help="grid to split")],
          line: Annotated[str, typer.Option("--line", help="WKT LineString across the grid, "
                                                           "or a file holding one")],
          fmt: FmtOpt = "table", actor: ActorOpt = None, db: DbOpt = None) -> None:
    """Split GRID_ID along a line; prints the new grid ids, one per line, first."""
    from gridmgr.store import plan_ops

    geom = read_geometry(line)
    with _engine(db).begin() as conn:
        res = plan_ops.split(conn, plan=name, grid_id=grid_id, line=geom, actor=_actor(actor))
    if _fmt(fmt) == "table":
        for gid in res.added:
            typer.echo(gid)
    _echo_op(res, fmt)


@plan_app.command("merge")
@handled
def merge(name: NameArg,
          grid_ids: Annotated[list[str], typer.Argument(help="two or more neighbouring grids; "
                                                             "the first keeps its id")],
          fmt: FmtOpt = "table", actor: ActorOpt = None, db: DbOpt = None) -> None:
    """Merge neighbouring grids of one community into the first one named."""
    from gridmgr.store import plan_ops

    with _engine(db).begin() as conn:
        res = plan_ops.merge(conn, plan=name, grid_ids=grid_ids, actor=_actor(actor))
    _echo_op(res, _fmt(fmt))


@plan_app.command("move")
@handled
def move(name: NameArg,
         to: Annotated[str, typer.Option("--to", help="the grid that receives")],
         house: Annotated[list[str] | None, typer.Option(
             "--house", help="house code (repeatable); its block moves")] = None,
         cell: Annotated[list[str] | None, typer.Option(
             "--cell", help="H3 cell id of a block (repeatable)")] = None,
         polygon: Annotated[str | None, typer.Option(
             "--polygon", help="an area to move: GeoJSON or WKT file, or WKT text")] = None,
         resolution: Annotated[int, typer.Option(help="H3 resolution of a house's block")] = 11,
         fmt: FmtOpt = "table", actor: ActorOpt = None, db: DbOpt = None) -> None:
    """Move houses or blocks into grid --to (the ground they stand on moves with them)."""
    from gridmgr.store import plan_ops

    area = read_geometry(polygon) if polygon else None
    with _engine(db).begin() as conn:
        res = plan_ops.move(conn, plan=name, to_grid=to, house_codes=house or [],
                            cells=cell or [], polygon=area, resolution=resolution,
                            actor=_actor(actor))
    _echo_op(res, _fmt(fmt))


@plan_app.command("lock")
@handled
def lock(name: NameArg, grid_ids: Annotated[list[str], typer.Argument(help="grids to lock")],
         actor: ActorOpt = None, db: DbOpt = None) -> None:
    """Lock grids against change (edits and rebalances leave them alone)."""
    from gridmgr.store import plan_ops

    with _engine(db).begin() as conn:
        res = plan_ops.lock(conn, plan=name, grid_ids=grid_ids, locked=True,
                            actor=_actor(actor))
    typer.echo(f"locked {', '.join(grid_ids)} in plan {name}"
               + (f" ({'; '.join(res.notes)})" if res.notes else ""))


@plan_app.command("unlock")
@handled
def unlock(name: NameArg, grid_ids: Annotated[list[str], typer.Argument(help="grids")],
           actor: ActorOpt = None, db: DbOpt = None) -> None:
    """Unlock grids."""
    from gridmgr.store import plan_ops

    with _engine(db).begin() as conn:
        res = plan_ops.lock(conn, plan=name, grid_ids=grid_ids, locked=False,
                            actor=_actor(actor))
    typer.echo(f"unlocked {', '.join(grid_ids)} in plan {name}"
               + (f" ({'; '.join(res.notes)})" if res.notes else ""))


@plan_app.command("undo")
@handled
def undo(name: NameArg, fmt: FmtOpt = "table", actor: ActorOpt = None,
         db: DbOpt = None) -> None:
    """Undo the last edit of a draft (repeat to go further back)."""
    from gridmgr.store import plan_ops

    with _engine(db).begin() as conn:
        res = plan_ops.undo(conn, plan=name, actor=_actor(actor))
    _echo_op(res, _fmt(fmt))


@plan_app.command("diff")
@handled
def diff(name: NameArg,
         other: Annotated[str | None, typer.Argument(help="plan to compare with "
                                                          "(default: the adopted one)")] = None,
         fmt: FmtOpt = "table",
         map_out: Annotated[Path | None, typer.Option(
             "--map", help="also write an offline map of the changed grids (HTML)")] = None,
         limit: Annotated[int, typer.Option(help="moved houses listed in the table")] = 20,
         db: DbOpt = None) -> None:
    """Houses that change grid, and workload, tier and staffing before/after, per grid and area."""
    import pandas as pd

    from gridmgr.store import plan_ops

    if map_out is not None and not map_out.parent.exists():
        raise BadInput(f"--map {map_out}: directory {map_out.parent} does not exist")
    with _engine(db).connect() as conn:
        d = plan_ops.diff(conn, plan=name, other=other)
        if map_out is not None:
            map_out.write_text(plan_ops.diff_map(conn, d), encoding="utf-8")
    if _fmt(fmt) == "json":
        typer.echo(json.dumps(d.as_dict(), ensure_ascii=False, default=str))
        return
    typer.echo(f"plan {d.plan} against {d.other}: {d.houses_moved} houses change grid; "
               f"grids added {len(d.added)}, removed {len(d.removed)}, reshaped "
               f"{len(d.reshaped)}, restaffed {len(d.restaffed)}")
    with pd.option_context("display.max_rows", 200, "display.max_columns", 30,
                           "display.width", 250):
        table = d.table()
        if len(table):
            typer.echo(table.round(2).to_string(index=False))
        if len(d.rollup):
            cols = ["level", "area_code"] + [c for c in d.rollup.columns if c.endswith(
                "_change") and c.split("_change")[0] in (
                "grids", "floating_residents", "co_managers_needed", "co_managers_gap",
                "inspections_per_month", "grids_strengthened", "grids_key")]
            typer.echo("change per area:")
            typer.echo(d.rollup[cols].round(2).to_string(index=False))
    for m in d.moved[:limit]:
        typer.echo(f"  {m['house_code']}: {m['from'] or '-'} → {m['to'] or '-'}")
    if len(d.moved) > limit:
        typer.echo(f"  … and {len(d.moved) - limit} more (--format json lists all)")
    if map_out is not None:
        typer.echo(f"wrote {map_out}")


@plan_app.command("rebalance")
@handled
def rebalance(
    name: NameArg,
    area: Annotated[str, typer.Option("--area", help="street or community code")],
    grids: Annotated[int, typer.Option("--grids", help="number of grids to make")],
    floor: Annotated[float | None, typer.Option(help="least load per grid (default: one "
                                                     "co-manager's worth, 500)")] = None,
    ceiling: Annotated[float | None, typer.Option(help="most load per grid (default 1000)")]
    = None,
    resolution: Annotated[int, typer.Option(help="H3 resolution of the blocks: 10 or 11")] = 10,
    seed: Annotated[int, typer.Option(help="random seed; same seed, same proposal")] = 0,
    maxp: Annotated[bool, typer.Option("--maxp", help="also run spopt's max-p on the same "
                                                      "blocks (slow) for comparison")] = False,
    fmt: FmtOpt = "table", actor: ActorOpt = None, db: DbOpt = None,
) -> None:
    """Replace an area's unlocked grids by balanced, contiguous, compact grids; report figures."""
    from gridmgr.store import plan_ops

    with _engine(db).begin() as conn:
        rep = plan_ops.rebalance_area(conn, plan=name, area=area, grids=grids, floor=floor,
                                      ceiling=ceiling, resolution=resolution, seed=seed,
                                      maxp=maxp, actor=_actor(actor))
    if _fmt(fmt) == "json":
        typer.echo(json.dumps(rep.as_dict(), ensure_ascii=False, default=str))
        return
    typer.echo(f"rebalanced {area} in plan {name}: {sum(rep.communities.values())} grids from "
               f"{rep.blocks} blocks (H3 res {rep.resolution}), {rep.houses} houses, load "
               f"{rep.load_total:g}, bounds {rep.floor:g}–{rep.ceiling:g}")
    typer.echo(rep.table().to_string(index=False))
    typer.echo(rep.op.summary())
    typer.echo(f"compare: gridmgr plan diff {name}; undo: gridmgr plan undo {name}")


@plan_app.command("adopt")
@handled
def adopt(name: NameArg,
          force: Annotated[bool, typer.Option("--force", help="adopt a draft made from a plan "
                                                              "no longer in force")] = False,
          actor: ActorOpt = None, db: DbOpt = None) -> None:
    """Put plan NAME in force (atomically); the current plan is retired and kept."""
    from gridmgr.store import plan_ops

    with _engine(db).begin() as conn:
        res = plan_ops.adopt(conn, plan=name, actor=_actor(actor), role="cli", force=force)
    typer.echo(f"plan {res.plan} adopted at {res.adopted_at:%Y-%m-%d %H:%M:%S} UTC"
               + (f"; {res.previous} retired" if res.previous else "")
               + f"; {res.houses_moved} houses changed grid")


@plan_app.command("discard")
@handled
def discard(name: NameArg, actor: ActorOpt = None, db: DbOpt = None) -> None:
    """Give up draft NAME: its house links go, its grids and edits are kept."""
    from gridmgr.store import plan_ops

    with _engine(db).begin() as conn:
        res = plan_ops.discard(conn, plan=name, actor=_actor(actor), role="cli")
    typer.echo(f"draft {res.plan} discarded; {res.links_deleted} house links deleted")


if __name__ == "__main__":  # pragma: no cover - `python -m gridmgr.cli_plan`
    plan_app()
