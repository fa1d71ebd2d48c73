"""Masking of personal identifiers (脱敏) for roles that may not see them in full.

Masks keep the length and replace the middle with ``*``: an ID number keeps its first 4
characters (province and city) and last 4 (``5101**********1234``); a phone number keeps
its first 3 (the carrier prefix) and last 4 (``138****5678``).  Values too short to keep
both ends are masked entirely, so a short value never leaks whole.  None, NaN and the empty
string pass through unchanged; numbers are masked as their text.  The ``*s`` functions do
the same for numpy arrays and pandas Series of millions of values without a loop per person.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from gridmgr.codes import _char_matrix, _text
from gridmgr.errors import BadInput

MASK = "*"
ID_KEEP = (4, 4)
PHONE_KEEP = (3, 4)

_Values = TypeVar("_Values", pd.Series, npt.NDArray[Any])


def _mask_one(value: object, head: int, tail: int) -> str | None:
    """Mask the middle of one string, keeping ``head`` and ``tail`` characters."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return value  # type: ignore[return-value]
    value = str(value)  # numbers read from a CSV mask like their text
    n = len(value)
    if n <= head + tail:
        return MASK * n
    return value[:head] + MASK * (n - head - tail) + value[n - tail :]


def _mask_array(values: npt.ArrayLike, head: int, tail: int) -> npt.NDArray[Any]:
    """Mask every string of a 1-D array; missing and empty values pass through.

    A fixed-width string array comes back with the same dtype, anything else as objects.
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise BadInput(f"expected a 1-D array of strings, got {arr.ndim} dimensions")
    chars, missing = _char_matrix(arr if arr.dtype.kind == "U" else arr.astype(object))
    chars = chars.copy()
    lengths = np.count_nonzero(chars, axis=1)[:, None]
    col = np.arange(chars.shape[1])[None, :]
    short = lengths <= head + tail
    chars[(col < lengths) & (short | ((col >= head) & (col < lengths - tail)))] = ord(MASK)
    text = _text(chars)
    if arr.dtype.kind == "U":
        return text.astype(arr.dtype)
    out = text.astype(object)
    out[missing] = arr[missing]
    return out


def _mask_values(values: _Values, head: int, tail: int) -> _Values:
    """Apply ``_mask_array`` to a Series (keeping index and name) or an array."""
    if isinstance(values, pd.Series):
        masked = _mask_array(values.to_numpy(dtype=object), head, tail)
        dtype = values.dtype if isinstance(values.dtype, pd.StringDtype) else object
        return pd.Series(masked, index=values.index, name=values.name, dtype=dtype)
    return _mask_array(values, head, tail)


def mask_id_number(value: str | None) -> str | None:
    """Return an ID number with all but its first 4 and last 4 characters replaced by '*'."""
    return _mask_one(value, *ID_KEEP)


def mask_phone(value: str | None) -> str | None:
    """Return a phone number with all but its first 3 and last 4 characters replaced by '*'."""
    return _mask_one(value, *PHONE_KEEP)


def mask_id_numbers(values: _Values) -> _Values:
    """Mask many ID numbers as ``mask_id_number`` does; a Series keeps its index and name."""
    return _mask_values(values, *ID_KEEP)


def mask_phones(values: _Values) -> _Values:
    """Mask many phone numbers as ``mask_phone`` does; a Series keeps its index and name."""
    return _mask_values(values, *PHONE_KEEP)
