"""Boundary plans in the store: drafts, validated edits with undo, diffs, adoption, rebalance.

A draft (草案) starts as a copy of the adopted plan: its grids, the house → grid and
business → grid links, and the maintained per-grid counts. Every edit of a draft

1. builds the grids it touches *before* and *after* (pure geometry, :mod:`gridmgr.plan_rules`),
2. checks that the edit creates no new problem (a locked grid changed, an invalid polygon,
   a grid outside its community, an overlap, a gap, a detached part) and otherwise raises
   :class:`~gridmgr.plan_rules.PlanRuleViolation` naming the grids — before writing
   anything, so a rejected edit leaves the draft exactly as it was,
3. writes the grids, then re-tests only the houses and businesses that can have moved —
   those inside *old △ new* of a changed grid; everywhere else the same grids cover a
   point, so its grid stands and the result equals a full reassignment — rewrites their
   links and adds the per-grid count deltas, all in the caller's transaction,
4. records the grids before and after in ``plan_op`` / ``plan_op_grid``, which is what undo
   replays backwards.

Every function takes an open :class:`~sqlalchemy.Connection`; run it inside
``engine.begin()`` so an error rolls everything back. Diffs compare any two plans through
the grids whose shape differs, and only the houses inside their old △ new, so they cost in
proportion to the change, not to the city.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from gridmgr import plan_rules as rules
from gridmgr.assign import assign_nearby
from gridmgr.errors import BadInput, Conflict, NotFound
from gridmgr.geo import area_km2
from gridmgr.settings import TierSettings, WorkloadSettings
from gridmgr.store import counts
from gridmgr.store.bulk import allocate_ids, bulk_insert, geometries, is_pg, read_frame
from gridmgr.store.models import GRID_COUNT_COLUMNS
from gridmgr.store.plans import adopted_plan_id
from gridmgr.workload import derive_workload

PLAN_NAME = re.compile(r"[\w.\-]{1,100}")
"""What a plan name can be (matched whole)."""
ROLLUP_LEVELS: tuple[str, ...] = ("community", "street", "district", "city")
ROLLUP_COLUMNS: tuple[str, ...] = (
    "grids", "grids_strengthened", "grids_key", "grids_routine", "houses", "rental_houses",
    "residents", "floating_residents", "inspections_per_month", "co_managers_needed",
    "co_managers_assigned", "co_managers_gap",
)
"""Workload figures a diff rolls up, before, after and change, per affected area."""
GRID_DIFF_COLUMNS: tuple[str, ...] = (
    "houses", "rental_houses", "floating_residents", "inspections_per_month",
    "co_managers_needed", "co_managers_assigned", "tier",
)
"""Per-grid figures shown side by side in :meth:`PlanDiff.table`."""


# ----------------------------------------------------------------------------- plumbing


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _in_list(conn: Connection, sql: str, vals: list[Any]) -> tuple[str, Any]:
    """``sql`` with ``IN :ids`` rewritten to take the whole list as one parameter.

    Thousands of bound parameters cost more to render and bind than the query itself; an
    array (PostGIS) or a JSON text (SQLite's json_each) is one parameter of any length.
    On PostGIS the array is unnested rather than tested with ``= ANY``: the planner then
    knows how many keys there are and joins by index, where ``= ANY`` of a few thousand
    keys was estimated so high that it hashed all 5.7 M people (0.45 s instead of 0.02 s).
    """
    if is_pg(conn):
        kind = "bigint" if all(isinstance(v, int) for v in vals) else "text"
        return sql.replace("IN :ids", f"IN (SELECT unnest(CAST(:ids AS {kind}[])))"), vals
    return sql.replace("IN :ids", "IN (SELECT value FROM json_each(:ids))"), json.dumps(vals)


def _frame_in(conn: Connection, sql: str, ids: Sequence[Any],
              params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Run ``sql`` (which holds ``IN :ids``) for all ``ids``; one frame back."""
    vals = list(dict.fromkeys(int(i) if isinstance(i, np.integer | int) else str(i)
                              for i in ids))
    if not vals:  # an empty IN list; (NULL) matches nothing and needs no type on PostGIS
        res = conn.execute(text(sql.replace(":ids", "(NULL)")), dict(params or {}))
        return pd.DataFrame.from_records([], columns=list(res.keys()))
    stmt, arg = _in_list(conn, sql, vals)
    res = conn.execute(text(stmt), {**(params or {}), "ids": arg})
    return pd.DataFrame.from_records([tuple(r) for r in res.fetchall()],
                                     columns=list(res.keys()))


def _exec_in(conn: Connection, sql: str, ids: Sequence[int],
             params: Mapping[str, Any] | None = None) -> None:
    vals = [int(i) for i in ids]
    if vals:
        stmt, arg = _in_list(conn, sql, vals)
        conn.execute(text(stmt), {**(params or {}), "ids": arg})


def _bbox_sql(conn: Connection, table: str, alias: str) -> str:
    """A filter on ``alias`` rows whose bounding box meets :x0 :y0 :x1 :y1 (spatial index)."""
    if is_pg(conn):
        return f"{alias}.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)"
    # SpatiaLite uses its R*Tree only through the SpatialIndex virtual table.
    return (f"{alias}.id IN (SELECT rowid FROM SpatialIndex WHERE f_table_name = '{table}' "
            "AND f_geometry_column = 'geom' AND search_frame = BuildMbr(:x0, :y0, :x1, :y1, "
            "4326))")


def _bbox_params(bounds: Sequence[float], pad: float = 1e-7) -> dict[str, float]:
    x0, y0, x1, y1 = (float(v) for v in bounds)
    return {"x0": x0 - pad, "y0": y0 - pad, "x1": x1 + pad, "y1": y1 + pad}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


# ----------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class PlanRow:
    """A boundary_plan row."""

    id: int
    name: str
    status: str
    base_plan_id: int | None
    created_at: dt.datetime | None
    note: str | None


def _as_dt(v: Any) -> dt.datetime | None:
    if v is None or isinstance(v, dt.datetime):
        return v
    return dt.datetime.fromisoformat(str(v))


def _plan_from(row: Any) -> PlanRow:
    return PlanRow(int(row[0]), str(row[1]), str(row[2]),
                   None if row[3] is None else int(row[3]), _as_dt(row[4]), row[5])


_PLAN_SQL = "SELECT id, name, status, base_plan_id, created_at, note FROM boundary_plan"


def get_plan(conn: Connection, name: str, *, lock: bool = False) -> PlanRow:
    """The plan called ``name``; NotFound (naming the plans there are) when there is none.

    With ``lock`` on PostGIS the row stays locked until the transaction ends, so two edits
    of one plan run one after the other.
    """
    sql = f"{_PLAN_SQL} WHERE name = :n" + (" FOR UPDATE" if lock and is_pg(conn) else "")
    row = conn.execute(text(sql), {"n": str(name)}).first()
    if row is None:
        names = conn.execute(text("SELECT name FROM boundary_plan ORDER BY id")).scalars().all()
        known = ", ".join(names[:20]) or "none yet: load grids first"
        raise NotFound(f"no plan {name!r}; the plans are: {known}")
    return _plan_from(row)


def _plan_by_id(conn: Connection, plan_id: int) -> PlanRow:
    row = conn.execute(text(f"{_PLAN_SQL} WHERE id = :i"), {"i": int(plan_id)}).first()
    if row is None:
        raise NotFound(f"no plan with id {plan_id}")
    return _plan_from(row)


def _adopted(conn: Connection) -> PlanRow:
    pid = adopted_plan_id(conn)
    if pid is None:
        raise BadInput("no plan is adopted yet: load grids first (gridmgr load grids FILE)")
    return _plan_by_id(conn, pid)


def _require_draft(plan: PlanRow) -> None:
    if plan.status != "draft":
        raise BadInput(f"plan {plan.name} is {plan.status}; edits go to a draft: "
                       f"gridmgr plan new NAME, then edit NAME")


@dataclass
class PlanInfo:
    """A plan as listed: status, base, grids, edits, and when it was in force."""

    id: int
    name: str
    status: str
    base: str | None
    created_at: dt.datetime | None
    note: str | None
    grids: int
    edits: int
    adoptions: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "name": self.name, "status": self.status, "base": self.base,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "note": self.note, "grids": self.grids, "edits": self.edits,
                "adoptions": [{k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                               for k, v in a.items()} for a in self.adoptions]}


def list_plans(conn: Connection) -> list[PlanInfo]:
    """Every plan, oldest first, with grid and edit counts and adoption periods."""
    plans = [_plan_from(r) for r in conn.execute(text(f"{_PLAN_SQL} ORDER BY id")).all()]
    if not plans:
        return []
    names = {p.id: p.name for p in plans}
    grids: dict[int, int] = {int(a): int(b) for a, b in conn.execute(text(
        "SELECT plan_id, count(*) FROM grid GROUP BY plan_id")).all()}
    edits: dict[int, int] = {int(a): int(b) for a, b in conn.execute(text(
        "SELECT plan_id, count(*) FROM plan_op WHERE undone_at IS NULL GROUP BY plan_id")).all()}
    adoptions: dict[int, list[dict[str, Any]]] = {}
    for pid, at, until, by in conn.execute(text(
            "SELECT plan_id, adopted_at, retired_at, adopted_by FROM plan_adoption "
            "ORDER BY adopted_at, id")).all():
        adoptions.setdefault(int(pid), []).append(
            {"adopted_at": _as_dt(at), "retired_at": _as_dt(until), "adopted_by": by})
    return [PlanInfo(p.id, p.name, p.status, names.get(p.base_plan_id or -1), p.created_at,
                     p.note, int(grids.get(p.id, 0)), int(edits.get(p.id, 0)),
                     adoptions.get(p.id, [])) for p in plans]


def plan_info(conn: Connection, name: str) -> PlanInfo:
    """One plan as :func:`list_plans` shows it."""
    plan = get_plan(conn, name)
    return next(p for p in list_plans(conn) if p.id == plan.id)


def history(conn: Connection, name: str) -> list[dict[str, Any]]:
    """The edits of a plan in order: seq, op, args, summary, actor, at, undone_at."""
    plan = get_plan(conn, name)
    rows = conn.execute(text(
        "SELECT seq, op, args, summary, actor, at, undone_at, undone_by FROM plan_op "
        "WHERE plan_id = :p ORDER BY seq"), {"p": plan.id}).all()
    return [{"seq": int(r[0]), "op": r[1], "args": json.loads(r[2]) if r[2] else {},
             "summary": json.loads(r[3]) if r[3] else {}, "actor": r[4],
             "at": _as_dt(r[5]), "undone_at": _as_dt(r[6]), "undone_by": r[7]} for r in rows]


def create_draft(conn: Connection, *, name: str, source: str | None = None,
                 actor: str | None = None, note: str | None = None) -> PlanInfo:
    """Create draft ``name`` as a copy of ``source`` (default: the adopted plan).

    Grids, links and counts are copied in SQL. A retired source's links may be stale (links
    are kept current only for live plans), so a copy of one is reassigned in full.
    """
    if not PLAN_NAME.fullmatch(str(name)):
        raise BadInput(f"plan name {name!r} must be 1–100 letters, digits, '.', '-' or '_'")
    exists = conn.execute(text("SELECT 1 FROM boundary_plan WHERE name = :n"),
                          {"n": name}).first()
    if exists:
        raise Conflict(f"a plan called {name!r} exists already; choose another name "
                       f"(gridmgr plan list shows them)")
    src = get_plan(conn, source) if source else _adopted(conn)
    now = _now()
    new_id = int(allocate_ids(conn, "boundary_plan", 1)[0])
    conn.execute(text(
        "INSERT INTO boundary_plan (id, name, status, base_plan_id, created_at, note) "
        "VALUES (:i, :n, 'draft', :b, :t, :note)"),
        {"i": new_id, "n": name, "b": src.id, "t": now,
         "note": note or f"draft of {src.name} by {actor or 'unknown'}"})
    n = int(conn.execute(text("SELECT count(*) FROM grid WHERE plan_id = :p"),
                         {"p": src.id}).scalar_one())
    first = int(allocate_ids(conn, "grid", n)[0]) if n else 0
    conn.execute(text(
        "INSERT INTO grid (id, plan_id, grid_id, community_code, tier, police_area, "
        "co_managers_assigned, area_km2, locked, geom) "
        "SELECT :first - 1 + ROW_NUMBER() OVER (ORDER BY id), :new, grid_id, community_code, "
        "tier, police_area, co_managers_assigned, area_km2, locked, geom "
        "FROM grid WHERE plan_id = :src"), {"first": first, "new": new_id, "src": src.id})
    if src.status in ("adopted", "draft"):
        for link, key in (("house_grid", "house_id"), ("business_grid", "business_id")):
            conn.execute(text(
                f"INSERT INTO {link} (plan_id, {key}, grid_pk) "
                f"SELECT :new, l.{key}, gn.id FROM {link} l "
                "JOIN grid go ON go.id = l.grid_pk "
                "JOIN grid gn ON gn.plan_id = :new AND gn.grid_id = go.grid_id "
                "WHERE l.plan_id = :src"), {"new": new_id, "src": src.id})
        cols = ", ".join(GRID_COUNT_COLUMNS)
        src_cols = ", ".join(f"c.{c}" for c in GRID_COUNT_COLUMNS)
        conn.execute(text(
            f"INSERT INTO grid_count (grid_pk, plan_id, {cols}) "
            f"SELECT gn.id, :new, {src_cols} FROM grid_count c "
            "JOIN grid go ON go.id = c.grid_pk "
            "JOIN grid gn ON gn.plan_id = :new AND gn.grid_id = go.grid_id "
            "WHERE c.plan_id = :src"), {"new": new_id, "src": src.id})
    else:
        from gridmgr.store.load import assign_plan

        assign_plan(conn, new_id)
    if is_pg(conn):
        # The copy doubles these tables; with stale statistics PostgreSQL plans the first
        # edits of the draft as if it were empty (seconds instead of a fraction of one).
        conn.execute(text("ANALYZE grid, grid_count, house_grid, business_grid"))
    return plan_info(conn, name)


# ----------------------------------------------------------------------------- grids


@dataclass
class GridRow:
    """A grid as a plan holds it (``pk`` is the grid table's id; None for a new grid)."""

    grid_id: str
    community_code: str
    geom: BaseGeometry
    tier: str | None = None
    police_area: str | None = None
    co_managers_assigned: int = 0
    locked: bool = False
    pk: int | None = None
    area_km2: float | None = None

    def wkb(self) -> bytes:
        """The geometry as the store keeps it (a MultiPolygon), for exact comparison."""
        return bytes(shapely.to_wkb(rules.as_multipolygon(self.geom)))

    def attrs(self) -> tuple[Any, ...]:
        """Everything but the geometry and the key."""
        return (self.community_code, self.tier, self.police_area,
                int(self.co_managers_assigned), bool(self.locked))


_GRID_COLS = ("id, grid_id, community_code, tier, police_area, co_managers_assigned, locked, "
              "area_km2, ST_AsBinary(geom) AS wkb")
"""Columns _grid_rows reads, in this order."""


def _grid_rows(rows: Sequence[Any]) -> list[GridRow]:
    """GridRows from raw rows of ``SELECT _GRID_COLS`` (one per grid)."""
    if not rows:
        return []
    geoms = geometries([r[8] for r in rows])
    return [GridRow(str(r[1]), str(r[2]), geoms[i], None if r[3] is None else str(r[3]),
                    None if r[4] is None else str(r[4]), int(r[5] or 0), bool(r[6]),
                    int(r[0]), float(r[7]))
            for i, r in enumerate(rows)]


def _rows_in(conn: Connection, sql: str, ids: Sequence[Any],
             params: Mapping[str, Any] | None = None) -> list[Any]:
    """Raw rows of ``sql`` (holding ``IN :ids``) for all ids — for small results."""
    vals = list(dict.fromkeys(int(i) if isinstance(i, np.integer | int) else str(i)
                              for i in ids))
    if not vals:
        return []
    stmt, arg = _in_list(conn, sql, vals)
    return _raw(conn, stmt, {**(params or {}), "ids": arg})[1]


def _grids_by_id(conn: Connection, plan: PlanRow, grid_ids: Sequence[str]) -> dict[str, GridRow]:
    rows = _rows_in(conn, f"SELECT {_GRID_COLS} FROM grid WHERE plan_id = :p AND grid_id IN :ids",
                    [str(g) for g in grid_ids], {"p": plan.id})
    found = {g.grid_id: g for g in _grid_rows(rows)}
    missing = [str(g) for g in grid_ids if str(g) not in found]
    if missing:
        raise NotFound(f"plan {plan.name} has no grid {', '.join(missing[:5])}; "
                       "grid ids look like 510104001001-01 (gridmgr workload lists them)")
    return found


def _grids_near(conn: Connection, plan_id: int, *, communities: Sequence[str] = (),
                bounds: Sequence[float] | None = None) -> dict[str, GridRow]:
    out: dict[str, GridRow] = {}
    if communities:
        rows = _rows_in(conn, f"SELECT {_GRID_COLS} FROM grid WHERE plan_id = :p "
                              "AND community_code IN :ids", list(communities), {"p": plan_id})
        out.update({g.grid_id: g for g in _grid_rows(rows)})
    if bounds is not None:
        rows = list(conn.execute(text(f"SELECT {_GRID_COLS} FROM grid g WHERE g.plan_id = :p "
                                      f"AND {_bbox_sql(conn, 'grid', 'g')}"),
                                 {"p": plan_id, **_bbox_params(bounds)}).all())
        rows = [r for r in rows if str(r[1]) not in out]
        out.update({g.grid_id: g for g in _grid_rows(rows)})
    return out


def community_geometries(conn: Connection, codes: Sequence[str]) -> dict[str, BaseGeometry]:
    """Boundaries of the given communities (code → lon/lat geometry)."""
    df = _frame_in(conn, "SELECT code, ST_AsBinary(geom) AS wkb FROM admin_area "
                         "WHERE level = 'community' AND code IN :ids", list(codes))
    if df.empty:
        return {}
    return dict(zip(df["code"].astype(str), geometries(df["wkb"]), strict=True))


def _new_grid_ids(conn: Connection, community: str, n: int, base: str,
                  taken: set[str] | None = None) -> list[str]:
    """``n`` grid ids never used in any plan: ``{community}-NN`` numbering where it applies."""
    used = set(conn.execute(text(
        "SELECT grid_id FROM grid WHERE community_code = :c UNION "
        "SELECT grid_id FROM plan_op_grid WHERE community_code = :c"), {"c": community}
    ).scalars().all()) | (taken or set())
    pat = re.compile(rf"^{re.escape(community)}-(\d+)$")
    nums = [(int(m.group(1)), len(m.group(1))) for u in used if (m := pat.match(str(u)))]
    if nums or pat.match(base):
        top = max((v for v, _ in nums), default=0)
        width = max([2, *(w for _, w in nums)])
        ids = [f"{community}-{top + k:0{width}d}" for k in range(1, n + 1)]
    else:
        ids, k = [], 1
        while len(ids) < n:
            cand = f"{base}-{k}"
            if cand not in used:
                ids.append(cand)
            k += 1
    too_long = [i for i in ids if len(i) > 40]
    if too_long:
        raise BadInput(f"new grid id {too_long[0]!r} is longer than 40 characters; "
                       "shorten the grid ids of this community first")
    return ids


def _share(total: int, weights: Sequence[float]) -> list[int]:
    """Split a whole number in proportion to weights (largest remainder; equal when all 0)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0:
        return []
    if w.sum() <= 0:
        w = np.ones_like(w)
    exact = total * w / w.sum()
    base = np.floor(exact).astype(np.int64)
    rest = int(total - base.sum())
    order = np.argsort(-(exact - base), kind="stable")
    base[order[:rest]] += 1
    return [int(x) for x in base]


# ----------------------------------------------------------------------------- results


@dataclass
class OpResult:
    """What one edit did: grids removed, added and reshaped, houses moved, timing."""

    plan: str
    op: str
    seq: int | None
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    reshaped: list[str] = field(default_factory=list)
    retouched: list[str] = field(default_factory=list)  # same shape, other attributes changed
    houses_moved: int = 0
    moved: list[dict[str, Any]] = field(default_factory=list)
    houses_tested: int = 0
    businesses_moved: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the terminal."""
        parts = [f"{self.op} in plan {self.plan}"]
        if self.added:
            parts.append(f"new grids {', '.join(self.added)}")
        if self.removed:
            parts.append(f"removed {', '.join(self.removed)}")
        if self.reshaped:
            parts.append(f"reshaped {', '.join(self.reshaped)}")
        if self.retouched:
            parts.append(f"changed {', '.join(self.retouched)}")
        parts.append(f"{self.houses_moved} houses moved ({self.houses_tested} re-tested)")
        if self.businesses_moved:
            parts.append(f"{self.businesses_moved} businesses moved")
        return "; ".join(parts + self.notes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"plan": self.plan, "op": self.op, "seq": self.seq, "removed": self.removed,
                "added": self.added, "reshaped": self.reshaped, "retouched": self.retouched,
                "houses_moved": self.houses_moved, "moved": self.moved,
                "houses_tested": self.houses_tested,
                "businesses_moved": self.businesses_moved,
                "seconds": round(self.seconds, 4), "notes": self.notes}


@dataclass
class _Relinked:
    ids: np.ndarray
    old: np.ndarray
    new: np.ndarray
    tested: int
    pk_to_grid: dict[int, str]
    codes: np.ndarray | None = None  # house codes of the moved houses, when houses


# ----------------------------------------------------------------------------- the edit engine


def _validate(conn: Connection, plan: PlanRow, before: Mapping[str, GridRow],
              after: Mapping[str, GridRow], changed: Sequence[str], removed: Sequence[str],
              op: str, settings: rules.PlanRuleSettings) -> None:
    codes = sorted({g.community_code for g in [*before.values(), *after.values()]})
    shapes = [after[g].geom for g in changed if not after[g].geom.is_empty]
    bounds = shapely.total_bounds(np.asarray(shapes, dtype=object)) if shapes else None
    ctx = _grids_near(conn, plan.id, communities=codes,
                      bounds=None if bounds is None or not np.isfinite(bounds).all()
                      else bounds)
    ctx.update({k: v for k, v in before.items() if k not in ctx})
    gone = set(removed)
    old = list(ctx.values())
    new = [after.get(g.grid_id, g) for g in old if g.grid_id not in gone]
    new += [g for k, g in after.items() if k not in ctx]
    comms = community_geometries(conn, sorted({g.community_code for g in [*old, *new]}))

    def grids(rows: Sequence[GridRow]) -> rules.Grids:
        return rules.Grids.of([g.grid_id for g in rows], [g.community_code for g in rows],
                              [g.geom for g in rows])

    found = rules.new_problems(grids(old), grids(new), comms, changed=list(changed),
                               settings=settings)
    if found:
        raise rules.PlanRuleViolation(f"{op} in plan {plan.name}", found)


_GRID_DEG = 1e-9
"""Overlays for changed regions snap to this grid: floating-point overlays of nearly
coincident boundaries can fail, snap-rounded ones cannot."""
_EPS_DEG = 3e-9
"""Changed regions are widened by this (≈ 0.3 mm), more than snapping moves any point, so
no house whose coverage changed falls outside."""
_MAX_BOXES = 16


def changed_region(pairs: Sequence[tuple[BaseGeometry | None, BaseGeometry | None]]
                   ) -> BaseGeometry:
    """Where grid coverage changes: the union of old △ new over (old, new) shape pairs.

    A point outside every old △ new is covered by the same grids before and after, so
    its grid (the first covering grid by grid_id) cannot change; only points inside this
    region need re-testing. It is widened by a hair so that overlay rounding loses none.
    """
    parts = []
    edges = []
    for old, new in pairs:
        o = shapely.MultiPolygon() if old is None else old
        n = shapely.MultiPolygon() if new is None else new
        if o.is_empty and n.is_empty:
            continue
        parts.append(shapely.symmetric_difference(o, n, grid_size=_GRID_DEG)
                     if not (o.is_empty or n.is_empty) else (n if o.is_empty else o))
        # the boundary lines that moved (a shared edge that stayed put is not among them)
        edges.append(shapely.symmetric_difference(shapely.boundary(o), shapely.boundary(n),
                                                  grid_size=_GRID_DEG)
                     if not (o.is_empty or n.is_empty)
                     else shapely.boundary(n if o.is_empty else o))
    if not parts:
        return shapely.MultiPolygon()
    # Snap-rounding may drop a sliver thinner than the grid; a point in one lies that close
    # to the boundary lines that moved, so a hair-wide band along them brings it back.
    band = shapely.buffer(shapely.geometrycollections(edges), _EPS_DEG, quad_segs=1)
    region = shapely.union_all(np.asarray([*parts, band], dtype=object), grid_size=_GRID_DEG)
    return shapely.buffer(region, _EPS_DEG, quad_segs=1) if not region.is_empty else region


def _raw(conn: Connection, sql: str, params: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
    """Column names and plain tuples of a query, past SQLAlchemy's Row objects.

    For the thousands of rows a spatial-index box can hold, building a Row per row costs more
    than the query; the DBAPI cursor of the same connection (same transaction) does not.
    """
    if is_pg(conn):
        res = conn.execute(text(sql), dict(params))
        return list(res.keys()), [tuple(r) for r in res.fetchall()]
    raw: Any = conn.connection.dbapi_connection
    cur = raw.cursor()
    try:
        cur.execute(sql, dict(params))  # sqlite3 takes :name parameters as they are
        names = [d[0] for d in cur.description]
        return names, cur.fetchall()
    finally:
        cur.close()


def _tiles(piece: BaseGeometry, most: int = 4) -> list[tuple[float, float, float, float]]:
    """Boxes that cover a thin or slanted piece more tightly than its one bounding box.

    The box is cut into up to most × most tiles (more when the piece fills less of it); the
    tiles the piece touches are kept and merged along each row, so a strip along a grid edge
    asks the spatial index for a few narrow boxes, not for its whole neighbourhood.
    """
    x0, y0, x1, y1 = shapely.bounds(piece)
    box_area = (x1 - x0) * (y1 - y0)
    fill = float(shapely.area(piece)) / box_area if box_area > 0 else 1.0
    n = min(most, max(1, math.ceil(math.sqrt(1.0 / max(fill, 1e-9)))))
    if n == 1:
        return [(x0, y0, x1, y1)]
    xs = np.linspace(x0, x1, n + 1)
    ys = np.linspace(y0, y1, n + 1)
    shapely.prepare(piece)
    out = []
    for j in range(n):  # a row of tiles at a time, at most `most` rows
        cells = shapely.box(xs[:-1], ys[j], xs[1:], ys[j + 1])
        hit = shapely.intersects(piece, cells)
        i = 0
        while i < n:
            if not hit[i]:
                i += 1
                continue
            k = i
            while k + 1 < n and hit[k + 1]:
                k += 1
            out.append((float(xs[i]), float(ys[j]), float(xs[k + 1]), float(ys[j + 1])))
            i = k + 1
    return out or [(x0, y0, x1, y1)]


def _points_in(conn: Connection, table: str, region: BaseGeometry, *, columns: str = "",
               joins: str = "", params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Rows of ``table`` ``t`` (id, lon, lat, then ``columns``) whose point lies in region.

    Per part of the region, the spatial index finds the points in its bounding box; PostGIS
    keeps those inside with its (prepared, cached) covers test, so only they travel. On
    SpatiaLite, which would parse the region again for every row, the box's points come
    back and one prepared, vectorised test here keeps the ones inside.
    """
    names = ["id", "lon", "lat", *[c.strip().split(".")[-1].split(" ")[-1]
                                   for c in columns.split(",") if c.strip()]]
    if region.is_empty:
        return pd.DataFrame({n: pd.Series(dtype=object) for n in names})
    parts = shapely.get_parts(region)
    pieces = list(parts) if len(parts) <= _MAX_BOXES else [region]
    pg = is_pg(conn)
    inside = " AND ST_Intersects(t.geom, ST_GeomFromWKB(:shape, 4326))" if pg else ""
    rows: list[Any] = []
    boxes = [(p, b) for p in pieces for b in ([shapely.bounds(p)] if pg else _tiles(p))]
    for piece, box in boxes:
        extra = {"shape": shapely.to_wkb(piece)} if pg else {}
        _, got = _raw(conn, f"SELECT t.id, t.lon, t.lat{columns} FROM {table} t {joins} "
                            f"WHERE {_bbox_sql(conn, table, 't')}{inside}",
                      {**(params or {}), **_bbox_params(box), **extra})
        rows.extend(got)
    if not rows:
        return pd.DataFrame({n: pd.Series(dtype=object) for n in names})
    cols = list(zip(*rows, strict=True))
    ids = np.asarray(cols[0], dtype=np.int64)
    x = np.asarray(cols[1], dtype=np.float64)
    y = np.asarray(cols[2], dtype=np.float64)
    keep = np.ones(ids.size, dtype=bool)
    if len(boxes) > 1:
        keep[np.unique(ids, return_index=True)[1]] = False
        keep = ~keep
    if not pg:
        keep &= assign_nearby(x, y, np.asarray([region], dtype=object)) >= 0
    data: dict[str, Any] = {"id": ids[keep], "lon": x[keep], "lat": y[keep]}
    for name, values in zip(names[3:], cols[3:], strict=True):
        data[name] = np.asarray(values, dtype=object)[keep]
    return pd.DataFrame(data)


def _relink(conn: Connection, plan_id: int, kind: str, region: BaseGeometry,
            removed_pks: Sequence[int]) -> _Relinked:
    """Re-test the houses (or businesses) in the changed region; rewrite their links."""
    link, key, table = (("house_grid", "house_id", "house") if kind == "house"
                        else ("business_grid", "business_id", "business"))
    code = ", t.house_code" if kind == "house" else ""
    frames = [_points_in(conn, table, region, columns=f", l.grid_pk{code}",
                         joins=f"LEFT JOIN {link} l ON l.{key} = t.id AND l.plan_id = :p",
                         params={"p": plan_id})]
    if removed_pks:  # belt and braces: nothing may stay linked to a grid that goes away
        frames.append(_frame_in(conn, (
            f"SELECT l.{key} AS id, t.lon, t.lat, l.grid_pk{code} FROM {link} l "
            f"JOIN {table} t ON t.id = l.{key} WHERE l.plan_id = :p AND l.grid_pk IN :ids"),
            list(removed_pks), {"p": plan_id}))
    empty = _Relinked(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64), 0, {})
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty
    cand = pd.concat(frames, ignore_index=True).drop_duplicates("id")
    ids = cand["id"].to_numpy(dtype=np.int64)
    x = cand["lon"].to_numpy(dtype=float)
    y = cand["lat"].to_numpy(dtype=float)
    old = pd.to_numeric(cand["grid_pk"], errors="coerce").fillna(-1).to_numpy(dtype=np.int64)
    box = (float(np.nanmin(x)), float(np.nanmin(y)), float(np.nanmax(x)), float(np.nanmax(y)))
    # Every grid that can cover a candidate, in grid_id order: the lowest grid_id wins a tie,
    # exactly as in a full assignment (gridmgr.store.plans.plan_grids sorts the same way).
    gdf = read_frame(conn, (
        f"SELECT g.id, g.grid_id, ST_AsBinary(g.geom) AS wkb FROM grid g WHERE g.plan_id = :p "
        f"AND {_bbox_sql(conn, 'grid', 'g')} ORDER BY g.grid_id"), {"p": plan_id,
                                                                   **_bbox_params(box)})
    gone = {int(p) for p in removed_pks}
    if len(gdf):
        gdf = gdf[~gdf["id"].astype(np.int64).isin(gone)]
    pks = gdf["id"].to_numpy(dtype=np.int64) if len(gdf) else np.empty(0, np.int64)
    pk_to_grid = dict(zip(pks.tolist(), gdf["grid_id"].astype(str).tolist(), strict=True)) \
        if len(gdf) else {}
    if len(gdf):
        found = assign_nearby(x, y, geometries(gdf["wkb"]))
        new = np.where(found >= 0, pks[np.maximum(found, 0)], -1)
    else:
        new = np.full(ids.size, -1, dtype=np.int64)
    moved = new != old
    if moved.any():
        drop = ids[moved & (old >= 0)]
        if drop.size:
            _exec_in(conn, f"DELETE FROM {link} WHERE plan_id = :p AND {key} IN :ids",
                     drop.tolist(), {"p": plan_id})
        add = moved & (new >= 0)
        if add.any():
            bulk_insert(conn, link, pd.DataFrame({"plan_id": plan_id, key: ids[add],
                                                  "grid_pk": new[add]}))
    codes = cand["house_code"].to_numpy(dtype=object)[moved] if code else None
    return _Relinked(ids[moved], old[moved], new[moved], int(ids.size), pk_to_grid, codes)


class _Deltas:
    """Per-grid count changes accumulated with numpy (no frame per contribution)."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, int, dict[str, np.ndarray]]] = []

    def add(self, grid_pk: np.ndarray, sign: int, columns: Mapping[str, np.ndarray]) -> None:
        """Add ``sign`` × each column to the grid of each row (rows with grid -1 drop out)."""
        self.parts.append((np.asarray(grid_pk, dtype=np.int64), sign, dict(columns)))

    def frame(self) -> pd.DataFrame:
        """The non-zero changes, indexed by grid_pk, for counts.apply_deltas."""
        pks = [p for p, _, _ in self.parts]
        if not pks:
            return pd.DataFrame(columns=list(GRID_COUNT_COLUMNS), dtype=np.int64)
        uniq = np.unique(np.concatenate(pks))
        uniq = uniq[uniq >= 0]
        total = {c: np.zeros(uniq.size, dtype=np.int64) for c in GRID_COUNT_COLUMNS}
        for pk, sign, cols in self.parts:
            keep = pk >= 0
            slot = np.searchsorted(uniq, pk[keep])
            for c, v in cols.items():
                np.add.at(total[c], slot, sign * np.asarray(v, dtype=np.int64)[keep])
        frame = pd.DataFrame(total, index=pd.Index(uniq, name="grid_pk"))
        return frame.loc[(frame.to_numpy() != 0).any(axis=1)]


def _count_deltas(conn: Connection, houses: _Relinked, businesses: _Relinked) -> pd.DataFrame:
    """Per-grid count changes (new − old) from the houses and businesses that moved."""
    acc = _Deltas()
    if houses.ids.size:
        n = houses.ids.size
        acc.add(houses.old, -1, counts.house_columns(n))
        acc.add(houses.new, 1, counts.house_columns(n))
        order = np.argsort(houses.ids)
        sorted_ids = houses.ids[order]

        def at(hid: np.ndarray, which: np.ndarray) -> np.ndarray:
            return which[order[np.searchsorted(sorted_ids, hid)]]

        rentals = _rows_in(conn, (
            "SELECT house_id, rental_class, CASE WHEN registered_on IS NULL THEN 0 ELSE 1 END "
            "AS reg FROM rental_record WHERE house_id IN :ids"), houses.ids.tolist())
        if rentals:
            hid = np.asarray([r[0] for r in rentals], dtype=np.int64)
            cols = counts.rental_columns(np.asarray([r[1] for r in rentals], dtype=object),
                                         np.asarray([r[2] for r in rentals]) == 1)
            acc.add(at(hid, houses.old), -1, cols)
            acc.add(at(hid, houses.new), 1, cols)
        people = _rows_in(conn, counts.PEOPLE_SQL + " AND r.house_id IN :ids",
                          houses.ids.tolist())
        if people:
            arr = list(zip(*people, strict=True))
            hid = np.asarray(arr[0], dtype=np.int64)
            cols = counts.person_columns(np.asarray(arr[1]) == 1, np.asarray(arr[2]) == 1,
                                         np.asarray(arr[3]) == 1,
                                         np.asarray(arr[4], dtype=object))
            acc.add(at(hid, houses.old), -1, cols)
            acc.add(at(hid, houses.new), 1, cols)
    if businesses.ids.size:
        workers = dict(_rows_in(conn, "SELECT id, workers FROM business WHERE id IN :ids",
                                businesses.ids.tolist()))
        cols = counts.business_columns(np.asarray([workers[int(b)] for b in businesses.ids],
                                                  dtype=np.int64))
        acc.add(businesses.old, -1, cols)
        acc.add(businesses.new, 1, cols)
    return acc.frame()


def _write_grid(conn: Connection, g: GridRow) -> None:
    conn.execute(text(
        "UPDATE grid SET geom = ST_GeomFromWKB(:wkb, 4326), area_km2 = :a, tier = :tier, "
        "police_area = :pa, co_managers_assigned = :cm, locked = :lk, "
        "community_code = :cc WHERE id = :id"),
        {"wkb": g.wkb(), "a": float(g.area_km2 or 0.0), "tier": g.tier,
         "pa": g.police_area, "cm": int(g.co_managers_assigned), "lk": bool(g.locked),
         "cc": g.community_code, "id": int(g.pk or -1)})


def _insert_grids(conn: Connection, plan_id: int, rows: Sequence[GridRow]) -> None:
    if not rows:
        return
    ids = allocate_ids(conn, "grid", len(rows))
    geoms = np.asarray([rules.as_multipolygon(g.geom) for g in rows], dtype=object)
    frame = pd.DataFrame({
        "id": ids, "plan_id": plan_id, "grid_id": [g.grid_id for g in rows],
        "community_code": [g.community_code for g in rows],
        "tier": [g.tier for g in rows], "police_area": [g.police_area for g in rows],
        "co_managers_assigned": np.asarray([g.co_managers_assigned for g in rows],
                                           dtype=np.int64),
        "area_km2": np.asarray([g.area_km2 or 0.0 for g in rows], dtype=float),
        "locked": np.asarray([g.locked for g in rows], dtype=bool),
    })
    bulk_insert(conn, "grid", frame, geometry=geoms)
    zeros = pd.DataFrame(0, index=range(len(rows)), columns=list(GRID_COUNT_COLUMNS))
    zeros.insert(0, "plan_id", plan_id)
    zeros.insert(0, "grid_pk", ids)
    bulk_insert(conn, "grid_count", zeros)
    for g, pk in zip(rows, ids.tolist(), strict=True):
        g.pk = int(pk)


def _record(conn: Connection, plan: PlanRow, op: str, args: Mapping[str, Any],
            summary: Mapping[str, Any], actor: str | None, before: Sequence[GridRow],
            after: Sequence[GridRow]) -> int:
    seq = int(conn.execute(text("SELECT coalesce(max(seq), 0) + 1 FROM plan_op "
                                "WHERE plan_id = :p"), {"p": plan.id}).scalar_one())
    try:
        op_id = int(conn.execute(text(
            "INSERT INTO plan_op (plan_id, seq, op, args, summary, actor, at) "
            "VALUES (:p, :s, :op, :args, :sum, :actor, :at) RETURNING id"),
            {"p": plan.id, "s": seq, "op": op, "args": _json(args), "sum": _json(summary),
             "actor": (actor or "")[:100] or None, "at": _now()}).scalar_one())
    except IntegrityError as exc:
        raise Conflict(f"another edit of plan {plan.name} was saved at the same time; "
                       "look at the plan again and repeat the edit") from exc
    rows = [{"op": op_id, "side": side, "gid": g.grid_id, "cc": g.community_code,
             "tier": g.tier, "pa": g.police_area, "cm": int(g.co_managers_assigned),
             "a": float(g.area_km2 or 0.0), "lk": bool(g.locked), "wkb": g.wkb()}
            for side, grids in (("before", before), ("after", after)) for g in grids]
    if rows:  # a handful of grids per edit (a rebalance: one street's)
        conn.execute(text(
            "INSERT INTO plan_op_grid (op_id, side, grid_id, community_code, tier, police_area, "
            "co_managers_assigned, area_km2, locked, geom) VALUES (:op, :side, :gid, :cc, "
            ":tier, :pa, :cm, :a, :lk, ST_GeomFromWKB(:wkb, 4326))"), rows)
    return seq


def _apply(
    conn: Connection,
    plan: PlanRow,
    before: Sequence[GridRow],
    after: Sequence[GridRow],
    *,
    op: str,
    args: Mapping[str, Any],
    actor: str | None,
    validate: bool = True,
    record: bool = True,
    check_locks: bool = True,
    staff: Sequence[tuple[int, Sequence[str]]] = (),
    settings: rules.PlanRuleSettings | None = None,
) -> OpResult:
    """Replace the ``before`` grids of a draft by the ``after`` grids: check, write, relink."""
    started = time.perf_counter()
    cfg = settings or rules.PlanRuleSettings()
    b = {g.grid_id: g for g in before}
    a = {g.grid_id: replace(g, area_km2=None) for g in after}
    removed = [k for k in b if k not in a]
    added = [k for k in a if k not in b]
    kept = [k for k in a if k in b]
    reshaped = [k for k in kept if a[k].wkb() != b[k].wkb()]
    retouched = [k for k in kept if k not in reshaped and a[k].attrs() != b[k].attrs()]
    if check_locks:
        locked = [k for k in [*removed, *reshaped] if b[k].locked]
        if locked:
            raise BadInput(f"{op} in plan {plan.name} rejected, the plan is unchanged: grid "
                           f"{', '.join(locked)} is locked against change; unlock it first "
                           f"(gridmgr plan unlock {plan.name} {' '.join(locked)})")
    if added:
        clash = _frame_in(conn, "SELECT grid_id FROM grid WHERE plan_id = :p AND grid_id IN :ids",
                          added, {"p": plan.id})
        if len(clash):
            raise Conflict(f"plan {plan.name} already has grid "
                           f"{', '.join(clash['grid_id'].astype(str))}")
    shape_change = bool(added or reshaped or removed)
    if validate and shape_change:
        _validate(conn, plan, b, a, [*added, *reshaped], removed, op, cfg)
    for k in kept:
        if k not in reshaped:
            a[k].area_km2 = b[k].area_km2
    rows_wo = [g for g in [*a.values(), *b.values()] if g.area_km2 is None]
    if rows_wo:  # one projection for the whole edit
        for g, km2 in zip(rows_wo, area_km2([g.geom for g in rows_wo]).tolist(), strict=True):
            g.area_km2 = float(km2)

    for k in kept:
        if k in reshaped or k in retouched:
            a[k].pk = b[k].pk
            _write_grid(conn, a[k])
    _insert_grids(conn, plan.id, [a[k] for k in added])
    houses = businesses = _Relinked(np.empty(0, np.int64), np.empty(0, np.int64),
                                    np.empty(0, np.int64), 0, {})
    if shape_change:
        region = changed_region([(b[k].geom if k in b else None, a[k].geom if k in a else None)
                                 for k in [*removed, *added, *reshaped]])
        gone = [pk for k in removed if (pk := b[k].pk) is not None]
        houses = _relink(conn, plan.id, "house", region, gone)
        businesses = _relink(conn, plan.id, "business", region, gone)
        counts.apply_deltas(conn, _count_deltas(conn, houses, businesses))
        if gone:
            left = read_frame(conn, "SELECT grid_pk FROM house_grid WHERE plan_id = :p AND "
                                    f"grid_pk IN ({', '.join(str(p) for p in gone)})",
                              {"p": plan.id})
            if len(left):
                raise RuntimeError("houses still linked to a removed grid after relinking")
            _exec_in(conn, "DELETE FROM grid_count WHERE grid_pk IN :ids", gone)
            _exec_in(conn, "DELETE FROM grid WHERE id IN :ids", gone)
    for total, members in staff:
        members = [m for m in members if m in a]
        if not members:
            continue
        member_pks = ", ".join(str(int(a[m].pk or -1)) for m in members)
        got = read_frame(conn, "SELECT grid_pk, floating_residents, houses FROM grid_count "
                               f"WHERE grid_pk IN ({member_pks})")
        by_pk = {int(r.grid_pk): (int(r.floating_residents), int(r.houses))
                 for r in got.itertuples(index=False)}
        w = [by_pk.get(int(a[m].pk or -1), (0, 0)) for m in members]
        weights = [f for f, _ in w] if sum(f for f, _ in w) > 0 else [h for _, h in w]
        for m, n in zip(members, _share(int(total), weights), strict=True):
            if a[m].co_managers_assigned != n:
                a[m].co_managers_assigned = n
                conn.execute(text("UPDATE grid SET co_managers_assigned = :n WHERE id = :i"),
                             {"n": n, "i": int(a[m].pk or -1)})

    pk_to_grid = {**{int(g.pk): k for k, g in b.items() if g.pk is not None},
                  **houses.pk_to_grid, **businesses.pk_to_grid,
                  **{int(g.pk): k for k, g in a.items() if g.pk is not None}}
    moved = _moved_list(conn, houses, pk_to_grid)
    result = OpResult(plan=plan.name, op=op, seq=None, removed=removed, added=added,
                      reshaped=reshaped, retouched=retouched,
                      houses_moved=int(houses.ids.size), moved=moved,
                      houses_tested=houses.tested, businesses_moved=int(businesses.ids.size))
    if record:
        summary = {"added": added, "removed": removed, "reshaped": reshaped,
                   "retouched": retouched, "houses_moved": result.houses_moved,
                   "businesses_moved": result.businesses_moved}
        result.seq = _record(conn, plan, op, args, summary, actor, [b[k] for k in b],
                             [a[k] for k in a])
    result.seconds = time.perf_counter() - started
    return result


def _moved_list(conn: Connection, moved: _Relinked,
                pk_to_grid: Mapping[int, str]) -> list[dict[str, Any]]:
    if not moved.ids.size:
        return []
    codes = moved.codes
    if codes is None:
        code_of = dict(_rows_in(conn, "SELECT id, house_code FROM house WHERE id IN :ids",
                                moved.ids.tolist()))
        codes = np.asarray([code_of.get(h) for h in moved.ids.tolist()], dtype=object)
    out = [{"house_code": c,
            "from": pk_to_grid.get(o) if o >= 0 else None,
            "to": pk_to_grid.get(n) if n >= 0 else None}
           for c, o, n in zip(codes.tolist(), moved.old.tolist(), moved.new.tolist(),
                              strict=True)]
    out.sort(key=lambda m: str(m["house_code"]))
    return out


# ----------------------------------------------------------------------------- edits


def _check_polygon(geom: BaseGeometry | None, what: str, grid_id: str, plan: PlanRow) -> None:
    if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
        kind = "nothing" if geom is None or geom.is_empty else f"a {geom.geom_type}"
        raise BadInput(f"{what} for grid {grid_id} is {kind}; give a Polygon or MultiPolygon "
                       "in lon/lat (EPSG:4326)")
    if not geom.is_valid:
        raise rules.PlanRuleViolation(f"reshape in plan {plan.name}", [rules.Problem(
            "invalid", (grid_id,), f"the new boundary is not a valid polygon "
            f"({shapely.is_valid_reason(geom)})")])
    b = geom.bounds
    if b[0] < -180 or b[2] > 180 or b[1] < -90 or b[3] > 90:
        raise BadInput(f"{what} for grid {grid_id} is not in lon/lat degrees: reproject it "
                       "to EPSG:4326")


def reshape(conn: Connection, *, plan: str, grid_id: str, geometry: BaseGeometry,
            actor: str | None = None,
            settings: rules.PlanRuleSettings | None = None) -> OpResult:
    """Give a grid a new boundary; neighbours in its community give up or take in the difference.

    Area the new boundary takes in comes out of the grids that held it; area it gives up
    goes to the neighbour in the same community that borders it most (see
    :func:`gridmgr.plan_rules.reshape_grids`).
    """
    cfg = settings or rules.PlanRuleSettings()
    p = get_plan(conn, plan, lock=True)
    _require_draft(p)
    target = _grids_by_id(conn, p, [grid_id])[grid_id]
    _check_polygon(geometry, "the new boundary", grid_id, p)
    bounds = shapely.total_bounds(np.asarray([geometry, target.geom], dtype=object))
    ctx = _grids_near(conn, p.id, communities=[target.community_code], bounds=bounds)
    receivers = [k for k, g in ctx.items() if g.community_code == target.community_code
                 and not g.locked and k != grid_id]
    changes = rules.reshape_grids(grid_id, geometry, {k: g.geom for k, g in ctx.items()},
                                  receivers=receivers, tolerance_m=cfg.tolerance_m)
    before = [ctx[k] for k in changes]
    after = [replace(ctx[k], geom=changes[k]) for k in changes]
    return _apply(conn, p, before, after, op="reshape", args={"grid_id": grid_id},
                  actor=actor, settings=cfg)


def split(conn: Connection, *, plan: str, grid_id: str, line: BaseGeometry,
          actor: str | None = None,
          settings: rules.PlanRuleSettings | None = None) -> OpResult:
    """Cut a grid in two (or more) along a line; the pieces get new grid ids (``added``).

    The grid's assigned co-managers are shared among the pieces in proportion to their
    floating residents.
    """
    cfg = settings or rules.PlanRuleSettings()
    p = get_plan(conn, plan, lock=True)
    _require_draft(p)
    target = _grids_by_id(conn, p, [grid_id])[grid_id]
    if target.locked:
        raise BadInput(f"split in plan {p.name} rejected, the plan is unchanged: grid "
                       f"{grid_id} is locked against change; unlock it first "
                       f"(gridmgr plan unlock {p.name} {grid_id})")
    try:
        pieces = rules.split_by_line(target.geom, line, tolerance_m=cfg.tolerance_m)
    except BadInput as exc:
        raise BadInput(f"split in plan {p.name} rejected, the plan is unchanged: grid "
                       f"{grid_id}: {exc}") from exc
    ids = _new_grid_ids(conn, target.community_code, len(pieces), target.grid_id)
    after = [GridRow(i, target.community_code, g, None, target.police_area, 0, False)
             for i, g in zip(ids, pieces, strict=True)]
    return _apply(conn, p, [target], after, op="split",
                  args={"grid_id": grid_id, "line": line.wkt}, actor=actor,
                  staff=[(target.co_managers_assigned, ids)], settings=cfg)


def merge(conn: Connection, *, plan: str, grid_ids: Sequence[str], actor: str | None = None,
          settings: rules.PlanRuleSettings | None = None) -> OpResult:
    """Merge neighbouring grids of one community into the first one named.

    The merged grid keeps the first grid's id and police area; co-managers add up.
    """
    cfg = settings or rules.PlanRuleSettings()
    ids = [str(g) for g in dict.fromkeys(grid_ids)]
    if len(ids) < 2:
        raise BadInput("name at least two different grids to merge")
    p = get_plan(conn, plan, lock=True)
    _require_draft(p)
    rows = _grids_by_id(conn, p, ids)
    comms = {rows[i].community_code for i in ids}
    if len(comms) > 1:
        detail = ", ".join(f"{i} ({rows[i].community_code})" for i in ids)
        raise BadInput(f"merge in plan {p.name} rejected, the plan is unchanged: grids "
                       f"{detail} are in different communities, and a grid belongs to "
                       "exactly one community")
    geom = rules.merge_geometries([rows[i].geom for i in ids], tolerance_m=cfg.tolerance_m)
    first = rows[ids[0]]
    merged = replace(first, geom=geom,
                     co_managers_assigned=sum(rows[i].co_managers_assigned for i in ids),
                     tier=None)
    return _apply(conn, p, [rows[i] for i in ids], [merged], op="merge",
                  args={"grid_ids": ids}, actor=actor, settings=cfg)


def move(conn: Connection, *, plan: str, to_grid: str, house_codes: Sequence[str] = (),
         cells: Sequence[str] = (), polygon: BaseGeometry | None = None,
         resolution: int = 11, actor: str | None = None,
         settings: rules.PlanRuleSettings | None = None) -> OpResult:
    """Move houses or blocks into grid ``to_grid`` by moving the ground they stand on.

    A house is moved with its block: the H3 cell (``resolution``, 11 ≈ 2,100 m²) that holds
    it; ``cells`` names blocks directly, ``polygon`` any area. The part of each other grid
    inside that area joins ``to_grid`` (so every house there moves too, and assignment stays
    a function of the boundaries). The moved ground must touch ``to_grid`` and lie in its
    community.
    """
    cfg = settings or rules.PlanRuleSettings()
    p = get_plan(conn, plan, lock=True)
    _require_draft(p)
    target = _grids_by_id(conn, p, [to_grid])[to_grid]
    areas: list[BaseGeometry] = []
    codes = [str(c) for c in house_codes]
    if codes:
        found = _frame_in(conn, "SELECT house_code, lon, lat FROM house WHERE house_code IN :ids",
                          codes)
        missing = sorted(set(codes) - set(found["house_code"].astype(str)))
        if missing:
            raise NotFound(f"no house {', '.join(missing[:5])}: give canonical 23-character "
                           "house codes")
        areas.append(rules.cells_polygon(rules.cells_of_points(
            found["lon"].to_numpy(dtype=float), found["lat"].to_numpy(dtype=float), resolution)))
    if cells:
        areas.append(rules.cells_polygon(list(cells)))
    if polygon is not None:
        _check_polygon(polygon, "the area to move", to_grid, p)
        areas.append(polygon)
    if not areas:
        raise BadInput("say what to move: house codes, H3 cells (blocks) or a polygon")
    area = shapely.union_all(np.asarray(areas, dtype=object))
    ctx = _grids_near(conn, p.id, bounds=area.bounds)
    sources = [g for k, g in ctx.items() if k != to_grid and shapely.intersects(g.geom, area)]
    before: list[GridRow] = [target]
    after_target = target.geom
    after: list[GridRow] = []
    for s in sorted(sources, key=lambda g: g.grid_id):
        rest, after_target, piece = rules.transfer(s.geom, after_target, area,
                                                   tolerance_m=cfg.tolerance_m)
        if piece.is_empty:
            continue
        before.append(s)
        after.append(replace(s, geom=rest))
    if not after:
        raise BadInput(f"nothing to move: the area lies in grid {to_grid} already or in no grid")
    after.insert(0, replace(target, geom=after_target))
    res = _apply(conn, p, before, after, op="move",
                 args={"to_grid": to_grid, "house_codes": codes, "cells": list(cells),
                       "polygon": polygon.wkt if polygon is not None else None,
                       "resolution": resolution}, actor=actor, settings=cfg)
    if codes:
        where = {m["house_code"]: m["to"] for m in res.moved}
        stayed = [c for c in codes if where.get(c, None) != to_grid]
        if stayed:
            res.notes.append(f"{len(stayed)} of the named houses were in {to_grid} already")
    return res


def lock(conn: Connection, *, plan: str, grid_ids: Sequence[str], locked: bool = True,
         actor: str | None = None) -> OpResult:
    """Lock grids against change (or unlock them); rebalance leaves locked grids alone."""
    p = get_plan(conn, plan, lock=True)
    _require_draft(p)
    ids = [str(g) for g in dict.fromkeys(grid_ids)]
    if not ids:
        raise BadInput("name at least one grid")
    rows = _grids_by_id(conn, p, ids)
    change = [rows[i] for i in ids if rows[i].locked != locked]
    op = "lock" if locked else "unlock"
    if not change:
        return OpResult(plan=p.name, op=op, seq=None,
                        notes=[f"already {'locked' if locked else 'unlocked'}"])
    return _apply(conn, p, change, [replace(g, locked=locked) for g in change], op=op,
                  args={"grid_ids": ids}, actor=actor, validate=False, check_locks=False)


def undo(conn: Connection, *, plan: str, actor: str | None = None) -> OpResult:
    """Undo the last edit of a draft that is not undone yet (repeat to go further back)."""
    p = get_plan(conn, plan, lock=True)
    _require_draft(p)
    row = conn.execute(text(
        "SELECT id, seq, op FROM plan_op WHERE plan_id = :p AND undone_at IS NULL "
        "ORDER BY seq DESC LIMIT 1"), {"p": p.id}).first()
    if row is None:
        raise BadInput(f"plan {p.name} has no edit left to undo")
    op_id, seq, kind = int(row[0]), int(row[1]), str(row[2])
    df = read_frame(conn, (
        "SELECT side, grid_id, community_code, tier, police_area, co_managers_assigned, locked, "
        "ST_AsBinary(geom) AS wkb FROM plan_op_grid WHERE op_id = :o ORDER BY id"), {"o": op_id})
    geoms = geometries(df["wkb"])
    sides: dict[str, list[GridRow]] = {"before": [], "after": []}
    for i, r in enumerate(df.itertuples(index=False)):
        sides[str(r.side)].append(GridRow(
            str(r.grid_id), str(r.community_code), geoms[i],
            None if r.tier is None or pd.isna(r.tier) else str(r.tier),
            None if r.police_area is None or pd.isna(r.police_area) else str(r.police_area),
            int(r.co_managers_assigned), bool(r.locked)))
    now_ids = [g.grid_id for g in sides["after"]]
    current = _grids_by_id(conn, p, now_ids) if now_ids else {}
    for g in sides["after"]:
        if current[g.grid_id].wkb() != g.wkb():
            raise Conflict(f"grid {g.grid_id} of plan {p.name} no longer matches edit {seq}; "
                           "it cannot be undone")
    res = _apply(conn, p, [current[k] for k in now_ids], sides["before"], op=f"undo {kind}",
                 args={}, actor=actor, validate=False, record=False, check_locks=False)
    conn.execute(text("UPDATE plan_op SET undone_at = :t, undone_by = :b WHERE id = :i"),
                 {"t": _now(), "b": (actor or "")[:100] or None, "i": op_id})
    res.seq = seq
    return res


# ----------------------------------------------------------------------------- diff


@dataclass
class PlanDiff:
    """How plan ``plan`` differs from plan ``other`` (``before`` = other, ``after`` = plan)."""

    plan: str
    other: str
    houses_moved: int
    moved: list[dict[str, Any]]
    added: list[str]
    removed: list[str]
    reshaped: list[str]
    restaffed: list[str]
    before: pd.DataFrame
    after: pd.DataFrame
    rollup: pd.DataFrame
    seconds: float = 0.0

    @property
    def grids(self) -> list[str]:
        """Every grid id whose shape, staffing or houses differ, sorted."""
        return sorted(set(self.before.get("grid_id", pd.Series(dtype=object)))
                      | set(self.after.get("grid_id", pd.Series(dtype=object))))

    def table(self) -> pd.DataFrame:
        """One row per affected grid: change, then each figure before → after."""
        cols = [c for c in GRID_DIFF_COLUMNS if c in self.before.columns or
                c in self.after.columns]
        b = self.before.set_index("grid_id")[cols] if len(self.before) else pd.DataFrame(
            columns=cols)
        a = self.after.set_index("grid_id")[cols] if len(self.after) else pd.DataFrame(
            columns=cols)
        ids = self.grids
        out = pd.DataFrame({"grid_id": ids})
        status = {**{g: "reshaped" for g in self.reshaped}, **{g: "added" for g in self.added},
                  **{g: "removed" for g in self.removed}}
        out["change"] = [status.get(g, "restaffed" if g in self.restaffed else "houses")
                         for g in ids]
        for c in cols:
            out[f"{c}_before"] = b[c].reindex(ids).to_numpy() if c in b else None
            out[f"{c}_after"] = a[c].reindex(ids).to_numpy() if c in a else None
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: houses_moved, moved, grids, before/after rows and the roll-up."""
        def records(df: pd.DataFrame) -> list[dict[str, Any]]:
            return json.loads(df.to_json(orient="records", force_ascii=False,
                                         double_precision=6)) if len(df) else []

        return {"plan": self.plan, "other": self.other, "houses_moved": self.houses_moved,
                "moved": self.moved, "grids": {"added": self.added, "removed": self.removed,
                                               "reshaped": self.reshaped,
                                               "restaffed": self.restaffed},
                "before": records(self.before), "after": records(self.after),
                "rollup": records(self.rollup), "seconds": round(self.seconds, 4)}


def _edited_since_copy(conn: Connection, pa: PlanRow, pb: PlanRow) -> list[str] | None:
    """Grid ids a draft's edits touched, when ``pb`` is the plan it was copied from.

    Grids of adopted and retired plans change only when grids are loaded (they never take
    edits), and a load after the copy shows as a grid of ``pb`` with a larger id than the
    draft's first grid; then (or for any other pair of plans) None: compare every grid.
    """
    if pa.base_plan_id != pb.id or pb.status == "draft" or pa.status != "draft":
        return None
    # min(id + 0), not min(id): PostgreSQL answers min(id) by walking the primary key past
    # every other plan's grids (10-15 ms with a few plans); this reads the plan's own.
    first = conn.execute(text("SELECT min(id + 0) FROM grid WHERE plan_id = :a"),
                         {"a": pa.id}).scalar()
    if first is None or conn.execute(text(
            "SELECT count(*) FROM grid WHERE plan_id = :b AND id > :f"),
            {"b": pb.id, "f": int(first)}).scalar_one():
        return None
    rows = conn.execute(text(
        "SELECT DISTINCT g.grid_id FROM plan_op_grid g JOIN plan_op o ON o.id = g.op_id "
        "WHERE o.plan_id = :a AND o.undone_at IS NULL"), {"a": pa.id}).scalars().all()
    return sorted(str(r) for r in rows)


def _changed_grids(conn: Connection, a: int, b: int,
                   only: Sequence[str] | None = None) -> pd.DataFrame:
    """grid_id, pk in a, pk in b, shape differs, staffing differs — for grids that differ.

    With ``only``, just those grid ids are compared.
    """
    same_shape = ("ST_AsBinary(x.geom) = ST_AsBinary(y.geom)" if is_pg(conn)
                  else "x.geom = y.geom")
    if only is not None and not only:
        return pd.DataFrame(columns=["grid_id", "pk_a", "pk_b", "shape", "staff"])
    pick = "" if only is None else " AND {t}.grid_id IN :ids"
    sql = (
        f"SELECT x.grid_id, x.id AS pk_a, y.id AS pk_b, "
        f"CASE WHEN y.id IS NULL OR NOT ({same_shape}) THEN 1 ELSE 0 END AS shape, "
        "CASE WHEN y.id IS NOT NULL AND x.co_managers_assigned <> y.co_managers_assigned "
        "THEN 1 ELSE 0 END AS staff "
        "FROM grid x LEFT JOIN grid y ON y.plan_id = :b AND y.grid_id = x.grid_id "
        f"WHERE x.plan_id = :a{pick.format(t='x')} AND (y.id IS NULL OR NOT ({same_shape}) "
        "OR x.co_managers_assigned <> y.co_managers_assigned) "
        f"UNION ALL SELECT y.grid_id, NULL, y.id, 1, 0 FROM grid y WHERE y.plan_id = :b"
        f"{pick.format(t='y')} "
        "AND NOT EXISTS (SELECT 1 FROM grid x WHERE x.plan_id = :a AND x.grid_id = y.grid_id)")
    if only is None:
        return read_frame(conn, sql, {"a": int(a), "b": int(b)})
    return _frame_in(conn, sql, list(only), {"a": int(a), "b": int(b)})


_FRAME_INTS = ("grid_pk", "co_managers_assigned", *GRID_COUNT_COLUMNS)


def _grid_frame(conn: Connection, plan_id: int, grid_ids: Sequence[str] | None = None,
                communities: Sequence[str] | None = None) -> pd.DataFrame:
    """Maintained counts of a plan's grids (all, or the given grids or communities)."""
    cols = ", ".join(f"c.{c}" for c in GRID_COUNT_COLUMNS)
    base = (f"SELECT g.id AS grid_pk, g.co_managers_assigned, {cols}, g.area_km2, g.grid_id, "
            "g.community_code FROM grid g JOIN grid_count c ON c.grid_pk = g.id "
            "WHERE g.plan_id = :p")
    if grid_ids is not None:
        rows = _rows_in(conn, base + " AND g.grid_id IN :ids", list(grid_ids), {"p": plan_id})
    elif communities is not None:
        rows = _rows_in(conn, base + " AND g.community_code IN :ids", list(communities),
                        {"p": plan_id})
    else:
        rows = list(conn.execute(text(base), {"p": plan_id}).all())
    rows.sort(key=lambda r: str(r[-2]))  # by grid_id, as every listing of grids
    n, k = len(rows), len(_FRAME_INTS)
    ints = np.asarray([r[:k] for r in rows], dtype=np.int64).reshape(n, k)
    data: dict[str, Any] = {
        "grid_pk": ints[:, 0],
        "grid_id": np.asarray([str(r[k + 1]) for r in rows], dtype=object),
        "community_code": np.asarray([str(r[k + 2]) for r in rows], dtype=object),
        "co_managers_assigned": ints[:, 1],
        "area_km2": np.asarray([r[k] for r in rows], dtype=np.float64),
    }
    data.update({c: ints[:, i] for i, c in enumerate(_FRAME_INTS) if i >= 2})
    return pd.DataFrame(data)


def grid_workload(conn: Connection, plan_id: int, *, grid_ids: Sequence[str] | None = None,
                  communities: Sequence[str] | None = None,
                  settings: WorkloadSettings | None = None,
                  tiers: TierSettings | None = None) -> pd.DataFrame:
    """Per-grid workload of a plan (all grids, or only the given grids or communities)."""
    df = _grid_frame(conn, plan_id, grid_ids, communities)
    pks = df.pop("grid_pk")
    out = derive_workload(df, settings or WorkloadSettings(), tiers or TierSettings())
    out.insert(0, "grid_pk", pks.to_numpy())
    return out


def _area_scope(conn: Connection, communities: Sequence[str], *, streets: bool
                ) -> dict[str, dict[str, str]]:
    """Communities with the code of the area above them at each level (community→city).

    Returns the given communities and, with ``streets``, every community of their streets.
    Follows ``parent_code`` as :func:`gridmgr.workload.ancestors` does: the city is the area
    of level 'city' if there is one, else the parent code of the top area (one query).
    """
    if not communities:
        return {}
    cols = ", ".join(f"p{i}.code, p{i}.level, p{i}.parent_code" for i in (1, 2, 3))
    joins = " ".join(f"LEFT JOIN admin_area p{i} ON p{i}.code = {'c' if i == 1 else f'p{i-1}'}"
                     ".parent_code" for i in (1, 2, 3))
    where = "c.code IN :ids"
    if streets:
        where += " OR c.parent_code IN (SELECT parent_code FROM admin_area WHERE code IN :ids)"
    df = _frame_in(conn, f"SELECT c.code, c.level, c.parent_code, {cols} FROM admin_area c "
                         f"{joins} WHERE c.level = 'community' AND ({where})", list(communities))
    out: dict[str, dict[str, str]] = {}
    for row in df.itertuples(index=False, name=None):  # one per community
        chain: dict[str, str] = {}
        for i in range(4):
            code, level, parent = row[3 * i], row[3 * i + 1], row[3 * i + 2]
            if code is None:  # the parent is not in the table: it is the city's own code
                chain.setdefault("city", str(row[3 * i - 1]))
                break
            chain.setdefault(str(level), str(code))
            if parent is None:
                chain.setdefault("city", "city")
                break
        else:
            chain.setdefault("city", str(row[11]))
        out[str(row[0])] = chain
    return out


def _columns(w: pd.DataFrame) -> dict[str, np.ndarray]:
    """The roll-up inputs of per-grid workload rows as plain arrays (read each column once)."""
    from gridmgr.tiers import TIERS

    n = len(w)
    tier = w["tier"].to_numpy(dtype=object) if "tier" in w else np.full(n, None)
    cols = {"grids": np.ones(n)}
    for t in TIERS:
        cols[f"grids_{t}"] = (tier == t).astype(np.float64)
    for c in ROLLUP_COLUMNS:
        if c not in cols and c != "co_managers_gap":
            cols[c] = w[c].to_numpy(dtype=np.float64) if c in w else np.zeros(n)
    return cols


def _sum_areas(cols: Mapping[str, np.ndarray], keys: Sequence[Any], wanted: Sequence[str],
               rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """ROLLUP_COLUMNS summed per area (in ``wanted`` order) over per-grid arrays."""
    slot = {k: i for i, k in enumerate(wanted)}
    pos = np.asarray([slot.get(k, -1) for k in keys], dtype=np.int64)  # one per grid
    if rows is not None:
        pos = np.where(rows, pos, -1)
    sel = pos >= 0
    n = len(wanted)
    out = {c: np.bincount(pos[sel], weights=v[sel], minlength=n) for c, v in cols.items()}
    out["co_managers_gap"] = out["co_managers_needed"] - out["co_managers_assigned"]
    return out


def _rollup_diff(chain: Mapping[str, Mapping[str, str]], before: pd.DataFrame,
                 after: pd.DataFrame, touched: set[str], levels: Sequence[str]) -> pd.DataFrame:
    """Before, after and change of ROLLUP_COLUMNS for each area holding a touched grid.

    ``before``/``after`` hold every grid of the touched grids' streets. Community and street
    rows are totals; district and city rows give the change only (the rest of a district
    is the same in both plans, so the change is exact without reading it).
    """
    cb = before["community_code"].to_numpy(dtype=object).tolist()
    ca = after["community_code"].to_numpy(dtype=object).tolist()
    tb = np.isin(before["grid_id"].to_numpy(dtype=object), list(touched))
    ta = np.isin(after["grid_id"].to_numpy(dtype=object), list(touched))
    colb, cola = _columns(before), _columns(after)
    out: dict[str, list[Any]] = {"level": [], "area_code": []}
    for c in ROLLUP_COLUMNS:
        for suffix in ("before", "after", "change"):
            out[f"{c}_{suffix}"] = []
    for level in levels:
        kb = [chain.get(c, {}).get(level) for c in cb]
        ka = [chain.get(c, {}).get(level) for c in ca]
        keys = sorted({k for k, t in zip(kb, tb.tolist(), strict=True) if t and k}
                      | {k for k, t in zip(ka, ta.tolist(), strict=True) if t and k})
        if not keys:
            continue
        totals = level in ("community", "street")
        sb = _sum_areas(colb, kb, keys, None if totals else tb)
        sa = _sum_areas(cola, ka, keys, None if totals else ta)
        out["level"] += [level] * len(keys)
        out["area_code"] += keys
        nan = [math.nan] * len(keys)
        for c in ROLLUP_COLUMNS:
            kind = np.float64 if c.startswith("inspections") else np.int64
            b, a = sb[c].round(9).astype(kind), sa[c].round(9).astype(kind)
            out[f"{c}_before"] += b.tolist() if totals else nan
            out[f"{c}_after"] += a.tolist() if totals else nan
            out[f"{c}_change"] += (a - b).tolist()
    if not out["level"]:
        return pd.DataFrame()
    return pd.DataFrame(out)


def _moved_between(conn: Connection, pa: PlanRow, pb: PlanRow,
                   shape: pd.DataFrame) -> list[dict[str, Any]]:
    """Houses whose grid differs between two plans, from the grids whose shape differs."""
    ids_a = shape["grid_id"][shape["pk_a"].notna()].astype(str).tolist()
    ids_b = shape["grid_id"][shape["pk_b"].notna()].astype(str).tolist()
    sql = ("SELECT grid_id, ST_AsBinary(geom) AS wkb FROM grid WHERE plan_id = :p "
           "AND grid_id IN :ids")
    ga = _frame_in(conn, sql, ids_a, {"p": pa.id})
    gb = _frame_in(conn, sql, ids_b, {"p": pb.id})
    geo_a = dict(zip(ga["grid_id"].astype(str), geometries(ga["wkb"]), strict=True)) \
        if len(ga) else {}
    geo_b = dict(zip(gb["grid_id"].astype(str), geometries(gb["wkb"]), strict=True)) \
        if len(gb) else {}
    region = changed_region([(geo_b.get(g), geo_a.get(g)) for g in shape["grid_id"].astype(str)])
    # One pass over the region's houses brings both plans' links and the codes along.
    pts = _points_in(conn, "house", region,
                     columns=", t.house_code, la.grid_pk AS pk_a, lb.grid_pk AS pk_b",
                     joins="LEFT JOIN house_grid la ON la.house_id = t.id AND la.plan_id = :a "
                           "LEFT JOIN house_grid lb ON lb.house_id = t.id AND lb.plan_id = :b",
                     params={"a": pa.id, "b": pb.id})
    if not len(pts):
        return []
    pk_a = pd.to_numeric(pts["pk_a"], errors="coerce").fillna(-1).to_numpy(dtype=np.int64)
    pk_b = pd.to_numeric(pts["pk_b"], errors="coerce").fillna(-1).to_numpy(dtype=np.int64)
    pks = np.unique(np.concatenate([pk_a, pk_b]))
    name = dict(_rows_in(conn, "SELECT id, grid_id FROM grid WHERE id IN :ids",
                         pks[pks >= 0].tolist()))
    name[-1] = None

    def grid_ids(pk: np.ndarray) -> np.ndarray:
        keys, inverse = np.unique(pk, return_inverse=True)
        return np.asarray([name[int(k)] for k in keys], dtype=object)[inverse]

    # Each plan has its own copy of a grid, so houses are compared by grid_id, not by key.
    to, fr = grid_ids(pk_a), grid_ids(pk_b)
    differ = to != fr
    if not differ.any():
        return []
    moved = [{"house_code": c, "from": f, "to": t}
             for c, f, t in zip(pts["house_code"].to_numpy(dtype=object)[differ].tolist(),
                                fr[differ].tolist(), to[differ].tolist(), strict=True)]
    moved.sort(key=lambda m: str(m["house_code"]))
    return moved


def diff(conn: Connection, *, plan: str, other: str | None = None,
         levels: Sequence[str] = ROLLUP_LEVELS, settings: WorkloadSettings | None = None,
         tiers: TierSettings | None = None) -> PlanDiff:
    """Compare plan ``plan`` with ``other`` (default: the adopted plan).

    Only houses inside a region where some grid's shape differs between the plans can be in
    different grids, so only those are compared (the cost follows the change, not the
    city). ``before`` rows are ``other``'s workload of every affected grid, ``after`` rows
    ``plan``'s; the roll-up gives, per affected area at each of ``levels``, the totals
    before and after (community and street) and the change (every level).
    """
    started = time.perf_counter()
    wl_cfg, tier_cfg = settings or WorkloadSettings(), tiers or TierSettings()
    pa = get_plan(conn, plan)
    pb = get_plan(conn, other) if other else _adopted(conn)
    for p in (pa, pb):
        if p.status == "discarded":
            raise BadInput(f"plan {p.name} was discarded and keeps no house links to compare; "
                           f"make a new draft from it first: gridmgr plan new NAME --from "
                           f"{p.name}")
    ch = _changed_grids(conn, pa.id, pb.id, _edited_since_copy(conn, pa, pb)) \
        if pa.id != pb.id else pd.DataFrame(columns=["grid_id", "pk_a", "pk_b", "shape",
                                                     "staff"])
    shape = ch[ch["shape"].astype(int) == 1] if len(ch) else ch
    added = sorted(shape.loc[shape["pk_b"].isna(), "grid_id"].astype(str)) if len(ch) else []
    removed = sorted(shape.loc[shape["pk_a"].isna(), "grid_id"].astype(str)) if len(ch) else []
    reshaped = sorted(shape.loc[shape["pk_a"].notna() & shape["pk_b"].notna(),
                                "grid_id"].astype(str)) if len(ch) else []
    restaffed = sorted(ch.loc[ch["staff"].astype(int) == 1, "grid_id"].astype(str)) \
        if len(ch) else []
    moved = _moved_between(conn, pa, pb, shape) if len(shape) else []
    touched = set(added) | set(removed) | set(reshaped) | set(restaffed)
    touched |= {m["from"] for m in moved if m["from"]} | {m["to"] for m in moved if m["to"]}
    comm = _frame_in(conn, "SELECT DISTINCT community_code FROM grid WHERE plan_id IN (:a, :b) "
                           "AND grid_id IN :ids", sorted(touched), {"a": pa.id, "b": pb.id})
    comms = sorted(comm["community_code"].astype(str)) if len(comm) else []
    chain = _area_scope(conn, comms, streets="street" in levels) if levels else {}
    scope = sorted(set(comms) | set(chain))
    fb, fa = (_grid_frame(conn, pid, communities=scope) for pid in (pb.id, pa.id))
    ids = np.concatenate([fb["grid_id"].to_numpy(dtype=object),
                          fa["grid_id"].to_numpy(dtype=object)])
    both = pd.concat([fb, fa], ignore_index=True)
    # one derive for both plans: grid ids must be unique in it, so tag them by plan
    both["grid_id"] = np.asarray([f"{i}|{g}" for i, g in enumerate(ids)], dtype=object)
    both = both.drop(columns=["grid_pk"])
    derived = derive_workload(both, wl_cfg, tier_cfg) if len(both) else both
    derived["grid_id"] = ids
    w_b = derived.iloc[:len(fb)].reset_index(drop=True)
    w_a = derived.iloc[len(fb):].reset_index(drop=True)
    roll = _rollup_diff(chain, w_b, w_a, touched, levels)
    before = w_b[w_b["grid_id"].isin(touched)].reset_index(drop=True)
    after = w_a[w_a["grid_id"].isin(touched)].reset_index(drop=True)
    return PlanDiff(plan=pa.name, other=pb.name, houses_moved=len(moved), moved=moved,
                    added=added, removed=removed, reshaped=reshaped, restaffed=restaffed,
                    before=before, after=after, rollup=roll,
                    seconds=time.perf_counter() - started)


def diff_frames(conn: Connection, d: PlanDiff) -> tuple[Any, Any]:
    """The affected grids of a diff as GeoDataFrames with workload: (before, after)."""
    import geopandas as gpd

    out = []
    for name, rows in ((d.other, d.before), (d.plan, d.after)):
        plan = get_plan(conn, name)
        ids = rows["grid_id"].astype(str).tolist() if len(rows) else []
        df = _frame_in(conn, "SELECT grid_id, ST_AsBinary(geom) AS wkb FROM grid "
                             "WHERE plan_id = :p AND grid_id IN :ids", ids, {"p": plan.id})
        geo = gpd.GeoDataFrame({"grid_id": df["grid_id"].astype(str).tolist()},
                               geometry=list(geometries(df["wkb"])) if len(df) else [],
                               crs=4326)
        merged = geo.merge(rows, on="grid_id", how="left") if len(rows) else geo
        out.append(gpd.GeoDataFrame(merged, geometry="geometry", crs=4326))
    return out[0], out[1]


def diff_map(conn: Connection, d: PlanDiff, *, assets: str = "inline") -> str:
    """An offline HTML map (tier colours) of the grids a diff touches, as in plan ``d.plan``."""
    from gridmgr.store.queries import areas_geoframe
    from layers import build_map

    _, after = diff_frames(conn, d)
    if after.empty:
        raise BadInput(f"plan {d.plan} has no changed grids to map against {d.other}")
    return build_map("tier", after, areas_geoframe(conn), assets=assets,  # type: ignore[arg-type]
                     title=f"plan {d.plan} against {d.other}: changed grids")


# ----------------------------------------------------------------------------- adoption


@dataclass
class AdoptResult:
    """An adoption: the plan now in force, the one retired, when, and houses that changed grid."""

    plan: str
    previous: str | None
    adopted_at: dt.datetime
    houses_moved: int
    relinked: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"plan": self.plan, "previous": self.previous,
                "adopted_at": self.adopted_at.isoformat(), "houses_moved": self.houses_moved,
                "relinked": self.relinked}


def adopt(conn: Connection, *, plan: str, actor: str | None = None, role: str = "planner",
          client_addr: str | None = None, force: bool = False,
          at: dt.datetime | None = None) -> AdoptResult:
    """Put a draft (or a retired plan again) in force, atomically, and audit it.

    The adopted plan is retired (kept, with its grids and links, and can be adopted again);
    ``plan_adoption`` dates both switches, which is what dates every house → grid link.
    A draft made from a plan other than the one in force is refused unless ``force``: its
    adoption would silently undo the changes adopted since. Re-adopting a retired plan
    reassigns its links in full first (links of retired plans are not kept current).
    """
    p = get_plan(conn, plan, lock=True)
    when = at or _now()
    if p.status == "adopted":
        raise BadInput(f"plan {p.name} is already adopted")
    if p.status == "discarded":
        raise BadInput(f"plan {p.name} was discarded; make a new draft from it instead: "
                       f"gridmgr plan new NAME --from {p.name}")
    current = adopted_plan_id(conn)
    prev = _plan_by_id(conn, current) if current is not None else None
    if (p.status == "draft" and prev is not None and p.base_plan_id != prev.id and not force):
        base = _plan_by_id(conn, p.base_plan_id).name if p.base_plan_id else "nothing"
        raise Conflict(f"draft {p.name} was made from plan {base}, but plan {prev.name} is in "
                       f"force now; compare them (gridmgr plan diff {p.name} {prev.name}) and "
                       "adopt with --force if that is what you want")
    relinked = False
    if p.status == "retired":
        from gridmgr.store.load import assign_plan

        assign_plan(conn, p.id)
        relinked = True
    moved = 0
    if prev is not None:
        moved = diff(conn, plan=p.name, other=prev.name, levels=()).houses_moved
        conn.execute(text("UPDATE boundary_plan SET status = 'retired' WHERE id = :i"),
                     {"i": prev.id})
        conn.execute(text("UPDATE plan_adoption SET retired_at = :t WHERE plan_id = :i "
                          "AND retired_at IS NULL"), {"t": when, "i": prev.id})
    conn.execute(text("UPDATE boundary_plan SET status = 'adopted' WHERE id = :i"), {"i": p.id})
    conn.execute(text("INSERT INTO plan_adoption (plan_id, adopted_at, adopted_by) "
                      "VALUES (:p, :t, :b)"), {"p": p.id, "t": when,
                                               "b": (actor or "")[:100] or None})
    _audit_plan(conn, "plan_adopt", p, actor, role, client_addr, when, {
        "plan_id": p.id, "previous": prev.name if prev else None, "houses_moved": moved,
        "relinked": relinked, "forced": bool(force)})
    return AdoptResult(p.name, prev.name if prev else None, when, moved, relinked)


def _audit_plan(conn: Connection, action: str, p: PlanRow, actor: str | None, role: str,
                client_addr: str | None, at: dt.datetime, detail: dict[str, Any]) -> None:
    """Write the audit row of a plan's change of status (adopt, discard)."""
    from gridmgr.store.audit import INSERT_SQL

    conn.execute(text(INSERT_SQL), {
        "at": at, "actor": (actor or "unknown")[:100], "role": role[:16], "action": action,
        "target": p.name[:200], "client_addr": client_addr, "detail": _json(detail)})


@dataclass(frozen=True)
class DiscardResult:
    """A draft given up: its links and counts deleted, its grids and edits kept."""

    plan: str
    links_deleted: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"plan": self.plan, "status": "discarded", "links_deleted": self.links_deleted}


def discard(conn: Connection, *, plan: str, actor: str | None = None, role: str = "planner",
            client_addr: str | None = None) -> DiscardResult:
    """Give up draft ``plan``: it stops being kept current, and its links go.

    Every draft holds a link per house of the city (6.7 M at Chengdu scale) that each load,
    registration and edit keeps current; an abandoned draft would go on costing that
    forever. Its grids and edit history stay (status ``discarded``) so the record of what
    was tried survives; it can no longer be edited or adopted. Audited.
    """
    p = get_plan(conn, plan, lock=True)
    if p.status != "draft":
        raise BadInput(f"plan {p.name} is {p.status}; only a draft can be discarded "
                       "(adopted and retired plans date the house → grid links)")
    deleted = 0
    for table in ("house_grid", "business_grid", "grid_count"):
        res = conn.execute(text(f"DELETE FROM {table} WHERE plan_id = :p"), {"p": p.id})
        if table == "house_grid":
            deleted = int(res.rowcount or 0)
    conn.execute(text("UPDATE boundary_plan SET status = 'discarded' WHERE id = :i"),
                 {"i": p.id})
    _audit_plan(conn, "plan_discard", p, actor, role, client_addr, _now(),
                {"plan_id": p.id, "house_links_deleted": deleted})
    return DiscardResult(p.name, deleted)


def house_grid_history(conn: Connection, *, house_code: str) -> list[dict[str, Any]]:
    """The grid a house belonged to in each period a plan was in force, oldest first."""
    rows = conn.execute(text(
        "SELECT bp.name, g.grid_id, pa.adopted_at, pa.retired_at FROM house h "
        "JOIN house_grid hg ON hg.house_id = h.id "
        "JOIN plan_adoption pa ON pa.plan_id = hg.plan_id "
        "JOIN boundary_plan bp ON bp.id = pa.plan_id "
        "JOIN grid g ON g.id = hg.grid_pk WHERE h.house_code = :c "
        "ORDER BY pa.adopted_at, pa.id"), {"c": house_code}).all()
    if not rows and conn.execute(text("SELECT 1 FROM house WHERE house_code = :c"),
                                 {"c": house_code}).first() is None:
        raise NotFound(f"no house {house_code}")
    return [{"plan": r[0], "grid_id": r[1], "from": _as_dt(r[2]), "until": _as_dt(r[3])}
            for r in rows]


def grid_of_house_on(conn: Connection, *, house_code: str, when: dt.datetime) -> str | None:
    """The grid that held a house at a moment, by the plan in force then (None: no grid)."""
    for period in house_grid_history(conn, house_code=house_code):
        if period["from"] <= when and (period["until"] is None or when < period["until"]):
            return str(period["grid_id"])
    return None


# ----------------------------------------------------------------------------- rebalance


@dataclass
class RebalanceReport:
    """A rebalance proposal written into a draft: the figures of today's grids, max-p and ours."""

    plan: str
    area: str
    communities: dict[str, int]
    floor: float
    ceiling: float
    resolution: int
    seed: int
    blocks: int
    houses: int
    load_total: float
    current: dict[str, Any]
    proposal: dict[str, Any]
    maxp: dict[str, Any] | None
    op: OpResult
    ratio: int = 500

    def table(self) -> pd.DataFrame:
        """Current / max-p / gridmgr side by side (grids, min, max, CV, within bounds, PP, s)."""
        rows = []
        for name, m in (("current", self.current), ("spopt max-p", self.maxp),
                        ("gridmgr", self.proposal)):
            if not m:
                continue
            rows.append({"plan": name, "grids": m.get("k"), "min": m.get("min"),
                         "max": m.get("max"), "cv": m.get("cv"),
                         "within_bounds": m.get("within_bounds"), "pp_mean": m.get("pp_mean"),
                         "contiguous": m.get("contiguous_geometry"),
                         "co_managers": m.get("co_managers"), "seconds": m.get("seconds"),
                         "note": m.get("note")})
        return pd.DataFrame(rows)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"plan": self.plan, "area": self.area, "communities": self.communities,
                "floor": self.floor, "ceiling": self.ceiling, "resolution": self.resolution,
                "seed": self.seed, "blocks": self.blocks, "houses": self.houses,
                "load_total": self.load_total, "current": self.current,
                "proposal": self.proposal, "maxp": self.maxp, "op": self.op.as_dict()}


def _allocate_k(loads: Mapping[Any, float], k: int, floor: float, ceiling: float,
                blocks: Mapping[Any, int]) -> dict[Any, int]:
    """Share k grids among pieces of an area: each at least one and enough for the ceiling."""
    codes = sorted(loads)
    need = {c: max(1, math.ceil(loads[c] / ceiling - 1e-9)) for c in codes}
    cap = {c: max(1, min(blocks[c], math.floor(loads[c] / floor + 1e-9) if floor > 0
                         else blocks[c])) for c in codes}
    if sum(need.values()) > k:
        raise BadInput(f"the area's {len(codes)} separate pieces (communities, or detached parts "
                       f"of one) need at least {sum(need.values())} grids at a ceiling of "
                       f"{ceiling:g}: choose --grids {sum(need.values())} or more")
    ks = dict(need)
    for _ in range(k - sum(ks.values())):  # one step per grid to hand out
        room = [c for c in codes if ks[c] < cap[c]] or [c for c in codes if ks[c] < blocks[c]]
        if not room:
            raise BadInput(f"the area has too few blocks for {k} grids; choose fewer grids "
                           "or a finer --resolution")
        c = max(room, key=lambda x: loads[x] / ks[x])
        ks[c] += 1
    return ks


def rebalance_area(
    conn: Connection,
    *,
    plan: str,
    area: str,
    grids: int,
    floor: float | None = None,
    ceiling: float | None = None,
    resolution: int = 10,
    seed: int = 0,
    maxp: bool = False,
    time_limit_s: float | None = None,
    actor: str | None = None,
    settings: Any = None,
    workload: WorkloadSettings | None = None,
    rule_settings: rules.PlanRuleSettings | None = None,
) -> RebalanceReport:
    """Replace the unlocked grids of a community or street by ``grids`` balanced grids.

    Blocks are H3 cells (``resolution``) clipped to the ground the community's unlocked grids
    cover (so the new grids cover exactly what the old ones did); load is the floating
    residents living in each house now. The grids are shared among the communities, and
    among the separate pieces of one (each at least one grid, enough for the ceiling, the
    rest by load), so every new grid is one piece inside one community; a small, nearly
    empty detached piece joins the nearest new grid as the island it was.
    ``floor``/``ceiling`` default to one and two co-managers' worth
    (``workload.co_manager_ratio``). The proposal is written into the draft as one undoable
    edit; the report compares it with today's grids and, with ``maxp``, with spopt's max-p
    on the same blocks.
    """
    import geopandas as gpd

    from gridmgr.blocks import adjacency_from_geometry, build_blocks
    from gridmgr.geo import metric_crs_for, to_metric
    from gridmgr.rebalance import (
        PartitionMetrics,
        RebalanceSettings,
        compare_with_maxp,
        describe_grids,
        rebalance,
    )

    cfg: RebalanceSettings = settings or RebalanceSettings()
    wl = workload or WorkloadSettings()
    rcfg = rule_settings or rules.PlanRuleSettings()
    ratio = int(wl.co_manager_ratio)
    lo = float(ratio if floor is None else floor)
    hi = float(2 * ratio if ceiling is None else ceiling)
    if grids < 1:
        raise BadInput(f"--grids {grids}: choose at least one grid")
    if lo < 0 or hi <= 0 or lo > hi:
        raise BadInput(f"bounds {lo:g}–{hi:g}: need 0 ≤ floor ≤ ceiling and ceiling > 0")
    if resolution not in (9, 10, 11, 12):
        raise BadInput(f"--resolution {resolution}: use 10 (≈15,000 m² blocks) or 11 (≈2,100 m²)")
    p = get_plan(conn, plan, lock=True)
    _require_draft(p)
    row = conn.execute(text("SELECT level FROM admin_area WHERE code = :c"), {"c": area}).first()
    if row is None:
        raise NotFound(f"no area {area!r}: give a street or community code")
    level = str(row[0])
    if level == "community":
        comm_codes = [area]
    elif level == "street":
        comm_codes = [str(c) for c in conn.execute(text(
            "SELECT code FROM admin_area WHERE level = 'community' AND parent_code = :c "
            "ORDER BY code"), {"c": area}).scalars().all()]
    else:
        raise BadInput(f"area {area} is a {level}; rebalance one street or one community")
    plan_grids = _grids_near(conn, p.id, communities=comm_codes)
    free = {k: g for k, g in plan_grids.items() if not g.locked}
    by_comm: dict[str, list[GridRow]] = {}
    for g in sorted(free.values(), key=lambda g: g.grid_id):
        by_comm.setdefault(g.community_code, []).append(g)
    if not by_comm:
        raise BadInput(f"area {area} has no unlocked grids in plan {p.name}")
    pks = [int(g.pk or -1) for g in free.values()]
    houses = _frame_in(conn, (
        "SELECT hg.house_id, hg.grid_pk, h.lon, h.lat FROM house_grid hg "
        "JOIN house h ON h.id = hg.house_id WHERE hg.plan_id = :p AND hg.grid_pk IN :ids"),
        pks, {"p": p.id})
    fl = _frame_in(conn, (
        "SELECT r.house_id, SUM(CASE WHEN pe.floating THEN 1 ELSE 0 END) AS floating "
        "FROM residence r JOIN person pe ON pe.id = r.person_id "
        "JOIN house_grid hg ON hg.house_id = r.house_id AND hg.plan_id = :p "
        "WHERE r.left_on IS NULL AND hg.grid_pk IN :ids GROUP BY r.house_id"), pks, {"p": p.id})
    load_of = (fl.set_index("house_id")["floating"].astype(float) if len(fl)
               else pd.Series(dtype=float))
    houses["load"] = houses["house_id"].map(load_of).fillna(0.0) if len(houses) else []
    comm_of_pk = {int(g.pk or -1): g.community_code for g in free.values()}
    houses["community"] = houses["grid_pk"].astype(np.int64).map(comm_of_pk) \
        if len(houses) else []

    # Units: each separate piece of a community's unlocked ground is partitioned on its own
    # (a grid must be one piece). A small piece with little load (a detached compound) is not
    # worth a grid: it joins the nearest new grid of its community as the island it was.
    units: dict[tuple[str, int], Any] = {}
    minor: dict[str, list[BaseGeometry]] = {}
    for code, members in by_comm.items():
        parent = rules.merge_geometries([g.geom for g in members], tolerance_m=rcfg.tolerance_m)
        parts = sorted(shapely.get_parts(parent), key=lambda g: -float(g.area))
        h = houses[houses["community"] == code]
        hx, hy = h["lon"].to_numpy(dtype=float), h["lat"].to_numpy(dtype=float)
        hl = h["load"].to_numpy(dtype=float)
        where = assign_nearby(hx, hy, np.asarray(parts, dtype=object))
        total_area = float(sum(g.area for g in parts))
        for i, part in enumerate(parts):
            sel = where == i
            if i > 0 and hl[sel].sum() < 0.5 * lo and part.area < 0.1 * total_area:
                minor.setdefault(code, []).append(part)
                continue
            units[(code, i)] = build_blocks(part, hx[sel], hy[sel], hl[sel],
                                            resolution=resolution)
    loads = {u: float(bs.blocks["load"].sum()) for u, bs in units.items()}
    nblocks = {u: len(bs.blocks) for u, bs in units.items()}
    ks = _allocate_k(loads, int(grids), lo, hi, nblocks)

    limit = float(time_limit_s) if time_limit_s is not None else (5.0 if resolution <= 10
                                                                  else 10.0)
    total_blocks = sum(nblocks.values())
    new_rows: list[GridRow] = []
    loads_all: list[np.ndarray] = []
    pp_all: list[np.ndarray] = []
    cg_all: list[np.ndarray] = []
    cgraph_all: list[np.ndarray] = []
    seconds, timed_out = 0.0, False
    taken: set[str] = set()
    per_comm: dict[str, list[GridRow]] = {}
    for unit in sorted(units):
        code = unit[0]
        bs, kc = units[unit], ks[unit]
        lc = loads[unit]
        f_c, c_c = min(lo, lc / kc), max(hi, lc / kc)
        share = nblocks[unit] / max(total_blocks, 1)
        res = rebalance(bs.blocks, bs.adjacency, kc, f_c, c_c, seed=seed,
                        time_limit_s=max(0.5, limit * share), settings=cfg)
        seconds += res.seconds
        timed_out = timed_out or res.timed_out
        loads_all.append(res.metrics.loads)
        pp_all.append(res.metrics.polsby_popper)
        cg_all.append(res.metrics.contiguous_geometry)
        cgraph_all.append(res.contiguous_graph)
        ids = _new_grid_ids(conn, code, kc, by_comm[code][0].grid_id, taken)
        taken |= set(ids)
        geoms = bs.blocks.geometry.to_numpy()
        police = pd.Series([g.police_area for g in by_comm[code]]).dropna()
        pa_mode = str(police.mode().iloc[0]) if len(police) else None
        for r in range(kc):
            proposed = GridRow(ids[r], code, rules.merge_geometries(
                list(geoms[res.labels == r]), tolerance_m=rcfg.tolerance_m), None, pa_mode, 0,
                False)
            new_rows.append(proposed)
            per_comm.setdefault(code, []).append(proposed)
    for code, pieces in minor.items():
        for piece in pieces:
            near = min(per_comm[code], key=lambda g: float(shapely.distance(g.geom, piece)))
            near.geom = shapely.union(near.geom, piece)
    staff = [(sum(g.co_managers_assigned for g in by_comm[code]),
              [g.grid_id for g in rows]) for code, rows in per_comm.items()]
    comm_k = {code: len(rows) for code, rows in sorted(per_comm.items())}

    proposal = PartitionMetrics(loads=np.concatenate(loads_all),
                                polsby_popper=np.concatenate(pp_all),
                                contiguous_geometry=np.concatenate(cg_all),
                                contiguous_graph=np.concatenate(cgraph_all),
                                floor=lo, ceiling=hi).as_dict()
    proposal.update(seconds=round(seconds, 3), seed=seed, timed_out=timed_out,
                    co_managers=int(sum(math.ceil(v / ratio) for v in np.concatenate(loads_all))))
    old = list(free.values())
    cur_counts = _grid_frame(conn, p.id, grid_ids=[g.grid_id for g in old])
    cur_load = cur_counts.set_index("grid_id")["floating_residents"].reindex(
        [g.grid_id for g in old]).fillna(0).to_numpy(dtype=float)
    current = describe_grids(gpd.GeoDataFrame({"grid_id": [g.grid_id for g in old]},
                                              geometry=[g.geom for g in old], crs=4326),
                             cur_load, lo, hi).as_dict()
    current.update(co_managers=int(sum(math.ceil(v / ratio) for v in cur_load)))

    maxp_out: dict[str, Any] | None = None
    if maxp:
        frames = [bs.blocks for _, bs in sorted(units.items())]
        allb = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)
        crs_m = metric_crs_for(shapely.box(*allb.total_bounds))
        adj = adjacency_from_geometry(to_metric(allb.geometry.to_numpy(), crs_m))
        mp = compare_with_maxp(allb, adj, lo, ceiling=hi, time_limit_s=cfg.maxp_time_limit_s,
                               seed=seed, settings=cfg)
        maxp_out = mp.as_dict()
        if mp.metrics is not None:
            maxp_out["co_managers"] = int(sum(math.ceil(v / ratio) for v in mp.metrics.loads))
        maxp_out["note"] = "floor only; may cross community boundaries"

    op = _apply(conn, p, old, new_rows, op="rebalance",
                args={"area": area, "grids": int(grids), "floor": lo, "ceiling": hi,
                      "resolution": resolution, "seed": seed}, actor=actor, staff=staff,
                settings=rcfg)
    return RebalanceReport(plan=p.name, area=area, communities=comm_k, floor=lo, ceiling=hi,
                           resolution=resolution, seed=seed, blocks=total_blocks,
                           houses=len(houses), load_total=float(sum(loads.values())),
                           current=current, proposal=proposal, maxp=maxp_out, op=op,
                           ratio=ratio)
