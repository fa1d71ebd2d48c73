"""Resident ID numbers (公民身份号码, GB 11643-1999): validation, decoding and test generation.

An ID number is 18 characters: a 6-digit region code (GB/T 2260, where the number was first
issued), the birth date ``YYYYMMDD``, a 3-digit sequence whose parity gives the sex (odd =
male), and an ISO 7064 MOD 11-2 check character (``0``-``9`` or ``X``) computed by
:func:`gridmgr.codes.iso7064_mod11_2`.  Residence permits for Hong Kong, Macao and Taiwan
residents (regions 81, 82, 83) use the same layout and pass.  Separators, full-width digits
and a lowercase ``x`` are accepted on input; :func:`normalize_id_number` gives the stored form.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from gridmgr.codes import (
    _CHECK_ASCII,
    BAD_CHECK,
    OK,
    _as_1d,
    _char_matrix,
    _chunks,
    _digits_number,
    _parse,
    _Parsed,
    _problems,
    _put_numbers,
    _text,
    _weighted_sums,
    _weights,
)
from gridmgr.errors import BadInput

ID_LENGTH = 18
"""Characters in a resident ID number."""

EARLIEST_BIRTH = dt.date(1900, 1, 1)
"""Birth dates before this are rejected as implausible."""

SEQUENCES_PER_SEX = 500
"""Distinct sequence numbers per region, birth date and sex (odd for men, even for women)."""

BAD_REGION, BAD_DATE, TOO_OLD, FUTURE = 10, 11, 12, 13

_PROVINCES = np.zeros(100, dtype=bool)
_PROVINCES[
    [11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46]
    + [50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83]
] = True


def _to_date_array(
    year: npt.NDArray[np.int64], month: npt.NDArray[np.int64], day: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.datetime64]]:
    """Return which (year, month, day) triples are calendar dates, and those dates (else NaT)."""
    month_ok = (month >= 1) & (month <= 12)
    first = ((year - 1970) * 12 + np.clip(month, 1, 12) - 1).astype("datetime64[M]")
    first_day = first.astype("datetime64[D]")
    days_in_month = ((first + 1).astype("datetime64[D]") - first_day).astype(np.int64)
    ok = month_ok & (day >= 1) & (day <= days_in_month)
    dates = first_day + (np.clip(day, 1, 31) - 1).astype("timedelta64[D]")
    return ok, np.where(ok, dates, np.datetime64("NaT", "D"))


def _birth_dates(canon: npt.NDArray[Any]) -> tuple[Any, npt.NDArray[np.datetime64]]:
    """Which rows of a canonical ID matrix hold a calendar date, and the dates (else NaT)."""
    return _to_date_array(
        _digits_number(canon, 6, 10), _digits_number(canon, 10, 12), _digits_number(canon, 12, 14)
    )


def _id_checks(
    today: dt.date,
) -> Callable[[_Parsed], tuple[_Parsed, dict[int, npt.NDArray[np.str_]]]]:
    """Region and birth-date checks layered on the generic parse (before the check character)."""
    add = np.strings.add
    latest = np.datetime64(today, "D")
    earliest = np.datetime64(EARLIEST_BIRTH, "D")

    def check(parsed: _Parsed) -> tuple[_Parsed, dict[int, npt.NDArray[np.str_]]]:
        canon = parsed.canon
        open_ = (parsed.status == OK) | (parsed.status == BAD_CHECK)
        region_bad = ~_PROVINCES[np.clip(_digits_number(canon, 0, 2), 0, 99)]
        date_ok, dates = _birth_dates(canon)
        status = parsed.status.copy()
        status[open_ & date_ok & (dates > latest)] = FUTURE
        status[open_ & date_ok & (dates < earliest)] = TOO_OLD
        status[open_ & ~date_ok] = BAD_DATE
        status[open_ & region_bad] = BAD_REGION
        reasons: dict[int, npt.NDArray[np.str_]] = {}
        for code, words in (
            (BAD_REGION, ("region code ", " does not start with a province code (GB/T 2260)")),
            (BAD_DATE, ("birth date ", " is not a calendar date")),
            (TOO_OLD, ("birth date ", f" is before {EARLIEST_BIRTH:%Y-%m-%d}")),
            (FUTURE, ("birth date ", " is in the future")),
        ):
            rows = np.flatnonzero(status == code)
            if len(rows):
                part = (0, 6) if code == BAD_REGION else (6, 14)
                reasons[code] = add(add(words[0], _text(canon[rows, part[0] : part[1]])), words[1])
        return parsed._replace(status=status), reasons

    return check


def id_number_problems(
    values: npt.ArrayLike, *, today: dt.date | None = None
) -> npt.NDArray[np.object_]:
    """Return None or the reason an ID number is invalid, for each element (vectorised).

    Checks, in order: present, 18 characters, 17 digits then a digit or X, a province
    prefix, a real birth date between 1900-01-01 and ``today``, and the check character.
    """
    checks = _id_checks(today or dt.date.today())
    return _problems(values, ID_LENGTH, "ID number", "number", checks)


def validate_id_number(value: object, *, today: dt.date | None = None) -> str | None:
    """Return None if ``value`` is a valid resident ID number, else the reason why not."""
    if not isinstance(value, str):
        if value is None:
            return "no ID number given"
        return f"ID number must be text, got {type(value).__name__}"
    reason = id_number_problems(np.array([value]), today=today)[0]
    return None if reason is None else str(reason)


def _valid_canonical(values: npt.ArrayLike) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
    """The canonical (n, 18) character matrix of ID numbers and a validity mask."""
    arr = _as_1d(values)
    canon: npt.NDArray[Any] = np.zeros((arr.shape[0], ID_LENGTH), dtype=np.uint8)
    ok = np.zeros(arr.shape[0], dtype=bool)
    checks = _id_checks(dt.date.today())
    for sl in _chunks(arr.shape[0]):
        parsed, _ = checks(_parse(arr[sl], ID_LENGTH))
        ok[sl] = parsed.status == OK
        if parsed.canon.dtype != canon.dtype:
            canon = canon.astype(parsed.canon.dtype)
        canon[sl] = parsed.canon
    return canon, ok


def normalize_id_number(value: object) -> str:
    """Return the stored form of an ID number (no separators, upper-case X) or raise BadInput."""
    reason = validate_id_number(value)
    if reason is not None:
        raise BadInput(f"ID number {value!r} is not valid: {reason}")
    return str(_text(_valid_canonical(np.array([value]))[0])[0])


def birth_date_of(value: str) -> dt.date:
    """Return the birth date encoded in a valid ID number; BadInput if it is not valid."""
    c = normalize_id_number(value)
    return dt.date(int(c[6:10]), int(c[10:12]), int(c[12:14]))


def sex_of(value: str) -> str:
    """Return 'M' or 'F' from the parity of the sequence (odd = male) of a valid ID number."""
    c = normalize_id_number(value)
    return "M" if int(c[16]) % 2 else "F"


def birth_dates_of(values: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    """Return the birth dates (``datetime64[D]``) of many ID numbers, NaT where invalid."""
    canon, ok = _valid_canonical(values)
    _, dates = _birth_dates(canon)
    return np.where(ok, dates, np.datetime64("NaT", "D"))


def sexes_of(values: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Return 'M'/'F' for many ID numbers from the sequence parity, '' where invalid."""
    canon, ok = _valid_canonical(values)
    return np.where(ok, np.where(canon[:, 16] % 2 == 1, "M", "F"), "").astype("<U1")


def generate_id_numbers(
    rng: np.random.Generator,
    region_codes: npt.ArrayLike,
    birth_dates: npt.ArrayLike,
    sexes: npt.ArrayLike,
) -> npt.NDArray[np.str_]:
    """Return valid, mutually distinct ID numbers (``<U18``) for synthetic people.

    The arrays broadcast together.  Sequence numbers are drawn at random within each
    (region, birth date, sex) group and never repeat there, so at most 500 people of one
    sex may share a region and birth date.  For demo and test data only.
    """
    regions = _as_1d(region_codes)
    dates = np.asarray(_as_1d(birth_dates), dtype="datetime64[D]")
    sex = _as_1d(sexes)
    try:
        (n,) = np.broadcast_shapes(regions.shape, dates.shape, sex.shape)
    except ValueError:
        raise BadInput(
            "region codes, birth dates and sexes must have the same length "
            f"(got {regions.shape}, {dates.shape}, {sex.shape})"
        ) from None

    chars, missing = _char_matrix(regions)
    bad = missing | (np.count_nonzero(chars, axis=1) != 6) | ((chars[:, :6] - 48) > 9).any(axis=1)
    if not bad.any():
        bad = ~_PROVINCES[_digits_number(chars, 0, 2)]
    if bad.any():
        i = int(np.argmax(bad))
        raise BadInput(
            f"region code at position {i} is {regions[i]!r}; use a 6-digit GB/T 2260 code "
            "that starts with a province code, e.g. 510104"
        )
    first_day = np.datetime64(EARLIEST_BIRTH, "D")
    latest = np.datetime64(dt.date.today(), "D")
    bad_date = np.isnat(dates) | (dates < first_day) | (dates > latest)
    if bad_date.any():
        i = int(np.argmax(bad_date))
        raise BadInput(
            f"birth date at position {i} is {dates[i]}; give dates from {EARLIEST_BIRTH} to today"
        )
    male = sex == "M"
    bad_sex = ~(male | (sex == "F"))
    if bad_sex.any():
        i = int(np.argmax(bad_sex))
        raise BadInput(f"sex at position {i} is {sex[i]!r}; use 'M' or 'F'")

    region = np.broadcast_to(_digits_number(chars, 0, 6), (n,))
    days = np.broadcast_to((dates - first_day).astype(np.int64), (n,))
    male = np.broadcast_to(male, (n,))
    slot = _distinct_slots(rng, (region << 18 | days) << 1 | male)
    if n and slot.max() >= SEQUENCES_PER_SEX:
        j = int(np.argmax(slot))
        raise BadInput(
            f"more than {SEQUENCES_PER_SEX} {'men' if male[j] else 'women'} born on "
            f"{first_day + days[j]} in region {region[j]:06d}; GB 11643 has only "
            f"{SEQUENCES_PER_SEX} sequence numbers per sex, region and day"
        )
    out = np.empty((n, ID_LENGTH), dtype=np.uint32)
    out[:, :6] = np.broadcast_to(chars[:, :6], (n, 6))
    weights = _weights(ID_LENGTH - 1)
    total = np.broadcast_to(
        _weighted_sums(chars[:, :6], weights[:6]) - 48 * sum(weights[:6]), (n,)
    ).copy()
    total += _put_dates(out, days)
    total += _put_numbers(out, 14, 2 * slot + male, 3)
    out[:, 17] = _CHECK_ASCII[(12 - total % 11) % 11]
    return out.view(f"<U{ID_LENGTH}").reshape(n)


def _distinct_slots(rng: np.random.Generator, key: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Give each element a slot distinct within its key group, in random order from a random start.

    Slots run 0, 1, 2, ... from a random start (mod SEQUENCES_PER_SEX) through a random
    ordering of the group; a value of SEQUENCES_PER_SEX or more flags an overfull group.
    """
    n = len(key)
    if not n:
        return np.zeros(0, dtype=np.int64)
    # One sort of (key, random tie-break) ranks the members of each group in random order.
    order = np.argsort((key << 20) | rng.integers(0, 1 << 20, size=n))
    sorted_key = key[order]
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = sorted_key[1:] != sorted_key[:-1]
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    rank = np.arange(n) - starts[group]
    sizes = np.diff(np.append(starts, n))
    start = rng.integers(0, SEQUENCES_PER_SEX, size=len(starts))
    slot = np.empty(n, dtype=np.int64)
    # Groups larger than the space keep their rank so the caller can see the overflow.
    slot[order] = np.where(
        sizes[group] > SEQUENCES_PER_SEX, rank, (start[group] + rank) % SEQUENCES_PER_SEX
    )
    return slot


def _put_dates(out: npt.NDArray[np.uint32], days: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Write YYYYMMDD for day offsets from 1900-01-01 into columns 6-13; return weighted sums."""
    span = int(days.max()) + 1 if len(days) else 1
    calendar = np.datetime64(EARLIEST_BIRTH, "D") + np.arange(span)
    month_start = calendar.astype("datetime64[M]")
    ymd = (
        (calendar.astype("datetime64[Y]").astype(np.int64) + 1970) * 10000
        + (month_start.astype(np.int64) % 12 + 1) * 100
        + (calendar - month_start.astype("datetime64[D]")).astype(np.int64)
        + 1
    )
    powers = 10 ** np.arange(7, -1, -1)
    table = (ymd[:, None] // powers) % 10
    sums = table @ np.asarray(_weights(ID_LENGTH - 1)[6:14])
    out[:, 6:14] = (table + 48).astype(np.uint32)[days]
    return sums[days]


__all__ = [
    "ID_LENGTH",
    "birth_date_of",
    "birth_dates_of",
    "generate_id_numbers",
    "id_number_problems",
    "normalize_id_number",
    "sex_of",
    "sexes_of",
    "validate_id_number",
]
