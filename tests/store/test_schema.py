"""The Alembic migrations build exactly the models' schema on both stores."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from geoalchemy2 import alembic_helpers
from sqlalchemy import text

from gridmgr.store.engine import make_engine
from gridmgr.store.models import Base
from gridmgr.store.schema import current_revision, head_revision, upgrade

SPATIALITE_OWN = {"data_licenses", "sql_statements_log", "SpatialIndex", "KNN",
                  "ElementaryGeometries"}


def test_migrations_match_models(store_url: str) -> None:
    engine = make_engine(store_url)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={
            "include_object": alembic_helpers.include_object})
        diff = compare_metadata(ctx, Base.metadata)
    # SpatiaLite's own metadata tables are not ours; ignore only those
    diff = [d for d in diff if not (isinstance(d, tuple) and d[0] == "remove_table"
                                    and str(d[1].name) in SPATIALITE_OWN)]
    assert diff == []


def test_upgrade_is_idempotent(spatialite_url: str) -> None:
    engine = make_engine(spatialite_url)
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_code_columns_collate_bytewise_on_postgis(postgis_url: str) -> None:
    """Every column the models declare with collation "C" has it in the store, and only those."""
    engine = make_engine(postgis_url)
    upgrade(engine)
    declared = {(t.name, c.name) for t in Base.metadata.tables.values() for c in t.columns
                if getattr(c.type.dialect_impl(engine.dialect), "collation", None) == "C"}
    assert ("house", "house_code") in declared and ("admin_area", "code") in declared
    with engine.connect() as conn:
        stored = {(t, c) for t, c in conn.execute(text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND collation_name = 'C' "
            "AND table_name IN (SELECT tablename FROM pg_tables)"))}
        # a join of two code columns needs one collation: this would fail on a mix
        conn.execute(text("SELECT count(*) FROM house h JOIN admin_area a "
                          "ON a.code = h.community_code"))
    assert stored == declared
