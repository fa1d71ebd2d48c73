"""Bulk writes and reads: COPY on PostGIS, executemany on SpatiaLite, chunked and streamed."""

from __future__ import annotations

import io
import itertools
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import psycopg2.errors
import shapely
from sqlalchemy import Connection, text

from gridmgr.progress import Quiet, Reporter
from gridmgr.store import pgbinary, rtree

CHUNK = 200_000


@dataclass
class Points:
    """Point geometries as coordinate arrays; encoded straight to EWKB, no shapely objects."""

    x: np.ndarray
    y: np.ndarray
    srid: int = 4326

    def __getitem__(self, s: slice) -> Points:
        return Points(self.x[s], self.y[s], self.srid)

    def geometries(self) -> np.ndarray:
        """The points as shapely geometries."""
        return shapely.points(self.x, self.y)


def is_pg(conn: Connection) -> bool:
    """Return True on PostGIS."""
    return conn.dialect.name == "postgresql"


def allocate_ids(conn: Connection, table: str, n: int) -> np.ndarray:
    """Reserve n new primary keys for `table`; keys are never reused."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if is_pg(conn):
        conn.execute(text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
        seq = f"pg_get_serial_sequence('{table}', 'id')"
        first = conn.execute(
            text(f"SELECT setval({seq}, nextval({seq}) + :n - 1) - :n + 1"), {"n": n}
        ).scalar_one()
    else:
        row = conn.execute(text("SELECT seq FROM sqlite_sequence WHERE name = :t"),
                           {"t": table}).first()
        top = conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one()
        first = max(int(row[0]) if row else 0, int(top)) + 1
    return np.arange(int(first), int(first) + n, dtype=np.int64)


def _pg_csv(frame: pd.DataFrame) -> bytes:
    """COPY-ready CSV (no header, empty = NULL) written by Arrow's C++ writer, not pandas."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    cols = {}
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            cols[col] = pa.array(pd.Series(s).to_numpy(dtype="datetime64[D]"), type=pa.date32(),
                                 mask=pd.Series(s).isna().to_numpy())
        elif s.dtype == object:
            cols[col] = pa.array(s.where(pd.notna(s), None).tolist(), from_pandas=True)
        else:
            cols[col] = pa.array(s, from_pandas=True)
    table = pa.table(cols)
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False))
    return sink.getvalue()


def _sqlite_columns(frame: pd.DataFrame) -> list[list[Any]]:
    """Each column as a list of Python values (None for missing), built in C where possible."""
    import pyarrow as pa

    cols = []
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            vals = pd.Series(s).dt.strftime("%Y-%m-%d").astype(object)
            vals = vals.where(pd.Series(s).notna(), None)
            cols.append(vals.tolist())
        elif isinstance(s.dtype, pd.StringDtype) or isinstance(s.dtype, pd.ArrowDtype):
            cols.append(pa.array(s.array).to_pylist())  # Arrow memory: no per-value Python
        elif pd.api.types.is_float_dtype(s) and not isinstance(s.dtype, pd.Float64Dtype):
            arr = s.to_numpy(dtype=float)
            nan = np.isnan(arr)
            if nan.any():
                obj = arr.astype(object)
                obj[nan] = None
                cols.append(obj.tolist())
            else:
                cols.append(arr.tolist())
        elif (pd.api.types.is_integer_dtype(s) or s.dtype == bool) and not s.isna().any():
            cols.append(s.to_numpy().tolist())
        else:
            obj = s.astype(object)
            cols.append(obj.where(pd.notna(obj), None).tolist())
    return cols


def bulk_insert(
    conn: Connection,
    table: str,
    frame: pd.DataFrame,
    *,
    geometry: np.ndarray | Points | None = None,
    geom_column: str = "geom",
    reporter: Reporter | None = None,
    label: str | None = None,
) -> int:
    """Insert every row of `frame` (column names = table columns) plus an optional geometry."""
    reporter = reporter or Quiet()
    n = len(frame)
    if n == 0:
        return 0
    cols = list(frame.columns)
    pg = is_pg(conn)
    held: dict[str, _Spatial | None] = conn.info.get(_DEFERRED, {})
    # Inside deferred_indexes the caller has dropped this table's indexes already.
    big = table not in held and _big_batch(conn, table, n)
    spatial = _sqlite_defer_geometry(conn, table, geom_column) if (
        big and geometry is not None and not pg) else None
    unchecked = spatial or held.get(table)
    if geometry is not None and unchecked is not None:
        _check_geometry(table, unchecked, geometry)
    deferred = [] if not big else (_pg_defer_indexes(conn, table) if pg
                                   else _sqlite_defer_indexes(conn, table))
    types = _pg_types(conn, table) if pg else {}
    binary = pg and all(types.get(c) in pgbinary.SUPPORTED for c in cols + (
        [geom_column] if geometry is not None else []))
    with reporter.step(label or f"writing {table}", n) as bar:
        if binary:
            _copy_pg_binary(conn, table, types, frame, cols, geometry, geom_column, bar)
        for start in range(0, 0 if binary else n, CHUNK):
            part = frame.iloc[start:start + CHUNK]
            geoms = None if geometry is None else geometry[start:start + CHUNK]
            if pg:
                _copy_pg_csv(conn, table, part, cols, geoms, geom_column)
            else:
                _insert_sqlite(conn, table, part, cols, geoms, geom_column)
            bar.advance(len(part))
    if unchecked is not None:
        _collect_boxes(unchecked, frame, geometry)
    _rebuild_indexes(conn, table, deferred, spatial, reporter)
    return n


# conn.info key: tables whose indexes deferred_indexes dropped → their geometry deferral
_DEFERRED = "gridmgr_deferred_indexes"


@contextmanager
def deferred_indexes(conn: Connection, tables: dict[str, str | None], rows: int, *,
                     reporter: Reporter | None = None) -> Iterator[None]:
    """Drop the indexes of tables about to get `rows` rows in several inserts; rebuild once.

    For each table (name → geometry column or None) the big-batch rule of `bulk_insert`
    decides; a table so marked keeps no index during the block, and `bulk_insert` into it
    leaves indexes alone. The indexes are rebuilt when the block ends normally; on an
    error the caller's transaction, rolled back, restores them.
    """
    reporter = reporter or Quiet()
    pg = is_pg(conn)
    deferred: dict[str, tuple[list[str], _Spatial | None]] = {}
    for table, geom_column in tables.items():
        if not _big_batch(conn, table, rows):
            continue
        ddl = _pg_defer_indexes(conn, table) if pg else _sqlite_defer_indexes(conn, table)
        spatial = _sqlite_defer_geometry(conn, table, geom_column) if (
            geom_column and not pg) else None
        deferred[table] = (ddl, spatial)
    held = conn.info.setdefault(_DEFERRED, {})
    held.update({table: spatial for table, (_, spatial) in deferred.items()})
    try:
        yield
    finally:
        for table in deferred:
            held.pop(table, None)
    for table, (ddl, spatial) in deferred.items():
        _rebuild_indexes(conn, table, ddl, spatial, reporter)


def _rebuild_indexes(conn: Connection, table: str, ddl: list[str], spatial: _Spatial | None,
                     reporter: Reporter) -> None:
    """Run the DDL that re-creates a table's indexes (and its geometry triggers, R*Tree)."""
    if not ddl and not spatial:
        return
    with reporter.step(f"indexing {table}", None):
        for statement in ddl:
            conn.execute(text(statement))
        if is_pg(conn) and ddl:
            # Fresh statistics, or the planner takes a table that just grew by millions
            # of rows for a small one (nested loops where a hash join belongs).
            conn.execute(text(f"ANALYZE {table}"))
        if spatial:
            _sqlite_restore_geometry(conn, table, spatial)


# Below this many rows per-row index upkeep is cheap enough; above it, and when the batch is
# big next to the table, rebuilding the indexes once is several times faster.
BIG_BATCH_MIN = 20_000


def _big_batch(conn: Connection, table: str, n: int) -> bool:
    """Whether n new rows are worth dropping and rebuilding the table's indexes for."""
    if n < BIG_BATCH_MIN:
        return False
    if is_pg(conn):  # the planner's estimate: -1 for a table never analyzed
        half = max(float(conn.execute(text(
            "SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}
        ).scalar_one()), 0.0) / 2
    else:
        half = int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()) // 2
    return n >= half


def _pg_defer_primary_key(conn: Connection, table: str) -> list[str]:
    """Drop a table's primary key for a big batch when nothing refers to its rows yet.

    Keeping the key costs a btree insert (and its WAL record) per copied row: 40 % of the
    COPY of 1.35 M houses, against 0.3 s to build it by sorting afterwards. Foreign keys
    that point at it are dropped too and re-added after it, but only when their tables are
    empty now, so re-adding them checks at most rows the same batch wrote (when they hold
    rows, the key stays). Returns the DDL that puts back the key, then the foreign keys.
    """
    pk = conn.execute(text(
        "SELECT conname, pg_get_constraintdef(oid), conindid FROM pg_constraint "
        "WHERE conrelid = CAST(:t AS regclass) AND contype = 'p'"), {"t": table}).first()
    if pk is None:
        return []
    refs = conn.execute(text(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE contype = 'f' AND conindid = :i "
        "AND conrelid <> CAST(:t AS regclass)"), {"i": pk[2], "t": table}).fetchall()
    for ref, _, _ in refs:
        if conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {ref})")).scalar_one():
            return []
    for ref, name, _ in refs:
        conn.execute(text(f'ALTER TABLE {ref} DROP CONSTRAINT "{name}"'))
    conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{pk[0]}"'))
    return [f'ALTER TABLE {table} ADD CONSTRAINT "{pk[0]}" {pk[1]}'] + [
        f'ALTER TABLE {ref} ADD CONSTRAINT "{name}" {ddl}' for ref, name, ddl in refs]


def _pg_defer_indexes(conn: Connection, table: str) -> list[str]:
    """Drop a table's secondary indexes for a big batch; return the DDL that rebuilds them.

    Building a GiST or btree index once after COPY is several times faster than updating
    it row by row. The primary key goes too when nothing refers to the table's rows
    (`_pg_defer_primary_key`); UNIQUE and FOREIGN KEY constraints are re-added
    afterwards, so duplicates and dangling references still fail the load. All of it is
    inside the caller's transaction, so a failed load restores the indexes.
    """
    rows = conn.execute(text(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = CAST(:t AS regclass) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"), {"t": table}
    ).fetchall()
    for name, _ in rows:
        conn.execute(text(f'DROP INDEX "{name}"'))
    # UNIQUE constraints on random keys (source ids, house codes) cost more per row than
    # everything else in the COPY; re-adding them sorts once and still refuses duplicates.
    uniques = conn.execute(text(
        "SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "WHERE c.conrelid = CAST(:t AS regclass) AND c.contype = 'u' AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)"),
        {"t": table}).fetchall()
    # Foreign keys likewise: a check per row becomes one join when the key is re-added.
    foreign = conn.execute(text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = CAST(:t AS regclass) AND contype = 'f'"), {"t": table}).fetchall()
    for name, _ in [*uniques, *foreign]:
        conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    # Last: the key's own referrers were just dropped above if this table refers to itself.
    primary = _pg_defer_primary_key(conn, table)
    return primary[:1] + [str(ddl) for _, ddl in rows] + [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}'
        for name, ddl in [*uniques, *foreign]] + primary[1:]


def _sqlite_defer_indexes(conn: Connection, table: str) -> list[str]:
    """Drop a table's plain btree indexes for a big batch; return the DDL that rebuilds them.

    Constraint indexes (sqlite_autoindex_*) cannot be dropped and stay; the rest are
    built once, by sorting, after the insert (inside the caller's transaction).
    """
    rows = conn.execute(text(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t "
        "AND sql IS NOT NULL"), {"t": table}).fetchall()
    for name, _ in rows:
        conn.execute(text(f'DROP INDEX "{name}"'))
    return [str(ddl) for _, ddl in rows]


@dataclass
class _Spatial:
    """What a big batch took off a SpatiaLite geometry column, to put back afterwards."""

    column: str
    geometry_type: int  # SpatiaLite's code: 1 point, 3 polygon, 6 multipolygon …
    srid: int
    index: bool  # the R*Tree is enabled; rows above `indexed_to` are not in it yet
    triggers: list[str]  # DDL of the per-row insert triggers dropped
    indexed_to: int = 0  # at first the table's top rowid when the batch began
    # (rowids, float32 boxes) of the rows bulk_insert wrote since: the R*Tree is packed from
    # them at the end (`rtree.bulk_load`); None once a write could not say its rowids
    boxes: list[tuple[np.ndarray, np.ndarray]] | None = None


# SpatiaLite's 2D geometry type code for each shapely type id (a LinearRing is a line).
_SPATIALITE_TYPE = np.array([1, 2, 2, 3, 4, 5, 6, 7])


def _check_geometry(table: str, spatial: _Spatial, geometry: np.ndarray | Points) -> None:
    """Refuse geometries the dropped type/SRID trigger would have refused, before insert."""
    if isinstance(geometry, Points):
        ok = spatial.geometry_type == 1 and geometry.srid == spatial.srid
        kinds = "points"
    else:
        # _insert_sqlite writes WKB geometries with SRID 4326. A missing geometry is left
        # to the NOT NULL constraint; SpatiaLite's type 0 takes any geometry.
        ids = shapely.get_type_id(np.asarray(geometry, dtype=object))
        codes = np.where(ids < 0, -1, _SPATIALITE_TYPE[np.maximum(ids, 0)])
        ok = spatial.srid == 4326 and bool(
            ((codes == spatial.geometry_type) | (codes < 0) | (spatial.geometry_type == 0)
             ).all())
        kinds = "geometries"
    if not ok:
        raise ValueError(f"{table}.{spatial.column} takes geometry type "
                         f"{spatial.geometry_type} in SRID {spatial.srid}; got other {kinds}")


def _sqlite_defer_geometry(conn: Connection, table: str, geom_column: str) -> _Spatial | None:
    """Take a geometry column's per-row insert work off for a big batch.

    SpatiaLite runs three statements per inserted row besides the insert: the R*Tree
    insert, a geometry type/SRID check (a subquery on geometry_columns) and a timestamp
    update of geometry_columns_time. Their triggers are dropped: the check is made on each
    batch's arrays before it is written (`_check_geometry`), the new rows go into the
    R*Tree by `index_new_rows` (one statement per batch, which a caller may run while it
    validates the next batch), and the timestamp is set once (`_sqlite_restore_geometry`).
    """
    row = conn.execute(text(
        "SELECT spatial_index_enabled, geometry_type, srid FROM geometry_columns "
        "WHERE f_table_name = :t AND f_geometry_column = :c"),
        {"t": table, "c": geom_column}).first()
    if row is None:
        return None
    enabled = bool(row[0])
    names = {"check": f"ggi_{table}_{geom_column}", "stamp": f"tmi_{table}_{geom_column}",
             "index": f"gii_{table}_{geom_column}" if enabled else ""}
    triggers = conn.execute(text(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t "
        "AND name IN (:check, :stamp, :index)"), {"t": table, **names}).fetchall()
    for name, _ in triggers:
        conn.execute(text(f'DROP TRIGGER "{name}"'))
    top = conn.execute(text(f"SELECT coalesce(max(ROWID), 0) FROM {table}")).scalar_one()
    return _Spatial(geom_column, int(row[1]), int(row[2]), enabled,
                    [str(sql) for _, sql in triggers], int(top), [] if enabled else None)


def _collect_boxes(spatial: _Spatial, frame: pd.DataFrame,
                   geometry: np.ndarray | Points | None) -> None:
    """Keep the rowids and R*Tree boxes of rows just written, for the packed R*Tree."""
    if spatial.boxes is None:
        return
    if geometry is None or "id" not in frame.columns:  # rowids unknown: index row by row
        spatial.boxes = None
        return
    ids = frame["id"].to_numpy(dtype=np.int64)
    if isinstance(geometry, Points):
        xmin = xmax = np.asarray(geometry.x, dtype=float)
        ymin = ymax = np.asarray(geometry.y, dtype=float)
    else:
        xmin, ymin, xmax, ymax = shapely.bounds(np.asarray(geometry, dtype=object)).T
    known = np.isfinite(xmin) & np.isfinite(ymin)  # an empty geometry has no box
    spatial.boxes.append((ids[known], rtree.boxes_of(xmin[known], xmax[known], ymin[known],
                                                     ymax[known])))


def index_new_rows(conn: Connection, table: str) -> None:
    """Put the rows a big batch has added so far into the table's SpatiaLite R*Tree.

    Does nothing unless `deferred_indexes` holds the table's R*Tree back (SpatiaLite
    only), nor while every row added so far came with its rowid through bulk_insert: the
    R*Tree is then packed once when the batch ends (`_sqlite_pack_index`). Otherwise one
    statement, which SQLite runs without Python's GIL: the loader runs it on a second
    thread while it validates the next chunk.
    """
    spatial = conn.info.get(_DEFERRED, {}).get(table)
    if spatial is not None and spatial.boxes is None:  # else packed once at the end
        _sqlite_index_rows(conn, table, spatial)


def _sqlite_pack_index(conn: Connection, table: str, spatial: _Spatial) -> bool:
    """Rebuild the R*Tree packed from its boxes and the batch's; False if it cannot.

    Only when every row the batch added came through bulk_insert with its rowid (the
    rows above the batch's first top rowid are exactly the rows collected): otherwise the
    caller indexes row by row.
    """
    if spatial.boxes is None or not spatial.index:
        return False
    added = sum(len(ids) for ids, _ in spatial.boxes)
    rows = conn.execute(text(f"SELECT count(*) FROM {table} WHERE ROWID > :top"),
                        {"top": spatial.indexed_to}).scalar_one()
    if rows != added:
        return False
    raw: Any = conn.connection.dbapi_connection
    name = f"idx_{table}_{spatial.column}"
    parts = [rtree.read_boxes(raw, name)] if spatial.indexed_to else []
    parts += spatial.boxes
    spatial.boxes = None
    ids = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, dtype=np.int64)
    box = np.concatenate([p[1] for p in parts]) if parts else np.empty((0, 4), np.float32)
    del parts
    rtree.bulk_load(raw, name, ids, box, in_place=True)  # ids and box are ours alone
    spatial.indexed_to = int(conn.execute(text(
        f"SELECT coalesce(max(ROWID), 0) FROM {table}")).scalar_one())
    return True


def _sqlite_index_rows(conn: Connection, table: str, spatial: _Spatial) -> None:
    """Insert rows above `spatial.indexed_to` into the R*Tree, as the dropped trigger would."""
    if not spatial.index:
        return
    col = spatial.column
    top = conn.execute(text(f"SELECT coalesce(max(ROWID), 0) FROM {table}")).scalar_one()
    if top <= spatial.indexed_to:
        return
    # As SpatiaLite's CreateSpatialIndex fills it (the R*Tree rounds each box outwards to
    # its 32-bit floats); three times faster than the trigger's RTreeAlign row by row.
    g = f'"{col}"'
    conn.execute(text(
        f'INSERT INTO "idx_{table}_{col}" (pkid, xmin, xmax, ymin, ymax) '
        f"SELECT ROWID, MbrMinX({g}), MbrMaxX({g}), MbrMinY({g}), MbrMaxY({g}) FROM {table} "
        f"WHERE ROWID > :f AND ROWID <= :t AND MbrMinX({g}) IS NOT NULL"),
        {"f": spatial.indexed_to, "t": top})
    spatial.indexed_to = int(top)


def _sqlite_restore_geometry(conn: Connection, table: str, spatial: _Spatial) -> None:
    """Put back what `_sqlite_defer_geometry` took off, doing its work once for the table."""
    if not _sqlite_pack_index(conn, table, spatial):
        _sqlite_index_rows(conn, table, spatial)
    for ddl in spatial.triggers:
        conn.execute(text(ddl))
    conn.execute(text(
        "UPDATE geometry_columns_time SET last_insert = strftime('%Y-%m-%dT%H:%M:%fZ', "
        "'now') WHERE Lower(f_table_name) = Lower(:t) AND Lower(f_geometry_column) = "
        "Lower(:c)"), {"t": table, "c": spatial.column})


def _pg_types(conn: Connection, table: str) -> dict[str, str]:
    """Column name → type name (int8, varchar, geometry …) of a PostgreSQL table."""
    rows = conn.execute(text(
        "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 AND NOT a.attisdropped"),
        {"t": table}).fetchall()
    return {str(name): str(typ) for name, typ in rows}


# Bytes handed to libpq per call: psycopg2 takes the GIL back after each block, which a busy
# second thread (the next chunk's validation) can delay by its switch interval; 8 KB blocks
# made a COPY of 1.35 M houses a quarter slower next to such a thread.
COPY_BLOCK = 8 << 20


class _Pieces:
    """A file-like view of binary COPY pieces as a helper thread encodes them, for psycopg2.

    Each piece is the rows of one CHUNK of the frame without the COPY header and trailer;
    `read` sends the header first and the trailer after the last piece, and raises the
    encoder's error if it had one (psycopg2 then aborts the COPY).
    """

    def __init__(self, pieces: queue.Queue[Any], bar: Any) -> None:
        self.pieces, self.bar = pieces, bar
        self.data, self.at, self.finished = memoryview(pgbinary.HEADER), 0, False

    def read(self, size: int = -1) -> bytes:
        while self.at >= len(self.data):
            if self.finished:
                return b""
            item = self.pieces.get()
            if item is None:
                self.data, self.finished = memoryview(pgbinary.TRAILER), True
            elif isinstance(item, BaseException):
                raise item
            else:
                self.data, rows = item
                self.bar.advance(rows)
            self.at = 0
        end = len(self.data) if size is None or size < 0 else self.at + size
        out = bytes(self.data[self.at:end])
        self.at += len(out)
        return out

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def _binary_columns(types: dict[str, str], part: pd.DataFrame, cols: list[str],
                    geoms: np.ndarray | Points | None
                    ) -> list[tuple[pd.Series | np.ndarray, str]]:
    """The columns of one piece as pgbinary.encode takes them (geometry as EWKB last)."""
    columns: list[tuple[pd.Series | np.ndarray, str]] = [(part[c], types[c]) for c in cols]
    if isinstance(geoms, Points):
        columns.append((pgbinary.point_ewkb(geoms.x, geoms.y, geoms.srid), "geometry"))
    elif geoms is not None:
        columns.append((shapely.to_wkb(geoms, include_srid=True), "geometry"))
    return columns


def _copy_pg_binary(conn: Connection, table: str, types: dict[str, str], frame: pd.DataFrame,
                    cols: list[str], geometry: np.ndarray | Points | None, geom_column: str,
                    bar: Any) -> None:
    """One binary COPY of the whole frame, encoded CHUNK rows at a time on a helper thread.

    Binary COPY leaves the server nothing to parse (no decimal floats, no hex WKB); and
    while it stores one piece the next is being encoded, so this process and the server
    work at the same time instead of taking turns.
    """
    all_cols = list(cols) + ([geom_column] if geometry is not None else [])
    pieces: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def encode() -> None:
        try:
            for start in range(0, len(frame), CHUNK):
                if stop.is_set():
                    return
                part = frame.iloc[start:start + CHUNK]
                geoms = None if geometry is None else geometry[start:start + CHUNK]
                data = pgbinary.encode_rows(_binary_columns(types, part, cols, geoms))
                pieces.put((data, len(part)))
            pieces.put(None)
        except BaseException as exc:  # handed to the reader, which raises it in the COPY
            pieces.put(exc)

    encoder = threading.Thread(target=encode, name="gridmgr-copy-encode", daemon=True)
    encoder.start()
    raw: Any = conn.connection.dbapi_connection
    try:
        with raw.cursor() as cur:
            cur.copy_expert(f"COPY {table} ({', '.join(all_cols)}) FROM STDIN "
                            "WITH (FORMAT binary)", _Pieces(pieces, bar), size=COPY_BLOCK)
    finally:
        stop.set()
        while encoder.is_alive():  # unblock an encoder waiting to hand over a piece
            try:
                pieces.get(timeout=0.05)
            except queue.Empty:
                pass
        encoder.join()


def _copy_pg_csv(conn: Connection, table: str, part: pd.DataFrame, cols: list[str],
                 geoms: np.ndarray | Points | None, geom_column: str) -> None:
    """COPY a piece as CSV, for tables with column types binary COPY here cannot write."""
    all_cols = list(cols) + ([geom_column] if geoms is not None else [])
    raw: Any = conn.connection.dbapi_connection
    data = part[cols].copy()
    if isinstance(geoms, Points):
        geoms = geoms.geometries()
    if geoms is not None:
        data[geom_column] = shapely.to_wkb(geoms, hex=True, include_srid=True)
    with raw.cursor() as cur:
        cur.copy_expert(f"COPY {table} ({', '.join(all_cols)}) FROM STDIN WITH (FORMAT csv)",
                        io.BytesIO(_pg_csv(data)))


def _insert_sqlite(conn: Connection, table: str, part: pd.DataFrame, cols: list[str],
                   geoms: np.ndarray | Points | None, geom_column: str) -> None:
    columns = _sqlite_columns(part)
    placeholders = ["?"] * len(cols)
    all_cols = list(cols)
    if isinstance(geoms, Points):
        columns += [geoms.x.tolist(), geoms.y.tolist()]
        placeholders.append(f"MakePoint(?, ?, {int(geoms.srid)})")
        all_cols.append(geom_column)
    elif geoms is not None:
        columns.append(shapely.to_wkb(geoms).tolist())
        placeholders.append("GeomFromWKB(?, 4326)")
        all_cols.append(geom_column)
    rows = list(zip(*columns, strict=True))
    sql = f"INSERT INTO {table} ({', '.join(all_cols)}) VALUES ({', '.join(placeholders)})"
    raw: Any = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    cur.executemany(sql, rows)
    cur.close()


def _wkb_bytes(v: object) -> bytes:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    text_ = str(v)
    return bytes.fromhex(text_[2:] if text_.startswith("\\x") else text_)


def geometries(values: Any) -> np.ndarray:
    """Shapely geometries from a column of WKB as the driver returns it (bytes or hex)."""
    vals = list(values)
    if not vals:
        return np.empty(0, dtype=object)
    return np.asarray(shapely.from_wkb([_wkb_bytes(v) for v in vals]), dtype=object)


def read_ints(conn: Connection, sql: str) -> np.ndarray:
    """One integer column of a query as an int64 array, the fastest way each store allows.

    Callers pack several small fields into one integer in SQL, so millions of rows cross
    the driver as one value each.
    """
    return read_int_columns(conn, sql, 1)[:, 0]


def read_int_columns(conn: Connection, sql: str, k: int) -> np.ndarray:
    """The k integer columns of a query (never NULL) as an (rows × k) int64 array.

    PostGIS concatenates each column (or pair of columns) into one binary value that numpy
    reads in place (``_pg_int_columns``); SQLite builds one string in C that numpy
    parses, 3-4x faster than a Python tuple per row. Row order is the query's.
    """
    raw: Any = conn.connection.dbapi_connection
    if is_pg(conn):
        return _pg_int_columns(raw, sql, k)
    return _sqlite_int_columns(raw, sql, k)


def _sqlite_int_columns(raw: Any, sql: str, k: int) -> np.ndarray:
    """read_int_columns on a sqlite3 connection: one group_concat string numpy parses."""
    names = [f"c{i}" for i in range(k)]
    joined_cols = " || ' ' || ".join(names)
    cur = raw.cursor()
    try:
        cur.execute(f"WITH q({', '.join(names)}) AS ({sql}) "
                    f"SELECT count(*), group_concat({joined_cols}, ' ') FROM q")
        n, joined = cur.fetchone()
        out = (np.fromstring(joined, dtype=np.int64, sep=" ") if joined
               else np.empty(0, dtype=np.int64))
    except raw.DataError:  # beyond SQLite's string limit (~1 GB): row by row instead
        cur.execute(sql)
        got = cur.fetchall()
        n = len(got)
        out = np.fromiter(itertools.chain.from_iterable(got), dtype=np.int64, count=n * k)
    finally:
        cur.close()
    if out.size != n * k:  # group_concat skips a NULL silently
        raise ValueError(f"NULL or non-integer values in {sql!r}")
    return out.reshape(-1, k)


def _pg_int_columns(raw: Any, sql: str, k: int) -> np.ndarray:
    """read_int_columns on a psycopg2 connection: the columns as server-built bytea values.

    Binary COPY sends one message per row, and psycopg2 makes a Python call for each:
    1.1 s of client CPU per 6.7 M rows, against 0.25 s for the same values concatenated
    server-side (``string_agg(int8send(...))``), at no more server CPU than the rows.
    Each aggregated column costs the server about 0.6 s per 6.7 M rows, so columns go in
    pairs, ``high * 2**32 + low``: ids and packed flags fit, and a pair that does not
    (PostgreSQL raises on the overflow; min/max show a low value out of range) is read
    again unpaired. A value past PostgreSQL's 1 GB limit (134 M rows) fails with
    program_limit_exceeded; the rows are then read one COPY row each.
    """
    names = [f"c{i}" for i in range(k)]
    src = f"FROM ({sql}) AS q({', '.join(names)})"
    with raw.cursor() as cur, _savepoint(raw, cur) as undo:
        if k >= 2:
            try:
                return _int8_columns(_copy_out(cur, _paired_sql(names, src)), k, sql,
                                     paired=True)
            except (psycopg2.errors.NumericValueOutOfRange, _LowOutOfRange):
                undo()
        try:
            return _int8_columns(_copy_out(cur, _aggregated_sql(names, src)), k, sql)
        except psycopg2.errors.ProgramLimitExceeded:
            undo()
            return _pg_int_rows(cur, sql, names)


@contextmanager
def _savepoint(raw: Any, cur: Any) -> Iterator[Any]:
    """A savepoint around reads that may fail; yields the function that rolls back to it.

    Without a transaction (autocommit) a failed statement spoils nothing, so there is
    nothing to roll back.
    """
    active = not raw.autocommit
    if active:
        cur.execute("SAVEPOINT gridmgr_read_ints")

    def undo() -> None:
        if active:
            cur.execute("ROLLBACK TO SAVEPOINT gridmgr_read_ints")

    yield undo
    if active:
        cur.execute("RELEASE SAVEPOINT gridmgr_read_ints")


def _agg(expr: str) -> str:
    return f"string_agg(int8send({expr}), ''::bytea)"


def _aggregated_sql(names: list[str], src: str) -> str:
    """count(*) (string_agg skips NULLs, so every column must have that many), then k bytea."""
    return f"SELECT count(*), {', '.join(_agg(f'CAST({c} AS int8)') for c in names)} {src}"


def _paired_sql(names: list[str], src: str) -> str:
    """count(*), min and max of each pair's low column, then one bytea per column pair."""
    cols, bounds = [], []
    for i in range(0, len(names), 2):
        if i + 1 == len(names):
            cols.append(_agg(f"CAST({names[i]} AS int8)"))
            continue
        high, low = f"CAST({names[i]} AS int8)", f"CAST({names[i + 1]} AS int8)"
        cols.append(_agg(f"{high} * {_LOW} + {low}"))
        bounds += [f"coalesce(min({low}), 0)", f"coalesce(max({low}), 0)"]
    return f"SELECT count(*), {', '.join(bounds + cols)} {src}"


_LOW = 2 ** 32


def _copy_out(cur: Any, query: str) -> memoryview:
    """The binary COPY of a query, without its file header and trailer."""
    buf = io.BytesIO()
    cur.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT binary)", buf)
    return buf.getbuffer()[len(pgbinary.HEADER):-len(pgbinary.TRAILER)]


class _LowOutOfRange(Exception):
    """A paired read's low column held a value outside 0..2**32-1: read it unpaired."""


def _int8_columns(data: memoryview, k: int, sql: str, *, paired: bool = False) -> np.ndarray:
    """(rows × k) values from the one COPY row of _aggregated_sql or _paired_sql."""
    fields, pos, head = int.from_bytes(data[:2], "big"), 2, []
    n_pairs = k // 2 if paired else 0
    blobs = (k + 1) // 2 if paired else k
    if fields != 1 + 2 * n_pairs + blobs:
        raise ValueError(f"unexpected answer to the read of {sql!r}")
    for _ in range(1 + 2 * n_pairs):  # count(*), then each pair's low min and max
        size = int.from_bytes(data[pos:pos + 4], "big", signed=True)
        head.append(int.from_bytes(data[pos + 4:pos + 4 + size], "big", signed=True))
        pos += 4 + size
    n, lows = head[0], head[1:]
    if any(lo < 0 or hi >= _LOW for lo, hi in zip(lows[::2], lows[1::2], strict=True)):
        raise _LowOutOfRange
    out = np.empty((n, k), dtype=np.int64)
    for i in range(blobs):
        size = int.from_bytes(data[pos:pos + 4], "big", signed=True)
        if max(size, 0) != 8 * n:
            raise ValueError(f"NULL or non-integer values in {sql!r}")
        values = np.frombuffer(data, ">i8", n, pos + 4).astype(np.int64)
        pos += 4 + max(size, 0)
        if not paired:
            out[:, i] = values
        elif 2 * i + 1 < k:
            out[:, 2 * i], out[:, 2 * i + 1] = values >> 32, values & (_LOW - 1)
        else:
            out[:, 2 * i] = values
    return out


def _pg_int_rows(cur: Any, sql: str, names: list[str]) -> np.ndarray:
    """read_int_columns as one binary COPY row per result row (for results past 1 GB)."""
    cast = ", ".join(f"CAST({c} AS int8)" for c in names)
    data = _copy_out(cur, f"SELECT {cast} FROM ({sql}) AS q({', '.join(names)})")
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for c in names:
        fields += [(f"len_{c}", ">i4"), (c, ">i8")]
    size = 2 + 12 * len(names)
    rows = np.frombuffer(data, dtype=fields, count=len(data) // size)
    if len(data) != size * len(rows) or any((rows[f"len_{c}"] != 8).any() for c in names):
        raise ValueError(f"NULL or non-integer values in {sql!r}")
    return np.stack([rows[c].astype(np.int64) for c in names], axis=1)


def read_int_columns_many(conn: Connection, queries: Mapping[str, tuple[str, int]],
                          workers: int = 3) -> dict[str, np.ndarray]:
    """Several read_int_columns at once: {name: (sql, k)} → {name: array}.

    See iter_int_columns for how the reads share one snapshot and run side by side.
    """
    return dict(iter_int_columns(conn, queries, workers))


def iter_int_columns(conn: Connection, queries: Mapping[str, tuple[str, int]],
                     workers: int = 3) -> Iterator[tuple[str, np.ndarray]]:
    """(name, array) of each read_int_columns query, in the order the reads finish.

    On PostGIS, when this transaction has written nothing yet, the queries run in parallel
    on their own connections, all importing this transaction's snapshot
    (``pg_export_snapshot``), so together they see one consistent state of the store, as
    pg_dump's parallel workers do. Each query is one single-threaded COPY on the server,
    so this is the way to use more than one core. A SQLite file is read the same way when
    its readers provably share one snapshot (``_sqlite_parallel``). Otherwise (writes
    pending that other connections could not see, an in-memory database, or a commit
    between the readers' starts) they run one after another on ``conn``. The caller can
    work on the first arrays while the rest are still being read.
    """
    raw_main: Any = conn.connection.dbapi_connection
    if len(queries) >= 2 and is_pg(conn) and not raw_main.autocommit and not conn.execute(
            text("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")).scalar_one():
        yield from _pg_parallel(conn, queries, workers)
    elif (len(queries) >= 2 and not is_pg(conn) and not raw_main.in_transaction
            and _sqlite_file(conn)):
        yield from _sqlite_parallel(conn, queries, workers)
    else:
        yield from _serial(conn, queries)


def _serial(conn: Connection, queries: Mapping[str, tuple[str, int]]
            ) -> Iterator[tuple[str, np.ndarray]]:
    for name, (sql, k) in queries.items():
        yield name, read_int_columns(conn, sql, k)


def _sqlite_file(conn: Connection) -> bool:
    """True when the SQLite database is a file other connections can open (not in memory)."""
    db = conn.engine.url.database or ""
    return bool(db) and db != ":memory:" and "mode=memory" not in db


def _as_finished(jobs: Mapping[str, Any], run: Callable[[Any], np.ndarray], workers: int
                 ) -> Iterator[tuple[str, np.ndarray]]:
    """run(job) of every job on a thread pool, yielded as (name, result) as each finishes."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(run, job): name for name, job in jobs.items()}
        for done in as_completed(futures):
            yield futures[done], done.result()


def _pg_parallel(conn: Connection, queries: Mapping[str, tuple[str, int]], workers: int
                 ) -> Iterator[tuple[str, np.ndarray]]:
    snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()

    def one(job: tuple[str, int]) -> np.ndarray:
        raw: Any = conn.engine.raw_connection()
        try:
            with raw.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cur.execute("SET TRANSACTION SNAPSHOT %s", (snapshot,))
            return _pg_int_columns(raw, *job)
        finally:
            raw.rollback()
            raw.close()

    yield from _as_finished(queries, one, workers)


def _sqlite_parallel(conn: Connection, queries: Mapping[str, tuple[str, int]], workers: int
                     ) -> Iterator[tuple[str, np.ndarray]]:
    """The SQLite side of iter_int_columns; one after another on ``conn`` without a snapshot.

    Each reader opens a read transaction first; a watcher's ``PRAGMA data_version`` taken
    before and after shows whether anyone committed meanwhile. If not, every reader holds
    the same snapshot (WAL keeps it for the whole transaction) and the reads, each one
    sqlite3_step that releases the GIL, run side by side.
    """
    pooled: list[Any] = [conn.engine.raw_connection() for _ in range(len(queries) + 1)]
    watcher, *readers = [p.dbapi_connection for p in pooled]
    try:
        before = watcher.execute("PRAGMA data_version").fetchone()[0]
        for raw in readers:
            raw.execute("BEGIN")
            raw.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if watcher.execute("PRAGMA data_version").fetchone()[0] != before:
            yield from _serial(conn, queries)
            return
        jobs = dict(zip(queries, zip(readers, queries.values(), strict=True), strict=True))
        yield from _as_finished(jobs, lambda job: _sqlite_int_columns(job[0], *job[1]),
                                workers)
    finally:
        for p in pooled:
            p.rollback()
            p.close()


def read_frame(conn: Connection, sql: str, params: dict[str, Any] | None = None, *,
               fast: bool = False, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a query into a frame.

    With `fast` on PostGIS the rows come through COPY TO, several times faster for millions
    of rows; only for queries whose text columns never look like numbers (CSV type
    inference would turn a code such as '0012' into 12), and only without parameters. On
    SpatiaLite `fast` reads the driver's plain tuples (no type processing: booleans come
    back as 0/1, dates as text). `text_columns` are read as text on PostGIS's fast path,
    so codes made of digits stay codes.
    """
    if fast and is_pg(conn) and not params:
        raw: Any = conn.connection.dbapi_connection
        assert raw is not None
        buf = io.StringIO()
        with raw.cursor() as cur:
            cur.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", buf)
        buf.seek(0)
        if not text_columns:
            return pd.read_csv(buf)
        # Only an empty field is missing: a key such as "NA" or "null" stays a key.
        return pd.read_csv(buf, dtype=dict.fromkeys(text_columns, str),
                           keep_default_na=False, na_values=[""])
    if fast and not is_pg(conn):
        # The raw cursor's tuples skip SQLAlchemy's Row processing (most of the time here);
        # sqlite3 takes the same :name parameters.
        raw_conn: Any = conn.connection.dbapi_connection
        cur = raw_conn.cursor()
        cur.execute(sql, params or {})
        names = [d[0] for d in cur.description]
        data = cur.fetchall()
        cur.close()
        if not data:
            return pd.DataFrame({k: pd.Series(dtype=object) for k in names})
        return pd.DataFrame.from_records(data, columns=names)
    result = conn.execute(text(sql), params or {})
    keys = list(result.keys())
    # Plain tuples: pandas inspects Row objects one by one, ten times slower.
    rows = [tuple(r) for r in result.fetchall()]
    if not rows:
        return pd.DataFrame({k: pd.Series(dtype=object) for k in keys})
    return pd.DataFrame.from_records(rows, columns=keys)
