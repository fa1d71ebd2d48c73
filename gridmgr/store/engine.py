"""Engines for both stores: SpatiaLite (embedded default) and PostGIS, chosen by URL."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from gridmgr.errors import BadInput

DEFAULT_URL = "sqlite:///gridmgr.db"


def _sqlite_module() -> Any:
    """The DBAPI for SQLite that can load extensions: pysqlite3, else the stdlib if it can."""
    try:
        import pysqlite3.dbapi2 as mod  # type: ignore[import-not-found]

        return mod
    except ImportError:
        if hasattr(sqlite3.Connection, "enable_load_extension"):
            return sqlite3
        raise BadInput(
            "this Python's sqlite3 cannot load extensions: pip install pysqlite3-binary"
        ) from None


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own BEGIN handling defers BEGIN until the first write; we emit BEGIN
    # ourselves (see make_engine) so a transaction's reads and writes are one unit.
    dbapi_conn.isolation_level = None
    dbapi_conn.enable_load_extension(True)
    try:
        dbapi_conn.load_extension(os.environ.get("SPATIALITE_LIBRARY_PATH", "mod_spatialite"))
    except Exception as exc:  # the DBAPI's OperationalError; report the fix, not a traceback
        raise BadInput(
            "SpatiaLite is not installed: apt-get install libsqlite3-mod-spatialite"
        ) from exc
    dbapi_conn.enable_load_extension(False)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.execute("PRAGMA cache_size = -262144")  # 256 MB: index builds thrash the 2 MB default
    cur.execute("PRAGMA busy_timeout = 30000")
    if cur.execute("SELECT CheckSpatialMetaData()").fetchone()[0] < 1:
        # transaction=1 makes InitSpatialMetaData one transaction: seconds faster.
        cur.execute("SELECT InitSpatialMetaData(1, 'WGS84')")
    cur.close()


def is_sqlite(engine_or_url: Engine | str) -> bool:
    """Return True for a SpatiaLite store."""
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for a SpatiaLite file or a PostGIS database URL."""
    url = url or os.environ.get("GRIDMGR_DATABASE_URL") or DEFAULT_URL
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise BadInput(
            f"--db {url!r} is not a database URL; use sqlite:///FILE.db or "
            "postgresql+psycopg2://USER@HOST:PORT/DB"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        db = parsed.database or ""
        if db and db != ":memory:":
            parent = Path(db).expanduser().resolve().parent
            if not parent.exists():
                raise BadInput(f"--db {url!r}: directory {parent} does not exist")
        engine = create_engine(parsed, module=_sqlite_module(), **kwargs)
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)
    raise BadInput(f"--db {url!r}: unsupported database {backend!r}; use sqlite or postgresql")
