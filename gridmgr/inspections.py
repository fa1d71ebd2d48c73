"""Rental-house inspection schedule: intervals by class, due dates, the week's list.

Field practice (county police survey): key rentals (重点户) are checked weekly by the
area police, uneasy rentals (不放心户) every half-month by the village/community
committee, trusted rentals (放心户) are left to the landlord (房东管理).

Rules used here (docs/tiers.md, "Inspection schedule"):

- next due = last inspection + interval; a rental never inspected is first due one
  interval after it was registered;
- a class without an interval (trusted, by default) has no due date (None / NaT);
- a class change on day C with an old due date D gives next due =
  min(D, C + new interval): an upgrade brings the visit forward, a downgrade never
  cancels a visit already scheduled (or overdue); from that visit on the new interval
  applies. A change to a class without interval clears the due date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gridmgr.errors import BadInput
from gridmgr.settings import WorkloadSettings

RENTAL_CLASSES: tuple[str, ...] = ("key", "uneasy", "trusted")

#: Who makes the scheduled visits of each class (trusted: police, if an interval is set).
INSPECTOR: Mapping[str, str] = MappingProxyType(
    {"key": "police", "uneasy": "committee", "trusted": "landlord"}
)

#: Default days between visits per class (None: no scheduled visit); configure through
#: WorkloadSettings and read the configured values with ``inspection_intervals``.
INSPECTION_INTERVAL: Mapping[str, int | None] = MappingProxyType(
    {"key": 7, "uneasy": 15, "trusted": None}
)

_DAY = np.timedelta64(1, "D")


def inspection_intervals(settings: WorkloadSettings) -> dict[str, int | None]:
    """Days between scheduled visits per rental class, as configured."""
    return {
        "key": settings.key_interval_days,
        "uneasy": settings.uneasy_interval_days,
        "trusted": settings.trusted_interval_days,
    }


def visits_per_month(interval_days: int | None) -> float:
    """Scheduled visits per month for one rental: whole intervals in a 365-day year / 12.

    Weekly gives 52/12 and every 15 days gives 24/12 = 2, the figures of the field
    reports ("每星期检查一次", "每半月检查一次").
    """
    if interval_days is None:
        return 0.0
    return (365 // interval_days) / 12


def _check_class(class_: str, intervals: Mapping[str, int | None]) -> int | None:
    if class_ not in intervals:
        raise BadInput(
            f"rental class {class_!r} is unknown; use one of {', '.join(RENTAL_CLASSES)}"
        )
    return intervals[class_]


def _as_date(value: Any, what: str) -> dt.date | None:
    if value is None or (not isinstance(value, dt.date) and pd.isna(value)):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return pd.Timestamp(value).date()
    except (ValueError, TypeError) as exc:
        raise BadInput(f"{what} {value!r} is not a date; use YYYY-MM-DD") from exc


def next_due(
    class_: str,
    last_inspected_on: dt.date | None,
    registered_on: dt.date | None,
    settings: WorkloadSettings,
) -> dt.date | None:
    """Next scheduled visit of one rental house, or None when its class has none.

    Counts from the last inspection, or from registration if it was never inspected.
    """
    interval = _check_class(class_, inspection_intervals(settings))
    if interval is None:
        return None
    base = _as_date(last_inspected_on, "last_inspected_on") or _as_date(
        registered_on, "registered_on"
    )
    if base is None:
        raise BadInput(
            f"a {class_} rental needs registered_on or last_inspected_on to schedule a visit"
        )
    return base + dt.timedelta(days=interval)


def record_inspection(
    class_: str, inspected_on: dt.date, settings: WorkloadSettings
) -> dt.date | None:
    """Next due date after an inspection recorded on ``inspected_on``."""
    return next_due(class_, inspected_on, None, settings)


def _to_day_array(values: Any, what: str) -> npt.NDArray[np.datetime64]:
    try:
        out = pd.to_datetime(pd.Series(values, dtype=object), errors="raise")
    except (ValueError, TypeError) as exc:
        raise BadInput(f"{what} holds a value that is not a date; use YYYY-MM-DD") from exc
    return np.asarray(out.to_numpy(dtype="datetime64[ns]")).astype("datetime64[D]")


def _interval_array(classes: Any, settings: WorkloadSettings) -> npt.NDArray[np.float64]:
    """Interval in days per row (NaN: no schedule); BadInput on an unknown class."""
    cls = pd.Series(classes, dtype=object)
    intervals = inspection_intervals(settings)
    unknown = ~cls.isin(list(intervals))
    if unknown.any():
        bad = sorted({str(c) for c in cls[unknown]})[:5]
        raise BadInput(
            f"rental class {', '.join(bad)} is unknown; use one of {', '.join(RENTAL_CLASSES)}"
        )
    table = {k: (np.nan if v is None else float(v)) for k, v in intervals.items()}
    return cls.map(table).to_numpy(dtype=float)


def _add_days(
    dates: npt.NDArray[np.datetime64], days: npt.NDArray[np.float64]
) -> npt.NDArray[np.datetime64]:
    out = np.full(dates.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    ok = ~np.isnan(days) & ~np.isnat(dates)
    out[ok] = dates[ok] + days[ok].astype(np.int64) * _DAY
    return out


def due_dates(
    classes: Sequence[str] | npt.ArrayLike,
    last_dates: Sequence[Any] | npt.ArrayLike,
    start_dates: Sequence[Any] | npt.ArrayLike,
    settings: WorkloadSettings,
) -> npt.NDArray[np.datetime64]:
    """Next due date per rental (vectorised ``next_due``); NaT where no visit is scheduled.

    ``last_dates`` may hold NaT/None (never inspected): then ``start_dates`` (the
    registration dates) count. A scheduled class with neither date is bad input.
    """
    interval = _interval_array(classes, settings)
    last = _to_day_array(last_dates, "last_inspected_on")
    start = _to_day_array(start_dates, "registered_on")
    if not (len(interval) == len(last) == len(start)):
        raise BadInput(
            f"classes, last_dates and start_dates differ in length "
            f"({len(interval)}, {len(last)}, {len(start)}); pass one value per rental"
        )
    base = np.where(np.isnat(last), start, last)
    missing = ~np.isnan(interval) & np.isnat(base)
    if missing.any():
        rows = np.flatnonzero(missing)[:5].tolist()
        raise BadInput(
            f"rentals at positions {rows} have a scheduled class but neither "
            "registered_on nor last_inspected_on; give a registration date"
        )
    return _add_days(base, interval)


def apply_class_change(
    old_due: dt.date | None,
    new_class: str,
    changed_on: dt.date,
    settings: WorkloadSettings,
) -> dt.date | None:
    """Next due date of a rental whose class changes on ``changed_on``.

    min(old due, change + new interval): an upgrade brings the visit forward, a
    downgrade keeps a visit already scheduled or overdue; None if the new class has
    no scheduled visits.
    """
    interval = _check_class(new_class, inspection_intervals(settings))
    if interval is None:
        return None
    changed = _as_date(changed_on, "changed_on")
    if changed is None:
        raise BadInput("a class change needs the date it takes effect (changed_on)")
    candidate = changed + dt.timedelta(days=interval)
    old = _as_date(old_due, "old due date")
    return candidate if old is None else min(old, candidate)


def class_change_due_dates(
    old_due: Sequence[Any] | npt.ArrayLike,
    new_classes: Sequence[str] | npt.ArrayLike,
    changed_on: Sequence[Any] | npt.ArrayLike,
    settings: WorkloadSettings,
) -> npt.NDArray[np.datetime64]:
    """Vectorised ``apply_class_change`` for many rentals at once."""
    interval = _interval_array(new_classes, settings)
    old = _to_day_array(old_due, "old due date")
    changed = _to_day_array(changed_on, "changed_on")
    if not (len(interval) == len(old) == len(changed)):
        raise BadInput("old_due, new_classes and changed_on differ in length")
    if (np.isnat(changed) & ~np.isnan(interval)).any():
        raise BadInput("every class change needs the date it takes effect (changed_on)")
    candidate = _add_days(changed, interval)
    # np.fmin keeps the non-NaT side, so an unscheduled old rental takes the candidate.
    out = np.fmin(old, candidate)
    out[np.isnan(interval)] = np.datetime64("NaT")
    return out


def due_in_week(
    frame: pd.DataFrame,
    week_start: dt.date,
    settings: WorkloadSettings,
    *,
    class_column: str = "rental_class",
) -> pd.DataFrame:
    """Rentals due in the ISO week starting ``week_start`` (a Monday) plus overdue ones.

    Uses the frame's ``next_due_on`` column when present (the store keeps it as
    inspections and class changes happen); otherwise computes it from
    ``class_column``, ``last_inspected_on`` and ``registered_on``. Returns the rows
    with ``due_on``, ``overdue`` and ``days_overdue`` (days before ``week_start``; 0
    when due within the week), overdue first, then by due date; other columns
    (house_code, address, grid_id, ...) are kept.
    """
    start = _as_date(week_start, "week_start")
    if start is None:
        raise BadInput("week_start is missing; give the Monday of the ISO week")
    if start.isoweekday() != 1:
        monday = start - dt.timedelta(days=start.isoweekday() - 1)
        raise BadInput(
            f"week_start {start.isoformat()} is a {start.strftime('%A')}; "
            f"pass the Monday of the ISO week ({monday.isoformat()})"
        )
    if "next_due_on" in frame.columns:
        due = _to_day_array(frame["next_due_on"].to_numpy(), "next_due_on")
    else:
        needed = [class_column, "last_inspected_on", "registered_on"]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise BadInput(
                f"rentals frame lacks {', '.join(missing)}; give next_due_on or "
                f"{', '.join(needed)}"
            )
        due = due_dates(
            frame[class_column].to_numpy(),
            frame["last_inspected_on"].to_numpy(),
            frame["registered_on"].to_numpy(),
            settings,
        )
    start64 = np.datetime64(start, "D")
    end64 = start64 + 7 * _DAY
    keep = ~np.isnat(due) & (due < end64)
    out = frame.loc[keep].copy()
    due_kept = due[keep]
    out["due_on"] = due_kept
    out["overdue"] = due_kept < start64
    out["days_overdue"] = np.maximum((start64 - due_kept) // _DAY, 0).astype(np.int64)
    order = np.lexsort((due_kept, ~out["overdue"].to_numpy()))
    return out.iloc[order].reset_index(drop=True)
