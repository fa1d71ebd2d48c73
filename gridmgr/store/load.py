"""Load interchange files into a store: validate every row, write in one transaction."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from sqlalchemy import Connection, Engine, text

from gridmgr import codes
from gridmgr.assign import PolygonIndex, assign_points
from gridmgr.errors import BadInput, RowProblem, ValidationFailed, ValidationReport
from gridmgr.geo import area_km2
from gridmgr.interchange import read_table, read_table_chunks, streamable
from gridmgr.progress import Quiet, Reporter
from gridmgr.store import counts
from gridmgr.store.bulk import (
    Points,
    allocate_ids,
    bulk_insert,
    deferred_indexes,
    geometries,
    index_new_rows,
    read_frame,
    read_ints,
)
from gridmgr.store.models import GRID_COUNT_COLUMNS
from gridmgr.store.plans import adopted_plan_id, ensure_adopted_plan, plan_grids
from gridmgr.store.schema import upgrade
from gridmgr.validate import (
    MAX_MESSAGES_PER_CHECK,
    FileKeys,
    FlagSite,
    StoreKeys,
    check,
    first_rows,
    masked,
    merge_sites,
    site_messages,
)

ORDER_HINT = "load areas, then grids, houses, businesses, people and rentals"


@dataclass
class LoadResult:
    """What a load did: rows read, written and rejected, warnings, unassigned houses."""

    kind: str
    rows: int
    loaded: int
    report: ValidationReport
    rejected_rows: list[int] = field(default_factory=list)
    outside_areas: list[str] = field(default_factory=list)
    unassigned: list[str] = field(default_factory=list)
    report_path: Path | None = None

    def summary(self) -> str:
        """One line for the terminal."""
        parts = [f"{self.kind}: loaded {self.loaded} of {self.rows} rows"]
        if self.rejected_rows:
            parts.append(f"skipped {len(self.rejected_rows)} bad rows")
        if self.outside_areas:
            parts.append(f"{len(self.outside_areas)} outside every area (kept, flagged)")
        if self.unassigned:
            parts.append(f"{len(self.unassigned)} in no grid (kept, unassigned)")
        if self.report_path:
            parts.append(f"report: {self.report_path}")
        return "; ".join(parts)


def write_report(report: ValidationReport, path: Path) -> Path:
    """Write every problem and warning as CSV rows (row, column, severity, reason)."""
    rows = [(p.row, p.column, "error", p.reason) for p in report.problems]
    rows += [(p.row, p.column, "warning", p.reason) for p in report.warnings]
    pd.DataFrame(rows, columns=["row", "column", "severity", "reason"]).sort_values(
        ["row", "severity"]).to_csv(path, index=False)
    return path


def store_keys(conn: Connection, kind: str, columns: Iterable[str] | None = None) -> StoreKeys:
    """Read from the store what validating a file of `kind` (with `columns`) needs to know.

    Without `columns` every key the kind may need is read; with them, house codes are read
    for people and rentals only when the file refers to houses by code.
    """
    by_code = columns is None or kind == "houses" or "house_code" in set(columns)
    keys = StoreKeys()
    areas = read_frame(conn, "SELECT code, level FROM admin_area")
    keys.area_levels = dict(zip(areas["code"].astype(str), areas["level"].astype(str),
                                strict=True))
    if kind in ("houses", "businesses"):
        fn = ("ST_XMin", "ST_YMin", "ST_XMax", "ST_YMax") if conn.dialect.name == "postgresql" \
            else ("MbrMinX", "MbrMinY", "MbrMaxX", "MbrMaxY")
        ext = conn.execute(text(
            f"SELECT min({fn[0]}(geom)), min({fn[1]}(geom)), max({fn[2]}(geom)), "
            f"max({fn[3]}(geom)) FROM admin_area")).first()
        if ext is not None and ext[0] is not None:
            keys.extent = (float(ext[0]), float(ext[1]), float(ext[2]), float(ext[3]))
    if kind == "grids":
        plan = adopted_plan_id(conn)
        if plan is not None:
            g = read_frame(conn, "SELECT grid_id FROM grid WHERE plan_id = :p", {"p": plan})
            keys.grid_ids = pd.Index(g["grid_id"].astype(str))
    if kind in ("houses", "people", "rentals"):
        cols = "id, source_id, house_code" if by_code else "id, source_id"
        h = read_frame(conn, f"SELECT {cols} FROM house", fast=True,
                       text_columns=("source_id", "house_code") if by_code else ("source_id",))
        ids = h["id"].to_numpy(dtype=np.int64)
        keys.house_ids_by_source = pd.Series(ids, index=h["source_id"].astype(str))
        if by_code:
            has = h["house_code"].notna().to_numpy()
            keys.house_ids_by_code = pd.Series(ids[has],
                                               index=h["house_code"][has].astype(str))
        if kind == "houses":
            keys.source_ids = pd.Index(h["source_id"].astype(str))
    if kind in ("people", "businesses"):
        b = read_frame(conn, "SELECT id, source_id FROM business", fast=True,
                       text_columns=("source_id",))
        keys.business_ids_by_source = pd.Series(b["id"].to_numpy(dtype=np.int64),
                                                index=b["source_id"].astype(str))
    if kind == "people":
        p = read_frame(conn, "SELECT source_id, id_number FROM person", fast=True,
                       text_columns=("source_id", "id_number"))
        keys.source_ids = pd.Index(p["source_id"].astype(str))
        keys.id_numbers = pd.Index(p["id_number"].astype(str))
    if kind == "rentals":
        keys.rented_house_ids = pd.Index(read_ints(conn, "SELECT house_id FROM rental_record"))
    return keys


# Rows per chunk when a CSV file is streamed: peak memory stays flat in the file's size.
CHUNK_ROWS = 400_000

# Tables a file of each kind fills through several inserts: their indexes are dropped once
# for a big batch and rebuilt once at the end (table → geometry column or None).
BULK_TABLES: dict[str, dict[str, str | None]] = {
    "houses": {"house": "geom", "house_grid": None},
    "businesses": {"business": "geom", "business_grid": None},
    "people": {"person": None, "residence": None, "employment": None},
    "rentals": {"rental_record": None},
}


class _WholeFile(Exception):
    """The file cannot be loaded chunk by chunk; roll back and load it whole."""


def load_file(engine: Engine, kind: str, path: str | Path, *, crs: int | None = None,
              skip_bad: bool = False, report_path: Path | None = None,
              reporter: Reporter | None = None, chunk_rows: int | None = None) -> LoadResult:
    """Read, validate and load one interchange file; all or nothing unless `skip_bad`.

    A CSV file of points or keys is streamed in chunks of `chunk_rows` (default
    CHUNK_ROWS) inside the one transaction, so memory does not grow with the file;
    messages and the report still name the file's rows and every problem in it.
    """
    if report_path is None:
        report_path = Path(f"{Path(path).name}.report.csv")
    if streamable(path, kind):
        rows = CHUNK_ROWS if chunk_rows is None else chunk_rows
        try:
            return _load(engine, kind, lambda: _chunks(path, kind, rows, crs),
                         _estimate_rows(path), skip_bad=skip_bad, report_path=report_path,
                         reporter=reporter)
        except _WholeFile:
            pass  # rolled back; the whole-file path below gives the same outcome
    frame = read_table(path, kind, crs)
    return load_frame(engine, kind, frame, skip_bad=skip_bad, report_path=report_path,
                      reporter=reporter)


def _chunks(path: str | Path, kind: str, rows: int, crs: int | None) -> Iterator[pd.DataFrame]:
    try:
        yield from read_table_chunks(path, kind, rows, crs)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        # An irregular row or bad UTF-8: pandas' reader names it (or reads the blanks).
        raise _WholeFile from exc


def _estimate_rows(path: str | Path) -> int:
    """Rows in a CSV file, from the size and its first megabyte (for index decisions)."""
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    lines = head.count(b"\n")
    return int(size * lines / len(head)) if lines and head else 0


def load_frame(engine: Engine, kind: str, frame: pd.DataFrame, *, skip_bad: bool = False,
               report_path: Path | None = None, reporter: Reporter | None = None) -> LoadResult:
    """Validate a frame against the store and write its rows in one transaction."""
    return _load(engine, kind, lambda: iter([frame]), len(frame), skip_bad=skip_bad,
                 report_path=report_path, reporter=reporter)


class _Late:
    """Problems found by a writer's dry run, capped like validation's: the first rows win."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.reasons: list[str] = []
        self.columns: list[str] = []

    def add(self, rows: np.ndarray, column: str, reasons: list[str]) -> None:
        self.rows.append(np.asarray(rows, dtype=np.int64))
        self.reasons += reasons
        self.columns += [column] * len(reasons)

    def __len__(self) -> int:
        return len(self.reasons)

    def messages(self, cap: int = MAX_MESSAGES_PER_CHECK) -> list[RowProblem]:
        if not self.reasons:
            return []
        rows = np.concatenate(self.rows)
        order = np.argsort(rows, kind="stable")
        _, first = np.unique(rows[order], return_index=True)  # one message per row
        pick = order[first][:cap]
        return [RowProblem(int(rows[i]), self.columns[i], self.reasons[i]) for i in pick]


class _Writes:
    """A file's chunk writes, one at a time and in file order, partly on a second thread.

    On PostGIS the whole write of chunk N (COPY) runs on the second thread while this one
    reads and validates chunk N+1 (psycopg2 lets go of the GIL while it sends), so the
    server and this process both work. On SpatiaLite the row inserts stay on this thread
    (sqlite3 takes the GIL back for every row: two threads would fight over it) and only
    a follow-up that is one statement (filling the R*Tree) runs on the second one. The
    second thread holds `lock` while it works; anything else that needs the connection
    meanwhile (a cached store read) takes the lock too, so the connection is never used by
    two threads at once.
    """

    def __init__(self, background: bool) -> None:
        self.background = background
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridmgr-write")
        self.pending: Future[None] | None = None
        self.lock = threading.RLock()

    def submit(self, write: Callable[[], object],
               follow_up: Callable[[], object] | None = None) -> None:
        """Start `write`, then `follow_up`, once the previous ones are done (errors raise)."""
        self.wait()
        if not self.background:
            write()
            if follow_up is not None:
                self.pending = self.pool.submit(self._locked, follow_up)
            return
        self.pending = self.pool.submit(self._locked, write, follow_up)

    def _locked(self, *steps: Callable[[], object] | None) -> None:
        with self.lock:
            for step in steps:
                if step is not None:
                    step()

    def wait(self) -> None:
        """Wait for the work in flight; raise its error, if any."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def close(self) -> None:
        """Let the work in flight end (its error is dropped: another one is on its way)."""
        if self.pending is not None:
            futures_wait([self.pending])
            self.pending = None
        self.pool.shutdown(wait=True)


@dataclass
class _Run:
    """One load in progress: the store, what earlier chunks left behind, caches.

    A careful run looks for keys repeated in the file, within and across chunks, as it
    goes; an optimistic one does not (hashing millions of keys costs more than all the
    other checks) and leaves repeats to the store's UNIQUE constraints. If they object, or
    any problem turns up, the load is run again carefully (`_load`), so the outcome and
    the report are the same either way.
    """

    conn: Connection
    kind: str
    keys: StoreKeys
    reporter: Reporter
    result: LoadResult
    skip_bad: bool
    careful: bool
    writes: _Writes
    rows: int = 0  # rows of the file read so far
    first_row: int = 1  # file row of the current chunk's first row
    seen: dict[str, FileKeys] = field(default_factory=dict)
    sites: list[list[FlagSite]] = field(default_factory=list)
    late_problems: _Late = field(default_factory=_Late)
    late_warnings: _Late = field(default_factory=_Late)
    deltas: list[pd.DataFrame] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, name: str, make: Callable[[], Any]) -> Any:
        if name not in self.cache:
            with self.writes.lock:  # make() may read the store: not during a write
                self.cache[name] = make()
        return self.cache[name]

    def file_keys(self, name: str) -> FileKeys | None:
        """The keys of earlier chunks under `name` (careful runs only)."""
        return self.seen.setdefault(name, FileKeys()) if self.careful else None

    def problems(self) -> int:
        return sum(s.total for part in self.sites for s in part if not s.warn) + len(
            self.late_problems)

    def report(self) -> ValidationReport:
        sites = merge_sites(self.sites) if self.sites else []
        return ValidationReport(
            kind=self.kind, rows=self.rows,
            problems=site_messages(sites, False) + self.late_problems.messages(),
            warnings=site_messages(sites, True) + self.late_warnings.messages())


class _Careful(Exception):
    """An optimistic run cannot tell the whole story; roll back and load carefully."""

    def __init__(self, doomed: bool) -> None:
        super().__init__()
        self.doomed = doomed  # the file has problems: the careful run need not write


def _unique_violation(exc: BaseException) -> bool:
    """Whether a store error is a UNIQUE constraint refusing a duplicate key."""
    orig = getattr(exc, "orig", None) or exc
    return getattr(orig, "pgcode", None) == "23505" or "UNIQUE constraint failed" in str(orig)


def _load(engine: Engine, kind: str, open_chunks: Callable[[], Iterator[pd.DataFrame]],
          expected_rows: int, *, skip_bad: bool, report_path: Path | None,
          reporter: Reporter | None) -> LoadResult:
    """Validate and write the chunks of one file in one transaction; all or nothing.

    First optimistically (repeated keys left to the store's UNIQUE constraints), and again
    carefully when that run fails: a file with problems is then only validated, since
    nothing will be written. With `skip_bad` the run is careful from the start: repeated
    keys must be skipped, not refused.
    """
    careful, doomed = skip_bad, False
    while True:  # at most three runs: optimistic, careful and doomed, careful
        try:
            return _load_run(engine, kind, open_chunks(), expected_rows, careful=careful,
                             doomed=doomed, skip_bad=skip_bad, report_path=report_path,
                             reporter=reporter)
        except _Careful as again:
            careful, doomed = True, again.doomed
        except Exception as exc:
            if careful or not _unique_violation(exc):
                raise
            careful, doomed = True, False


def _load_run(engine: Engine, kind: str, chunks: Iterator[pd.DataFrame], expected_rows: int,
              *, careful: bool, doomed: bool, skip_bad: bool, report_path: Path | None,
              reporter: Reporter | None) -> LoadResult:
    """One pass over the file's chunks in one transaction (see `_load`)."""
    rep: Reporter = reporter or Quiet()
    upgrade(engine)
    writer = WRITERS[kind]
    first = next(chunks, None)
    with engine.begin() as conn:
        columns = None if first is None else [str(c).strip() for c in first.columns]
        chunks = itertools.chain([] if first is None else [first], chunks)
        first = None  # the loop holds one chunk at a time
        writes = _Writes(background=conn.dialect.name == "postgresql")
        run = _Run(conn=conn, kind=kind, keys=store_keys(conn, kind, columns), reporter=rep,
                   result=LoadResult(kind=kind, rows=0, loaded=0,
                                     report=ValidationReport(kind=kind)),
                   skip_bad=skip_bad, careful=careful, writes=writes)
        spatial = [t for t, column in BULK_TABLES.get(kind, {}).items() if column]

        def index_rows() -> None:
            for table in spatial:
                index_new_rows(conn, table)

        try:
            with deferred_indexes(conn, BULK_TABLES.get(kind, {}), expected_rows,
                                  reporter=rep):
                for frame in chunks:
                    run.first_row = run.rows + 1
                    checked = check(kind, frame, run.keys, first_row=run.first_row,
                                    seen=run.seen, duplicates=careful)
                    run.rows += len(frame)
                    run.sites.append(checked.sites)
                    good = checked.frame[checked.good].reset_index(drop=True)
                    del checked
                    extra = writer(run, good, True)
                    if not careful and run.problems():
                        raise _Careful(doomed=True)  # the report must name duplicates too
                    if doomed or run.problems() and not skip_bad:
                        continue  # nothing will be written: only look for further problems
                    if extra is not None:
                        good = good[extra].reset_index(drop=True)
                    writes.submit(functools.partial(writer, run, good, False), index_rows)
                    run.result.loaded += len(good)
                writes.wait()
                report = run.report()
                result = run.result
                result.rows, result.report = run.rows, report
                result.rejected_rows = report.bad_rows
                if doomed and not report.problems:
                    # The store changed since the run that found problems: load for real.
                    raise _Careful(doomed=False)
                if report.problems and not skip_bad:
                    if report_path is not None:
                        result.report_path = write_report(report, report_path)
                    hint = (f"nothing was written; full report in {result.report_path}; "
                            "fix the rows or rerun with --skip-bad to load the good ones")
                    raise ValidationFailed(report, hint)
        finally:
            writes.close()
        deltas = [d for d in run.deltas if not d.empty]
        if deltas:
            counts.apply_deltas(conn, pd.concat(deltas).groupby(level=0).sum())
    if report_path is not None and (report.problems or report.warnings):
        result.report_path = write_report(report, report_path)
    return result


# --- writers: each is called per chunk, first dry (late checks that need the store), then
# for real; a dry call returns a mask of the rows it found bad (or None)


def _write_areas(run: _Run, good: pd.DataFrame, dry: bool) -> np.ndarray | None:
    if dry:
        return None
    conn = run.conn
    frame = good[["code", "name", "level", "parent_code"]].copy()
    frame["parent_code"] = frame["parent_code"].replace("", None)
    frame.insert(0, "id", allocate_ids(conn, "admin_area", len(frame)))
    bulk_insert(conn, "admin_area", frame, geometry=good["geometry"].to_numpy(),
                reporter=run.reporter, label="writing areas")
    return None


def _write_grids(run: _Run, good: pd.DataFrame, dry: bool) -> np.ndarray | None:
    if dry:
        return None
    conn = run.conn
    plan = ensure_adopted_plan(conn)
    frame = good[["grid_id", "community_code", "tier", "police_area",
                  "co_managers_assigned"]].copy()
    frame.insert(0, "plan_id", plan)
    frame.insert(0, "id", allocate_ids(conn, "grid", len(frame)))
    frame["locked"] = False
    frame["area_km2"] = area_km2(good["geometry"].to_numpy())
    bulk_insert(conn, "grid", frame, geometry=good["geometry"].to_numpy(),
                reporter=run.reporter, label="writing grids")
    zeros = pd.DataFrame(0, index=pd.Index(frame["id"].to_numpy(), name="grid_pk"),
                         columns=list(GRID_COUNT_COLUMNS))
    zeros = zeros.reset_index()
    zeros.insert(1, "plan_id", plan)
    bulk_insert(conn, "grid_count", zeros)
    stats = assign_plan(conn, plan, reporter=run.reporter)
    run.result.unassigned = stats.unassigned_source_ids
    return None


def _communities(conn: Connection) -> tuple[np.ndarray, PolygonIndex]:
    df = read_frame(conn, "SELECT code, ST_AsBinary(geom) AS wkb FROM admin_area "
                          "WHERE level = 'community' ORDER BY code")
    geoms = geometries(df["wkb"])
    return df["code"].astype(str).to_numpy(dtype=object), PolygonIndex(geoms)


def community_of_points(conn: Connection, lon: np.ndarray, lat: np.ndarray,
                        communities: tuple[np.ndarray, PolygonIndex] | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:  # (codes, outside flags)
    """Community code covering each point, and a flag for points outside every community.

    A point outside every community (coarse boundary files) gets the nearest community, so
    it can still be coded; the flag keeps it visible. `communities` (codes, indexed
    polygons) saves reading and indexing them again for every chunk of a file.
    """
    names, index = communities if communities is not None else _communities(conn)
    geoms = index.geoms
    n = len(lon)
    if len(names) == 0:
        return np.full(n, None, dtype=object), np.ones(n, dtype=bool)
    idx = index.assign(lon, lat)
    outside = idx < 0
    if outside.any():
        tree = shapely.STRtree(geoms)
        pts = shapely.points(lon[outside], lat[outside])
        nearest = tree.query_nearest(pts, return_distance=False, all_matches=False)
        fill = np.full(outside.sum(), -1, dtype=np.int64)
        fill[nearest[0]] = nearest[1]
        idx = idx.copy()
        idx[outside] = fill
    codes_out = masked(names[np.maximum(idx, 0)], idx < 0)
    return codes_out, np.asarray(outside, dtype=bool)


def _top_rooms(conn: Connection) -> pd.Series:
    """Highest room number per community among building-0, unit-0 houses in the store."""
    top = read_frame(conn, "SELECT community_code, max(room) AS top FROM house "
                           "WHERE building = 0 AND unit = 0 GROUP BY community_code")
    return pd.Series(top["top"].to_numpy(dtype=np.int64),
                     index=top["community_code"].astype(object))


def _issue_codes(run: _Run, good: pd.DataFrame, community: np.ndarray) -> np.ndarray:
    """Codes for houses without one; address parts missing → building 0, unit 0, next room.

    The next room counts on from the store (read once per file) and from the file's
    earlier chunks.
    """
    code = good["house_code"].to_numpy(dtype=object).copy()
    need = pd.isna(code) & pd.notna(community)
    if not need.any():
        return code
    b = good["building"].to_numpy(dtype=float)
    u = good["unit"].to_numpy(dtype=float)
    r = good["room"].to_numpy(dtype=float)
    partial = need & (np.isnan(b) | np.isnan(u) | np.isnan(r))
    b = np.where(partial, 0, np.nan_to_num(b)).astype(np.int64)
    u = np.where(partial, 0, np.nan_to_num(u)).astype(np.int64)
    r = np.where(partial, 0, np.nan_to_num(r)).astype(np.int64)
    if partial.any():
        top: pd.Series = run.cached("top_rooms", lambda: _top_rooms(run.conn))
        where = pd.Series(community[partial])
        r[partial] = where.map(top).fillna(0).to_numpy(dtype=np.int64) \
            + where.groupby(community[partial]).cumcount().to_numpy() + 1
        run.cache["top_rooms"] = _raise_tops(top, community[partial], r[partial])
    code[need] = codes.encode_many(community[need].astype(str), b[need], u[need], r[need])
    return code


def _raise_tops(top: pd.Series, community: np.ndarray, rooms: np.ndarray) -> pd.Series:
    """The top room per community after issuing `rooms` in `community`."""
    issued = pd.Series(rooms).groupby(community).max()
    return pd.concat([top, issued]).groupby(level=0).max().astype(np.int64)


def _plan_grids(run: _Run) -> list[tuple[int, np.ndarray, PolygonIndex, bool]]:
    """(plan, grid pks, indexed polygons, adopted?) of every live plan, read once per file."""
    def make() -> list[tuple[int, np.ndarray, PolygonIndex, bool]]:
        adopted = adopted_plan_id(run.conn)
        out = []
        for plan in counts.live_plans(run.conn):
            idx_to_pk, geoms, _ = plan_grids(run.conn, plan)
            out.append((plan, idx_to_pk, PolygonIndex(geoms), plan == adopted))
        return out
    return cast(list[tuple[int, np.ndarray, PolygonIndex, bool]], run.cached("plans", make))


def _grid_pks(lon: np.ndarray, lat: np.ndarray, idx_to_pk: np.ndarray,
              index: PolygonIndex) -> np.ndarray:
    gi = index.assign(lon, lat)
    return np.where(gi >= 0, idx_to_pk[np.maximum(gi, 0)], -1)


def _code_clash(code: str, where: str) -> str:
    return (f"house code {code} (community + building + unit + room) is {where}; "
            "each dwelling needs its own building/unit/room")


def _write_houses(run: _Run, good: pd.DataFrame, dry: bool) -> np.ndarray | None:
    conn = run.conn
    lon = good["lon"].to_numpy(dtype=float)
    lat = good["lat"].to_numpy(dtype=float)
    if dry:
        community, outside = community_of_points(
            conn, lon, lat, run.cached("communities", lambda: _communities(conn)))
        given = good["community_code"].to_numpy(dtype=object)
        community = np.where(pd.notna(given), given, community)
        code = _issue_codes(run, good, community)
        rows = good["_row"].to_numpy(dtype=np.int64)
        present = pd.notna(code)
        dup = np.zeros(len(code), dtype=bool)
        if run.careful:  # (an optimistic run leaves shared codes to the UNIQUE constraint)
            # A code shared by two rows rejects both, also when they sit in different chunks.
            first, number, _ = first_rows(np.where(present, code, "").astype(object), present,
                                          rows, run.file_keys("_issued_house_code"))
            here = present & (np.bincount(number)[number] > 1) if len(number) else dup
            earlier = present & (first < run.first_row)
            dup = here | earlier
            if earlier.any():
                if run.skip_bad:
                    raise _WholeFile  # the earlier row may be written already
                shared = np.flatnonzero(earlier)
                _, pick = np.unique(first[shared], return_index=True)
                pick = pick[:MAX_MESSAGES_PER_CHECK]
                run.late_problems.add(first[shared][pick], "room", [
                    _code_clash(c, "shared with another row") for c in code[shared][pick]])
        taken = run.keys.house_ids_by_code.index
        used = pd.Index(code, dtype=object).isin(taken) if len(taken) else np.zeros_like(dup)
        flagged = np.flatnonzero(dup | used)[:MAX_MESSAGES_PER_CHECK]
        run.late_problems.add(rows[flagged], "room", [
            _code_clash(code[i], "already used in the store" if used[i]
                        else "shared with another row") for i in flagged])
        far = np.flatnonzero(outside)[:MAX_MESSAGES_PER_CHECK]
        run.late_warnings.add(rows[far], "lon", [
            "outside every community: loaded and flagged"
            + (f", coded under the nearest community {community[i]}" if community[i] else "")
            for i in far])
        # Object columns as they are: pandas would otherwise convert them to Arrow text.
        good["_community"] = pd.Series(community, dtype=object)
        good["_outside"] = outside
        good["_code"] = pd.Series(code, dtype=object)
        return ~(dup | used)
    frame = pd.DataFrame({
        "id": allocate_ids(conn, "house", len(good)),
        "source_id": good["source_id"], "house_code": good["_code"],
        "lon": lon, "lat": lat, "address": good["address"],
        "building": good["building"], "unit": good["unit"], "room": good["room"],
        "area_m2": good["area_m2"], "use": good["use"],
        "community_code": good["_community"], "outside_areas": good["_outside"].astype(bool),
    })
    for c in ("building", "unit", "room"):
        frame[c] = frame[c].astype("Int64")
    bulk_insert(conn, "house", frame, geometry=Points(lon, lat), reporter=run.reporter,
                label="writing houses")
    run.result.outside_areas += frame.loc[frame["outside_areas"], "source_id"].tolist()
    for plan, idx_to_pk, index, adopted in _plan_grids(run):
        pk = _grid_pks(lon, lat, idx_to_pk, index)
        ok = pk >= 0
        link = pd.DataFrame({"plan_id": plan, "house_id": frame["id"].to_numpy()[ok],
                             "grid_pk": pk[ok]})
        bulk_insert(conn, "house_grid", link, reporter=run.reporter, label="linking houses")
        run.deltas.append(counts.tally(pk, counts.house_columns(len(pk))))
        if adopted:
            run.result.unassigned += frame.loc[~ok, "source_id"].tolist()
    return None


def _write_businesses(run: _Run, good: pd.DataFrame, dry: bool) -> np.ndarray | None:
    if dry:
        return None
    conn = run.conn
    lon = good["lon"].to_numpy(dtype=float)
    lat = good["lat"].to_numpy(dtype=float)
    community, _ = community_of_points(
        conn, lon, lat, run.cached("communities", lambda: _communities(conn)))
    frame = pd.DataFrame({
        "id": allocate_ids(conn, "business", len(good)), "source_id": good["source_id"],
        "name": good["name"], "lon": lon, "lat": lat, "workers": good["workers"],
        "community_code": community,
    })
    bulk_insert(conn, "business", frame, geometry=Points(lon, lat), reporter=run.reporter,
                label="writing businesses")
    for plan, idx_to_pk, index, _ in _plan_grids(run):
        pk = _grid_pks(lon, lat, idx_to_pk, index)
        ok = pk >= 0
        bulk_insert(conn, "business_grid", pd.DataFrame({
            "plan_id": plan, "business_id": frame["id"].to_numpy()[ok], "grid_pk": pk[ok]}))
        run.deltas.append(counts.tally(pk, counts.business_columns(
            frame["workers"].to_numpy())))
    return None


def city_prefixes(conn: Connection) -> list[str]:
    """Four-digit prefixes of the loaded districts' adcodes: hukou elsewhere means floating."""
    rows = conn.execute(text("SELECT DISTINCT substr(code, 1, 4) FROM admin_area "
                             "WHERE level = 'district'")).scalars().all()
    return [str(r) for r in rows]


def _house_grid_maps(run: _Run) -> list[np.ndarray]:
    """house_id → grid_pk of every live plan, read once per file."""
    return cast(list[np.ndarray], run.cached("house_grid_maps", lambda: [
        counts.house_grid_map(run.conn, plan) for plan in counts.live_plans(run.conn)]))


def _write_people(run: _Run, good: pd.DataFrame, dry: bool) -> np.ndarray | None:
    if dry:
        return None
    conn, reporter = run.conn, run.reporter
    prefixes = run.cached("prefixes", lambda: city_prefixes(conn))
    hukou = good["hukou_code"].astype(str)
    floating = ~hukou.str.slice(0, 4).isin(prefixes).to_numpy()
    registered_on = good["registered_on"].to_numpy(dtype="datetime64[D]")
    reg_house = good["registered_house_id"].to_numpy(dtype=np.int64)
    house_id = good["house_id"].to_numpy(dtype=np.int64)
    ids = allocate_ids(conn, "person", len(good))
    person = pd.DataFrame({
        "id": ids, "source_id": good["source_id"], "id_number": good["id_number"],
        "name": good["name"], "phone": good["phone"], "birth_date": good["birth_date"],
        "sex": good["sex"], "hukou_code": hukou, "floating": floating,
        "person_class": good["person_class"], "registered_on": registered_on,
        "registered_house_id": pd.array(np.where(reg_house >= 0, reg_house, 0),
                                        dtype="Int64"),
    })
    person.loc[reg_house < 0, "registered_house_id"] = pd.NA
    bulk_insert(conn, "person", person, reporter=reporter, label="writing people")
    residence = pd.DataFrame({
        "id": allocate_ids(conn, "residence", len(good)), "person_id": ids,
        "house_id": house_id, "arrived_on": good["arrived_on"], "left_on": pd.NaT,
        "entered_on": registered_on,
        "person_flags": counts.person_flags(floating, ~np.isnat(registered_on),
                                            reg_house == house_id, good["person_class"]),
    })
    bulk_insert(conn, "residence", residence, reporter=reporter, label="writing residences")
    biz = good["business_id"].to_numpy(dtype=np.int64)
    works = biz >= 0
    if works.any():
        bulk_insert(conn, "employment", pd.DataFrame({
            "id": allocate_ids(conn, "employment", int(works.sum())),
            "person_id": ids[works], "business_id": biz[works],
            "started_on": good["arrived_on"].to_numpy()[works], "ended_on": pd.NaT,
        }))
    rows = pd.DataFrame({
        "house_id": house_id, "floating": floating.astype(int),
        "reg": (~np.isnat(registered_on)).astype(int),
        "consistent": (reg_house == house_id).astype(int),
        "person_class": good["person_class"].to_numpy(dtype=object),
    })
    for hg in _house_grid_maps(run):
        run.deltas.append(counts.people_tally(hg, rows))
    return None


def _write_rentals(run: _Run, good: pd.DataFrame, dry: bool) -> np.ndarray | None:
    if dry:
        return None
    from gridmgr.inspections import due_dates
    from gridmgr.settings import WorkloadSettings

    conn = run.conn
    registered_on = good["registered_on"].to_numpy(dtype="datetime64[D]")
    start = np.where(np.isnat(registered_on), np.datetime64(dt.date.today(), "D"),
                     registered_on)
    klass = good["rental_class"].to_numpy(dtype=object)
    due = due_dates(klass, np.full(len(good), np.datetime64("NaT"), dtype="datetime64[D]"),
                    start, WorkloadSettings())
    frame = pd.DataFrame({
        "id": allocate_ids(conn, "rental_record", len(good)), "house_id": good["house_id"],
        "landlord_id_number": good["landlord_id_number"], "tenants": good["tenants"],
        "rental_class": klass, "registered_on": registered_on, "class_changed_on": pd.NaT,
        "last_inspected_on": pd.NaT, "next_due_on": due,
    })
    bulk_insert(conn, "rental_record", frame, reporter=run.reporter, label="writing rentals")
    for hg in _house_grid_maps(run):
        pk = counts._lookup(hg, frame["house_id"].to_numpy(dtype=np.int64))
        run.deltas.append(counts.tally(pk, counts.rental_columns(
            klass, ~np.isnat(registered_on))))
    return None


Writer = Callable[[_Run, pd.DataFrame, bool], "np.ndarray | None"]

WRITERS: dict[str, Writer] = {
    "areas": _write_areas,
    "grids": _write_grids,
    "houses": _write_houses,
    "businesses": _write_businesses,
    "people": _write_people,
    "rentals": _write_rentals,
}


@dataclass
class AssignStats:
    """Outcome of assigning every house of a plan."""

    houses: int
    assigned: int
    unassigned_source_ids: list[str]
    seconds: float


def assign_plan(conn: Connection, plan_id: int, reporter: Reporter | None = None
                ) -> AssignStats:
    """(Re)assign every house and business to a plan's grids and rebuild its counts."""
    import time

    t0 = time.perf_counter()
    rep: Reporter = reporter or Quiet()
    idx_to_pk, geoms, _ = plan_grids(conn, plan_id)
    houses = read_frame(conn, "SELECT id, source_id, lon, lat FROM house ORDER BY id")
    with rep.step("assigning houses to grids", len(houses)) as bar:
        gi = assign_points(houses["lon"].to_numpy(dtype=float),
                           houses["lat"].to_numpy(dtype=float), geoms)
        bar.advance(len(houses))
    pk = np.where(gi >= 0, idx_to_pk[np.maximum(gi, 0)], -1) if len(geoms) else np.full(
        len(houses), -1)
    ok = pk >= 0
    conn.execute(text("DELETE FROM house_grid WHERE plan_id = :p"), {"p": plan_id})
    bulk_insert(conn, "house_grid", pd.DataFrame({
        "plan_id": plan_id, "house_id": houses["id"].to_numpy(dtype=np.int64)[ok],
        "grid_pk": pk[ok]}), reporter=rep, label="linking houses to grids")
    biz = read_frame(conn, "SELECT id, lon, lat FROM business ORDER BY id")
    bgi = assign_points(biz["lon"].to_numpy(dtype=float), biz["lat"].to_numpy(dtype=float),
                        geoms) if len(geoms) else np.full(len(biz), -1)
    bpk = np.where(bgi >= 0, idx_to_pk[np.maximum(bgi, 0)], -1)
    conn.execute(text("DELETE FROM business_grid WHERE plan_id = :p"), {"p": plan_id})
    bulk_insert(conn, "business_grid", pd.DataFrame({
        "plan_id": plan_id, "business_id": biz["id"].to_numpy(dtype=np.int64)[bpk >= 0],
        "grid_pk": bpk[bpk >= 0]}))
    counts.write_counts(conn, plan_id, counts.recompute(conn, plan_id))
    return AssignStats(houses=len(houses), assigned=int(ok.sum()),
                       unassigned_source_ids=houses.loc[~ok, "source_id"].astype(str).tolist(),
                       seconds=time.perf_counter() - t0)


def require_loaded(conn: Connection, what: str) -> None:
    """Raise BadInput when a table the command needs is empty."""
    table = {"areas": "admin_area", "grids": "grid", "houses": "house"}[what]
    if conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0:
        raise BadInput(f"no {what} are loaded yet; {ORDER_HINT}")
