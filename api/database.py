"""Database access for the API: asyncpg on PostGIS, the sync engine in a threadpool on SpatiaLite.

Queries are written once with named parameters (``:name``) and always bound: for asyncpg
they are rewritten to positional ``$n`` placeholders (cached per statement, so asyncpg's
prepared-statement cache applies); on SpatiaLite they go through SQLAlchemy ``text()``.
A ``Unit`` is one connection for one request; ``write=True`` makes it one transaction
(a read and its audit row commit together or not at all).
"""

from __future__ import annotations

import functools
import json
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from starlette.concurrency import run_in_threadpool

Row = Mapping[str, Any]

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=512)
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """Rewrite ``:name`` placeholders to ``$1, $2 ...``; return the SQL and the name order.

    ``::type`` casts are left alone.
    """
    names: list[str] = []

    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _NAMED.sub(repl, sql), tuple(names)


class Unit(ABC):
    """One connection (and, for writes, one transaction) used by one request."""

    @abstractmethod
    async def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Every row of a query, as mappings."""

    async def fetchrow(self, sql: str, params: Mapping[str, Any] | None = None) -> Row | None:
        """The first row of a query, or None."""
        rows = await self.fetch(sql, params)
        return rows[0] if rows else None

    @abstractmethod
    async def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns no rows."""


class Db(ABC):
    """A source of units for one store."""

    dialect: str

    @abstractmethod
    def unit(self, write: bool = False, generic: bool = False) -> Any:
        """An async context manager yielding a ``Unit``.

        ``generic`` asks for a connection that keeps one generic plan per statement: for
        lookups whose best plan does not depend on the values bound (a point, a code).
        """

    @abstractmethod
    def codes_param(self, codes: Sequence[str]) -> Any:
        """Bind a list of codes for ``sql.in_codes`` (a text[] or a JSON array)."""

    async def open(self) -> None:  # noqa: B027 (optional hook)
        """Open pools (asyncpg); nothing to do for SpatiaLite."""

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Close pools."""


# --------------------------------------------------------------------------- PostGIS / asyncpg


class PgUnit(Unit):
    """A unit on one asyncpg connection."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Every row of a query, as asyncpg Records (mappings by column name)."""
        query, names = positional(sql)
        p = params or {}
        return list(await self.conn.fetch(query, *[p[n] for n in names]))

    async def fetchrow(self, sql: str, params: Mapping[str, Any] | None = None) -> Row | None:
        """The first row of a query, or None."""
        query, names = positional(sql)
        p = params or {}
        row: Row | None = await self.conn.fetchrow(query, *[p[n] for n in names])
        return row

    async def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns no rows."""
        query, names = positional(sql)
        p = params or {}
        await self.conn.execute(query, *[p[n] for n in names])


async def _keep_session(conn: Any) -> None:
    """Skip asyncpg's per-release RESET ALL / UNLISTEN round trip.

    API connections never change session state (no SET, LISTEN, advisory locks or open
    cursors); asyncpg still rolls back a transaction left open before calling this.
    """


def asyncpg_dsn(url: str) -> str:
    """The libpq URL asyncpg takes for a SQLAlchemy ``postgresql+driver://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgDb(Db):
    """asyncpg pool opened in the app's lifespan (hot paths on PostGIS)."""

    dialect = "postgresql"

    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 8) -> None:
        self.dsn = asyncpg_dsn(url)
        self.min_size, self.max_size = min_size, max(min_size, max_size)
        self.pool: Any = None
        self.generic_pool: Any = None

    async def open(self) -> None:
        """Open the pools; JIT off (short OLTP queries only lose by compiling).

        The second pool plans each prepared statement once (``force_generic_plan``).
        PostgreSQL re-plans houses-near for every call by default, which costs more than
        running it (0.6 ms of 1.3 ms).  That suits a point lookup, but not the bbox pages:
        a generic plan cannot tell a street-sized box from the whole city (16 s instead
        of 10 ms), so those stay on the default pool.
        """
        import asyncpg

        settings = {"jit": "off", "application_name": "gridmgr-api"}
        self.pool = await asyncpg.create_pool(
            self.dsn, min_size=self.min_size, max_size=self.max_size, reset=_keep_session,
            server_settings=settings)
        self.generic_pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=self.max_size, reset=_keep_session,
            server_settings={**settings, "plan_cache_mode": "force_generic_plan"})

    async def close(self) -> None:
        """Close the pools."""
        for pool in (self.pool, self.generic_pool):
            if pool is not None:
                await pool.close()
        self.pool = self.generic_pool = None

    @asynccontextmanager
    async def unit(self, write: bool = False, generic: bool = False) -> AsyncIterator[Unit]:
        """A pooled connection; inside one transaction when ``write``."""
        async with (self.generic_pool if generic else self.pool).acquire() as conn:
            if write:
                async with conn.transaction():
                    yield PgUnit(conn)
            else:
                yield PgUnit(conn)

    def codes_param(self, codes: Sequence[str]) -> Any:
        """A Python list (bound as text[])."""
        return list(codes)


# --------------------------------------------------------------------------- SQLAlchemy (sync)


class SyncUnit(Unit):
    """A unit on one SQLAlchemy connection, each call run in the threadpool."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _fetch(self, sql: str, params: Mapping[str, Any] | None) -> list[Row]:
        result = self.conn.execute(text(sql), dict(params or {})).mappings().all()
        return cast(list[Row], list(result))

    async def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Every row of a query, as mappings."""
        return await run_in_threadpool(self._fetch, sql, params)

    async def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns no rows."""
        await run_in_threadpool(self.conn.execute, text(sql), dict(params or {}))


class SyncDb(Db):
    """The SQLAlchemy engine in FastAPI's threadpool (SpatiaLite, or PostGIS without asyncpg)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @asynccontextmanager
    async def unit(self, write: bool = False, generic: bool = False) -> AsyncIterator[Unit]:
        """A pooled connection; committed when ``write`` and no error, else rolled back.

        ``generic`` changes nothing here: SQLite plans every statement it prepares.
        """
        conn = await run_in_threadpool(self.engine.connect)
        try:
            if write:
                await run_in_threadpool(conn.begin)
            yield SyncUnit(conn)
            if write:
                await run_in_threadpool(conn.commit)
        finally:
            await run_in_threadpool(conn.close)

    def codes_param(self, codes: Sequence[str]) -> Any:
        """A JSON array (SQLite reads it with json_each) or a list (PostGIS text[])."""
        if self.dialect == "sqlite":
            return json.dumps(list(codes))
        return list(codes)
