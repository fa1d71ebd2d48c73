"""Bulk reads: one integer column of many rows, the fastest way each store allows."""

from __future__ import annotations

import numpy as np
import pytest

from gridmgr.store.bulk import read_ints
from gridmgr.store.engine import make_engine

SQL = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000) "
       "SELECT i * 4294967296 - 7 * i FROM n WHERE i <= :top")


def test_read_ints_returns_every_value_on_both_stores(store_url: str) -> None:
    with make_engine(store_url).connect() as conn:
        got = read_ints(conn, SQL.replace(":top", "50000"))
        assert read_ints(conn, SQL.replace(":top", "0")).size == 0
    i = np.arange(1, 50_001, dtype=np.int64)
    assert got.dtype == np.int64 and np.array_equal(got, i * 4294967296 - 7 * i)


def test_fast_text_columns_keep_keys_that_look_like_missing_values(store_url: str) -> None:
    from gridmgr.store.bulk import read_frame

    sql = ("SELECT 1 AS id, 'NA' AS source_id, '007' AS code UNION ALL "
           "SELECT 2, 'null', NULL UNION ALL SELECT 3, 'NaN', '0012'")
    with make_engine(store_url).connect() as conn:
        got = read_frame(conn, sql, fast=True, text_columns=("source_id", "code"))
    assert got["source_id"].tolist() == ["NA", "null", "NaN"]
    assert got["code"].tolist()[0] == "007" and got["code"].tolist()[2] == "0012"
    assert got["code"].isna().tolist() == [False, True, False]


def test_many_reads_match_one_by_one_on_both_stores(store_url: str) -> None:
    from gridmgr.store.bulk import read_int_columns, read_int_columns_many

    queries = {"a": (SQL.replace(":top", "30000"), 1),
               "b": ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                     "WHERE i < 2000) SELECT i, i * 3 FROM n", 2),
               "c": (SQL.replace(":top", "0"), 1)}
    with make_engine(store_url).connect() as conn:
        many = read_int_columns_many(conn, queries)
        one = {k: read_int_columns(conn, sql, n) for k, (sql, n) in queries.items()}
    assert set(many) == set(queries)
    for k in queries:
        assert np.array_equal(many[k], one[k]) and many[k].shape == one[k].shape


def test_parallel_reads_share_the_callers_snapshot(postgis_url: str) -> None:
    """Readers on other connections see what the caller sees: not a row committed later."""
    from sqlalchemy import event, text

    from gridmgr.store.bulk import read_int_columns_many

    engine = make_engine(postgis_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE snap (i bigint)"))
        conn.execute(text("INSERT INTO snap SELECT generate_series(1, 1000)"))
    checkouts: list[int] = []
    event.listen(engine, "checkout", lambda *a: checkouts.append(1))
    queries = {"all": ("SELECT i FROM snap", 1), "max": ("SELECT max(i) FROM snap", 1)}
    with engine.connect() as conn:
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        assert conn.execute(text("SELECT count(*) FROM snap")).scalar_one() == 1000
        with engine.begin() as other:  # committed after the caller's snapshot was taken
            other.execute(text("INSERT INTO snap VALUES (5000)"))
        before = len(checkouts)
        got = read_int_columns_many(conn, queries)
        assert len(checkouts) - before == len(queries)  # really on other connections
        assert got["all"].shape == (1000, 1) and int(got["max"][0, 0]) == 1000
        conn.rollback()
        # With a write pending the reads stay on the caller's connection, and see it.
        conn.execute(text("INSERT INTO snap VALUES (7000)"))
        before = len(checkouts)
        got = read_int_columns_many(conn, queries)
        assert len(checkouts) == before
        assert got["all"].shape == (1002, 1) and int(got["max"][0, 0]) == 7000
    engine.dispose()


def test_sqlite_reads_run_apart_only_without_pending_writes(spatialite_url: str) -> None:
    from sqlalchemy import event, text

    from gridmgr.store.bulk import read_int_columns_many

    engine = make_engine(spatialite_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE snap (i INTEGER)"))
        conn.execute(text("INSERT INTO snap " + SQL.replace(":top", "1000")
                          .replace("i * 4294967296 - 7 * i", "i")))
    checkouts: list[int] = []
    event.listen(engine, "checkout", lambda *a: checkouts.append(1))
    queries = {"all": ("SELECT i FROM snap", 1), "max": ("SELECT max(i) FROM snap", 1)}
    with engine.connect() as conn:
        before = len(checkouts)
        got = read_int_columns_many(conn, queries)
        assert len(checkouts) - before == len(queries) + 1  # readers and a watcher
        assert got["all"].shape == (1000, 1) and int(got["max"][0, 0]) == 1000
        conn.execute(text("INSERT INTO snap VALUES (7000)"))  # pending: others can't see it
        before = len(checkouts)
        got = read_int_columns_many(conn, queries)
        assert len(checkouts) == before
        assert got["all"].shape == (1001, 1) and int(got["max"][0, 0]) == 7000
        conn.rollback()
    engine.dispose()


def test_an_in_memory_sqlite_store_reads_on_its_own_connection() -> None:
    from sqlalchemy import text

    from gridmgr.store.bulk import read_int_columns_many

    engine = make_engine("sqlite://")
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE snap (i INTEGER)"))
        conn.execute(text("INSERT INTO snap VALUES (1), (2), (3)"))
        conn.commit()
        got = read_int_columns_many(conn, {"all": ("SELECT i FROM snap", 1),
                                           "max": ("SELECT max(i) FROM snap", 1)})
    assert got["all"][:, 0].tolist() == [1, 2, 3] and int(got["max"][0, 0]) == 3


def test_a_null_in_any_column_is_refused_on_both_stores(store_url: str) -> None:
    from gridmgr.store.bulk import read_int_columns

    sql = "SELECT 1, 2 UNION ALL SELECT 3, NULL UNION ALL SELECT 5, 6"
    with make_engine(store_url).connect() as conn:
        with pytest.raises(ValueError, match="NULL"):
            read_int_columns(conn, sql, 2)
        # the store connection is still usable after the refusal
        assert read_int_columns(conn, "SELECT 7, 8", 2).tolist() == [[7, 8]]


def test_postgis_row_by_row_read_equals_the_array_read(postgis_url: str) -> None:
    from gridmgr.store.bulk import _pg_int_rows, read_int_columns

    sql = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
           "SELECT i, -i * 4294967296, i % 7 FROM n ORDER BY i DESC")
    with make_engine(postgis_url).connect() as conn:
        arrays = read_int_columns(conn, sql, 3)
        raw = conn.connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cur:
            rows = _pg_int_rows(cur, sql, ["c0", "c1", "c2"])
    i = np.arange(3000, 0, -1, dtype=np.int64)
    assert np.array_equal(arrays, np.stack([i, -i * 4294967296, i % 7], axis=1))
    assert np.array_equal(rows, arrays)


def test_postgis_reads_values_that_do_not_fit_a_column_pair(postgis_url: str) -> None:
    from gridmgr.store.bulk import read_int_columns

    big = 2 ** 40
    i = np.arange(1, 2001, dtype=np.int64)
    cases = {  # (high, low) columns; the first three do not fit high * 2**32 + low
        f"i, i * {big}": (i, i * big),
        "i, -i": (i, -i),
        f"i * {big}, i": (i * big, i),
        "-i, i * 65536": (-i, i * 65536),
    }
    numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
    with make_engine(postgis_url).connect() as conn:
        for cols, want in cases.items():
            got = read_int_columns(conn, f"{numbers} SELECT {cols} FROM n", 2)
            assert np.array_equal(got, np.stack(want, axis=1)), cols
            three = read_int_columns(conn, f"{numbers} SELECT {cols}, 7 FROM n", 3)
            assert np.array_equal(three[:, :2], got) and (three[:, 2] == 7).all(), cols
