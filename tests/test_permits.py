"""Residence-permit and registration-deadline rules, with dates at the edges."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridmgr.errors import BadInput
from gridmgr.permits import (
    Eligibility,
    PermitSettings,
    RegistrationSettings,
    add_years,
    age_reached,
    as_days,
    continuous_since,
    expiring,
    late_entries,
    overdue,
    permit_eligibility,
    permit_terms,
    valid_until,
)

D = np.datetime64


def days(*values: str) -> np.ndarray:
    return np.array(values, dtype="datetime64[D]")


# --- calendar arithmetic ---------------------------------------------------------------------


@pytest.mark.parametrize(("start", "years", "expected"), [
    ("2023-01-29", 1, "2024-01-29"),
    ("2023-01-30", 1, "2024-01-30"),
    ("2023-01-31", 1, "2024-01-31"),
    ("2024-02-29", 1, "2025-02-28"),  # no 29 February in 2025
    ("2024-02-29", 4, "2028-02-29"),
    ("2023-03-31", 2, "2025-03-31"),
    ("2025-02-28", -1, "2024-02-28"),
    ("2008-06-02", 16, "2024-06-02"),
])
def test_add_years_at_month_ends(start: str, years: int, expected: str) -> None:
    assert add_years(days(start), years)[0] == D(expected)


def test_add_years_keeps_nat_and_broadcasts() -> None:
    out = add_years(np.array(["2020-05-05", "NaT"], dtype="datetime64[D]"), [1, 2])
    assert out[0] == D("2021-05-05") and np.isnat(out[1])


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_birthday_is_the_first_day_of_the_age(birth: dt.date) -> None:
    sixteenth = add_years(birth, 16)[0]
    assert age_reached(birth, sixteenth, 16)[0]
    assert not age_reached(birth, sixteenth - np.timedelta64(1, "D"), 16)[0]


def test_age_15y364d_and_16y() -> None:
    birth = days("2008-06-02", "2008-06-02", "2008-02-29", "2008-02-29")
    on = days("2024-06-01", "2024-06-02", "2024-02-28", "2024-02-29")
    assert age_reached(birth, on, 16).tolist() == [False, True, False, True]


# --- the 24-hour entry rule -------------------------------------------------------------------


def test_late_entry_with_arrival_time() -> None:
    arrived = np.array(["2024-05-01T10:00:00"] * 3, dtype="datetime64[s]")
    entered = np.array(["2024-05-02T10:00:00", "2024-05-02T10:00:01", "2024-05-01T11:00:00"],
                       dtype="datetime64[s]")
    assert late_entries(arrived, entered, has_time=True).tolist() == [False, True, False]


def test_late_entry_with_arrival_date_counts_from_the_end_of_that_day() -> None:
    arrived = np.array(["2024-05-01T00:00:00"] * 3, dtype="datetime64[s]")
    entered = np.array(["2024-05-02T23:59:59", "2024-05-03T00:00:00", "2024-05-03T00:00:01"],
                       dtype="datetime64[s]")
    assert late_entries(arrived, entered, has_time=False).tolist() == [False, False, True]


def test_entry_deadline_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    arrived = np.array(["2024-05-01T10:00:00"], dtype="datetime64[s]")
    entered = np.array(["2024-05-02T12:00:00"], dtype="datetime64[s]")
    assert late_entries(arrived, entered)[0]
    monkeypatch.setenv("GRIDMGR_REGISTRATION_ENTRY_DEADLINE_HOURS", "48")
    assert not late_entries(arrived, entered, settings=RegistrationSettings())[0]


# --- continuous residence ---------------------------------------------------------------------


def test_continuity_follows_moves_and_breaks_at_gaps() -> None:
    # person 1: three houses, moves the same day: one stay since 2020-01-01
    # person 2: left 2021-06-30, came back 2021-08-01: stay since the return
    # person 3: one day away (left 5th, back 6th) breaks it at gap 0, not at gap 1
    person = [1, 1, 1, 2, 2, 3, 3]
    arrived = ["2020-01-01", "2021-03-01", "2022-07-15", "2020-01-01", "2021-08-01",
               "2022-01-01", "2022-03-06"]
    left = ["2021-03-01", "2022-07-15", None, "2021-06-30", None, "2022-03-05", None]
    since = continuous_since(person, arrived, left)
    assert since[1] == pd.Timestamp("2020-01-01")
    assert since[2] == pd.Timestamp("2021-08-01")
    assert since[3] == pd.Timestamp("2022-03-06")
    assert continuous_since(person, arrived, left, gap_days=1)[3] == pd.Timestamp("2022-01-01")


def test_continuity_with_an_old_overlapping_stay() -> None:
    # a long stay covers a short one that ended first: the chain is not broken
    since = continuous_since([5, 5, 5], ["2019-01-01", "2019-02-01", "2020-01-01"],
                             ["2020-01-01", "2019-03-01", None])
    assert since[5] == pd.Timestamp("2019-01-01")


# --- eligibility and the issue deadline -------------------------------------------------------


def _eligibility(**kw: object) -> Eligibility:
    base: dict[str, object] = dict(
        floating=[True], birth_date=days("1990-01-01"), registered_on=days("2024-01-01"),
        stay_since=days("2024-01-01"), intended_stay_days=[np.nan],
        as_of=days("2024-01-01"))
    base.update(kw)
    return permit_eligibility(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("stay", "ok"), [(29, False), (30, True), (31, True)])
def test_declared_stay_of_29_30_31_days(stay: int, ok: bool) -> None:
    el = _eligibility(intended_stay_days=[stay])
    assert el.eligible[0] is np.bool_(ok)
    if ok:
        assert el.eligible_from[0] == D("2024-01-01")
        assert el.due_by[0] == D("2024-01-08")  # issued within 7 days of registration
    else:
        assert "stay under 30 days until 2024-01-31" in el.reason[0]


@pytest.mark.parametrize(("day", "ok"), [(29, False), (30, True), (31, True)])
def test_lived_stay_at_day_29_30_31(day: int, ok: bool) -> None:
    as_of = D("2024-01-01") + np.timedelta64(day, "D")
    el = _eligibility(as_of=np.array([as_of]))
    assert bool(el.eligible[0]) is ok
    assert el.eligible_from[0] == D("2024-01-31")
    assert el.due_by[0] == D("2024-02-07")


@pytest.mark.parametrize(("as_of", "ok"), [("2024-06-01", False), ("2024-06-02", True)])
def test_age_15y364d_is_not_eligible_16y_is(as_of: str, ok: bool) -> None:
    el = _eligibility(birth_date=days("2008-06-02"), intended_stay_days=[90],
                      as_of=days(as_of))
    assert bool(el.eligible[0]) is ok
    # the deadline runs from the 16th birthday when that comes after registration
    assert el.eligible_from[0] == D("2024-06-02")
    assert el.due_by[0] == D("2024-06-09")
    if not ok:
        assert el.reason[0] == "under 16 until 2024-06-02"


def test_who_is_not_eligible_and_why() -> None:
    el = permit_eligibility(
        floating=[False, True, True, True],
        birth_date=days("1990-01-01", "1990-01-01", "1990-01-01", "NaT"),
        registered_on=days("2024-01-01", "2024-01-01", "NaT", "2024-01-01"),
        stay_since=days("2024-01-01", "NaT", "2024-01-01", "2024-01-01"),
        intended_stay_days=[90, 90, 90, 90], as_of=days("2024-03-01"))
    assert not el.eligible.any()
    assert "registered (户籍) resident" in el.reason[0]
    assert el.reason[1] == "no current residence"
    assert el.reason[2] == "the stay is not registered"
    assert el.reason[3] == "birth date unknown"
    assert np.isnat(el.due_by).all()


def test_eligibility_figures_are_settings() -> None:
    s = PermitSettings(min_age_years=18, min_stay_days=60, issue_within_days=10)
    el = _eligibility(birth_date=days("2007-01-01"), as_of=days("2024-03-01"), settings=s)
    assert not el.eligible[0] and el.reason[0] == "under 18 until 2025-01-01"
    el = _eligibility(as_of=days("2024-03-01"), settings=s)
    assert el.eligible[0] and el.due_by[0] == D("2024-03-11")


def test_settings_come_from_the_environment_when_built(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.setenv("GRIDMGR_PERMIT_MIN_STAY_DAYS", "45")
    monkeypatch.setenv("GRIDMGR_PERMIT_LONG_VALIDITY_YEARS", "[5, 3]")
    s = PermitSettings()
    assert s.min_stay_days == 45 and s.long_validity_years == (3, 5)
    with pytest.raises(ValueError):
        PermitSettings(long_validity_years=(0,))


@pytest.mark.parametrize(("as_of", "late"), [("2024-01-08", False), ("2024-01-09", True)])
def test_overdue_after_the_seventh_day(as_of: str, late: bool) -> None:
    assert overdue(days("2024-01-08"), [False], days(as_of))[0] is np.bool_(late)
    assert not overdue(days("2024-01-08"), [True], days(as_of))[0]


# --- validity, expiry, renewals ---------------------------------------------------------------


@pytest.mark.parametrize(("start", "years", "last"), [
    ("2024-03-01", 1, "2025-02-28"),
    ("2023-01-29", 1, "2024-01-28"),
    ("2023-01-31", 1, "2024-01-30"),
    ("2024-02-29", 1, "2025-02-27"),
    ("2024-06-10", 3, "2027-06-09"),
    ("2024-06-10", 5, "2029-06-09"),
])
def test_validity_is_inclusive_and_back_to_back(start: str, years: int, last: str) -> None:
    end = valid_until(days(start), years)[0]
    assert end == D(last)
    # the next period starts the day after: no gap, no overlap
    assert add_years(days(start), years)[0] == end + np.timedelta64(1, "D")


def test_expiring_window_edges() -> None:
    ends = days("2024-05-31", "2024-06-01", "2024-07-01", "2024-07-02", "NaT")
    assert expiring(ends, days("2024-06-01"), 30).tolist() == [False, True, True, False, False]


def test_first_permit_is_one_year() -> None:
    t = permit_terms(kind="first", on=dt.date(2024, 1, 31))
    assert (t.years, t.valid_from, t.valid_until) == (1, dt.date(2024, 1, 31),
                                                      dt.date(2025, 1, 30))
    with pytest.raises(BadInput, match="first residence permit is valid 1 year"):
        permit_terms(kind="first", on=dt.date(2024, 1, 31), years=3)


def test_renewal_window_opens_30_days_before_expiry() -> None:
    prev = dt.date(2024, 6, 30)
    with pytest.raises(BadInput, match="renewals open 30 days before expiry, on 2024-05-31"):
        permit_terms(kind="renewal", on=dt.date(2024, 5, 30), previous_valid_until=prev)
    t = permit_terms(kind="renewal", on=dt.date(2024, 5, 31), previous_valid_until=prev)
    assert t.valid_from == dt.date(2024, 7, 1) and t.valid_until == dt.date(2025, 6, 30)
    # after a lapse the renewal starts on the day it is issued
    t = permit_terms(kind="renewal", on=dt.date(2024, 9, 1), previous_valid_until=prev)
    assert t.valid_from == dt.date(2024, 9, 1)
    with pytest.raises(BadInput, match="never held"):
        permit_terms(kind="renewal", on=dt.date(2024, 9, 1))


@pytest.mark.parametrize(("on", "ok"), [(dt.date(2024, 5, 31), False),
                                        (dt.date(2024, 6, 1), True)])
def test_long_permit_after_exactly_two_years(on: dt.date, ok: bool) -> None:
    kw: dict[str, object] = dict(kind="renewal", on=on, years=3, basis="lease",
                                 previous_valid_until=dt.date(2024, 6, 9),
                                 since=dt.date(2022, 6, 1))
    if ok:
        t = permit_terms(**kw)  # type: ignore[arg-type]
        assert (t.years, t.valid_from, t.valid_until, t.basis) == (
            3, dt.date(2024, 6, 10), dt.date(2027, 6, 9), "lease")
    else:
        with pytest.raises(BadInput, match="reaches 2 years on 2024-06-01"):
            permit_terms(**kw)  # type: ignore[arg-type]


def test_long_permit_needs_a_basis_and_allowed_years() -> None:
    kw: dict[str, object] = dict(kind="renewal", on=dt.date(2025, 1, 1),
                                 previous_valid_until=dt.date(2025, 1, 10),
                                 since=dt.date(2020, 1, 1))
    with pytest.raises(BadInput, match="needs a basis"):
        permit_terms(years=5, **kw)  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="basis 'pension' is unknown"):
        permit_terms(years=5, basis="pension", **kw)  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="a permit of 4 years is not issued; use 1, 3, 5"):
        permit_terms(years=4, basis="lease", **kw)  # type: ignore[arg-type]
    t = permit_terms(years=5, basis="own_home", **kw)  # type: ignore[arg-type]
    assert t.valid_until == dt.date(2030, 1, 10)


def test_as_days_accepts_what_callers_have() -> None:
    out = as_days([dt.date(2024, 1, 2), "2024-01-03", None, pd.Timestamp("2024-01-04")])
    assert out.tolist()[:2] == [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
    assert np.isnat(out[2]) and out[3] == D("2024-01-04")
