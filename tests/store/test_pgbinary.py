"""Bulk writes: binary COPY loads exactly what the values say; points land where they say."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from gridmgr.store.bulk import Points, bulk_insert, is_pg
from gridmgr.store.engine import make_engine
from gridmgr.store.pgbinary import encode
from gridmgr.store.schema import upgrade


def test_every_supported_type_round_trips_through_postgis(postgis_url: str) -> None:
    engine = make_engine(postgis_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        conn.execute(text(
            "CREATE TABLE t (i8 int8, i4 int4, i2 int2, f8 float8, f4 float4, b bool, "
            "d date, s text, v varchar(40), g geometry(Point, 4326))"))
        frame = pd.DataFrame({
            "i8": [1, 2**40, -5],
            "i4": pd.array([7, None, -2**31], dtype="Int64"),
            "i2": [1, -1, 300],
            "f8": [0.1, np.nan, -1e300],
            "f4": [1.5, 2.25, np.nan],
            "b": [True, False, True],
            "d": pd.to_datetime(["1999-12-31", None, "2024-02-29"]).to_numpy("datetime64[D]"),
            "s": pd.array(["松林街 1号", "", None], dtype="str"),
            "v": np.array(["a'b\"c\\\\d\\n", None, "x,y"], dtype=object),
        })
        # 30,000 rows: a batch big enough for bulk_insert to defer the table's indexes.
        big = frame.iloc[np.arange(30_000) % 3].reset_index(drop=True)
        big["i8"] = np.arange(30_000)
        geoms = shapely.points(np.linspace(103, 105, 30_000), np.linspace(30, 31, 30_000))
        bulk_insert(conn, "t", big, geometry=geoms, geom_column="g")
        got = pd.DataFrame(conn.execute(text(
            "SELECT i8, i4, i2, f8, f4, b, d, s, v, ST_X(g) AS x, ST_Y(g) AS y, ST_SRID(g) "
            "AS srid FROM t ORDER BY i8")).fetchall())
    assert len(got) == 30_000
    first = got.iloc[:3]
    assert first["i4"].tolist()[0] == 7 and pd.isna(first["i4"].tolist()[1])
    assert first["i4"].tolist()[2] == -2**31
    assert first["i2"].tolist() == [1, -1, 300]
    assert first["f8"].tolist()[0] == 0.1 and first["f8"].isna().tolist()[1]
    assert first["f8"].tolist()[2] == -1e300
    assert first["f4"].tolist()[:2] == [1.5, 2.25] and pd.isna(first["f4"].tolist()[2])
    assert first["b"].tolist() == [True, False, True]
    assert [str(x) for x in first["d"]] == ["1999-12-31", "None", "2024-02-29"]
    assert nulls(first["s"]) == ["松林街 1号", "", None]
    assert nulls(first["v"]) == ["a'b\"c\\\\d\\n", None, "x,y"]
    np.testing.assert_allclose(got["x"], shapely.get_x(geoms))
    np.testing.assert_allclose(got["y"], shapely.get_y(geoms))
    assert set(got["srid"]) == {4326}


def nulls(column: pd.Series) -> list[object]:
    """Values with every missing marker as None."""
    return [None if pd.isna(x) else x for x in column]


@pytest.mark.parametrize(("values", "pgtype", "problem"), [
    (pd.Series([1.5], name="room"), "int4", "fractions"),
    (pd.Series([2**40], name="n"), "int4", "out of range"),
])
def test_values_that_do_not_fit_are_refused(values: pd.Series, pgtype: str,
                                            problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        encode([(values, pgtype)])


def test_a_big_batch_still_refuses_duplicates_and_keeps_its_constraints(
        postgis_url: str) -> None:
    engine = make_engine(postgis_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE u (id int8 PRIMARY KEY, code text UNIQUE)"))
        conn.execute(text("CREATE INDEX u_code_idx ON u (code)"))
    frame = pd.DataFrame({"id": np.arange(30_000),
                          "code": [f"c{i}" for i in range(29_999)] + ["c7"]})
    with pytest.raises(IntegrityError, match="u_code_key"), engine.begin() as conn:
        bulk_insert(conn, "u", frame)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM u")).scalar_one() == 0
        indexes = set(conn.execute(text(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'u'")).scalars())
        assert indexes == {"u_pkey", "u_code_key", "u_code_idx"}
        bulk_insert(conn, "u", frame.iloc[:29_999])
        assert conn.execute(text("SELECT count(DISTINCT code) FROM u")).scalar_one() == 29_999


def index_names(conn: Connection, table: str) -> set[str]:
    """Names of a table's indexes on either store."""
    sql = ("SELECT indexname FROM pg_indexes WHERE tablename = :t" if is_pg(conn) else
           "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t")
    return set(conn.execute(text(sql), {"t": table}).scalars())


def test_points_from_coordinates_land_where_they_say_on_both_stores(store_url: str) -> None:
    engine = make_engine(store_url)
    upgrade(engine)
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-180, 180, 25_000), rng.uniform(-90, 90, 25_000)
    with engine.begin() as conn:
        indexes = index_names(conn, "business")
        ids = np.arange(1, 25_001)
        bulk_insert(conn, "business", pd.DataFrame({
            "id": ids, "source_id": [f"b{i}" for i in ids], "name": "店", "lon": x, "lat": y,
            "workers": 1}), geometry=Points(x, y))
        got = pd.DataFrame(conn.execute(text(
            "SELECT ST_X(geom) AS x, ST_Y(geom) AS y, ST_SRID(geom) AS srid FROM business "
            "ORDER BY id")).fetchall())
        # The batch dropped the table's secondary indexes for speed and rebuilt them.
        assert index_names(conn, "business") == indexes and len(indexes) >= 2
    np.testing.assert_array_equal(got["x"], x)
    np.testing.assert_array_equal(got["y"], y)
    assert set(got["srid"]) == {4326}


def test_a_big_batch_still_refuses_dangling_references(postgis_url: str) -> None:
    engine = make_engine(postgis_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE parent (id int8 PRIMARY KEY)"))
        conn.execute(text("CREATE TABLE child (id int8 PRIMARY KEY, "
                          "parent_id int8 CONSTRAINT child_parent_fk REFERENCES parent (id))"))
        bulk_insert(conn, "parent", pd.DataFrame({"id": np.arange(100)}))
    frame = pd.DataFrame({"id": np.arange(30_000), "parent_id": np.arange(30_000) % 100})
    frame.loc[20_000, "parent_id"] = 555
    with pytest.raises(IntegrityError, match="child_parent_fk"), engine.begin() as conn:
        bulk_insert(conn, "child", frame)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM child")).scalar_one() == 0
        assert conn.execute(text(
            "SELECT count(*) FROM pg_constraint WHERE conname = 'child_parent_fk'")
        ).scalar_one() == 1
