"""residence.person_flags: what the full recount reads instead of person, kept by triggers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from cityfiles import load_city
from sqlalchemy import Connection, Engine, text

from gridmgr.store import counts
from gridmgr.store.plans import adopted_plan_id
from gridmgr.store.schema import current_revision, downgrade, head_revision, upgrade


@pytest.fixture
def engine(store_url: str, tmp_path: Path) -> Engine:
    return load_city(store_url, tmp_path)


def flags_of(conn: Connection, person_id: int) -> dict[int, int | None]:
    """residence id → person_flags of one person's residences."""
    rows = conn.execute(text("SELECT id, person_flags FROM residence WHERE person_id = :p"),
                        {"p": person_id}).fetchall()
    return {int(r[0]): None if r[1] is None else int(r[1]) for r in rows}


def current(conn: Connection, person_id: int) -> tuple[int, int]:
    """(residence id, house id) of a person's current residence."""
    row = conn.execute(text("SELECT id, house_id FROM residence WHERE person_id = :p "
                            "AND left_on IS NULL"), {"p": person_id}).one()
    return int(row[0]), int(row[1])


def test_the_load_writes_the_flags_recompute_reads(engine: Engine) -> None:
    with engine.connect() as conn:
        assert counts.stale_person_flags(conn) == 0
        n = conn.execute(text("SELECT count(*) FROM residence WHERE left_on IS NULL "
                              "AND person_flags IS NULL")).scalar_one()
        assert n == 0
        # the small city has floating, registered, consistent and key people: all bits used
        bits = conn.execute(text("SELECT person_flags FROM residence")).scalars().all()
        assert {b & m for b in bits for m in (1, 2, 4, 8)} >= {1, 2, 4, 8}


def test_triggers_follow_every_writer(engine: Engine) -> None:
    with engine.begin() as conn:
        pid = int(conn.execute(text("SELECT min(id) FROM person")).scalar_one())
        res, house = current(conn, pid)
        # a change of class by plain SQL reaches the current residence
        conn.execute(text("UPDATE person SET person_class = 'uneasy', registered_on = NULL "
                          "WHERE id = :p"), {"p": pid})
        assert flags_of(conn, pid)[res] & (8 | 16 | 2) == 16
        assert counts.stale_person_flags(conn) == 0
        # a residence opened by plain SQL gets its flags; the closed one keeps its own
        other = int(conn.execute(text("SELECT min(id) FROM house WHERE id <> :h"),
                                 {"h": house}).scalar_one())
        conn.execute(text("UPDATE residence SET left_on = '2024-09-01' WHERE id = :r"),
                     {"r": res})
        conn.execute(text("INSERT INTO residence (person_id, house_id, arrived_on) "
                          "VALUES (:p, :h, '2024-09-01')"), {"p": pid, "h": other})
        new, _ = current(conn, pid)
        frozen = flags_of(conn, pid)[res]
        conn.execute(text("UPDATE person SET person_class = 'key', registered_house_id = :h "
                          "WHERE id = :p"), {"p": pid, "h": other})
        got = flags_of(conn, pid)
        assert got[res] == frozen  # history is not rewritten
        assert got[new] is not None and got[new] & 4 and (got[new] >> 3) == 1
        assert counts.stale_person_flags(conn) == 0
        # moving a residence row to another house re-derives "registered at this house"
        conn.execute(text("UPDATE residence SET house_id = :h WHERE id = :r"),
                     {"h": house, "r": new})
        assert not flags_of(conn, pid)[new] & 4  # type: ignore[operator]
        assert counts.stale_person_flags(conn) == 0
        conn.rollback()


def test_recompute_refuses_a_residence_without_flags(engine: Engine) -> None:
    with engine.begin() as conn:
        plan = adopted_plan_id(conn)
        assert plan is not None
        conn.execute(text("UPDATE residence SET person_flags = NULL WHERE id = "
                          "(SELECT min(id) FROM residence WHERE left_on IS NULL)"))
        assert counts.stale_person_flags(conn) == 1
        with pytest.raises(RuntimeError, match="1 current residences have no person flags"):
            counts.recompute(conn, plan)
        conn.rollback()


def test_migration_fills_the_flags_of_a_populated_store(engine: Engine) -> None:
    downgrade(engine, "0004")
    assert current_revision(engine) == "0004"
    pg = engine.dialect.name == "postgresql"
    filenode = "SELECT pg_relation_filenode('residence')"
    if pg:
        with engine.connect() as conn:
            before = conn.execute(text(filenode)).scalar_one()
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    if pg:  # the fill's UPDATE doubled every row: the table was rewritten after commit
        with engine.connect() as conn:
            assert conn.execute(text(filenode)).scalar_one() != before
    with engine.connect() as conn:
        plan = adopted_plan_id(conn)
        assert plan is not None
        assert counts.stale_person_flags(conn) == 0
        pd.testing.assert_frame_equal(counts.maintained(conn, plan).sort_index(),
                                      counts.recompute(conn, plan).sort_index(),
                                      check_names=False)
