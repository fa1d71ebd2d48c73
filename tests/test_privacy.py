from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridmgr.privacy import mask_id_number, mask_id_numbers, mask_phone, mask_phones


def test_masks_from_the_brief():
    assert mask_id_number("510104199001011234") == "5101**********1234"
    assert mask_id_number("11010519491231002X") == "1101**********002X"
    assert mask_phone("13812345678") == "138****5678"


@pytest.mark.parametrize(
    ("value", "id_mask", "phone_mask"),
    [
        ("510104900101123", "5101*******1123", "510********1123"),  # old 15-digit number
        ("123456789", "1234*6789", "123**6789"),
        ("12345678", "********", "123*5678"),
        ("1234567", "*******", "*******"),
        ("12", "**", "**"),
        ("028-87654321", "028-****4321", "028*****4321"),
        (13812345678, "1381***5678", "138****5678"),  # a phone read from CSV as a number
    ],
)
def test_lengths_are_kept_and_short_values_fully_masked(value, id_mask, phone_mask):
    assert mask_id_number(value) == id_mask
    assert mask_phone(value) == phone_mask


@pytest.mark.parametrize("missing", [None, "", float("nan")])
def test_missing_values_pass_through(missing):
    for mask in (mask_id_number, mask_phone):
        got = mask(missing)
        if isinstance(missing, float):
            assert isinstance(got, float) and math.isnan(got)
        else:
            assert got == missing


def test_series_keeps_index_and_name_and_missing():
    phones = pd.Series(
        ["13812345678", None, "", np.nan, "12"], index=list("abcde"), name="phone", dtype=object
    )
    masked = mask_phones(phones)
    assert isinstance(masked, pd.Series)
    assert masked.name == "phone" and masked.index.tolist() == list("abcde")
    assert masked["a"] == "138****5678" and masked["b"] is None and masked["c"] == ""
    assert np.isnan(masked["d"]) and masked["e"] == "**"
    assert phones["a"] == "13812345678", "the input is not modified"


def test_pandas_string_dtype_is_kept():
    phones = pd.Series(["13812345678", None], dtype="string")
    masked = mask_phones(phones)
    assert masked.dtype == phones.dtype
    assert masked.iloc[0] == "138****5678" and pd.isna(masked.iloc[1])


def test_numpy_array_of_fixed_width_strings():
    ids = np.array(["510104199001011234", "11010519491231002X"])
    masked = mask_id_numbers(ids)
    assert masked.dtype == ids.dtype
    assert masked.tolist() == ["5101**********1234", "1101**********002X"]
    assert ids[0] == "510104199001011234"


values = st.lists(
    st.one_of(
        st.none(),
        st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=25),
        st.from_regex(r"1[3-9]\d{9}", fullmatch=True),
    ),
    max_size=30,
)


@given(values)
def test_vectorised_equals_scalar(items):
    arr = np.array(items, dtype=object)
    assert mask_id_numbers(arr).tolist() == [mask_id_number(v) for v in items]
    assert mask_phones(pd.Series(items, dtype=object)).tolist() == [mask_phone(v) for v in items]


@given(st.text(alphabet="0123456789X", min_size=9, max_size=25))
def test_id_mask_reveals_exactly_first_and_last_four(value):
    masked = mask_id_number(value)
    assert masked is not None and len(masked) == len(value)
    assert masked[:4] == value[:4] and masked[-4:] == value[-4:]
    assert set(masked[4:-4]) == {"*"}
