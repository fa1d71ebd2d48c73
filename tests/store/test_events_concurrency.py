"""Concurrent clerks: real transactions in threads on separate connections.

On PostGIS one transaction is held open while another, started in a thread, is shown to
wait on its locks (pg_stat_activity); then the first commits and the outcome is checked.
The barrier tests start several clerks at the same instant, on both stores.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cityfiles import ORDER, write_city
from sqlalchemy import Connection, Engine, text

from gridmgr.errors import Conflict
from gridmgr.idnumber import generate_id_numbers
from gridmgr.store import counts, events, permits_store
from gridmgr.store.engine import make_engine
from gridmgr.store.load import load_file
from gridmgr.store.schema import upgrade

NOW = dt.datetime(2024, 9, 1, 12, 0)


def new_ids(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    return [str(x) for x in generate_id_numbers(
        rng, np.array(["520102"] * n), np.array(["1992-02-02"] * n, dtype="datetime64[D]"),
        np.array(["F"] * n))]


def city(url: str, tmp: Path) -> Engine:
    paths = write_city(tmp / "city")
    engine = make_engine(url, pool_size=10, max_overflow=5)
    upgrade(engine)
    for kind in ORDER:
        load_file(engine, kind, paths[kind], report_path=tmp / f"{kind}.report.csv")
    return engine


@pytest.fixture
def pg(postgis_url: str, tmp_path: Path) -> Engine:
    return city(postgis_url, tmp_path)


@pytest.fixture
def any_store(store_url: str, tmp_path: Path) -> Engine:
    return city(store_url, tmp_path)


def assert_counts_exact(engine: Engine) -> None:
    with engine.connect() as conn:
        for plan in counts.live_plans(conn):
            pd.testing.assert_frame_equal(counts.maintained(conn, plan).sort_index(),
                                          counts.recompute(conn, plan).sort_index(),
                                          check_names=False)


def residents(engine: Engine, house: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM residence r JOIN house h ON h.id = r.house_id "
            "WHERE h.source_id = :h AND r.left_on IS NULL"), {"h": house}).scalar_one())


def grid_residents(engine: Engine, house: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT c.residents FROM grid_count c JOIN house_grid hg ON hg.grid_pk = c.grid_pk "
            "JOIN house h ON h.id = hg.house_id WHERE h.source_id = :h"),
            {"h": house}).scalar_one())


class Clerk(threading.Thread):
    """Runs one event in its own transaction and keeps the result or the error."""

    def __init__(self, engine: Engine, work: Callable[[Connection], Any],
                 barrier: threading.Barrier | None = None) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.work = work
        self.barrier = barrier
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            if self.barrier is not None:
                self.barrier.wait(timeout=60)
            with events.write_transaction(self.engine) as conn:
                self.result = self.work(conn)
        except BaseException as exc:  # noqa: BLE001 (reported by the test)
            self.error = exc


def wait_until_blocked(engine: Engine, clerk: Clerk) -> None:
    """Return once another backend waits on a lock (the clerk is inside its transaction)."""
    deadline = time.monotonic() + 60
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar_one()
            conn.rollback()  # activity is snapshotted per transaction: look afresh each time
            if waiting:
                return
            assert clerk.is_alive(), f"the clerk finished without waiting: {clerk.error!r}"
            time.sleep(0.02)
    raise AssertionError("the second clerk never waited on the first one's locks")


def hold_then_race(engine: Engine, first: Callable[[Connection], Any],
                   second: Callable[[Connection], Any]) -> tuple[Any, Clerk]:
    """Run `first` in an open transaction, start `second`, see it wait, then commit first."""
    conn = engine.connect()
    tx = conn.begin()
    try:
        done = first(conn)
        clerk = Clerk(engine, second)
        clerk.start()
        wait_until_blocked(engine, clerk)
        tx.commit()
    except BaseException:
        tx.rollback()
        raise
    finally:
        conn.close()
    clerk.join(timeout=120)
    assert not clerk.is_alive()
    return done, clerk


# --- PostGIS: one transaction held open, the other provably waiting -------------------------


def test_two_clerks_same_house_different_people_both_succeed(pg: Engine) -> None:
    a, b = new_ids(2)
    before = grid_residents(pg, "H002")
    first, clerk = hold_then_race(
        pg,
        lambda c: events.arrive(c, id_number=a, house="H002", name="甲", on=dt.date(2024, 8, 1),
                                now=NOW),
        lambda c: events.arrive(c, id_number=b, house="H002", name="乙", on=dt.date(2024, 8, 1),
                                now=NOW))
    assert clerk.error is None and clerk.result.applied and first.applied
    assert residents(pg, "H002") == 2
    assert grid_residents(pg, "H002") == before + 2
    assert_counts_exact(pg)


def test_two_conflicting_moves_cannot_both_win(pg: Engine) -> None:
    with pg.connect() as conn:
        p1 = events.find_person(conn, "P1")[1]  # lives at H001
    first, clerk = hold_then_race(
        pg,
        lambda c: events.move(c, id_number=p1, house="H003", from_house="H001",
                              on=dt.date(2024, 8, 1), now=NOW),
        lambda c: events.move(c, id_number=p1, house="H008", from_house="H001",
                              on=dt.date(2024, 8, 1), now=NOW))
    assert first.applied
    assert isinstance(clerk.error, Conflict)
    assert "now lives at house" in str(clerk.error) and "reload and retry" in str(clerk.error)
    with pg.connect() as conn:
        current = conn.execute(text(
            "SELECT h.source_id FROM residence r JOIN house h ON h.id = r.house_id "
            "JOIN person p ON p.id = r.person_id WHERE p.id_number = :i AND r.left_on IS NULL"),
            {"i": p1}).scalars().all()
        assert current == ["H003"]
        moves = conn.execute(text(
            "SELECT count(*) FROM person_event e JOIN person p ON p.id = e.person_id "
            "WHERE p.id_number = :i AND e.event_type = 'move'"), {"i": p1}).scalar_one()
        assert moves == 1
    assert_counts_exact(pg)


def test_moves_without_from_are_serialised_not_lost(pg: Engine) -> None:
    with pg.connect() as conn:
        p1 = events.find_person(conn, "P1")[1]
    first, clerk = hold_then_race(
        pg,
        lambda c: events.move(c, id_number=p1, house="H003", on=dt.date(2024, 8, 1), now=NOW),
        lambda c: events.move(c, id_number=p1, house="H008", on=dt.date(2024, 8, 2), now=NOW))
    assert first.applied and clerk.error is None and clerk.result.applied
    with pg.connect() as conn:
        pid = events.find_person(conn, p1)[0]
        hist = events.residence_history(conn, person_id=pid)
    # A → B → C, each residence closed when the next began; one current residence
    assert hist["house_source_id"].tolist() == ["H008", "H003", "H001"]
    assert hist["current"].tolist() == [True, False, False]
    assert_counts_exact(pg)


def test_same_new_person_at_two_houses_one_wins(pg: Engine) -> None:
    (x,) = new_ids(1, seed=2)
    first, clerk = hold_then_race(
        pg,
        lambda c: events.arrive(c, id_number=x, house="H002", name="丙", on=dt.date(2024, 8, 1),
                                now=NOW),
        lambda c: events.arrive(c, id_number=x, house="H009", name="丙", on=dt.date(2024, 8, 1),
                                now=NOW))
    assert first.applied and isinstance(clerk.error, Conflict)
    assert residents(pg, "H002") == 1 and residents(pg, "H009") == 1  # P5 lives at H009
    assert_counts_exact(pg)


def test_double_submitted_event_is_recorded_once(pg: Engine) -> None:
    (x,) = new_ids(1, seed=3)

    def arrive(c: Connection) -> Any:
        return events.arrive(c, id_number=x, house="H002", name="丁", on=dt.date(2024, 8, 1),
                             now=NOW)

    first, clerk = hold_then_race(pg, arrive, arrive)
    assert first.applied and clerk.error is None
    assert not clerk.result.applied and clerk.result.event_id == first.event_id
    with pg.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM person_event")).scalar_one() == 1
    assert_counts_exact(pg)


def test_two_clerks_issuing_one_permit(pg: Engine) -> None:
    with pg.connect() as conn:
        p1 = events.find_person(conn, "P1")[1]  # floating, registered 2024-01-01

    def issue(c: Connection) -> Any:
        return permits_store.issue_permit(c, person=p1, on=dt.date(2024, 3, 1),
                                          today=NOW.date())

    first, clerk = hold_then_race(pg, issue, issue)
    assert first.kind == "first" and isinstance(clerk.error, Conflict)
    with pg.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM residence_permit")).scalar_one() == 1


# --- both stores: clerks starting at the same instant ----------------------------------------


def test_clerks_starting_together_all_succeed(any_store: Engine) -> None:
    people = new_ids(6, seed=4)
    before = grid_residents(any_store, "H003")
    barrier = threading.Barrier(len(people))

    def arrival(p: str) -> Callable[[Connection], Any]:
        return lambda c: events.arrive(c, id_number=p, house="H003", name="众",
                                       on=dt.date(2024, 8, 1), now=NOW)

    clerks = [Clerk(any_store, arrival(p), barrier) for p in people]
    for c in clerks:
        c.start()
    for c in clerks:
        c.join(timeout=180)
    assert [c.error for c in clerks] == [None] * len(people)
    assert all(c.result.applied for c in clerks)
    assert residents(any_store, "H003") == len(people)
    assert grid_residents(any_store, "H003") == before + len(people)
    assert_counts_exact(any_store)


def test_conflicting_moves_starting_together_one_wins(any_store: Engine) -> None:
    with any_store.connect() as conn:
        p1 = events.find_person(conn, "P1")[1]
    barrier = threading.Barrier(2)

    def move_to(h: str) -> Callable[[Connection], Any]:
        return lambda c: events.move(c, id_number=p1, house=h, from_house="H001",
                                     on=dt.date(2024, 8, 1), now=NOW)

    clerks = [Clerk(any_store, move_to(h), barrier) for h in ("H003", "H008")]
    for c in clerks:
        c.start()
    for c in clerks:
        c.join(timeout=180)
    errors = [c.error for c in clerks]
    assert sum(e is None for e in errors) == 1
    assert sum(isinstance(e, Conflict) for e in errors) == 1
    winner = next(c for c in clerks if c.error is None)
    with any_store.connect() as conn:
        pid = events.find_person(conn, p1)[0]
        hist = events.residence_history(conn, person_id=pid)
    assert hist["current"].sum() == 1
    assert hist["residence_id"].iloc[0] == winner.result.residence_id
    assert_counts_exact(any_store)
