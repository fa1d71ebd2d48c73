"""Create and upgrade the schema with Alembic, on either store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config pointing at gridmgr's migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def current_revision(engine: Engine) -> str | None:
    """The revision the store is at, or None for an empty store."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this gridmgr."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(engine: Engine) -> None:
    """Bring the store's schema to the newest revision (idempotent)."""
    if current_revision(engine) == head_revision():
        return
    _migrate(engine, command.upgrade, "head")


def downgrade(engine: Engine, revision: str) -> None:
    """Take the store's schema back to an older revision (what its migrations undo)."""
    _migrate(engine, command.downgrade, revision)


# The key under which a migration lists statements to run once it has committed.
AFTER_COMMIT = "after_commit"


def _migrate(engine: Engine, step: Callable[[Config, str], None], revision: str) -> None:
    """Run an Alembic step in one transaction, then what its migrations asked for after it.

    Some maintenance cannot run inside a transaction (VACUUM); a migration appends such
    statements to ``config.attributes[AFTER_COMMIT]``.
    """
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        step(cfg, revision)
    later = cfg.attributes.get(AFTER_COMMIT, [])
    if later:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for statement in later:
                conn.exec_driver_sql(statement)


def holds_data(engine: Engine) -> bool:
    """Return True when the store has any areas, grids or houses."""
    from sqlalchemy import inspect, text

    if "admin_area" not in inspect(engine).get_table_names():
        return False
    with engine.connect() as conn:
        return any(conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {t})")).scalar_one()
                   for t in ("admin_area", "grid", "house"))


def wipe(engine: Engine) -> None:
    """Drop every gridmgr table (the store is rebuilt by `upgrade`)."""
    from sqlalchemy import text

    from gridmgr.store.models import Base

    if engine.dialect.name == "sqlite":
        db = engine.url.database
        engine.dispose()
        if db and db != ":memory:":
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(db + suffix).unlink(missing_ok=True)
            return
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
