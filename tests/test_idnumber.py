from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmgr import codes
from gridmgr.codes import iso7064_mod11_2
from gridmgr.errors import BadInput
from gridmgr.idnumber import (
    birth_date_of,
    birth_dates_of,
    generate_id_numbers,
    id_number_problems,
    normalize_id_number,
    sex_of,
    sexes_of,
    validate_id_number,
)

TODAY = dt.date(2024, 6, 1)
SAMPLE = "11010519491231002X"  # the GB 11643-1999 sample: Beijing Chaoyang, 1949-12-31, female


def make(body: str) -> str:
    return body + iso7064_mod11_2(body)


MAN_1990 = make("51010419900101123")  # sequence 123: odd, male
WOMAN_2000_LEAP = make("51010420000229124")  # 29 February in a leap year


def test_known_valid_numbers():
    # Worked by hand: weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 give 166; 166 mod 11 = 1 -> "0".
    assert MAN_1990 == "510104199001011230"
    for number in (SAMPLE, MAN_1990, WOMAN_2000_LEAP, make("81000019850615456")):
        assert validate_id_number(number, today=TODAY) is None, number


def test_decode_birth_date_and_sex():
    assert birth_date_of(SAMPLE) == dt.date(1949, 12, 31)
    assert sex_of(SAMPLE) == "F"
    assert birth_date_of(MAN_1990) == dt.date(1990, 1, 1)
    assert sex_of(MAN_1990) == "M"
    assert sex_of(WOMAN_2000_LEAP) == "F"


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        (SAMPLE[:-1] + "1", "check character is X but the number ends in 1"),
        (MAN_1990[:-1] + "5", "check character is 0 but the number ends in 5"),
        (make("51010419900230123"), "birth date 19900230 is not a calendar date"),
        (make("51010419000229123"), "birth date 19000229 is not a calendar date"),
        (make("51010419901301123"), "birth date 19901301 is not a calendar date"),
        (make("51010418991231123"), "birth date 18991231 is before 1900-01-01"),
        (make("51010420240602123"), "birth date 20240602 is in the future"),
        (make("99010419900101123"), "region code 990104 does not start with a province code"),
        (SAMPLE[:-1], "18 characters expected, got 17"),
        (SAMPLE + "0", "18 characters expected, got 19"),
        ("110105194912310", "18 characters expected, got 15"),
        ("1101051949123100AX", "character 17 'A' is not a digit"),
        ("11010519491231002Y", "character 18 'Y' is not a digit or X"),
        (None, "no ID number given"),
        (11010519491231002, "ID number must be text, got int"),
    ],
)
def test_invalid_numbers_and_reasons(number, reason):
    got = validate_id_number(number, today=TODAY)
    assert got is not None and got.startswith(reason)


def test_format_errors_take_precedence_over_date_and_check():
    # Bad date and bad check together: the date is reported (it is the likelier typo to fix).
    assert validate_id_number("510104199002301230", today=TODAY) == (
        "birth date 19900230 is not a calendar date"
    )


def test_separators_lowercase_x_and_normalisation():
    for typed in ("11010519491231002x", "110105 19491231 002X", "110105-19491231-002x"):
        assert validate_id_number(typed) is None
        assert normalize_id_number(typed) == SAMPLE
    with pytest.raises(BadInput, match="check character"):
        normalize_id_number(SAMPLE[:-1] + "1")
    with pytest.raises(BadInput):
        birth_date_of("not a number")
    with pytest.raises(BadInput):
        sex_of(SAMPLE[:-1] + "1")


id_like = st.one_of(
    st.builds(
        lambda region, date, seq: make(f"{region}{date:%Y%m%d}{seq:03d}"),
        st.sampled_from(["110105", "510104", "440524", "810000", "990101"]),
        st.dates(dt.date(1890, 1, 1), dt.date(2030, 1, 1)),
        st.integers(0, 999),
    ),
    st.text(alphabet="0123456789Xx -", min_size=14, max_size=20),
    st.none(),
)


@given(st.lists(id_like, max_size=30))
def test_vectorised_problems_equal_scalar(values):
    arr = np.array(values, dtype=object)
    assert id_number_problems(arr, today=TODAY).tolist() == [
        validate_id_number(v, today=TODAY) for v in values
    ]


def test_chunked_paths_agree(monkeypatch):
    monkeypatch.setattr(codes, "_CHUNK", 2)
    values = [
        SAMPLE,
        "bad",
        None,
        MAN_1990,
        "５１０１０４１９９００１０１１２３０",
        SAMPLE[:-1] + "1",
    ]
    assert [p is None for p in id_number_problems(values, today=TODAY)] == [
        True,
        False,
        False,
        True,
        True,
        False,
    ]
    assert sexes_of(values).tolist() == ["F", "", "", "M", "M", ""]
    numbers = generate_id_numbers(
        np.random.default_rng(1), "510104", np.full(5, np.datetime64("1990-01-01")), "F"
    )
    assert len(set(numbers.tolist())) == 5


def test_vectorised_birth_dates_and_sexes():
    values = pd.Series([SAMPLE, "bad", None, MAN_1990.lower(), SAMPLE[:-1] + "1"])
    dates = birth_dates_of(values)
    assert dates.dtype == np.dtype("datetime64[D]")
    assert dates[0] == np.datetime64("1949-12-31") and dates[3] == np.datetime64("1990-01-01")
    assert np.isnat(dates[[1, 2, 4]]).all()
    assert sexes_of(values).tolist() == ["F", "", "", "M", ""]


@settings(max_examples=25)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["110105", "510104", "510105"]),
            st.dates(dt.date(1900, 1, 1), dt.date(2023, 12, 31)),
            st.sampled_from(["M", "F"]),
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(0, 2**32 - 1),
)
def test_generated_numbers_are_valid_unique_and_decode_back(people, seed):
    regions, dates, sexes = (list(col) for col in zip(*people, strict=True))
    numbers = generate_id_numbers(
        np.random.default_rng(seed),
        np.array(regions),
        np.array(dates, dtype="datetime64[D]"),
        np.array(sexes),
    )
    assert numbers.dtype == np.dtype("<U18")
    assert len(set(numbers.tolist())) == len(people)
    assert all(p is None for p in id_number_problems(numbers))
    assert [n[:6] for n in numbers] == regions
    assert birth_dates_of(numbers).tolist() == dates
    assert sexes_of(numbers).tolist() == sexes


def test_generation_fills_a_whole_group_and_refuses_one_more():
    rng = np.random.default_rng(7)
    day = np.datetime64("1990-01-01")
    men = generate_id_numbers(rng, "510104", np.full(500, day), np.full(500, "M"))
    assert len(set(men.tolist())) == 500
    assert sorted(int(n[14:17]) for n in men) == list(range(1, 1000, 2))
    with pytest.raises(BadInput, match="more than 500 men born on 1990-01-01 in region 510104"):
        generate_id_numbers(rng, "510104", np.full(501, day), np.full(501, "M"))


def test_generation_is_reproducible_for_a_seed():
    args = (np.array(["510104"] * 5), np.full(5, np.datetime64("1980-05-05")), np.array(["F"] * 5))
    first = generate_id_numbers(np.random.default_rng(3), *args)
    again = generate_id_numbers(np.random.default_rng(3), *args)
    assert first.tolist() == again.tolist()


@pytest.mark.parametrize(
    ("regions", "dates", "sexes", "match"),
    [
        (["5101"], ["1990-01-01"], ["M"], "region code at position 0"),
        (["990101"], ["1990-01-01"], ["M"], "province"),
        (["510104"], ["NaT"], ["M"], "birth date at position 0"),
        (["510104"], ["1850-01-01"], ["M"], "birth date"),
        (["510104"], ["2999-01-01"], ["M"], "birth date"),
        (["510104"], ["1990-01-01"], ["male"], "sex at position 0"),
        (["510104", "510104"], ["1990-01-01"] * 3, ["M"], "same length"),
    ],
)
def test_generation_rejects_bad_input(regions, dates, sexes, match):
    with pytest.raises(BadInput, match=match):
        generate_id_numbers(
            np.random.default_rng(0),
            np.array(regions),
            np.array(dates, dtype="datetime64[D]"),
            np.array(sexes),
        )
