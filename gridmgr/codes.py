"""House codes (房屋编码): a stable, decodable, self-checking identifier for every dwelling.

Scheme
------
A canonical house code is 23 characters::

    510104001002 0012 01 0302 2
    |            |    |  |    +- check character, ISO 7064 MOD 11-2 over the 22 digits
    |            |    |  +------ room, 4 digits
    |            |    +--------- unit (单元), 2 digits
    |            +-------------- building (栋), 4 digits
    +--------------------------- community (社区/村) code, 12 digits

The 12-digit community code is the statistical division code (统计用区划代码): its first 6
digits are the GB/T 2260 district (区县) code and its first 9 the street (街道/乡镇) code, the
administrative prefix that the regional geocodes of GB/T 39609-2020 also build on.  The check
character is computed exactly as for the resident ID number (GB 11643-1999): ``0``-``9`` or
``X``.  People read and type the display form ``510104001002-0012-01-0302-2``; hyphens and
spaces are stripped on input, full-width digits and a lowercase ``x`` are accepted, and
``format_code`` produces the display form.

Why this shape
--------------
- **Stable across grid redraws.**  The grid is *not* in the code, nor are coordinates: a
  boundary plan moves houses between grids without renaming a single house, so residence
  records, rental records and paper door plates never go stale.
- **Decodable.**  District, street and community are read off the prefix (``decode``), which
  places a house approximately (the community's area) and lets every roll-up group by
  prefix without a join.
- **Self-checking.**  MOD 11-2 weights ``2**k mod 11`` are non-zero and successive weights
  differ, so every single mistyped character and every swap of two adjacent unequal
  characters (the check character included) is detected before a lookup is attempted.

Scalar functions serve the API and CLI; the ``*_many`` functions and ``check_chars`` work on
numpy arrays of millions of codes without a Python loop per house.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from gridmgr.errors import BadInput

CODE_LENGTH = 23
"""Characters in a canonical house code."""

COMMUNITY_DIGITS = 12
STREET_DIGITS = 9
DISTRICT_DIGITS = 6

_PARTS: tuple[tuple[str, int], ...] = (("building", 4), ("unit", 2), ("room", 4))
_CHECK_ASCII = np.frombuffer(b"0123456789X", dtype=np.uint8)
_CHUNK = 1 << 16
# Separators people type between groups: ASCII space/tab/hyphen, ideographic space (U+3000),
# Unicode dashes (U+2010-U+2015), full-width hyphen-minus (U+FF0D).  0 is numpy's padding.
_SEPARATORS = (0, 9, 32, 45, 0x3000, 0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0xFF0D)

# Status codes shared with gridmgr.idnumber (which adds its own from 10 up).
OK, MISSING, BAD_LENGTH, NOT_DIGIT, BAD_LAST, BAD_CHECK = 0, 1, 2, 3, 4, 5

CharMatrix = npt.NDArray[np.uint8] | npt.NDArray[np.uint32]
"""One row per string: ASCII bytes (uint8) when every string is ASCII, else code points."""


# --------------------------------------------------------------------------- check character


def _weights(n: int) -> list[int]:
    """MOD 11-2 weights for n body digits, leftmost first: 2**(n-i) mod 11."""
    return [pow(2, n - i, 11) for i in range(n)]


def _weighted_sums(matrix: npt.NDArray[Any], weights: list[int]) -> npt.NDArray[np.int64]:
    """Row sums of ``matrix * weights`` (rows hold digit values or ASCII codes)."""
    w = np.asarray(weights, dtype=np.uint32)
    # einsum in uint32 is several times faster than a column loop; ASCII digits times weights
    # below 11 cannot overflow it for any realistic width, and non-digit rows are rejected.
    sums = np.einsum("ij,j->i", matrix, w, dtype=np.uint32, casting="unsafe")
    return sums.astype(np.int64)


def _check_values(matrix: npt.NDArray[Any], offset: int = 0) -> npt.NDArray[np.uint8]:
    """Check values 0..10 (10 stands for X) for each row of a 2-D matrix of digits.

    ``offset`` is subtracted from every cell first (48 reads ASCII codes as digits).
    """
    weights = _weights(matrix.shape[1])
    total = _weighted_sums(matrix, weights) - offset * sum(weights)
    return ((12 - total % 11) % 11).astype(np.uint8)


def iso7064_mod11_2(digits: str) -> str:
    """Return the ISO 7064 MOD 11-2 check character ('0'-'9' or 'X') for a string of digits.

    The same scheme as the last character of a resident ID number (GB 11643-1999):
    ``iso7064_mod11_2("11010519491231002") == "X"``.
    """
    if not isinstance(digits, str) or not digits:
        raise BadInput("check character needs a non-empty string of digits")
    for pos, ch in enumerate(digits, start=1):
        if ch not in "0123456789":
            raise BadInput(f"character {pos} {ch!r} is not a digit; pass digits 0-9 only")
    total = sum(int(ch) * w for ch, w in zip(digits, _weights(len(digits)), strict=True))
    return "0123456789X"[(12 - total % 11) % 11]


def check_chars(digits: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Return the MOD 11-2 check characters for many digit strings at once.

    ``digits`` is either a 1-D array of strings of equal length made of ASCII digits, or a
    2-D integer matrix of digit values 0-9 (one row per string).  The result is a ``<U1``
    array of '0'-'9' / 'X'.
    """
    arr = np.asarray(digits)
    if arr.ndim == 2 and arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() > 9):
            raise BadInput("digit matrix must hold values 0-9 only")
        if arr.shape[1] == 0:
            raise BadInput("digit matrix has no columns; pass at least one digit per row")
        values = _check_values(arr)
    elif arr.ndim == 1:
        chars, missing = _char_matrix(arr)
        lengths = np.count_nonzero(chars, axis=1)
        bad = missing | (lengths != chars.shape[1]) | ((chars - 48) > 9).any(axis=1)
        if bad.any():
            first = int(np.argmax(bad))
            raise BadInput(
                f"element {first} ({arr[first]!r}) is not a digit string of the common "
                f"length {chars.shape[1]}; pass equal-length strings of digits 0-9"
            )
        values = _check_values(chars, offset=48)
    else:
        raise BadInput("pass a 1-D array of digit strings or a 2-D matrix of digit values")
    return _text(_CHECK_ASCII[values][:, None])


# --------------------------------------------------------------------------- array plumbing


def _as_1d(values: npt.ArrayLike) -> npt.NDArray[Any]:
    """Return a 1-D numpy view of a list, array or pandas Series."""
    if isinstance(values, pd.Series | pd.Index):
        return values.to_numpy()
    arr = np.asarray(values)
    return arr.reshape(-1) if arr.ndim == 0 else arr


def _char_matrix(values: npt.ArrayLike) -> tuple[CharMatrix, npt.NDArray[np.bool_]]:
    """Characters of each string as an (n, width) matrix, 0-padded; and which are missing.

    Missing means None, NaN, pd.NA or NaT; those rows are all zeros.  The matrix holds
    ASCII bytes when every string is ASCII (the usual case: 4x less memory traffic) and
    Unicode code points otherwise.
    """
    arr = _as_1d(values)
    if arr.ndim != 1:
        raise BadInput(f"expected a 1-D array of strings, got {arr.ndim} dimensions")
    missing = np.zeros(arr.shape[0], dtype=bool)
    text: npt.NDArray[Any]
    if arr.dtype.kind == "O":
        missing = np.asarray(pd.isna(arr), dtype=bool)
        if missing.any():
            arr = arr.copy()
            arr[missing] = ""
        try:
            text = arr.astype("S")
        except UnicodeEncodeError:
            text = arr.astype(str)
    elif arr.dtype.kind in "USiu":
        text = arr if arr.dtype.kind in "US" else arr.astype("S")
    else:
        raise BadInput(f"expected strings, got an array of {arr.dtype}")
    if text.dtype.kind == "S":
        width = max(text.dtype.itemsize, 1)
        text = np.ascontiguousarray(text, dtype=f"S{width}")
        return text.view(np.uint8).reshape(text.shape[0], width), missing
    width = max(text.dtype.itemsize // 4, 1)
    text = np.ascontiguousarray(text, dtype=f"<U{width}")
    return text.view(np.uint32).reshape(text.shape[0], width), missing


def _text(matrix: CharMatrix) -> npt.NDArray[np.str_]:
    """Rows of a character matrix as a ``<U{width}`` array (the inverse of ``_char_matrix``)."""
    n, width = matrix.shape
    rows = np.ascontiguousarray(matrix)
    if rows.dtype == np.uint8:
        return rows.view(f"S{width}").reshape(n).astype(f"<U{width}")
    return rows.astype(np.uint32).view(f"<U{width}").reshape(n)


@functools.cache
def _fold_table(dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """Map every character of ``dtype`` to its canonical form; separators map to 0 (dropped)."""
    size = 256 if dtype == np.uint8 else 0x110000
    fold = np.arange(size, dtype=dtype)
    fold[120] = 88  # x -> X
    if size > 256:
        fold[0xFF10:0xFF1A] = np.arange(48, 58, dtype=dtype)  # full-width digits
        fold[[0xFF38, 0xFF58]] = 88  # full-width X, x
    fold[[c for c in _SEPARATORS if c < size]] = 0
    return fold


def _canonical_chars(chars: CharMatrix, width: int) -> tuple[CharMatrix, npt.NDArray[np.intp]]:
    """Strip separators, fold full-width digits and x, and left-align rows to ``width``.

    Returns the (n, width) canonical matrix and the length of each string after stripping.
    """
    chars = _fold_table(chars.dtype)[chars]
    keep = chars != 0
    n, w = chars.shape
    lengths = np.einsum("ij->i", keep.view(np.uint8), dtype=np.intp, casting="unsafe")
    if w == width and keep.all():
        return chars, lengths
    if not (keep[:, 1:] & ~keep[:, :-1]).any():
        # Only trailing padding was dropped: rows are left-aligned already.
        out = np.zeros((n, width), dtype=chars.dtype)
        m = min(w, width)
        out[:, :m] = chars[:, :m]
        return out, lengths
    pos = np.cumsum(keep, axis=1, dtype=np.int32) - 1
    col = np.where(keep & (pos < width), pos, width)  # column `width` collects the overflow
    out = np.zeros((n, width + 1), dtype=chars.dtype)
    out[np.arange(n)[:, None], col] = chars
    return out[:, :width], lengths


class _Parsed(NamedTuple):
    """What the shared parser found for each string (see ``_parse``)."""

    canon: CharMatrix  # (n, width) canonical characters
    lengths: npt.NDArray[np.intp]  # length after stripping separators
    status: npt.NDArray[np.int8]  # OK, MISSING, BAD_LENGTH, ...
    expected: npt.NDArray[np.uint8]  # ASCII code of the expected check character


def _parse(values: npt.ArrayLike, width: int) -> _Parsed:
    """Normalise and check strings of ``width - 1`` digits plus a MOD 11-2 check character."""
    chars, missing = _char_matrix(values)
    canon, lengths = _canonical_chars(chars, width)
    body = canon[:, : width - 1]
    body_bad = ((body - 48) > 9).any(axis=1)  # unsigned: below '0' wraps round to > 9
    expected = _CHECK_ASCII[_check_values(body, offset=48)]
    last = canon[:, width - 1]
    last_bad = ((last - 48) > 9) & (last != 88)
    status = np.full(len(canon), OK, dtype=np.int8)
    status[expected != last] = BAD_CHECK
    status[last_bad] = BAD_LAST
    status[body_bad] = NOT_DIGIT
    status[lengths != width] = BAD_LENGTH
    status[missing] = MISSING
    return _Parsed(canon, lengths, status, expected)


def _digits_number(canon: CharMatrix, start: int, stop: int) -> npt.NDArray[np.int64]:
    """Columns ``start:stop`` of a canonical matrix read as one decimal number per row."""
    powers = [10 ** (stop - 1 - col) for col in range(start, stop)]
    return _weighted_sums(canon[:, start:stop], powers) - 48 * sum(powers)


def _chunks(n: int) -> Iterator[slice]:
    """Row slices of at most ``_CHUNK`` rows, to bound the memory of the (n, width) matrices."""
    for start in range(0, n, _CHUNK):
        yield slice(start, min(start + _CHUNK, n))


def _describe(
    parsed: _Parsed, rows: npt.NDArray[np.intp], thing: str, noun: str, width: int
) -> dict[int, npt.NDArray[np.str_]]:
    """Reasons for the generic statuses of ``rows``, built with numpy string ufuncs."""
    add = np.strings.add
    out: dict[int, npt.NDArray[np.str_]] = {}
    status = parsed.status[rows]
    for code in (MISSING, BAD_LENGTH, NOT_DIGIT, BAD_LAST, BAD_CHECK):
        sel = rows[status == code]
        if not len(sel):
            continue
        canon = parsed.canon[sel]
        if code == MISSING:
            msg = np.full(len(sel), f"no {thing} given")
        elif code == BAD_LENGTH:
            msg = add(f"{width} characters expected, got ", parsed.lengths[sel].astype(str))
        elif code == NOT_DIGIT:
            col = np.argmax((canon[:, : width - 1] - 48) > 9, axis=1)
            ch = _text(canon[np.arange(len(sel)), col][:, None])
            msg = add(
                add(add(add("character ", (col + 1).astype(str)), " '"), ch), "' is not a digit"
            )
        elif code == BAD_LAST:
            ch = _text(canon[:, width - 1 :])
            msg = add(add(f"character {width} '", ch), "' is not a digit or X")
        else:
            exp = _text(parsed.expected[sel][:, None])
            msg = add(
                add(
                    add(add("check character is ", exp), f" but the {noun} ends in "),
                    _text(canon[:, width - 1 :]),
                ),
                " — a digit was mistyped or two were swapped",
            )
        out[code] = msg
    return out


def _problems(
    values: npt.ArrayLike,
    width: int,
    thing: str,
    noun: str,
    extra: Callable[[_Parsed], tuple[_Parsed, dict[int, npt.NDArray[np.str_]]]] | None = None,
) -> npt.NDArray[np.object_]:
    """None or a reason per element.

    ``extra(parsed)`` may set further statuses and return their reasons, each aligned with
    the rows of that status in ascending order.
    """
    arr = _as_1d(values)
    result = np.full(arr.shape[0], None, dtype=object)
    for sl in _chunks(arr.shape[0]):
        parsed = _parse(arr[sl], width)
        reasons: dict[int, npt.NDArray[np.str_]] = {}
        if extra is not None:
            parsed, reasons = extra(parsed)
        bad = np.flatnonzero(parsed.status != OK)
        if not len(bad):
            continue
        reasons = {**_describe(parsed, bad, thing, noun, width), **reasons}
        chunk = result[sl]
        status = parsed.status[bad]
        for code, msg in reasons.items():
            # `msg` is aligned with the rows of that status in ascending order.
            chunk[bad[status == code]] = msg.astype(object)
    return result


@functools.cache
def _number_table(digits: int, weights: tuple[int, ...]) -> tuple[Any, Any]:
    """For every number below 10**digits: its ASCII digits, and their weighted sum."""
    values = np.arange(10**digits)
    powers = 10 ** np.arange(digits - 1, -1, -1)
    table = (values[:, None] // powers) % 10
    return (table + 48).astype(np.uint32), table @ np.asarray(weights)


def _put_numbers(
    out: npt.NDArray[np.uint32], col: int, values: npt.NDArray[np.int64], digits: int
) -> npt.NDArray[np.int64]:
    """Write zero-padded numbers into ``out[:, col:col+digits]``; return their weighted sums."""
    weights = tuple(_weights(out.shape[1] - 1)[col : col + digits])
    ascii_digits, sums = _number_table(digits, weights)
    out[:, col : col + digits] = ascii_digits[values]
    return sums[values]


# --------------------------------------------------------------------------- house codes


@dataclass(frozen=True)
class HouseCode:
    """A decoded house code: community, its street and district prefixes, and the address parts."""

    community_code: str
    street_code: str
    district_code: str
    building: int
    unit: int
    room: int
    check: str

    @property
    def code(self) -> str:
        """The canonical 23-character code."""
        return f"{self.community_code}{self.building:04d}{self.unit:02d}{self.room:04d}{self.check}"

    @property
    def display(self) -> str:
        """The hyphenated display form, e.g. ``510104001002-0012-01-0302-2``."""
        return format_code(self.code)

    def __str__(self) -> str:
        """Render as the canonical code."""
        return self.code


def _community_digits(community_code: object) -> str:
    """Validate a scalar community code and return it."""
    if (
        not isinstance(community_code, str)
        or len(community_code) != COMMUNITY_DIGITS
        or any(ch not in "0123456789" for ch in community_code)
    ):
        raise BadInput(
            f"community code {community_code!r} is not {COMMUNITY_DIGITS} digits; use the "
            "12-digit statistical division code (6-digit district + 3 street + 3 community)"
        )
    return community_code


def _part(name: str, value: object, digits: int) -> int:
    """Validate one scalar numeric part (building, unit, room)."""
    top = 10**digits - 1
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise BadInput(f"{name} {value!r} is not a whole number; give 0 to {top}")
    number = int(value)
    if not 0 <= number <= top:
        raise BadInput(f"{name} {number} out of range: {name} must be 0 to {top} ({digits} digits)")
    return number


def encode(community_code: str, building: int, unit: int, room: int) -> str:
    """Return the canonical house code for a community and building/unit/room numbers.

    ``encode("510104001002", 12, 1, 302) == "51010400100200120103022"``; parts out of range
    (building or room above 9999, unit above 99, negative, community code not 12 digits)
    raise ``BadInput`` naming the part.
    """
    body = _community_digits(community_code) + "".join(
        f"{_part(name, value, digits):0{digits}d}"
        for (name, digits), value in zip(_PARTS, (building, unit, room), strict=True)
    )
    return body + iso7064_mod11_2(body)


def _int_part(name: str, values: npt.NDArray[Any], digits: int) -> npt.NDArray[np.int64]:
    """Validate one numeric part column of ``encode_many`` and return it as int64."""
    top = 10**digits - 1
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        whole = finite & (np.floor(np.where(finite, values, 0)) == values)
        if not whole.all():
            i = int(np.argmax(~whole))
            raise BadInput(f"{name} at position {i} is {values[i]!r}, not a whole number")
        values = values.astype(np.int64)
    elif values.dtype.kind not in "iub":
        try:
            values = values.astype(np.int64)
        except (TypeError, ValueError) as exc:
            raise BadInput(f"{name} must be whole numbers 0 to {top}: {exc}") from None
    values = values.astype(np.int64)
    bad = (values < 0) | (values > top)
    if bad.any():
        i = int(np.argmax(bad))
        raise BadInput(
            f"{name} at position {i} is {int(values[i])}, out of range: "
            f"{name} must be 0 to {top} ({digits} digits)"
        )
    return values


def encode_many(
    community_codes: npt.ArrayLike,
    buildings: npt.ArrayLike,
    units: npt.ArrayLike,
    rooms: npt.ArrayLike,
) -> npt.NDArray[np.str_]:
    """Return canonical house codes (``<U23`` array) for arrays of parts, broadcast together.

    Vectorised over millions of houses; a bad part anywhere raises ``BadInput`` naming the
    part, its position and the allowed range.
    """
    community, build, unit, room = (_as_1d(v) for v in (community_codes, buildings, units, rooms))
    try:
        (n,) = np.broadcast_shapes(community.shape, build.shape, unit.shape, room.shape)
    except ValueError:
        raise BadInput(
            "community codes, buildings, units and rooms must have the same length "
            f"(got {community.shape}, {build.shape}, {unit.shape}, {room.shape})"
        ) from None
    chars, missing = _char_matrix(community)
    if chars.shape[1] < COMMUNITY_DIGITS:
        short = chars
        chars = np.zeros((len(short), COMMUNITY_DIGITS), dtype=short.dtype)
        chars[:, : short.shape[1]] = short

    def check_community(rows: slice) -> None:
        block = chars[rows]
        bad = missing[rows] | ((block[:, :COMMUNITY_DIGITS] - 48) > 9).any(axis=1)
        if block.shape[1] > COMMUNITY_DIGITS:
            bad |= block[:, COMMUNITY_DIGITS] != 0  # longer than 12 (U strings have no NULs)
        if bad.any():
            i = (rows.start or 0) + int(np.argmax(bad))
            raise BadInput(
                f"community code at position {i} is {community[i]!r}, not "
                f"{COMMUNITY_DIGITS} digits; use the 12-digit statistical division code"
            )

    per_row = len(chars) == n
    if not per_row:
        check_community(slice(None))
    numbers = [
        _int_part(name, v, digits)
        for (name, digits), v in zip(_PARTS, (build, unit, room), strict=True)
    ]
    prefix = np.broadcast_to(chars[:, :COMMUNITY_DIGITS], (n, COMMUNITY_DIGITS))
    parts = [np.broadcast_to(values, (n,)) for values in numbers]
    weights = _weights(CODE_LENGTH - 1)
    out = np.empty((n, CODE_LENGTH), dtype=np.uint32)
    for sl in _chunks(n):
        # Chunks keep the temporaries in cache and small enough to be reused, not page-faulted.
        if per_row:
            check_community(sl)
        block = out[sl]
        block[:, :COMMUNITY_DIGITS] = prefix[sl]
        total = _weighted_sums(prefix[sl], weights[:COMMUNITY_DIGITS])
        total -= 48 * sum(weights[:COMMUNITY_DIGITS])
        col = COMMUNITY_DIGITS
        for (_, digits), values in zip(_PARTS, parts, strict=True):
            total += _put_numbers(block, col, values[sl], digits)
            col += digits
        block[:, col] = _CHECK_ASCII[(12 - total % 11) % 11]
    return out.view(f"<U{CODE_LENGTH}").reshape(n)


def validate(code: object) -> str | None:
    """Return None if ``code`` is a valid house code (canonical or display form), else why not.

    Reasons read e.g. "23 characters expected, got 21", "character 5 'A' is not a digit" or
    "check character is 3 but the code ends in 7 — a digit was mistyped or two were swapped";
    positions count characters after display hyphens and spaces are removed.
    """
    if not isinstance(code, str):
        if code is None:
            return "no house code given"
        return f"house code must be text, got {type(code).__name__}"
    reason = code_problems(np.array([code]))[0]
    return None if reason is None else str(reason)


def code_problems(codes: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """Return None or the reason (as ``validate`` words it) for each house code, vectorised."""
    return _problems(codes, CODE_LENGTH, "house code", "code")


def validate_many(codes: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Return a boolean array: True where the house code (canonical or display form) is valid."""
    arr = _as_1d(codes)
    ok = np.zeros(arr.shape[0], dtype=bool)
    for sl in _chunks(arr.shape[0]):
        ok[sl] = _parse(arr[sl], CODE_LENGTH).status == OK
    return ok


def normalize(code: object) -> str:
    """Return the canonical 23-character form of a house code, or raise ``BadInput`` saying why."""
    reason = validate(code)
    if reason is not None:
        raise BadInput(f"house code {code!r} is not valid: {reason}")
    return str(normalize_many(np.array([code]))[0])


def normalize_many(codes: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Return canonical forms (``<U23``) of many house codes; BadInput names the first bad one."""
    arr = _as_1d(codes)
    out = np.empty(arr.shape[0], dtype=f"<U{CODE_LENGTH}")
    for sl in _chunks(arr.shape[0]):
        parsed = _parse(arr[sl], CODE_LENGTH)
        bad = parsed.status != OK
        if bad.any():
            i = int(np.argmax(bad))
            value = arr[sl][i]
            raise BadInput(
                f"house code at position {sl.start + i} ({value!r}) is not valid: "
                f"{code_problems(np.array([value], dtype=object))[0]}"
            )
        out[sl] = _text(parsed.canon)
    return out


def decode(code: str) -> HouseCode:
    """Validate a house code and split it into community, street, district and address parts."""
    c = normalize(code)
    return HouseCode(
        community_code=c[:COMMUNITY_DIGITS],
        street_code=c[:STREET_DIGITS],
        district_code=c[:DISTRICT_DIGITS],
        building=int(c[12:16]),
        unit=int(c[16:18]),
        room=int(c[18:22]),
        check=c[22],
    )


def format_code(code: str) -> str:
    """Return the display form ``510104001002-0012-01-0302-2`` of a valid house code."""
    c = normalize(code)
    return f"{c[:12]}-{c[12:16]}-{c[16:18]}-{c[18:22]}-{c[22]}"
