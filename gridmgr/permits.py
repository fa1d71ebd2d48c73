"""Registration deadlines and residence permits (居住证): pure rules on arrays of dates.

The field rules (DESIGN.md §1, field report 001, Taizhou): registration data is entered
within 24 hours of arrival; a floating resident (流动人口) aged 16 or more who registers a
stay of 30 days or more (拟居住30日以上) gets a residence permit within 7 days of
registering; the first permit is valid 1 year; after 2 years' continuous residence, with a
labour contract, a lease or an own home, a permit of 3 or 5 years on request. Every figure
is a setting. Dates are ``datetime64[D]`` arrays (NaT = none); scalar helpers raise
`BadInput` with the reason and the fix.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridmgr.errors import BadInput

DAY = np.timedelta64(1, "D")
NAT = np.datetime64("NaT", "D")
BASES = ("labour_contract", "lease", "own_home")
Dates = npt.NDArray[np.datetime64]
Bools = npt.NDArray[np.bool_]


class RegistrationSettings(BaseSettings):
    """When registration data counts as entered late (env GRIDMGR_REGISTRATION_*).

    Field rule: data are entered within 24 hours of arrival (二十四小时内录入).
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMGR_REGISTRATION_", extra="ignore")

    entry_deadline_hours: int = Field(default=24, ge=1, le=24 * 31,
                                      description="hours after arrival to enter the data")


class PermitSettings(BaseSettings):
    """Residence-permit (居住证) rules, defaults from the field reports (env GRIDMGR_PERMIT_*)."""

    model_config = SettingsConfigDict(env_prefix="GRIDMGR_PERMIT_", extra="ignore")

    min_age_years: int = Field(default=16, ge=0, le=100, description="年满16周岁")
    min_stay_days: int = Field(default=30, ge=1, le=3660,
                               description="a registered stay of this many days or more")
    issue_within_days: int = Field(default=7, ge=0, le=366,
                                   description="days from registration to issue")
    first_validity_years: int = Field(default=1, ge=1, le=20, description="first permit")
    long_residence_years: int = Field(default=2, ge=0, le=50,
                                      description="continuous residence for a long permit")
    long_validity_years: tuple[int, ...] = Field(default=(3, 5),
                                                 description="long permits, on request")
    long_bases: tuple[str, ...] = Field(default=BASES,
                                        description="labour contract, lease or own home")
    renew_window_days: int = Field(default=30, ge=0, le=3660,
                                   description="a renewal opens this many days before expiry")
    continuity_gap_days: int = Field(default=0, ge=0, le=366,
                                     description="days between two stays that still count "
                                                 "as continuous residence")

    @field_validator("long_validity_years")
    @classmethod
    def _positive_years(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(y < 1 for y in v):
            raise ValueError("long permit validities are whole years ≥ 1")
        return tuple(sorted(set(v)))


# --- dates -------------------------------------------------------------------------------


def as_days(values: Any) -> Dates:
    """Return ``values`` (dates, datetimes, ISO strings, None) as a 1-d ``datetime64[D]`` array."""
    if isinstance(values, (dt.date, str, np.datetime64, pd.Timestamp)) or values is None:
        values = [values]
    arr = np.asarray(values)
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[D]").reshape(-1)
    parsed = pd.to_datetime(pd.Series(arr.reshape(-1), dtype=object), errors="coerce",
                            format="mixed")
    return parsed.to_numpy(dtype="datetime64[D]")


def add_years(dates: Any, years: Any) -> Dates:
    """The same month and day `years` later; 29 February becomes 28 February in common years.

    Vectorised; NaT stays NaT. ``years`` broadcasts against ``dates``.
    """
    d = as_days(dates)
    n = np.broadcast_to(np.asarray(years, dtype=np.int64), d.shape)
    nat = np.isnat(d)
    safe = np.where(nat, np.datetime64("2000-01-01", "D"), d)
    year = safe.astype("datetime64[Y]")
    month_start = safe.astype("datetime64[M]")
    month = (month_start - year.astype("datetime64[M]")).astype(np.int64)
    day = (safe - month_start.astype("datetime64[D]")).astype(np.int64)
    target = (year + n.astype("timedelta64[Y]")).astype("datetime64[M]") + month.astype(
        "timedelta64[M]")
    last = (target + np.timedelta64(1, "M")).astype("datetime64[D]") - DAY
    out = np.minimum(target.astype("datetime64[D]") + day.astype("timedelta64[D]"), last)
    return np.where(nat, NAT, out)


def age_reached(birth_date: Any, on: Any, years: int) -> Bools:
    """True where a person born on `birth_date` is `years` old or more on `on` (周岁)."""
    reached = add_years(birth_date, years)
    when = as_days(on)
    return ~np.isnat(reached) & ~np.isnat(when) & (reached <= when)


def late_entries(arrived_at: Any, entered_at: Any, *, has_time: Any = True,
                 settings: RegistrationSettings | None = None) -> Bools:
    """True where the data were entered more than the deadline (24 h) after arrival.

    An arrival known only by its date counts from the end of that day, so an entry on
    the next day is never late and one two days later always is.
    """
    settings = settings or RegistrationSettings()
    arr = np.asarray(arrived_at, dtype="datetime64[s]").reshape(-1)
    ent = np.asarray(entered_at, dtype="datetime64[s]").reshape(-1)
    timed = np.broadcast_to(np.asarray(has_time, dtype=bool), arr.shape)
    end_of_day = (arr.astype("datetime64[D]") + DAY).astype("datetime64[s]")
    start = np.where(timed, arr, end_of_day)
    limit = start + np.timedelta64(settings.entry_deadline_hours, "h")
    return ~np.isnat(arr) & ~np.isnat(ent) & (ent > limit)


def continuous_since(person_id: Any, arrived_on: Any, left_on: Any,
                     gap_days: int = 0) -> pd.Series:
    """Start of each person's continuous residence, from their residence history.

    Residences (one row each; ``left_on`` NaT while current) chain when one starts no more
    than `gap_days` after every earlier one has ended; a move (left and arrived the same
    day) keeps the chain. Returns, per person, the first arrival of the chain that holds
    their latest residence (index: person_id).
    """
    df = pd.DataFrame({"p": np.asarray(person_id, dtype=np.int64),
                       "a": as_days(arrived_on), "l": as_days(left_on)})
    if df.empty:
        return pd.Series([], index=pd.Index([], dtype=np.int64, name="person_id"),
                         dtype="datetime64[s]", name="continuous_since")
    df = df.sort_values(["p", "a"], kind="stable").reset_index(drop=True)
    end = df["l"].fillna(pd.Timestamp.max.normalize())
    prev_end = end.groupby(df["p"]).cummax().groupby(df["p"]).shift(1)
    first = df["p"].ne(df["p"].shift(1))
    gap = pd.Timedelta(days=int(gap_days))
    new_chain = first | (df["a"] > prev_end + gap)
    chain = new_chain.cumsum()
    start = df["a"].groupby(chain).transform("first")
    out = start.groupby(df["p"]).last()
    out.index.name = "person_id"
    return out.rename("continuous_since")


# --- eligibility and the issue deadline ------------------------------------------------


@dataclass(frozen=True)
class Eligibility:
    """Per person: eligible now, since when, the issue deadline and why not."""

    eligible: Bools
    eligible_from: Dates  # the day all conditions hold (NaT: never, as things stand)
    due_by: Dates  # eligible_from + issue_within_days
    reason: npt.NDArray[np.object_]  # None where eligible


def _fmt(days: Dates) -> npt.NDArray[np.str_]:
    return np.datetime_as_string(np.where(np.isnat(days), np.datetime64("1970-01-01"), days),
                                 unit="D")


def permit_eligibility(*, floating: Any, birth_date: Any, registered_on: Any,
                       stay_since: Any, intended_stay_days: Any, as_of: Any,
                       settings: PermitSettings | None = None) -> Eligibility:
    """Who may hold a residence permit on `as_of`, from when, and by when it is due.

    A person qualifies when floating, living here (``stay_since`` = first day of the
    continuous residence, NaT when gone), with a registered stay, at least `min_age_years`
    old, and with a stay of `min_stay_days` or more: declared at registration
    (``intended_stay_days``, NaN when not declared) or already lived. The permit is due
    `issue_within_days` after the day all of that first held.
    """
    s = settings or PermitSettings()
    fl = np.asarray(floating, dtype=bool).reshape(-1)
    birth = as_days(birth_date)
    reg = as_days(registered_on)
    since = as_days(stay_since)
    intended = np.asarray(intended_stay_days, dtype=float).reshape(-1)
    on = as_days(as_of)
    on = np.broadcast_to(on, fl.shape) if on.size == 1 else on
    adult_on = add_years(birth, s.min_age_years)
    declared = ~np.isnan(intended) & (intended >= s.min_stay_days)
    stay_from = np.where(declared, since, since + np.timedelta64(s.min_stay_days, "D"))
    parts = np.stack([reg, adult_on, stay_from])
    unknown = np.isnat(parts).any(axis=0)
    eligible_from = np.where(unknown | ~fl, NAT, np.max(
        np.where(np.isnat(parts), np.datetime64("1970-01-01"), parts), axis=0))
    eligible = ~np.isnat(eligible_from) & (eligible_from <= on)
    due_by = eligible_from + np.timedelta64(s.issue_within_days, "D")
    reasons = [
        (~fl, np.full(fl.shape, "a registered (户籍) resident needs no residence permit",
                      dtype=object)),
        (np.isnat(since), np.full(fl.shape, "no current residence", dtype=object)),
        (np.isnat(reg), np.full(fl.shape, "the stay is not registered", dtype=object)),
        (np.isnat(birth), np.full(fl.shape, "birth date unknown", dtype=object)),
        (adult_on > on, np.char.add(f"under {s.min_age_years} until ", _fmt(adult_on))
         .astype(object)),
        (stay_from > on, np.char.add(f"stay under {s.min_stay_days} days until ",
                                     _fmt(stay_from)).astype(object)),
        (reg > on, np.char.add("registered only on ", _fmt(reg)).astype(object)),
    ]
    reason = np.full(fl.shape, None, dtype=object)
    for cond, text in reversed(reasons):  # the first rule that fails names the reason
        reason = np.where(cond, text, reason)
    reason[eligible] = None
    return Eligibility(eligible=eligible, eligible_from=eligible_from,
                       due_by=np.where(np.isnat(eligible_from), NAT, due_by), reason=reason)


def overdue(due_by: Any, has_permit: Any, as_of: Any) -> Bools:
    """True where a permit was due before `as_of` and none is held (list those overdue)."""
    due = as_days(due_by)
    on = as_days(as_of)
    held = np.asarray(has_permit, dtype=bool).reshape(-1)
    return ~held & ~np.isnat(due) & (on > due)


# --- validity, expiry and renewal ------------------------------------------------------


def valid_until(valid_from: Any, years: Any) -> Dates:
    """Last day of validity of a permit of `years` from `valid_from` (inclusive).

    2024-03-01 + 1 year runs through 2025-02-28; the renewal then starts 2025-03-01.
    """
    return add_years(valid_from, years) - DAY


def expiring(valid_until_on: Any, as_of: Any, days: int) -> Bools:
    """True where a permit is still valid on `as_of` and ends within `days` days."""
    end = as_days(valid_until_on)
    on = as_days(as_of)
    return ~np.isnat(end) & (end >= on) & (end <= on + np.timedelta64(int(days), "D"))


def long_permit_from(since: Any, settings: PermitSettings | None = None) -> Dates:
    """The day continuous residence since `since` reaches `long_residence_years` (2 years)."""
    s = settings or PermitSettings()
    return add_years(since, s.long_residence_years)


@dataclass(frozen=True)
class PermitTerms:
    """What a permit to be issued will say: its kind, years and validity."""

    kind: Literal["first", "renewal"]
    years: int
    valid_from: dt.date
    valid_until: dt.date
    basis: str | None


def _day(value: Any) -> dt.date:
    return pd.Timestamp(as_days(value)[0]).date()


def permit_terms(*, kind: Literal["first", "renewal"], on: dt.date, years: int | None = None,
                 basis: str | None = None, previous_valid_until: dt.date | None = None,
                 since: dt.date | None = None,
                 settings: PermitSettings | None = None) -> PermitTerms:
    """Check a request for a first permit or a renewal and return its terms.

    A first permit is valid `first_validity_years`; a renewal may be asked from
    `renew_window_days` before the previous one ends and continues it without a gap or
    an overlap. 3- or 5-year permits need `long_residence_years` of continuous residence
    (since `since`) and a basis: labour contract, lease or own home.
    """
    s = settings or PermitSettings()
    if basis is not None and basis not in s.long_bases:
        raise BadInput(f"basis {basis!r} is unknown; use one of {', '.join(s.long_bases)}")
    if kind == "first":
        if years is not None and years != s.first_validity_years:
            raise BadInput(
                f"a first residence permit is valid {s.first_validity_years} year(s), not "
                f"{years}; 3- or 5-year permits come with a renewal after "
                f"{s.long_residence_years} years' continuous residence")
        n = s.first_validity_years
        return PermitTerms("first", n, on, _day(valid_until(on, n)), basis)
    if previous_valid_until is None:
        raise BadInput("this person has never held a residence permit; issue one first")
    opens = previous_valid_until - dt.timedelta(days=s.renew_window_days)
    if on < opens:
        raise BadInput(
            f"the current permit runs until {previous_valid_until}; renewals open "
            f"{s.renew_window_days} days before expiry, on {opens}")
    n = s.first_validity_years if years is None else int(years)
    if n != s.first_validity_years and n not in s.long_validity_years:
        allowed = ", ".join(str(y) for y in (s.first_validity_years, *s.long_validity_years))
        raise BadInput(f"a permit of {n} years is not issued; use {allowed}")
    if n in s.long_validity_years and n != s.first_validity_years:
        if basis is None:
            raise BadInput(
                f"a {n}-year permit needs a basis: {', '.join(s.long_bases)} (--basis)")
        if since is None:
            raise BadInput("no continuous residence on record for a long permit")
        ready = _day(long_permit_from(since, s))
        if on < ready:
            raise BadInput(
                f"continuous residence since {since} reaches {s.long_residence_years} years "
                f"on {ready}; until then only a {s.first_validity_years}-year renewal")
    start = max(on, previous_valid_until + dt.timedelta(days=1))
    return PermitTerms("renewal", n, start, _day(valid_until(start, n)), basis)
