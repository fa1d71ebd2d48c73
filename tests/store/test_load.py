"""Loading interchange files into both stores: round trips, rejections, counts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from cityfiles import ORDER, write_city
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from gridmgr.errors import BadInput, ValidationFailed
from gridmgr.interchange import read_table
from gridmgr.store import bulk, counts
from gridmgr.store.engine import make_engine
from gridmgr.store.load import LoadResult, load_file, load_frame
from gridmgr.store.plans import adopted_plan_id
from gridmgr.store.schema import upgrade


def load_all(url: str, paths: dict[str, Path], tmp: Path) -> None:
    engine = make_engine(url)
    for kind in ORDER:
        load_file(engine, kind, paths[kind], report_path=tmp / f"{kind}.report.csv")


@pytest.fixture
def city(tmp_path: Path) -> dict[str, Path]:
    return write_city(tmp_path / "city")


def snapshot(url: str) -> str:
    """A digest of every row of every gridmgr table (or of the SpatiaLite file itself)."""
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        engine.dispose()
        return hashlib.sha256(Path(engine.url.database or "").read_bytes()).hexdigest()
    h = hashlib.sha256()
    with engine.connect() as conn:
        for t in ("admin_area", "grid", "house", "house_grid", "person", "residence",
                  "business", "rental_record", "grid_count", "employment"):
            rows = conn.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2")).fetchall()
            h.update(repr(rows).encode())
    return h.hexdigest()


def test_round_trip_and_counts(store_url: str, city: dict[str, Path], tmp_path: Path) -> None:
    load_all(store_url, city, tmp_path)
    engine = make_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM house")).scalar_one() == 12
        assert conn.execute(text("SELECT count(*) FROM person")).scalar_one() == 6
        # every house got a valid code except none: the outside one is coded under the
        # nearest community and flagged
        rows = conn.execute(text(
            "SELECT source_id, house_code, community_code, outside_areas FROM house "
            "ORDER BY source_id")).fetchall()
        by_src = {r[0]: r for r in rows}
        assert all(r[1] and len(r[1]) == 23 for r in rows)
        assert by_src["H012"][3] in (True, 1)
        assert by_src["H001"][2] == "510104001001"
        assert by_src["H008"][1].startswith("510104001002")
        # the shared-edge house goes to the smallest grid_id covering it
        grid_of: dict[str, str] = dict(conn.execute(text(
            "SELECT h.source_id, g.grid_id FROM house h JOIN house_grid hg ON hg.house_id = h.id "
            "JOIN grid g ON g.id = hg.grid_pk")).fetchall())
        assert grid_of["H007"] == "510104001001-01"
        assert grid_of["H011"] == "510104001002-01"  # island part
        assert "H012" not in grid_of
        plan = adopted_plan_id(conn)
        assert plan is not None
        kept = counts.maintained(conn, plan)
        fresh = counts.recompute(conn, plan)
        pd.testing.assert_frame_equal(kept.sort_index(), fresh.sort_index(), check_names=False)
        assert counts.stale_person_flags(conn) == 0
        g: dict[str, int] = dict(conn.execute(text(
            "SELECT g.grid_id, c.residents FROM grid g JOIN grid_count c "
            "ON c.grid_pk = g.id")).fetchall())
        assert g == {"510104001001-01": 2, "510104001001-02": 1, "510104001002-01": 2}
        assert int(kept["floating_residents"].sum()) == 3  # P6 lives outside every grid
        assert int(kept["rental_key"].sum()) == 1
        assert int(kept["big_employers"].sum()) == 1
        assert int(kept["consistent_persons"].sum()) == 3  # P4 registered elsewhere


def test_bad_row_rejects_whole_file_and_changes_nothing(store_url: str, city: dict[str, Path],
                                                         tmp_path: Path) -> None:
    engine = make_engine(store_url)
    upgrade(engine)
    for kind in ("areas", "grids"):
        load_file(engine, kind, city[kind], report_path=tmp_path / "r.csv")
    engine.dispose()
    houses = pd.read_csv(city["houses"])
    houses.loc[4, "lat"] = 123.4  # row 5
    bad = tmp_path / "houses_bad.csv"
    houses.to_csv(bad, index=False)
    before = snapshot(store_url)
    report = tmp_path / "bad.report.csv"
    with pytest.raises(ValidationFailed) as err:
        load_file(make_engine(store_url), "houses", bad, report_path=report)
    assert "row 5, column lat" in str(err.value)
    assert "nothing was written" in str(err.value)
    assert snapshot(store_url) == before
    rep = pd.read_csv(report)
    assert list(rep.columns) == ["row", "column", "severity", "reason"]
    assert (rep["row"] == 5).any()
    # --skip-bad loads the other eleven
    result = load_file(make_engine(store_url), "houses", bad, skip_bad=True,
                       report_path=report)
    assert result.loaded == 11 and result.rejected_rows == [5]


def _swap_row3(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[2, ["lon", "lat"]] = df.loc[2, ["lat", "lon"]].to_numpy()
    return df


BAD_CASES = [
    ("houses", _swap_row3, "row 3, column lat", "swapped"),
    ("houses", lambda df: df.assign(address=["", *df["address"][1:]]), "row 1, column address",
     "missing value"),
    ("houses", lambda df: df.assign(source_id=["H001", "H001", *df["source_id"][2:]]),
     "row 2, column source_id", "duplicate"),
    ("houses", lambda df: df.assign(house_code=["510104001001-0001-01-0101-0", *[""] * 11]),
     "row 1, column house_code", "check character"),
]


@pytest.mark.parametrize(("kind", "mutate", "where", "why"), BAD_CASES)
def test_each_problem_is_named(spatialite_url: str, city: dict[str, Path], tmp_path: Path,
                               kind: str, mutate, where: str, why: str) -> None:
    engine = make_engine(spatialite_url)
    for k in ("areas", "grids"):
        load_file(engine, k, city[k], report_path=tmp_path / "r.csv")
    df = mutate(pd.read_csv(city[kind], dtype=str, keep_default_na=False))
    path = tmp_path / f"{kind}_bad.csv"
    df.to_csv(path, index=False)
    with pytest.raises(ValidationFailed) as err:
        load_file(engine, kind, path, report_path=tmp_path / "r.csv")
    assert where in str(err.value) and why in str(err.value)


def test_people_problems(spatialite_url: str, city: dict[str, Path], tmp_path: Path) -> None:
    engine = make_engine(spatialite_url)
    for k in ("areas", "grids", "houses", "businesses"):
        load_file(engine, k, city[k], report_path=tmp_path / "r.csv")
    df = pd.read_csv(city["people"], dtype=str, keep_default_na=False)
    good_id = df.loc[0, "id_number"]
    df.loc[0, "id_number"] = good_id[:-1] + ("0" if good_id[-1] != "0" else "1")
    df.loc[1, "house_source_id"] = "NOPE"
    path = tmp_path / "people_bad.csv"
    df.to_csv(path, index=False)
    with pytest.raises(ValidationFailed) as err:
        load_file(engine, "people", path, report_path=tmp_path / "p.csv")
    msg = str(err.value)
    assert "row 1, column id_number" in msg and "GB 11643" in msg
    assert "row 2, column house_source_id" in msg and "not loaded" in msg


def test_invalid_polygon_named(spatialite_url: str, city: dict[str, Path], tmp_path: Path
                               ) -> None:
    engine = make_engine(spatialite_url)
    load_file(engine, "areas", city["areas"], report_path=tmp_path / "r.csv")
    grids = pd.read_csv(city["houses"]).head(0)  # noqa: F841 (keeps pandas import honest)
    path = tmp_path / "grids.csv"
    path.write_text(
        "grid_id,community_code,geometry\n"
        "510104001001-01,510104001001,\"POLYGON((104 30.6,104.1 30.7,104.1 30.6,104 30.7,"
        "104 30.6))\"\n")
    with pytest.raises(ValidationFailed) as err:
        load_file(engine, "grids", path, report_path=tmp_path / "g.csv")
    assert "row 1, column geometry" in str(err.value)
    assert "Self-intersection" in str(err.value)


def test_missing_column_is_clear(spatialite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "houses.csv"
    path.write_text("source_id,lon\nH1,104\n")
    with pytest.raises(BadInput, match="lacks column"):
        load_file(make_engine(spatialite_url), "houses", path)


def test_outside_house_kept_and_listed(spatialite_url: str, city: dict[str, Path],
                                       tmp_path: Path) -> None:
    engine = make_engine(spatialite_url)
    for k in ("areas", "grids"):
        load_file(engine, k, city[k], report_path=tmp_path / "r.csv")
    result = load_file(engine, "houses", city["houses"], report_path=tmp_path / "h.csv")
    assert result.loaded == 12
    # H011 sits in the grid's island part, which lies beyond the coarse community boundary
    assert result.outside_areas == ["H011", "H012"]
    assert result.unassigned == ["H012"]
    rep = pd.read_csv(tmp_path / "h.csv")
    assert (rep["severity"] == "warning").any() and (rep["row"] == 12).any()


# --- streaming: a CSV file is read, checked and written in chunks inside one transaction

TABLES = {
    "house": "id, source_id, house_code, lon, lat, address, building, unit, room, area_m2, "
             "use, community_code, outside_areas, ST_X(geom), ST_Y(geom)",
    "house_grid": "plan_id, house_id, grid_pk", "grid_count": "*",
    "business": "id, source_id, name, workers, community_code, ST_X(geom)",
    "business_grid": "*", "person": "*", "residence": "*", "employment": "*",
    "rental_record": "id, house_id, landlord_id_number, tenants, rental_class, "
                     "registered_on, next_due_on",
}


def contents(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the tables a load writes, geometries as coordinates."""
    engine = make_engine(url)
    with engine.connect() as conn:
        out = {t: [tuple(r) for r in conn.execute(text(f"SELECT {cols} FROM {t} ORDER BY 1, 2"))]
               for t, cols in TABLES.items()}
    engine.dispose()
    return out


@pytest.fixture
def other_url(store_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A second empty store of the same kind as `store_url`."""
    if store_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'other.db'}"
    return str(request.getfixturevalue("pg_cluster").create_database("t_other"))


def _partial_addresses(city: dict[str, Path]) -> None:
    """Blank the address parts of houses in different chunks: codes are issued room by room."""
    houses = pd.read_csv(city["houses"], dtype=str, keep_default_na=False)
    houses.loc[[1, 6, 10], ["building", "unit", "room"]] = ""
    houses.to_csv(city["houses"], index=False)


def test_chunked_load_writes_what_a_whole_file_load_writes(
        store_url: str, other_url: str, city: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _partial_addresses(city)
    whole = make_engine(other_url)
    for kind in ORDER:
        frame = read_table(city[kind], kind)
        load_frame(whole, kind, frame, report_path=tmp_path / f"w{kind}.csv")
    # Chunks of four rows, and every table's indexes dropped and rebuilt around the load.
    monkeypatch.setattr(bulk, "BIG_BATCH_MIN", 1)
    chunked = make_engine(store_url)
    for kind in ORDER:
        load_file(chunked, kind, city[kind], report_path=tmp_path / f"c{kind}.csv",
                  chunk_rows=4)
    got, want = contents(store_url), contents(other_url)
    assert len(got["house"]) == 12 and len(got["person"]) == 6 and got["house_grid"]
    assert got == want
    # building 0, unit 0, the next room of the community, counted on across chunks
    issued = {r[1]: (str(r[2])[:12], str(r[2])[12:22]) for r in got["house"] if r[6] is None}
    assert issued == {"H002": ("510104001001", "0000000001"),
                      "H007": ("510104001001", "0000000002"),
                      "H011": ("510104001002", "0000000001")}
    with chunked.connect() as conn:
        plan = adopted_plan_id(conn)
        assert plan is not None
        kept, fresh = counts.maintained(conn, plan), counts.recompute(conn, plan)
        pd.testing.assert_frame_equal(kept.sort_index(), fresh.sort_index(),
                                      check_names=False)
        # the indexes are back: a duplicate house is refused by the store itself
        with pytest.raises(IntegrityError):
            conn.execute(text("INSERT INTO house (source_id, lon, lat, outside_areas, geom) "
                              "SELECT source_id, lon, lat, outside_areas, geom FROM house "
                              "WHERE source_id = 'H001'"))


def _areas_grids_and(engine: Engine, city: dict[str, Path], tmp_path: Path,
                     houses: pd.DataFrame, name: str) -> Path:
    """Load the city's areas and grids; write `houses` to a CSV file called `name`."""
    upgrade(engine)
    for kind in ("areas", "grids"):
        load_file(engine, kind, city[kind], report_path=tmp_path / "r.csv")
    path = tmp_path / name
    houses.to_csv(path, index=False)
    return path


def _load_houses_in_chunks(url: str, city: dict[str, Path], tmp_path: Path,
                           houses: pd.DataFrame, chunk_rows: int, skip_bad: bool = False
                           ) -> LoadResult:
    engine = make_engine(url)
    path = _areas_grids_and(engine, city, tmp_path, houses, "houses_edit.csv")
    return load_file(engine, "houses", path, chunk_rows=chunk_rows,
                     report_path=tmp_path / f"houses_{chunk_rows}.report.csv",
                     skip_bad=skip_bad)


def test_bad_row_in_third_chunk_writes_nothing(store_url: str, city: dict[str, Path],
                                               tmp_path: Path) -> None:
    houses = pd.read_csv(city["houses"], dtype=str, keep_default_na=False)
    houses.loc[9, "lat"] = "123.4"  # row 10: the third chunk of four rows
    path = _areas_grids_and(make_engine(store_url), city, tmp_path, houses, "houses_bad.csv")
    before = snapshot(store_url)
    with pytest.raises(ValidationFailed) as err:
        load_file(make_engine(store_url), "houses", path, chunk_rows=4,
                  report_path=tmp_path / "bad.csv")
    assert "row 10, column lat" in str(err.value) and "nothing was written" in str(err.value)
    assert snapshot(store_url) == before
    assert (pd.read_csv(tmp_path / "bad.csv")["row"] == 10).any()
    result = load_file(make_engine(store_url), "houses", path, chunk_rows=4, skip_bad=True,
                       report_path=tmp_path / "bad.csv")
    assert result.loaded == 11 and result.rejected_rows == [10] and result.rows == 12


def test_duplicate_across_chunks_is_named_with_its_first_row(
        spatialite_url: str, city: dict[str, Path], tmp_path: Path) -> None:
    houses = pd.read_csv(city["houses"], dtype=str, keep_default_na=False)
    houses.loc[10, "source_id"] = "H002"  # row 11 repeats row 2, two chunks apart
    before = None
    with pytest.raises(ValidationFailed) as err:
        engine = make_engine(spatialite_url)
        upgrade(engine)
        for kind in ("areas", "grids"):
            load_file(engine, kind, city[kind], report_path=tmp_path / "r.csv")
        before = snapshot(spatialite_url)
        path = tmp_path / "dup.csv"
        houses.to_csv(path, index=False)
        load_file(make_engine(spatialite_url), "houses", path, chunk_rows=4,
                  report_path=tmp_path / "dup.report.csv")
    assert "row 11, column source_id: duplicate source_id 'H002' (first on row 2)" in str(
        err.value)
    assert snapshot(spatialite_url) == before


@pytest.mark.parametrize("chunk_rows", [3, 5])
def test_chunked_report_equals_whole_file_report(chunk_rows: int, city: dict[str, Path],
                                                 tmp_path: Path) -> None:
    houses = pd.read_csv(city["houses"], dtype=str, keep_default_na=False)
    houses.loc[1, "lon"] = "east"  # row 2
    houses.loc[[3, 9], "source_id"] = "H003"  # rows 4 and 10 repeat row 3
    houses.loc[[0, 6], ["building", "unit", "room"]] = "7"  # rows 1 and 7: one house code
    houses.loc[11, "address"] = ""  # row 12
    messages, reports = [], []
    for rows in (chunk_rows, 10**6):
        url = f"sqlite:///{tmp_path / f'{rows}.db'}"
        with pytest.raises(ValidationFailed) as err:
            _load_houses_in_chunks(url, city, tmp_path, houses, rows)
        messages.append(str(err.value).replace(f"houses_{rows}.", "houses_N."))
        reports.append(pd.read_csv(tmp_path / f"houses_{rows}.report.csv"))
    assert messages[0] == messages[1]
    pd.testing.assert_frame_equal(reports[0], reports[1])
    rows_named = set(reports[0]["row"])
    assert {1, 2, 4, 7, 10, 12} <= rows_named
    shared = reports[0][reports[0]["reason"].str.contains("shared with another row")]
    assert set(shared["row"]) == {1, 7}


def test_skip_bad_with_a_code_shared_across_chunks(spatialite_url: str, city: dict[str, Path],
                                                   tmp_path: Path) -> None:
    houses = pd.read_csv(city["houses"], dtype=str, keep_default_na=False)
    houses.loc[[0, 6], ["building", "unit", "room"]] = "7"  # rows 1 and 7 share a code
    result = _load_houses_in_chunks(spatialite_url, city, tmp_path, houses, 4, skip_bad=True)
    assert isinstance(result, LoadResult)
    assert result.loaded == 10 and result.rejected_rows == [1, 7]
    with make_engine(spatialite_url).connect() as conn:
        kept = conn.execute(text("SELECT source_id FROM house ORDER BY 1")).scalars().all()
    assert "H001" not in kept and "H007" not in kept and len(kept) == 10


def test_header_only_file_is_still_checked(spatialite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "houses.csv"
    path.write_text("source_id,lon\n")
    with pytest.raises(BadInput, match="lacks column"):
        load_file(make_engine(spatialite_url), "houses", path, chunk_rows=4)
    path.write_text("source_id,lon,lat,address\n")
    assert load_file(make_engine(spatialite_url), "houses", path, chunk_rows=4,
                     report_path=tmp_path / "r.csv").rows == 0


# --- optimistic loads: repeated keys are left to the store's UNIQUE constraints, and the
# load runs again carefully (naming the rows) when the store refuses them


def _constraints(url: str) -> set[tuple[str, ...]]:
    """Every constraint and index of the gridmgr tables (name, table, definition)."""
    engine = make_engine(url)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(text("SELECT type, name, tbl_name, sql FROM sqlite_master "
                                     "WHERE type IN ('index', 'trigger')")).fetchall()
        else:
            rows = conn.execute(text(
                "SELECT 'c', conname, conrelid::regclass::text, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE connamespace = 'public'::regnamespace UNION ALL "
                "SELECT 'i', indexname, tablename, indexdef FROM pg_indexes "
                "WHERE schemaname = 'public'")).fetchall()
    engine.dispose()
    return {tuple(str(v) for v in r) for r in rows}


@pytest.mark.parametrize("deferred", [False, True], ids=["keys-kept", "keys-deferred"])
def test_a_key_repeated_across_chunks_is_refused_and_named(
        store_url: str, city: dict[str, Path], tmp_path: Path, deferred: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused by the COPY itself (keys kept) or by re-adding the constraint (deferred)."""
    if deferred:
        monkeypatch.setattr(bulk, "BIG_BATCH_MIN", 1)
    houses = pd.read_csv(city["houses"], dtype=str, keep_default_na=False)
    houses.loc[10, "source_id"] = "H002"  # row 11 repeats row 2, two chunks apart
    houses.loc[[0, 6], ["building", "unit", "room"]] = "7"  # rows 1 and 7: one house code
    engine = make_engine(store_url)
    path = _areas_grids_and(engine, city, tmp_path, houses, "dup.csv")
    before = snapshot(store_url)
    with pytest.raises(ValidationFailed) as err:
        load_file(engine, "houses", path, chunk_rows=4, report_path=tmp_path / "dup.csv.r")
    assert "row 11, column source_id: duplicate source_id 'H002' (first on row 2)" in str(
        err.value)
    shared = pd.read_csv(tmp_path / "dup.csv.r")
    assert set(shared.loc[shared["reason"].str.contains("shared with another row"),
                          "row"]) == {1, 7}
    assert snapshot(store_url) == before


def test_a_big_batch_leaves_every_key_index_and_trigger_as_it_was(
        store_url: str, city: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Primary keys, the foreign keys that point at them and R*Tree triggers come back."""
    upgrade(make_engine(store_url))
    schema = _constraints(store_url)
    monkeypatch.setattr(bulk, "BIG_BATCH_MIN", 1)
    engine = make_engine(store_url)
    for kind in ORDER:
        load_file(engine, kind, city[kind], report_path=tmp_path / f"{kind}.r",
                  chunk_rows=5)
    assert _constraints(store_url) == schema
    with engine.connect() as conn:
        # every house is in the spatial index: a box query finds the same houses as lon/lat
        if engine.dialect.name == "sqlite":
            indexed = conn.execute(text(
                "SELECT count(*) FROM house WHERE ROWID IN (SELECT pkid FROM idx_house_geom "
                "WHERE xmin <= 104.2 AND xmax >= 104.0 AND ymin <= 30.7 AND ymax >= 30.6)"))
        else:
            indexed = conn.execute(text(
                "SELECT count(*) FROM house "
                "WHERE geom && ST_MakeEnvelope(104.0, 30.6, 104.2, 30.7, 4326)"))
        inside = conn.execute(text("SELECT count(*) FROM house WHERE lon BETWEEN 104.0 AND "
                                   "104.2 AND lat BETWEEN 30.6 AND 30.7")).scalar_one()
        assert indexed.scalar_one() == inside >= 10
        # a duplicate row is refused: the keys are enforced again
        with pytest.raises(IntegrityError):
            conn.execute(text("INSERT INTO residence (id, person_id, house_id, arrived_on) "
                              "VALUES (999, 1, 987654, '2024-01-01')"))


def test_a_big_batch_keeps_a_primary_key_that_rows_elsewhere_point_at(
        postgis_url: str, city: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Houses added once people live in houses: house.id stays a key during the COPY."""
    engine = make_engine(postgis_url)
    for kind in ORDER:
        load_file(engine, kind, city[kind], report_path=tmp_path / f"{kind}.r")
    monkeypatch.setattr(bulk, "BIG_BATCH_MIN", 1)
    with engine.begin() as conn:
        ddl = bulk._pg_defer_indexes(conn, "house")
        keys = conn.execute(text(
            "SELECT conname FROM pg_constraint WHERE contype IN ('p', 'f') AND "
            "(conrelid = 'house'::regclass OR confrelid = 'house'::regclass)")).scalars().all()
        assert "house_pkey" in keys and "residence_house_id_fkey" in keys
        assert not any("PRIMARY KEY" in d for d in ddl)
        conn.rollback()
    with engine.begin() as conn:
        ddl = bulk._pg_defer_indexes(conn, "house_grid")  # nothing points at its rows
        assert ddl[0].startswith('ALTER TABLE house_grid ADD CONSTRAINT "house_grid_pkey" '
                                 "PRIMARY KEY")
        assert conn.execute(text("SELECT count(*) FROM pg_constraint WHERE conrelid = "
                                 "'house_grid'::regclass")).scalar_one() == 0
        conn.rollback()


def test_one_polygon_index_serves_every_chunk_of_a_file() -> None:
    """The loader indexes a file's grids once; each chunk gets what assign_points gives."""
    import numpy as np
    import shapely

    from gridmgr.assign import PolygonIndex, assign_points

    rng = np.random.default_rng(4)
    seeds = shapely.multipoints(rng.uniform(0, 1, (40, 2)))
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=shapely.box(0, 0, 1, 1)))
    cells = shapely.intersection(cells, shapely.box(0, 0, 1, 1))
    index = PolygonIndex(cells)
    for n in (70_000, 60_000, 300):  # raster path twice on one index, then the small path
        x, y = rng.uniform(-0.05, 1.05, n), rng.uniform(-0.05, 1.05, n)
        got = index.assign(x, y)
        assert np.array_equal(got, assign_points(x, y, cells, method="strtree"))
        assert (got == -1).any() and (got >= 0).mean() > 0.8


def test_a_file_found_bad_then_clean_is_still_loaded(spatialite_url: str, city: dict[str, Path],
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """If the store changes between the run that found problems and the careful one."""
    from gridmgr.store import load

    engine = make_engine(spatialite_url)
    for kind in ("areas", "grids"):
        load_file(engine, kind, city[kind], report_path=tmp_path / "r.csv")
    runs: list[tuple[bool, bool]] = []
    real = load._load_run

    def flaky(*args: object, careful: bool, doomed: bool, **kw: object) -> LoadResult:
        runs.append((careful, doomed))
        if len(runs) == 1:
            raise load._Careful(doomed=True)  # as if a problem had been found
        return real(*args, careful=careful, doomed=doomed, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(load, "_load_run", flaky)
    result = load_file(engine, "houses", city["houses"], chunk_rows=5,
                       report_path=tmp_path / "h.csv")
    assert runs == [(False, False), (True, True), (True, False)]
    assert result.loaded == 12
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM house")).scalar_one() == 12
