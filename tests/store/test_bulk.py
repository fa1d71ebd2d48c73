"""Bulk reads: one integer column of many rows, the fastest way each store allows."""

from __future__ import annotations

import numpy as np

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
