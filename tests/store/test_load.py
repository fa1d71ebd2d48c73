"""Loading interchange files into both stores: round trips, rejections, counts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from cityfiles import ORDER, write_city
from sqlalchemy import text

from gridmgr.errors import BadInput, ValidationFailed
from gridmgr.store import counts
from gridmgr.store.engine import make_engine
from gridmgr.store.load import load_file
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
        grid_of = dict(conn.execute(text(
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
        g = dict(conn.execute(text("SELECT g.grid_id, c.residents FROM grid g JOIN grid_count c "
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
