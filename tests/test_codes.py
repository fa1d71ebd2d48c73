from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmgr import codes
from gridmgr.codes import (
    HouseCode,
    check_chars,
    code_problems,
    decode,
    encode,
    encode_many,
    format_code,
    iso7064_mod11_2,
    normalize,
    normalize_many,
    validate,
    validate_many,
)
from gridmgr.errors import BadInput

DIGITS = "0123456789"
CHECK_ALPHABET = DIGITS + "X"

community_codes = st.text(alphabet=DIGITS, min_size=12, max_size=12)
buildings = st.integers(0, 9999)
units = st.integers(0, 99)
rooms = st.integers(0, 9999)
house_codes = st.builds(encode, community_codes, buildings, units, rooms)

EXAMPLE = "51010400100200120103022"  # 510104001002, building 12, unit 1, room 302


def reference_is_valid(code: str) -> bool:
    """ISO 7064 MOD 11-2 as the standard states it: sum of a_i * 2^(n-i) over all n chars = 1."""
    values = [10 if ch == "X" else int(ch) for ch in code]
    n = len(values)
    return sum(v * pow(2, n - 1 - i) for i, v in enumerate(values)) % 11 == 1


# ----------------------------------------------------------------------------- check character


def test_check_character_of_the_gb11643_sample_number():
    assert iso7064_mod11_2("11010519491231002") == "X"
    assert iso7064_mod11_2("44052418800101001") == "4"


@given(st.text(alphabet=DIGITS, min_size=1, max_size=30))
def test_check_character_satisfies_the_standard_equation(body):
    assert reference_is_valid(body + iso7064_mod11_2(body))


@given(st.lists(st.text(alphabet=DIGITS, min_size=22, max_size=22), min_size=1, max_size=40))
def test_vectorised_check_chars_equal_scalar(bodies):
    expected = [iso7064_mod11_2(b) for b in bodies]
    assert check_chars(np.array(bodies)).tolist() == expected
    matrix = np.array([[int(c) for c in b] for b in bodies], dtype=np.uint8)
    assert check_chars(matrix).tolist() == expected


@pytest.mark.parametrize("bad", ["", "12a4", "１２"])
def test_check_character_rejects_non_digits(bad):
    with pytest.raises(BadInput):
        iso7064_mod11_2(bad)


def test_check_chars_rejects_bad_input():
    with pytest.raises(BadInput, match="element 1"):
        check_chars(np.array(["123", "12a"]))
    with pytest.raises(BadInput, match="element 1"):
        check_chars(np.array(["123", "12"]))
    with pytest.raises(BadInput, match="0-9"):
        check_chars(np.array([[1, 2, 10]]))


# ----------------------------------------------------------------------------- encode / decode


def test_encode_known_code_and_display_form():
    assert encode("510104001002", 12, 1, 302) == EXAMPLE
    assert format_code(EXAMPLE) == "510104001002-0012-01-0302-2"
    assert reference_is_valid(EXAMPLE)


@given(community_codes, buildings, units, rooms)
def test_round_trip_encode_decode(community, building, unit, room):
    code = encode(community, building, unit, room)
    assert len(code) == 23
    assert validate(code) is None
    house = decode(code)
    assert house == HouseCode(
        community_code=community,
        street_code=community[:9],
        district_code=community[:6],
        building=building,
        unit=unit,
        room=room,
        check=code[-1],
    )
    assert house.code == code == str(house)
    assert decode(house.display) == house
    assert normalize(format_code(code).lower()) == code


def test_decode_reads_district_street_community():
    house = decode("510104001002-0012-01-0302-2")
    assert (house.district_code, house.street_code, house.community_code) == (
        "510104",
        "510104001",
        "510104001002",
    )
    assert (house.building, house.unit, house.room, house.check) == (12, 1, 302, "2")


def test_decode_rejects_invalid_code():
    with pytest.raises(BadInput, match="check character is 2 but the code ends in 3"):
        decode(EXAMPLE[:-1] + "3")


@pytest.mark.parametrize(
    ("args", "part"),
    [
        (("510104001002", 10000, 1, 1), "building"),
        (("510104001002", -1, 1, 1), "building"),
        (("510104001002", 1, 100, 1), "unit"),
        (("510104001002", 1, 1, 10000), "room"),
        (("510104001002", 1, 1, 1.5), "room"),
        (("510104001002", True, 1, 1), "building"),
        (("51010400100", 1, 1, 1), "community code"),
        (("5101040010021", 1, 1, 1), "community code"),
        (("51010400100A", 1, 1, 1), "community code"),
    ],
)
def test_encode_names_the_part_out_of_range(args, part):
    with pytest.raises(BadInput, match=part):
        encode(*args)


@settings(max_examples=30)
@given(st.lists(st.tuples(community_codes, buildings, units, rooms), min_size=1, max_size=50))
def test_encode_many_equals_scalar(rows):
    community, building, unit, room = (list(col) for col in zip(*rows, strict=True))
    got = encode_many(np.array(community, dtype=object), building, unit, room)
    assert got.dtype == np.dtype("<U23")
    assert got.tolist() == [encode(*row) for row in rows]


def test_encode_many_broadcasts_one_community_and_accepts_series():
    rooms_ = pd.Series([101, 102, 201], dtype="int64")
    got = encode_many("510104001002", np.int32(3), np.array([1]), rooms_)
    assert got.tolist() == [encode("510104001002", 3, 1, r) for r in (101, 102, 201)]
    floats = encode_many(["510104001002"], [3.0], [1.0], [101.0])
    assert floats.tolist() == [encode("510104001002", 3, 1, 101)]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"buildings": [1, 10000]}, "building at position 1 is 10000"),
        ({"units": [1, -2]}, "unit at position 1 is -2"),
        ({"rooms": [1.0, 2.5]}, "room at position 1"),
        ({"rooms": [1, None]}, "room"),
        ({"community_codes": ["510104001002", "5101"]}, "community code at position 1"),
        ({"community_codes": ["5101", "5102"]}, "community code at position 0"),
        ({"community_codes": "51010400100X"}, "community code at position 0"),
        ({"community_codes": ["510104001002", None]}, "community code at position 1"),
        ({"community_codes": ["510104001002", "５１０１０４００１００２"]}, "position 1"),
        ({"rooms": [1, 2, 3]}, "same length"),
    ],
)
def test_encode_many_rejects_bad_parts(kwargs, match):
    args = {
        "community_codes": ["510104001002", "510104001003"],
        "buildings": [1, 2],
        "units": [1, 2],
        "rooms": [1, 2],
        **kwargs,
    }
    with pytest.raises(BadInput, match=match):
        encode_many(**args)


def test_encode_many_empty():
    assert encode_many(np.array([], dtype="<U12"), [], [], []).shape == (0,)


# ----------------------------------------------------------------------------- validation


@settings(max_examples=200)
@given(house_codes)
def test_every_single_substitution_is_detected(code):
    variants = [
        code[:i] + ch + code[i + 1 :]
        for i in range(len(code))
        for ch in CHECK_ALPHABET
        if ch != code[i]
    ]
    assert not validate_many(variants).any()
    assert all(validate(v) is not None for v in variants[::17])


@settings(max_examples=200)
@given(house_codes)
def test_every_adjacent_transposition_is_detected(code):
    variants = [
        code[:i] + code[i + 1] + code[i] + code[i + 2 :]
        for i in range(len(code) - 1)
        if code[i] != code[i + 1]
    ]
    assert variants, "a valid code always has two unequal neighbours"
    assert not validate_many(variants).any()
    assert all(validate(v) is not None for v in variants)


def test_transposition_with_check_character_is_detected():
    code = next(
        encode("510104001002", 12, 1, r)
        for r in range(10000)
        if encode("510104001002", 12, 1, r)[-1] != encode("510104001002", 12, 1, r)[-2]
    )
    swapped = code[:-2] + code[-1] + code[-2]
    assert validate(swapped) is not None


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (EXAMPLE[:-2], "23 characters expected, got 21"),
        (EXAMPLE + "1", "23 characters expected, got 24"),
        ("", "23 characters expected, got 0"),
        (EXAMPLE[:4] + "A" + EXAMPLE[5:], "character 5 'A' is not a digit"),
        (EXAMPLE[:-1] + "Q", "character 23 'Q' is not a digit or X"),
        (
            EXAMPLE[:-1] + "7",
            "check character is 2 but the code ends in 7 — a digit was mistyped or two "
            "were swapped",
        ),
        (None, "no house code given"),
        (51010400100200120103022, "house code must be text, got int"),
    ],
)
def test_validate_reasons(code, reason):
    assert validate(code) == reason


@pytest.mark.parametrize(
    "typed",
    [
        "510104001002-0012-01-0302-2",
        " 510104001002 0012 01 0302 2 ",
        "510104001002－0012－01－0302－2",  # full-width hyphens
        "５１０１０４００１００２-0012-01-0302-2",  # full-width digits
    ],
)
def test_display_forms_are_accepted(typed):
    assert validate(typed) is None
    assert normalize(typed) == EXAMPLE


def test_lowercase_x_is_accepted():
    code = next(c for c in (encode("510104001002", 1, 1, r) for r in range(200)) if c.endswith("X"))
    assert normalize(code.lower()) == code
    assert validate_many([code.lower()]).tolist() == [True]


def test_normalize_raises_with_reason():
    with pytest.raises(BadInput, match="23 characters expected, got 22"):
        normalize(EXAMPLE[:-1])


mutated_codes = st.one_of(
    house_codes,
    house_codes.map(format_code),
    st.tuples(house_codes, st.integers(0, 22), st.sampled_from(list("0123456789XxA- "))).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]
    ),
    st.text(alphabet="0123456789Xx- A", max_size=30),
)


@given(st.lists(mutated_codes, max_size=30))
def test_vectorised_validation_equals_scalar(values):
    arr = np.array(values, dtype=object)
    scalar = [validate(v) for v in values]
    assert validate_many(arr).tolist() == [r is None for r in scalar]
    assert code_problems(arr).tolist() == scalar


def test_code_problems_handle_missing_values_and_series():
    series = pd.Series([EXAMPLE, None, np.nan, "x"])
    assert code_problems(series).tolist() == [
        None,
        "no house code given",
        "no house code given",
        "23 characters expected, got 1",
    ]
    assert validate_many(series).tolist() == [True, False, False, False]


def test_chunked_paths_agree(monkeypatch):
    monkeypatch.setattr(codes, "_CHUNK", 3)
    values = [EXAMPLE, "bad", format_code(EXAMPLE), EXAMPLE[:-1] + "0", EXAMPLE, "", EXAMPLE]
    assert validate_many(values).tolist() == [True, False, True, False, True, False, True]
    problems = code_problems(values).tolist()
    assert problems[:2] == [None, "23 characters expected, got 3"]
    assert problems[3].startswith("check character is 2")
    assert normalize_many(values[::2] + values[-1:]).tolist() == [EXAMPLE] * 5
    rooms_ = list(range(101, 108))
    assert encode_many("510104001002", 12, 1, rooms_).tolist() == [
        encode("510104001002", 12, 1, r) for r in rooms_
    ]


def test_normalize_many_names_first_bad_code():
    assert normalize_many(["510104001002-0012-01-0302-2"]).tolist() == [EXAMPLE]
    with pytest.raises(BadInput, match=r"position 1 .*23 characters expected, got 3"):
        normalize_many([EXAMPLE, "abc", EXAMPLE])
