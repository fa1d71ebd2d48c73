"""Registration events, permits and lets on both stores: history, counts, rollbacks, edges."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import shapely
import typer
from cityfiles import load_city
from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner

from gridmgr.errors import BadInput, Conflict, NotFound, ValidationFailed
from gridmgr.idnumber import generate_id_numbers
from gridmgr.store import counts, events, permits_store
from gridmgr.store.bulk import allocate_ids, bulk_insert
from gridmgr.store.engine import make_engine
from gridmgr.store.load import assign_plan
from gridmgr.store.schema import upgrade

NOW = dt.datetime(2024, 9, 1, 12, 0)
TODAY = NOW.date()
TABLES = ("person", "residence", "grid_count", "house_grid", "person_event", "residence_permit",
          "rental_record", "rental_room", "rental_violation", "employment")


def ids(n: int, hukou: str = "520102", birth: str = "1995-03-03", seed: int = 7) -> list[str]:
    """Fresh valid ID numbers (hukou outside Chengdu: floating)."""
    rng = np.random.default_rng(seed)
    return [str(x) for x in generate_id_numbers(
        rng, np.array([hukou] * n), np.array([birth] * n, dtype="datetime64[D]"),
        np.array(["M", "F"] * (n // 2) + ["M"] * (n % 2)))]


@pytest.fixture
def engine(store_url: str, tmp_path: Path) -> Engine:
    return load_city(store_url, tmp_path)


def snapshot(engine: Engine) -> str:
    h = hashlib.sha256()
    with engine.connect() as conn:
        for t in TABLES:
            rows = conn.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2")).fetchall()
            h.update(repr(rows).encode())
    return h.hexdigest()


def assert_counts_exact(conn: Connection) -> None:
    for plan in counts.live_plans(conn):
        kept = counts.maintained(conn, plan).sort_index()
        fresh = counts.recompute(conn, plan).sort_index()
        pd.testing.assert_frame_equal(kept, fresh, check_names=False)
    assert counts.stale_person_flags(conn) == 0  # what recompute trusts matches person


def grid_of(conn: Connection, grid_id: str) -> dict[str, int]:
    row = conn.execute(text(
        "SELECT c.residents, c.floating_residents, c.floating_registered, c.key_persons, "
        "c.consistent_persons, c.registered_persons FROM grid_count c JOIN grid g "
        "ON g.id = c.grid_pk WHERE g.grid_id = :g"), {"g": grid_id}).one()
    return dict(zip(["residents", "floating", "floating_registered", "key", "consistent",
                     "registered"], map(int, row), strict=True))


G1, G2, G3 = "510104001001-01", "510104001001-02", "510104001002-01"


def current_house(conn: Connection, id_number: str) -> str | None:
    row = conn.execute(text(
        "SELECT h.source_id FROM residence r JOIN person p ON p.id = r.person_id "
        "JOIN house h ON h.id = r.house_id WHERE p.id_number = :i AND r.left_on IS NULL"),
        {"i": id_number}).first()
    return None if row is None else str(row[0])


# --- the life cycle --------------------------------------------------------------------------


def test_arrive_move_leave_history_and_counts(engine: Engine) -> None:
    (idn,) = ids(1)
    with events.write_transaction(engine) as conn:
        before = grid_of(conn, G1)
        r = events.arrive(conn, id_number=idn, house="H002", on=dt.date(2024, 8, 1),
                          entered_at=dt.datetime(2024, 8, 1, 18), name="新人",
                          intended_stay_days=90, now=NOW)
        assert r.applied and not r.late and r.event_type == "arrive"
        after = grid_of(conn, G1)
        assert after["residents"] == before["residents"] + 1
        assert after["floating_registered"] == before["floating_registered"] + 1
        assert after["consistent"] == before["consistent"] + 1
        person = conn.execute(text("SELECT floating, birth_date, sex, hukou_code, "
                                   "registered_on FROM person WHERE id = :p"),
                              {"p": r.person_id}).one()
        assert bool(person[0]) and str(person[1]) == "1995-03-03" and person[3] == "520102"
        assert str(person[4]) == "2024-08-01"
        assert_counts_exact(conn)
        # a move to another grid: minus at the old one, plus at the new one
        g2_before = grid_of(conn, G2)
        m = events.move(conn, id_number=idn, house="H006", on=dt.date(2024, 8, 20),
                        from_house="H002", entered_at=dt.datetime(2024, 8, 20, 9), now=NOW)
        assert m.applied and m.residence_id != r.residence_id
        assert grid_of(conn, G1) == before
        assert grid_of(conn, G2)["residents"] == g2_before["residents"] + 1
        assert grid_of(conn, G2)["consistent"] == g2_before["consistent"] + 1
        assert_counts_exact(conn)
        hist = events.residence_history(conn, person_id=r.person_id)
        assert hist["house_source_id"].tolist() == ["H006", "H002"]
        assert hist["current"].tolist() == [True, False]
        assert str(hist["left_on"].iloc[1]) == "2024-08-20"
        # departure cancels the residence and the floating person's registration
        lv = events.leave(conn, id_number=idn, on=dt.date(2024, 8, 30), now=NOW)
        assert lv.applied and lv.residence_id is None
        assert grid_of(conn, G2) == g2_before and current_house(conn, idn) is None
        reg = conn.execute(text("SELECT registered_on, registered_house_id FROM person "
                                "WHERE id = :p"), {"p": r.person_id}).one()
        assert reg == (None, None)
        assert_counts_exact(conn)
        log = events.event_history(conn, person_id=r.person_id)
        assert log["event_type"].tolist() == ["arrive", "move", "leave"]
        assert int(log["intended_stay_days"].iloc[0]) == 90
        # the past houses stay queryable after leaving
        assert len(events.residence_history(conn, person_id=r.person_id)) == 2


def test_local_resident_keeps_hukou_registration_on_a_move(engine: Engine) -> None:
    with events.write_transaction(engine) as conn:
        p2 = events.find_person(conn, "P2")[1]  # local, registered at H001
        before = grid_of(conn, G1)
        events.move(conn, id_number=p2, house="H005", on=dt.date(2024, 8, 1), now=NOW)
        reg = conn.execute(text("SELECT h.source_id FROM person p JOIN house h "
                                "ON h.id = p.registered_house_id WHERE p.id_number = :i"),
                           {"i": p2}).scalar_one()
        assert reg == "H001"  # 人户分离: lives at H005, hukou still at H001
        assert grid_of(conn, G1)["consistent"] == before["consistent"] - 1
        assert grid_of(conn, G2)["consistent"] == 0  # P3 there is unregistered
        assert_counts_exact(conn)


@pytest.mark.parametrize(("entered", "late"), [
    (dt.datetime(2024, 8, 2, 10, 0, 0), False),   # exactly 24 h
    (dt.datetime(2024, 8, 2, 10, 0, 1), True),    # 24 h and a second
])
def test_late_entry_is_flagged_at_24_hours(engine: Engine, entered: dt.datetime,
                                           late: bool) -> None:
    (idn,) = ids(1)
    with events.write_transaction(engine) as conn:
        r = events.arrive(conn, id_number=idn, house="H003", name="甲",
                          on=dt.datetime(2024, 8, 1, 10, 0), entered_at=entered, now=NOW)
        assert r.late is late
        rows = events.late_registrations(conn)
        assert (idn in rows["id_number"].tolist()) is late
        stored = conn.execute(text("SELECT arrived_at, entered_at, late FROM person_event "
                                   "WHERE id = :i"), {"i": r.event_id}).one()
        assert str(stored[0]).startswith("2024-08-01 10:00") and bool(stored[2]) is late


def test_corrections_move_counts_and_keep_old_values(engine: Engine) -> None:
    with events.write_transaction(engine) as conn:
        p3 = events.find_person(conn, "P3")[1]  # floating, unregistered, uneasy at H005
        before = grid_of(conn, G2)
        c = events.correct(conn, id_number=p3, changes={"person_class": "key",
                                                        "registered_on": dt.date(2024, 1, 5)},
                           now=NOW)
        after = grid_of(conn, G2)
        assert after["key"] == before["key"] + 1
        assert after["floating_registered"] == before["floating_registered"] + 1
        assert_counts_exact(conn)
        log = events.event_history(conn, person_id=c.person_id)
        changes = json.loads(log["changes"].iloc[-1])
        assert changes == {"person_class": ["uneasy", "key"],
                           "registered_on": [None, "2024-01-05"]}
        # a hukou moved into the city: no longer floating
        events.correct(conn, id_number=p3, changes={"hukou_code": "510104"}, now=NOW)
        assert grid_of(conn, G2)["floating"] == after["floating"] - 1
        # clearing the registration takes it out of the registered counts
        events.correct(conn, id_number=p3, changes={}, clear=["registered_on"], now=NOW)
        assert grid_of(conn, G2)["registered"] == after["registered"] - 1
        assert_counts_exact(conn)
        # a corrected ID number carries its birth date and sex
        (new_id,) = ids(1, hukou="510104", birth="2001-03-04", seed=99)
        events.correct(conn, id_number=p3, changes={"new_id_number": new_id}, now=NOW)
        row = conn.execute(text("SELECT birth_date FROM person WHERE id_number = :i"),
                           {"i": new_id}).scalar_one()
        assert str(row) == "2001-03-04"


REJECTED: list[tuple[str, Callable[[Connection, dict[str, str]], Any], type, str]] = [
    ("arrive while living elsewhere", lambda c, p: events.arrive(
        c, id_number=p["P1"], house="H003", on=dt.date(2024, 8, 1), now=NOW),
     Conflict, "already lives at house"),
    ("move from the wrong house", lambda c, p: events.move(
        c, id_number=p["P1"], house="H003", from_house="H002", on=dt.date(2024, 8, 1), now=NOW),
     Conflict, "now lives at house"),
    ("move to an unknown house", lambda c, p: events.move(
        c, id_number=p["P1"], house="H999", on=dt.date(2024, 8, 1), now=NOW),
     BadInput, "house 'H999' is not loaded"),
    ("move to the same house", lambda c, p: events.move(
        c, id_number=p["P1"], house="H001", on=dt.date(2024, 8, 1), now=NOW),
     BadInput, "already lives at house"),
    ("move before the arrival", lambda c, p: events.move(
        c, id_number=p["P1"], house="H003", on=dt.date(2023, 12, 31), now=NOW),
     BadInput, "before the arrival at the current house on 2024-01-01"),
    ("arrival in the future", lambda c, p: events.arrive(
        c, id_number=p["new"], house="H003", name="乙", on=dt.date(2024, 9, 2), now=NOW),
     BadInput, "in the future"),
    ("a new person without a name", lambda c, p: events.arrive(
        c, id_number=p["new"], house="H003", on=dt.date(2024, 8, 2), now=NOW),
     BadInput, "give name"),
    ("leave of an unknown person", lambda c, p: events.leave(
        c, id_number=p["new"], on=dt.date(2024, 8, 2), now=NOW),
     BadInput, "register their arrival first"),
    ("a bad ID number", lambda c, p: events.leave(
        c, id_number="510104199001011234", on=dt.date(2024, 8, 2), now=NOW),
     BadInput, "fails GB 11643"),
    ("a birth date against the ID number", lambda c, p: events.correct(
        c, id_number=p["P1"], changes={"birth_date": dt.date(1991, 1, 1)}, now=NOW),
     BadInput, "differs from the ID number"),
    ("an ID number held by another person", lambda c, p: events.correct(
        c, id_number=p["P1"], changes={"new_id_number": p["P2"]}, now=NOW),
     BadInput, "held by another person"),
    ("entered before it happened", lambda c, p: events.move(
        c, id_number=p["P1"], house="H003", on=dt.date(2024, 8, 5),
        entered_at=dt.datetime(2024, 8, 4, 23), now=NOW),
     BadInput, "before the event itself"),
]


@pytest.mark.parametrize(("what", "call", "error", "message"), REJECTED,
                         ids=[r[0] for r in REJECTED])
def test_rejected_event_changes_nothing(engine: Engine, what: str, call: Any, error: type,
                                        message: str) -> None:
    with engine.connect() as conn:
        people = {f"P{i}": events.find_person(conn, f"P{i}")[1] for i in (1, 2)}
    people["new"] = ids(1)[0]
    before = snapshot(engine)
    with pytest.raises(error, match=message), events.write_transaction(engine) as conn:
        call(conn, people)
    assert snapshot(engine) == before
    # and inside a caller's own transaction, the event's savepoint undoes its part only
    with events.write_transaction(engine) as conn:
        with pytest.raises(error):
            call(conn, people)
        conn.execute(text("SELECT 1"))
    assert snapshot(engine) == before


def test_failure_midway_leaves_the_store_unchanged(engine: Engine,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(engine)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(counts, "apply_deltas", broken)
    (idn,) = ids(1)
    with pytest.raises(RuntimeError), events.write_transaction(engine) as conn:
        events.arrive(conn, id_number=idn, house="H002", name="丙", on=dt.date(2024, 8, 1),
                      now=NOW)
    assert snapshot(engine) == before


def test_history_is_append_only(engine: Engine) -> None:
    (idn,) = ids(1)
    with events.write_transaction(engine) as conn:
        events.arrive(conn, id_number=idn, house="H002", name="丁", on=dt.date(2024, 8, 1),
                      now=NOW)
    for sql in ("UPDATE person_event SET late = NOT late", "DELETE FROM person_event"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))


def test_replayed_event_is_recorded_once(engine: Engine) -> None:
    (idn,) = ids(1)
    with events.write_transaction(engine) as conn:
        first = events.arrive(conn, id_number=idn, house="H002", name="戊",
                              on=dt.date(2024, 8, 1), now=NOW)
    before = snapshot(engine)
    with events.write_transaction(engine) as conn:
        again = events.arrive(conn, id_number=idn, house="H002", name="戊",
                              on=dt.date(2024, 8, 1), now=NOW + dt.timedelta(hours=3))
    assert not again.applied and again.event_id == first.event_id
    assert snapshot(engine) == before
    with events.write_transaction(engine) as conn:
        events.leave(conn, id_number=idn, on=dt.date(2024, 8, 9), event_id="clerk-42", now=NOW)
    with pytest.raises(Conflict, match="already used for a different event"), \
            events.write_transaction(engine) as conn:
        events.leave(conn, id_number=idn, on=dt.date(2024, 8, 10), event_id="clerk-42",
                     now=NOW)


# --- random mix: maintained == recomputed, with a draft plan live too -----------------------


def add_draft_plan(engine: Engine) -> int:
    """A draft plan that splits the city along lon 104.05 and 104.15 instead."""
    with engine.begin() as conn:
        plan = int(conn.execute(text(
            "INSERT INTO boundary_plan (name, status, created_at) VALUES ('draft-x', 'draft', "
            ":t) RETURNING id"), {"t": "2024-01-01 00:00:00"}).scalar_one())
        geoms = np.array([shapely.MultiPolygon([shapely.box(a, 30.6, b, 30.7)]) for a, b in
                          ((104.0, 104.05), (104.05, 104.15), (104.15, 104.4))], dtype=object)
        frame = pd.DataFrame({"id": allocate_ids(conn, "grid", 3), "plan_id": plan,
                              "grid_id": ["D-1", "D-2", "D-3"],
                              "community_code": ["510104001001"] * 3, "tier": None,
                              "police_area": None, "co_managers_assigned": 0,
                              "area_km2": 1.0, "locked": False})
        bulk_insert(conn, "grid", frame, geometry=geoms)
        assign_plan(conn, plan)
    return plan


def random_events(rng: random.Random, people: list[str], houses: list[str], n: int,
                  start: dt.date) -> list[dict[str, Any]]:
    """A plausible mix of arrivals, moves, leaves and corrections, in date order."""
    where: dict[str, str | None] = {p: None for p in people}
    out = []
    day = start
    for _ in range(n):
        day += dt.timedelta(days=rng.randint(0, 2))
        p = rng.choice(people)
        here = where[p]
        if here is None:
            h = rng.choice(houses)
            out.append({"event": "arrive", "id_number": p, "house_source_id": h,
                        "occurred_on": day.isoformat(), "name": "某人",
                        "intended_stay_days": str(rng.choice([10, 30, 180]))})
            where[p] = h
        else:
            kind = rng.choice(["move", "move", "leave", "correct"])
            if kind == "move":
                h = rng.choice([x for x in houses if x != here])
                out.append({"event": "move", "id_number": p, "house_source_id": h,
                            "from_house_source_id": here, "occurred_on": day.isoformat()})
                where[p] = h
            elif kind == "leave":
                out.append({"event": "leave", "id_number": p, "occurred_on": day.isoformat()})
                where[p] = None
            else:
                fix = rng.choice([{"person_class": rng.choice(["key", "uneasy", "trusted"])},
                                  {"hukou_code": rng.choice(["510104", "520102"])},
                                  {"clear": "registered_on"},
                                  {"registered_on": day.isoformat()}])
                out.append({"event": "correct", "id_number": p,
                            "occurred_on": day.isoformat(), **fix})
    return out


def test_random_mix_keeps_maintained_counts_exact(engine: Engine, tmp_path: Path) -> None:
    add_draft_plan(engine)
    rng = random.Random(20240901)
    people = ids(12, seed=3)
    houses = [f"H{i:03d}" for i in range(1, 13)]
    mix = random_events(rng, people, houses, 70, dt.date(2024, 1, 1))
    # half one by one, as clerks would
    with events.write_transaction(engine) as conn:
        for row in mix[:35]:
            events.record_event(conn, row, now=NOW)
        assert_counts_exact(conn)
        assert len(counts.live_plans(conn)) == 2
    # the other half as one file (several events per person: replayed in rounds)
    path = tmp_path / "mix.csv"
    pd.DataFrame(mix[35:]).to_csv(path, index=False)
    result = events.import_events(engine, path, report_path=tmp_path / "r.csv", now=NOW)
    assert result.applied == 35 and not result.rejected_rows
    with engine.connect() as conn:
        assert_counts_exact(conn)
        n_current = conn.execute(text("SELECT count(*) FROM residence WHERE left_on IS NULL"
                                      )).scalar_one()
        assert n_current == 6 + sum(1 for p in people if current_house(conn, p) is not None)
        assert conn.execute(text("SELECT count(*) FROM person_event")).scalar_one() == 70


def test_large_batches_take_the_bulk_path(engine: Engine, tmp_path: Path) -> None:
    people = ids(150, seed=11)
    rows = [{"event": "arrive", "id_number": p, "house_source_id": f"H{1 + i % 11:03d}",
             "occurred_on": "2024-05-01", "name": f"人{i}"} for i, p in enumerate(people)]
    rows += [{"event": "move", "id_number": p, "house_source_id": f"H{1 + (i + 3) % 11:03d}",
              "occurred_on": "2024-06-01"} for i, p in enumerate(people)]
    rows += [{"event": "correct", "id_number": p, "occurred_on": "2024-06-02",
              "person_class": "uneasy"} for p in people[:100]]
    path = tmp_path / "big.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    result = events.import_events(engine, path, report_path=None, now=NOW)
    assert result.applied == 400
    with engine.connect() as conn:
        assert_counts_exact(conn)
        uneasy = conn.execute(text("SELECT sum(uneasy_persons) FROM grid_count")).scalar_one()
        assert int(uneasy) == 100 + 1  # P3 was uneasy already


# --- bulk import: idempotent, whole-file validation ------------------------------------------


def test_same_file_twice_changes_nothing_the_second_time(engine: Engine, tmp_path: Path
                                                         ) -> None:
    people = ids(3, seed=5)
    frame = pd.DataFrame([
        {"event": "arrive", "id_number": people[0], "house_code": "", "house_source_id": "H002",
         "occurred_on": "2024-08-01 08:30", "name": "一"},
        {"event": "arrive", "id_number": people[1], "house_source_id": "H008",
         "occurred_on": "2024-08-01", "name": "二", "event_id": "src-2"},
        {"event": "move", "id_number": people[0], "house_source_id": "H009",
         "occurred_on": "2024-08-10"},
        {"event": "arrive", "id_number": people[2], "house_source_id": "H010",
         "occurred_on": "2024-08-11", "name": "三"},
        {"event": "leave", "id_number": people[2], "occurred_on": "2024-08-20"},
        {"event": "arrive", "id_number": people[1], "house_source_id": "H008",
         "occurred_on": "2024-08-01", "name": "二", "event_id": "src-2"},  # repeated row
    ])
    path = tmp_path / "events.csv"
    frame.to_csv(path, index=False)
    first = events.import_events(engine, path, report_path=tmp_path / "r1.csv", now=NOW)
    assert (first.applied, first.already, first.duplicates) == (5, 0, 1)
    assert first.late == 4  # entered at import time, long after arrival
    before = snapshot(engine)
    second = events.import_events(engine, path, report_path=tmp_path / "r2.csv",
                                  now=NOW + dt.timedelta(days=1))
    assert (second.applied, second.already) == (0, 5)
    assert snapshot(engine) == before
    # the same events as Parquet are the same events
    parquet = tmp_path / "events.parquet"
    frame.to_parquet(parquet)
    third = events.import_events(engine, parquet, report_path=tmp_path / "r3.csv", now=NOW)
    assert (third.applied, third.already, third.duplicates) == (0, 5, 1)
    assert snapshot(engine) == before
    with engine.connect() as conn:
        assert current_house(conn, people[0]) == "H009"
        assert current_house(conn, people[2]) is None
        assert_counts_exact(conn)


def test_bad_rows_reject_the_whole_file(engine: Engine, tmp_path: Path) -> None:
    people = ids(3, seed=6)
    with engine.connect() as conn:
        p1 = events.find_person(conn, "P1")[1]
    frame = pd.DataFrame([
        {"event": "arrive", "id_number": people[0], "house_source_id": "H002",
         "occurred_on": "2024-08-01", "name": "一"},
        {"event": "arive", "id_number": people[1], "house_source_id": "H002",
         "occurred_on": "2024-08-01", "name": "二"},                      # row 2: typo
        {"event": "leave", "id_number": people[2], "occurred_on": "2024-08-01"},  # row 3
        {"event": "move", "id_number": p1, "house_source_id": "H404",
         "occurred_on": "2024-08-01"},                                   # row 4
        {"event": "move", "id_number": p1, "house_source_id": "H003",
         "occurred_on": "2024-13-01"},                                   # row 5
    ])
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    before = snapshot(engine)
    report = tmp_path / "bad.report.csv"
    with pytest.raises(ValidationFailed) as err:
        events.import_events(engine, path, report_path=report, now=NOW)
    assert "nothing was written" in str(err.value)
    assert snapshot(engine) == before
    rep = pd.read_csv(report)
    found = {(int(r.row), r.column) for r in rep.itertuples() if r.severity == "error"}
    assert found == {(2, "event"), (3, "id_number"), (4, "house_source_id"),
                     (5, "occurred_on")}
    assert "register their arrival first" in " ".join(rep["reason"])
    result = events.import_events(engine, path, skip_bad=True, report_path=report, now=NOW)
    assert result.applied == 1 and result.rejected_rows == [2, 3, 4, 5]
    with engine.connect() as conn:
        assert current_house(conn, people[0]) == "H002"
        assert_counts_exact(conn)


def test_unknown_columns_and_missing_file_are_named(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file"):
        events.import_events(engine, tmp_path / "nope.csv")
    path = tmp_path / "x.csv"
    pd.DataFrame({"event": ["arrive"], "id": ["1"]}).to_csv(path, index=False)
    with pytest.raises(BadInput, match="lacks column.*id_number"):
        events.import_events(engine, path)
    pd.DataFrame({"event": ["arrive"], "id_number": ["x"], "occurred_on": ["2024-01-01"],
                  "hose_code": ["H001"]}).to_csv(path, index=False)
    with pytest.raises(BadInput, match="unknown column.*hose_code"):
        events.import_events(engine, path)


# --- permits on the store: dates at the edges ------------------------------------------------


def listed(conn: Connection, as_of: dt.date, who: list[str], grid: str | None = None
           ) -> list[str]:
    rows = permits_store.eligible_without_permit(conn, as_of=as_of, grid_id=grid)
    return [p for p in who if p in rows["id_number"].tolist()]


def test_stay_of_29_30_31_days_on_the_store(engine: Engine) -> None:
    lived, d29, d30, d31 = ids(4, seed=21)
    with events.write_transaction(engine) as conn:
        events.arrive(conn, id_number=lived, house="H002", name="住", on=dt.date(2024, 7, 1),
                      entered_at=dt.datetime(2024, 7, 1, 9), now=NOW)
        for idn, stay in ((d29, 29), (d30, 30), (d31, 31)):
            events.arrive(conn, id_number=idn, house="H003", name="拟", intended_stay_days=stay,
                          on=dt.date(2024, 8, 20), entered_at=dt.datetime(2024, 8, 20, 9),
                          now=NOW)
    with engine.connect() as conn:
        assert listed(conn, dt.date(2024, 7, 30), [lived]) == []           # day 29
        assert listed(conn, dt.date(2024, 7, 31), [lived]) == [lived]      # day 30
        assert listed(conn, dt.date(2024, 8, 1), [lived], G1) == [lived]   # day 31
        assert listed(conn, dt.date(2024, 8, 20), [d29, d30, d31]) == [d30, d31]
        rows = permits_store.eligible_without_permit(conn, as_of=dt.date(2024, 8, 21),
                                                     grid_id=G1)
        row = rows.set_index("id_number").loc[d30]
        assert pd.Timestamp(row["due_by"]).date() == dt.date(2024, 8, 27)
        assert listed(conn, dt.date(2024, 8, 21), [d30], G3) == []  # another grid


@pytest.mark.parametrize(("as_of", "eligible", "overdue"), [
    (dt.date(2024, 6, 1), False, False),  # 15 years 364 days
    (dt.date(2024, 6, 2), True, False),   # 16 today
    (dt.date(2024, 6, 9), True, False),   # seventh day: still in time
    (dt.date(2024, 6, 10), True, True),   # eighth day: overdue
])
def test_age_16_and_the_seven_day_deadline_on_the_store(engine: Engine, as_of: dt.date,
                                                        eligible: bool, overdue: bool) -> None:
    (teen,) = ids(1, birth="2008-06-02", seed=31)
    with events.write_transaction(engine) as conn:
        events.arrive(conn, id_number=teen, house="H008", name="少", intended_stay_days=365,
                      on=dt.date(2024, 5, 1), entered_at=dt.datetime(2024, 5, 1, 9), now=NOW)
    with engine.connect() as conn:
        assert (listed(conn, as_of, [teen]) == [teen]) is eligible
        due = permits_store.overdue_permits(conn, as_of=as_of)
        assert (teen in due["id_number"].tolist()) is overdue
        if overdue:
            assert int(due.set_index("id_number").loc[teen, "days_overdue"]) == 1
        soon = permits_store.overdue_permits(conn, as_of=as_of, within_days=7)
        assert (teen in soon["id_number"].tolist()) is eligible


def test_permit_lifecycle_and_exactly_two_years(engine: Engine) -> None:
    (idn,) = ids(1, seed=41)
    with events.write_transaction(engine) as conn:
        events.arrive(conn, id_number=idn, house="H002", name="久", intended_stay_days=900,
                      on=dt.date(2022, 6, 1), entered_at=dt.datetime(2022, 6, 1, 9), now=NOW)
        first = permits_store.issue_permit(conn, person=idn, on=dt.date(2022, 6, 10),
                                           permit_no="JZZ-1", today=TODAY)
        assert (first.kind, first.years, first.valid_until) == ("first", 1,
                                                                dt.date(2023, 6, 9))
        assert first.issued_late  # due by 2022-06-08
        with pytest.raises(Conflict, match="already holds a residence permit"):
            permits_store.issue_permit(conn, person=idn, on=dt.date(2022, 7, 1), today=TODAY)
        # a move does not break continuous residence
        events.move(conn, id_number=idn, house="H008", on=dt.date(2023, 3, 1), now=NOW)
        with pytest.raises(BadInput, match="renewals open 30 days before expiry"):
            permits_store.renew_permit(conn, person=idn, on=dt.date(2023, 5, 9), today=TODAY)
        second = permits_store.renew_permit(conn, person=idn, on=dt.date(2023, 5, 10),
                                            today=TODAY)
        assert (second.valid_from, second.valid_until) == (dt.date(2023, 6, 10),
                                                           dt.date(2024, 6, 9))
        with pytest.raises(BadInput, match="reaches 2 years on 2024-06-01"):
            permits_store.renew_permit(conn, person=idn, on=dt.date(2024, 5, 31), years=3,
                                       basis="lease", today=TODAY)
        long = permits_store.renew_permit(conn, person=idn, on=dt.date(2024, 6, 1), years=5,
                                          basis="labour_contract", today=TODAY)
        assert (long.years, long.valid_from, long.valid_until) == (5, dt.date(2024, 6, 10),
                                                                   dt.date(2029, 6, 9))
        held = permits_store.permits_of(conn, person=idn)
        assert held["kind"].tolist() == ["first", "renewal", "renewal"]
        with pytest.raises(BadInput, match="in the future"):
            permits_store.renew_permit(conn, person=idn, on=TODAY + dt.timedelta(days=1),
                                       today=TODAY)


def test_expiring_permits_per_grid(engine: Engine) -> None:
    a, b = ids(2, seed=51)
    with events.write_transaction(engine) as conn:
        for idn, house in ((a, "H002"), (b, "H009")):
            events.arrive(conn, id_number=idn, house=house, name="期", intended_stay_days=400,
                          on=dt.date(2023, 8, 1), entered_at=dt.datetime(2023, 8, 1, 9),
                          now=NOW)
        permits_store.issue_permit(conn, person=a, on=dt.date(2023, 8, 31), today=TODAY)
        permits_store.issue_permit(conn, person=b, on=dt.date(2023, 9, 2), today=TODAY)
    with engine.connect() as conn:
        # a's ends 2024-08-30, b's 2024-09-01
        rows = permits_store.expiring_permits(conn, days=30, as_of=dt.date(2024, 8, 1))
        assert rows["id_number"].tolist() == [a]
        rows = permits_store.expiring_permits(conn, days=30, as_of=dt.date(2024, 8, 30))
        assert rows["id_number"].tolist() == [a, b]
        assert rows["days_left"].tolist() == [0, 2]
        rows = permits_store.expiring_permits(conn, days=30, as_of=dt.date(2024, 8, 30),
                                              grid_id=G3)
        assert rows["id_number"].tolist() == [b]
        rows = permits_store.expiring_permits(conn, days=30, as_of=dt.date(2024, 8, 31))
        assert rows["id_number"].tolist() == [b]  # a's lapsed yesterday
        lapsed = permits_store.eligible_without_permit(conn, as_of=dt.date(2024, 8, 31))
        row = lapsed.set_index("id_number").loc[a]
        assert pd.Timestamp(row["last_valid_until"]).date() == dt.date(2024, 8, 30)
        assert not bool(row["overdue"])  # a renewal is due, not a first issue
        with pytest.raises(NotFound, match="grid 'nope'"):
            permits_store.expiring_permits(conn, days=30, grid_id="nope")


def test_permit_needs_a_current_eligible_resident(engine: Engine) -> None:
    with events.write_transaction(engine) as conn:
        p2 = events.find_person(conn, "P2")[1]  # local
        with pytest.raises(BadInput, match="needs no residence permit"):
            permits_store.issue_permit(conn, person=p2, on=dt.date(2024, 8, 1), today=TODAY)
        p1 = events.find_person(conn, "P1")[1]
        events.leave(conn, id_number=p1, on=dt.date(2024, 8, 1), now=NOW)
        with pytest.raises(BadInput, match="no current residence"):
            permits_store.issue_permit(conn, person=p1, on=dt.date(2024, 8, 2), today=TODAY)
        with pytest.raises(NotFound):
            permits_store.issue_permit(conn, person="nobody", today=TODAY)


# --- rentals ----------------------------------------------------------------------------------


def test_rental_registration_refuses_or_flags_violations(engine: Engine) -> None:
    (landlord,) = ids(1, hukou="510104", birth="1960-01-01", seed=61)
    rooms = pd.DataFrame({"room_type": ["bedroom", "厨房"], "area_m2": [12.0, 6.0],
                          "label": ["B1", "K"]})
    before = snapshot(engine)
    with pytest.raises(BadInput, match="kitchen 'K' may not be let as living space"), \
            events.write_transaction(engine) as conn:
        events.register_rental(conn, house="H003", landlord_id_number=landlord, tenants=2,
                               rental_class="uneasy", rooms=rooms, today=TODAY)
    assert snapshot(engine) == before
    with events.write_transaction(engine) as conn:
        g1 = conn.execute(text("SELECT rental_houses, rental_uneasy FROM grid_count c JOIN "
                               "grid g ON g.id = c.grid_pk WHERE g.grid_id = :g"),
                          {"g": G1}).one()
        res = events.register_rental(conn, house="H003", landlord_id_number=landlord,
                                     tenants=2, rental_class="uneasy", rooms=rooms,
                                     accept_violations=True, today=TODAY)
        assert res.created and not res.compliant
        stored = events.rental_findings(conn, house="H003")
        assert stored["rule"].tolist() == ["forbidden_room"]
        assert stored["room_type"].tolist() == ["kitchen"]
        g1_after = conn.execute(text("SELECT rental_houses, rental_uneasy FROM grid_count c "
                                     "JOIN grid g ON g.id = c.grid_pk WHERE g.grid_id = :g"),
                                {"g": G1}).one()
        assert tuple(g1_after) == (g1[0] + 1, g1[1] + 1)
        assert_counts_exact(conn)
        # re-registered clean as key: violations go, the class moves in the counts
        fixed = events.register_rental(conn, house="H003", landlord_id_number=landlord,
                                       tenants=2, rental_class="key",
                                       rooms=rooms.iloc[:1], today=TODAY)
        assert not fixed.created and fixed.compliant and fixed.rental_id == res.rental_id
        assert events.rental_findings(conn, house="H003").empty
        assert_counts_exact(conn)
        # the loaded unregistered let of H008 becomes registered
        events.register_rental(conn, house="H008", landlord_id_number=landlord, tenants=1,
                               rental_class="trusted", today=TODAY)
        assert_counts_exact(conn)
    with pytest.raises(BadInput, match="below the minimum 5 m²"), \
            events.write_transaction(engine) as conn:
        events.register_rental(conn, house="H004", landlord_id_number=landlord, tenants=13,
                               rental_class="key", today=TODAY)  # 60 m² house


# --- schema ------------------------------------------------------------------------------------


def test_migration_matches_models_and_downgrades(store_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from geoalchemy2 import alembic_helpers

    from gridmgr.store.models import Base
    from gridmgr.store.schema import current_revision, downgrade, head_revision

    engine = make_engine(store_url)
    upgrade(engine)
    mine = ("person_event", "residence_permit", "rental_room", "rental_violation")
    assert all(t in Base.metadata.tables for t in mine)  # registered by importing events
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={
            "include_object": alembic_helpers.include_object})
        diff = compare_metadata(ctx, Base.metadata)
    assert [d for d in diff if any(f"'{t}'" in repr(d) or f"table=<{t}>" in repr(d)
                                   for t in mine)] == []
    downgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    upgrade(engine)
    assert current_revision(engine) == head_revision()


# --- the command line --------------------------------------------------------------------------


def cli() -> typer.Typer:
    from gridmgr.cli_register import permits_app, register_app

    app = typer.Typer()
    app.add_typer(register_app, name="register")
    app.add_typer(permits_app, name="permits")
    return app


def test_cli_register_and_permits(spatialite_url: str, tmp_path: Path) -> None:
    load_city(spatialite_url, tmp_path).dispose()
    runner = CliRunner()
    app = cli()
    db = ["--db", spatialite_url]
    (idn,) = ids(1, seed=71)

    def run(*args: str) -> Any:
        return runner.invoke(app, [*args, *db])

    r = run("register", "arrive", idn, "H002", "--on", "2024-08-01 09:00", "--name", "张",
            "--stay-days", "90", "--entered-at", "2024-08-03 10:00")
    assert r.exit_code == 0, r.output
    assert "recorded as event" in r.stdout and "LATE" in r.stdout
    r = run("register", "arrive", idn, "H002", "--on", "2024-08-01 09:00", "--name", "张",
            "--stay-days", "90", "--entered-at", "2024-08-03 10:00")
    assert r.exit_code == 0 and "already recorded" in r.stdout
    r = run("register", "move", idn, "H006", "--on", "2024-08-05", "--from", "H002")
    assert r.exit_code == 0, r.output
    r = run("register", "history", idn, "--format", "json")
    assert [h["house_source_id"] for h in json.loads(r.stdout)] == ["H006", "H002"]
    r = run("permits", "issue", idn, "--on", "2024-08-06")
    assert r.exit_code == 0 and "valid 2024-08-06 to 2025-08-05" in r.stdout
    r = run("permits", "expiring", "--days", "400", "--as-of", "2024-08-10", "--format", "json")
    assert [x["id_number"] for x in json.loads(r.stdout)] == [idn]
    r = run("permits", "due", "--as-of", "2024-08-06", "--format", "csv")
    assert r.exit_code == 0 and r.stdout.startswith("grid_id,")
    r = run("permits", "eligible", "--grid", G2, "--as-of", "2024-08-10", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout) == []
    r = run("permits", "eligible", "--grid", G2, "--as-of", "2025-08-06", "--format", "json")
    (lapsed,) = json.loads(r.stdout)
    assert lapsed["id_number"] == idn and lapsed["last_valid_until"] == "2025-08-05"
    r = run("register", "rental", "H003", "--landlord", ids(1, "510104", "1960-01-01")[0],
            "--tenants", "2", "--class", "uneasy", "--room", "bedroom:12:2", "--room",
            "balcony:4")
    assert r.exit_code == 2 and "balcony may not be let" in r.stderr
    # bad input: exit 2, one line on stderr
    for args in (("register", "move", idn, "H007", "--on", "2024-02-30"),
                 ("register", "move", idn, "H999", "--on", "2024-08-20"),
                 ("register", "move", idn, "H007", "--on", "2024-08-20", "--from", "H002"),
                 ("register", "leave", "nobody", "--on", "2024-08-20"),
                 ("permits", "renew", idn, "--years", "x"),
                 ("permits", "expiring", "--days", "-3"),
                 ("register", "import", str(tmp_path / "missing.csv"))):
        r = run(*args)
        assert r.exit_code == 2, (args, r.output)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, r.stderr)
        assert "Traceback" not in r.stderr
    f = tmp_path / "ev.csv"
    pd.DataFrame([{"event": "leave", "id_number": idn, "occurred_on": "2024-08-25"}]).to_csv(
        f, index=False)
    r = run("register", "import", str(f), "--report", str(tmp_path / "rep.csv"))
    assert r.exit_code == 0 and "applied 1 of 1" in r.stdout
    r = run("register", "import", str(f), "--report", str(tmp_path / "rep.csv"))
    assert r.exit_code == 0 and "1 already recorded" in r.stdout
