"""Rental-house inspections in the store: a grid's list for a week, recording a visit.

The schedule itself is domain logic in :mod:`gridmgr.inspections` (intervals per class,
``due_in_week``, ``record_inspection``); this module reads the rentals it needs and writes
an inspection together with the rental's new ``last_inspected_on`` / ``next_due_on`` in the
caller's transaction. ``areas`` limits what a caller may see (a police token's area and
everything under it): a grid or house outside it is reported exactly like a missing one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from gridmgr import codes
from gridmgr.errors import BadInput, NotFound
from gridmgr.inspections import INSPECTOR, due_in_week
from gridmgr.inspections import record_inspection as next_due_after
from gridmgr.settings import WorkloadSettings
from gridmgr.store.bulk import is_pg, read_frame
from gridmgr.store.plans import adopted_plan_id

MAX_INSPECTOR = 100
MAX_OUTCOME = 200

DUE_COLUMNS: tuple[str, ...] = (
    "house_code", "address", "community_code", "rental_class", "inspector", "tenants",
    "registered_on", "last_inspected_on", "due_on", "overdue", "days_overdue",
)
"""Columns of ``inspections_due``, in order."""

_DUE_SQL = (
    "SELECT h.house_code, h.address, h.community_code, r.rental_class, r.tenants, "
    "r.registered_on, r.last_inspected_on, r.next_due_on "
    "FROM grid g "
    "JOIN house_grid hg ON hg.grid_pk = g.id AND hg.plan_id = g.plan_id "
    "JOIN rental_record r ON r.house_id = hg.house_id "
    "JOIN house h ON h.id = r.house_id "
    "WHERE g.id = :grid_pk AND r.next_due_on IS NOT NULL AND r.next_due_on < :week_end"
)

_HOUSE_SQL = "SELECT id, address, community_code FROM house WHERE house_code = :code"

_RENTAL_SQL = (
    "SELECT id AS rental_id, rental_class, tenants, landlord_id_number, registered_on, "
    "last_inspected_on, next_due_on FROM rental_record WHERE house_id = :h"
)


def monday_of(day: dt.date) -> dt.date:
    """The Monday that starts the ISO week holding ``day``."""
    return day - dt.timedelta(days=day.isoweekday() - 1)


def _date(value: Any) -> dt.date | None:
    """A date from what either store hands back (date, datetime or ISO text)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.date()
    return dt.date.fromisoformat(str(value)[:10])


def _iso(value: Any) -> str | None:
    day = _date(value)
    return None if day is None else day.isoformat()


def _visible(community_code: str | None, areas: Collection[str] | None) -> bool:
    return areas is None or (community_code is not None and community_code in areas)


def _grid(conn: Connection, grid_id: str, plan_id: int | None,
          areas: Collection[str] | None) -> tuple[int, str]:
    """(grid pk, community) of a grid of the plan; NotFound when missing or out of scope."""
    plan = plan_id if plan_id is not None else adopted_plan_id(conn)
    if plan is None:
        raise NotFound("no grids are loaded yet: load areas and grids first")
    row = conn.execute(text("SELECT id, community_code FROM grid "
                            "WHERE plan_id = :p AND grid_id = :g"),
                       {"p": int(plan), "g": str(grid_id)}).first()
    if row is None or not _visible(row[1], areas):
        raise NotFound(f"no grid {grid_id!r} in the adopted plan")
    return int(row[0]), str(row[1])


def inspections_due(
    conn: Connection,
    *,
    grid_id: str,
    week_start: dt.date,
    areas: Collection[str] | None = None,
    plan_id: int | None = None,
    settings: WorkloadSettings | None = None,
) -> pd.DataFrame:
    """Rentals of a grid due in the ISO week starting ``week_start`` plus overdue ones.

    Overdue first (most overdue at the top), then by due date; one row per rental with
    ``DUE_COLUMNS``. Only rentals with a scheduled visit appear (trusted rentals, by
    default, have none). ``week_start`` must be a Monday; the grid is one of the adopted
    plan unless ``plan_id`` is given.
    """
    if week_start.isoweekday() != 1:
        raise BadInput(f"week_start {week_start.isoformat()} is not a Monday; pass "
                       f"{monday_of(week_start).isoformat()}")
    grid_pk, _ = _grid(conn, grid_id, plan_id, areas)
    week_end = week_start + dt.timedelta(days=7)
    frame = read_frame(conn, _DUE_SQL, {"grid_pk": grid_pk, "week_end": week_end.isoformat()})
    if areas is not None and len(frame):
        frame = frame[frame["community_code"].isin(list(areas))].reset_index(drop=True)
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DUE_COLUMNS})
    due = due_in_week(frame, week_start, settings or WorkloadSettings())
    due["inspector"] = due["rental_class"].map(dict(INSPECTOR)).fillna("police")
    for col in ("registered_on", "last_inspected_on", "due_on"):
        due[col] = [_iso(v) for v in due[col]]
    due["overdue"] = due["overdue"].astype(bool)
    due["days_overdue"] = due["days_overdue"].astype(np.int64)
    due["tenants"] = due["tenants"].astype(np.int64)
    return due[list(DUE_COLUMNS)]


@dataclass(frozen=True)
class InspectionRecorded:
    """What recording an inspection did: the visit and the rental's new schedule."""

    inspection_id: int
    house_code: str
    rental_class: str
    inspected_on: str
    inspector: str
    outcome: str
    last_inspected_on: str
    previous_due_on: str | None
    next_due_on: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _clean_text(value: str, what: str, limit: int) -> str:
    cleaned = " ".join(str(value).split())
    if not cleaned:
        raise BadInput(f"{what} is empty; say who inspected and what was found")
    if len(cleaned) > limit:
        raise BadInput(f"{what} is {len(cleaned)} characters long; keep it to {limit}")
    return cleaned


def _rental_row(conn: Connection, house_code: str, areas: Collection[str] | None, *,
                lock: bool = False) -> tuple[str, Any]:
    """The canonical code and the house's rental row (None when not let).

    NotFound when the house is missing or outside ``areas``. With ``lock`` on PostGIS
    the rental row stays locked until the transaction ends, so two officers recording
    visits to one house at once are applied one after the other.
    """
    code = codes.normalize(house_code)
    house = conn.execute(text(_HOUSE_SQL), {"code": code}).first()
    if house is None or not _visible(house[2], areas):
        raise NotFound(f"no house with code {code}")
    sql = _RENTAL_SQL + (" FOR UPDATE" if lock and is_pg(conn) else "")
    return code, conn.execute(text(sql), {"h": int(house[0])}).mappings().first()


def record_inspection(
    conn: Connection,
    *,
    house_code: str,
    inspected_on: dt.date,
    inspector: str,
    outcome: str,
    areas: Collection[str] | None = None,
    settings: WorkloadSettings | None = None,
    today: dt.date | None = None,
) -> InspectionRecorded:
    """Record a visit to a rental house and move its next due date, in the caller's transaction.

    The next due date counts from the latest inspection on record, so entering an older
    visit late never pulls the schedule back. A visit in the future, or before the let
    was registered, is bad input; a house that is not let is NotFound (nothing to inspect).
    """
    who = _clean_text(inspector, "inspector", MAX_INSPECTOR)
    found = _clean_text(outcome, "outcome", MAX_OUTCOME)
    today = today or dt.date.today()
    if not isinstance(inspected_on, dt.date) or isinstance(inspected_on, dt.datetime):
        raise BadInput(f"inspected_on {inspected_on!r} is not a date; use YYYY-MM-DD")
    if inspected_on > today:
        raise BadInput(f"inspected_on {inspected_on.isoformat()} is in the future "
                       f"(today is {today.isoformat()})")
    code, row = _rental_row(conn, house_code, areas, lock=True)
    if row is None:
        raise NotFound(f"house {code} has no rental record, so it has no inspections; "
                       "register the let first")
    registered = _date(row["registered_on"])
    if registered is not None and inspected_on < registered:
        raise BadInput(f"inspected_on {inspected_on.isoformat()} is before the let was "
                       f"registered ({registered.isoformat()})")
    previous_last = _date(row["last_inspected_on"])
    last = max(inspected_on, previous_last) if previous_last is not None else inspected_on
    rental_class = str(row["rental_class"])
    due = next_due_after(rental_class, last, settings or WorkloadSettings())
    rental_id = int(row["rental_id"])
    inspection_id = conn.execute(text(
        "INSERT INTO inspection (rental_id, inspected_on, inspector, outcome) "
        "VALUES (:r, :d, :i, :o) RETURNING id"),
        {"r": rental_id, "d": inspected_on.isoformat(), "i": who, "o": found}).scalar_one()
    conn.execute(text("UPDATE rental_record SET last_inspected_on = :l, next_due_on = :n "
                      "WHERE id = :r"),
                 {"l": last.isoformat(), "n": None if due is None else due.isoformat(),
                  "r": rental_id})
    return InspectionRecorded(
        inspection_id=int(inspection_id), house_code=code, rental_class=rental_class,
        inspected_on=inspected_on.isoformat(), inspector=who, outcome=found,
        last_inspected_on=last.isoformat(), previous_due_on=_iso(row["next_due_on"]),
        next_due_on=None if due is None else due.isoformat())


def house_rental(
    conn: Connection,
    *,
    house_code: str,
    areas: Collection[str] | None = None,
    today: dt.date | None = None,
    recent: int = 5,
) -> dict[str, Any] | None:
    """A house's let: class, tenants, landlord, schedule and latest inspections; None if not let.

    NotFound when the house is missing or outside ``areas``. The landlord's ID number is
    returned as stored; mask it for roles that may not see it.
    """
    code, row = _rental_row(conn, house_code, areas)
    if row is None:
        return None
    today = today or dt.date.today()
    due = _date(row["next_due_on"])
    visits = conn.execute(text(
        "SELECT inspected_on, inspector, outcome FROM inspection WHERE rental_id = :r "
        "ORDER BY inspected_on DESC, id DESC LIMIT :n"),
        {"r": int(row["rental_id"]), "n": int(recent)}).fetchall()
    rental_class = str(row["rental_class"])
    return {
        "house_code": code, "rental_class": rental_class,
        "inspector": INSPECTOR.get(rental_class, "police"), "tenants": int(row["tenants"]),
        "landlord_id_number": row["landlord_id_number"],
        "registered_on": _iso(row["registered_on"]),
        "last_inspected_on": _iso(row["last_inspected_on"]),
        "next_due_on": None if due is None else due.isoformat(),
        "overdue": due is not None and due < today,
        "inspections": [{"inspected_on": _iso(v[0]), "inspector": str(v[1]),
                         "outcome": str(v[2])} for v in visits],
    }
