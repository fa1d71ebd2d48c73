"""Inspections in the store: a grid's week list, overdue first, and recording visits."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cityfiles import C1, C2, ORDER, STREET, write_city
from sqlalchemy import Engine, text

from gridmgr.errors import BadInput, NotFound
from gridmgr.store.engine import make_engine
from gridmgr.store.inspections_store import (
    DUE_COLUMNS,
    house_rental,
    inspections_due,
    monday_of,
    record_inspection,
)
from gridmgr.store.load import load_file
from gridmgr.store.tokens import area_subtree

WEEK = dt.date(2024, 3, 4)  # a Monday
TODAY = dt.date(2024, 3, 6)
GRID = f"{C1}-01"  # holds H001-H004 and H007 (on the shared edge, lowest grid_id wins)


def _load(url: str, tmp: Path) -> tuple[Engine, dict[str, str]]:
    files = write_city(tmp / "city")
    engine = make_engine(url)
    for kind in ORDER:
        load_file(engine, kind, files[kind], report_path=tmp / f"{kind}.csv")
    with engine.begin() as conn:
        codes = {str(s): str(c) for s, c in conn.execute(text(
            "SELECT source_id, house_code FROM house")).fetchall()}
        # The city has H001 (key) in GRID; give GRID more lets in every state.
        conn.execute(text("UPDATE rental_record SET next_due_on = :d WHERE house_id = "
                          "(SELECT id FROM house WHERE source_id = 'H001')"),
                     {"d": dt.date(2024, 1, 8)})
        for src, cls, due in (("H002", "key", dt.date(2024, 3, 6)),
                              ("H003", "uneasy", dt.date(2024, 2, 20)),
                              ("H004", "key", dt.date(2024, 3, 11)),
                              ("H007", "trusted", None)):
            conn.execute(text(
                "INSERT INTO rental_record (house_id, landlord_id_number, tenants, "
                "rental_class, registered_on, next_due_on) SELECT id, :l, 2, :c, :r, :d "
                "FROM house WHERE source_id = :s"),
                {"s": src, "l": "510104196001010011", "c": cls, "r": dt.date(2024, 1, 1),
                 "d": due})
    return engine, codes


def _areas(engine: Engine, code: str) -> set[str]:
    with engine.connect() as conn:
        return {c for c, _ in area_subtree(conn, code)}


def _inspections(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM inspection")).scalar_one())


def test_week_list_overdue_first_and_scoped(store_url: str, tmp_path: Path) -> None:
    engine, codes = _load(store_url, tmp_path)
    with engine.connect() as conn:
        due = inspections_due(conn, grid_id=GRID, week_start=WEEK)
        assert list(due.columns) == list(DUE_COLUMNS)
        # H001 (due 8 Jan) and H003 (20 Feb) are overdue, most overdue first; H002 is due
        # this week; H004 (next Monday) and the trusted H007 (no schedule) are not listed.
        assert list(due["house_code"]) == [codes["H001"], codes["H003"], codes["H002"]]
        assert list(due["overdue"]) == [True, True, False]
        assert list(due["days_overdue"]) == [56, 13, 0]
        assert list(due["due_on"]) == ["2024-01-08", "2024-02-20", "2024-03-06"]
        assert list(due["inspector"]) == ["police", "committee", "police"]
        assert due["address"].iloc[0] == "成都市锦江区测试路1号"
        # A week later H004 is due too; a week earlier only the overdue H001 counts.
        later = inspections_due(conn, grid_id=GRID, week_start=WEEK + dt.timedelta(days=7))
        assert codes["H004"] in set(later["house_code"])
        early = inspections_due(conn, grid_id=GRID, week_start=dt.date(2024, 1, 8))
        assert list(early["house_code"]) == [codes["H001"]]
        assert not bool(early["overdue"].iloc[0])

        # Police of C1 (or of the street) see the grid; police of C2 get "no such grid".
        assert len(inspections_due(conn, grid_id=GRID, week_start=WEEK,
                                   areas=_areas(engine, C1))) == 3
        assert len(inspections_due(conn, grid_id=GRID, week_start=WEEK,
                                   areas=_areas(engine, STREET))) == 3
        with pytest.raises(NotFound, match="no grid"):
            inspections_due(conn, grid_id=GRID, week_start=WEEK, areas=_areas(engine, C2))
        with pytest.raises(NotFound, match="no grid"):
            inspections_due(conn, grid_id="nope-01", week_start=WEEK)
        with pytest.raises(BadInput, match="2024-03-04"):
            inspections_due(conn, grid_id=GRID, week_start=dt.date(2024, 3, 6))
        empty = inspections_due(conn, grid_id=f"{C2}-01", week_start=WEEK)
        assert empty.empty and list(empty.columns) == list(DUE_COLUMNS)
    assert monday_of(dt.date(2024, 3, 10)) == WEEK and monday_of(WEEK) == WEEK


def test_record_inspection_moves_the_schedule(store_url: str, tmp_path: Path) -> None:
    engine, codes = _load(store_url, tmp_path)
    h1 = codes["H001"]
    with engine.begin() as conn:
        done = record_inspection(conn, house_code=h1, inspected_on=dt.date(2024, 3, 5),
                                 inspector=" 王警官 ", outcome="正常", today=TODAY,
                                 areas=_areas(engine, C1))
    assert done.next_due_on == "2024-03-12" and done.previous_due_on == "2024-01-08"
    assert done.inspector == "王警官" and done.rental_class == "key"
    with engine.connect() as conn:
        due = inspections_due(conn, grid_id=GRID, week_start=WEEK)
        assert h1 not in set(due["house_code"])  # next due after this week
        row = conn.execute(text(
            "SELECT r.last_inspected_on, r.next_due_on, i.inspector, i.outcome "
            "FROM rental_record r JOIN inspection i ON i.rental_id = r.id "
            "WHERE i.id = :i"), {"i": done.inspection_id}).one()
        assert str(row[0])[:10] == "2024-03-05" and str(row[1])[:10] == "2024-03-12"
        assert (row[2], row[3]) == ("王警官", "正常")

    # A visit entered late (older than the last one) is kept but never pulls the schedule back.
    with engine.begin() as conn:
        late = record_inspection(conn, house_code=h1, inspected_on=dt.date(2024, 3, 1),
                                 inspector="李", outcome="补录", today=TODAY)
    assert late.last_inspected_on == "2024-03-05" and late.next_due_on == "2024-03-12"
    # Uneasy lets are visited every 15 days; trusted ones have no scheduled visit.
    with engine.begin() as conn:
        uneasy = record_inspection(conn, house_code=codes["H003"],
                                   inspected_on=dt.date(2024, 3, 4), inspector="社区",
                                   outcome="ok", today=TODAY)
        trusted = record_inspection(conn, house_code=codes["H007"],
                                    inspected_on=dt.date(2024, 3, 4), inspector="房东",
                                    outcome="ok", today=TODAY)
    assert uneasy.next_due_on == "2024-03-19" and trusted.next_due_on is None
    assert _inspections(engine) == 4

    with engine.connect() as conn:
        rental = house_rental(conn, house_code=h1, today=TODAY)
        assert rental is not None
        assert rental["rental_class"] == "key" and rental["next_due_on"] == "2024-03-12"
        assert not rental["overdue"]
        assert [v["inspected_on"] for v in rental["inspections"]] == ["2024-03-05",
                                                                      "2024-03-01"]
        assert house_rental(conn, house_code=codes["H009"]) is None  # not let
        with pytest.raises(NotFound):
            house_rental(conn, house_code=h1, areas=_areas(engine, C2))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"inspected_on": dt.date(2024, 3, 7)}, BadInput, "future"),
    ({"inspected_on": dt.date(2023, 12, 31)}, BadInput, "before the let"),
    ({"inspector": "  "}, BadInput, "inspector is empty"),
    ({"outcome": "x" * 201}, BadInput, "keep it to 200"),
    ({"house_code": "123"}, BadInput, "not valid"),
    ({"house": "H009"}, NotFound, "no rental record"),
    ({"areas": C2}, NotFound, "no house"),
])
def test_bad_recordings_write_nothing(spatialite_url: str, tmp_path: Path,
                                      kwargs: dict[str, object], error: type[Exception],
                                      match: str) -> None:
    engine, codes = _load(spatialite_url, tmp_path)
    args: dict[str, object] = {"house_code": codes["H001"], "inspected_on": dt.date(2024, 3, 5),
                               "inspector": "王", "outcome": "正常", "today": TODAY}
    if "house" in kwargs:
        args["house_code"] = codes[str(kwargs.pop("house"))]
    if "areas" in kwargs:
        args["areas"] = _areas(engine, str(kwargs.pop("areas")))
    args.update(kwargs)
    with pytest.raises(error, match=match), engine.begin() as conn:
        record_inspection(conn, **args)  # type: ignore[arg-type]
    assert _inspections(engine) == 0
    with engine.connect() as conn:
        due = conn.execute(text("SELECT next_due_on FROM rental_record r JOIN house h "
                                "ON h.id = r.house_id WHERE h.source_id = 'H001'")).scalar_one()
    assert str(due)[:10] == "2024-01-08"
