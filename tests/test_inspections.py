from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmgr.errors import BadInput
from gridmgr.inspections import (
    INSPECTION_INTERVAL,
    INSPECTOR,
    apply_class_change,
    class_change_due_dates,
    due_dates,
    due_in_week,
    inspection_intervals,
    next_due,
    record_inspection,
    visits_per_month,
)
from gridmgr.settings import WorkloadSettings

WS = WorkloadSettings()
D = dt.date


def test_default_intervals_follow_the_field_reports() -> None:
    assert dict(INSPECTION_INTERVAL) == {"key": 7, "uneasy": 15, "trusted": None}
    assert inspection_intervals(WS) == dict(INSPECTION_INTERVAL)
    assert INSPECTOR["key"] == "police" and INSPECTOR["uneasy"] == "committee"
    assert visits_per_month(7) == pytest.approx(52 / 12)
    assert visits_per_month(15) == pytest.approx(2.0)
    assert visits_per_month(None) == 0.0


def test_intervals_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDMGR_WORKLOAD_KEY_INTERVAL_DAYS", "5")
    assert inspection_intervals(WorkloadSettings())["key"] == 5


def test_next_due_from_registration_or_last_inspection() -> None:
    assert next_due("key", None, D(2024, 1, 1), WS) == D(2024, 1, 8)
    assert next_due("key", D(2024, 2, 26), D(2024, 1, 1), WS) == D(2024, 3, 4)  # leap year
    assert next_due("uneasy", None, D(2024, 12, 20), WS) == D(2025, 1, 4)
    assert next_due("trusted", None, D(2024, 1, 1), WS) is None
    assert next_due("trusted", None, D(2024, 1, 1),
                    WorkloadSettings(trusted_interval_days=90)) == D(2024, 3, 31)
    assert record_inspection("uneasy", D(2024, 5, 31), WS) == D(2024, 6, 15)


def test_next_due_bad_input() -> None:
    with pytest.raises(BadInput, match="unknown"):
        next_due("suspicious", None, D(2024, 1, 1), WS)
    with pytest.raises(BadInput, match="registered_on"):
        next_due("key", None, None, WS)


def test_due_dates_vectorised_with_nat_and_none() -> None:
    out = due_dates(
        ["key", "uneasy", "trusted", "key"],
        [None, D(2024, 3, 1), None, pd.NaT],
        [D(2024, 1, 1), D(2024, 1, 1), D(2024, 1, 1), "2024-02-28"],
        WS,
    )
    assert out.dtype == np.dtype("datetime64[D]")
    expected = np.array(["2024-01-08", "2024-03-16", "NaT", "2024-03-06"], dtype="datetime64[D]")
    np.testing.assert_array_equal(out, expected)


def test_due_dates_bad_input() -> None:
    with pytest.raises(BadInput, match="unknown"):
        due_dates(["key", "vip"], [None, None], [D(2024, 1, 1)] * 2, WS)
    with pytest.raises(BadInput, match="neither"):
        due_dates(["key"], [None], [None], WS)
    with pytest.raises(BadInput, match="length"):
        due_dates(["key"], [None, None], [D(2024, 1, 1)], WS)
    # a trusted rental without dates is fine: it has no schedule
    assert np.isnat(due_dates(["trusted"], [None], [None], WS)[0])


dates = st.dates(D(2000, 1, 1), D(2040, 12, 31))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["key", "uneasy", "trusted"]),
                          st.none() | dates, dates), min_size=1, max_size=30))
def test_due_dates_match_scalar_next_due(rows: list[tuple[str, D | None, D]]) -> None:
    classes, last, start = zip(*rows, strict=True)
    out = due_dates(list(classes), list(last), list(start), WS)
    for got, (c, l_, s) in zip(out, rows, strict=True):
        want = next_due(c, l_, s, WS)
        assert (np.isnat(got) and want is None) or got == np.datetime64(want, "D")


# ---- the week's list --------------------------------------------------------------------

MONDAY = D(2024, 5, 6)  # ISO week 2024-W19


def rentals_with_due() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "house_code": ["H-sun-after", "H-mon", "H-overdue-1", "H-next-mon", "H-trusted",
                           "H-overdue-16", "H-sun-in"],
            "address": list("abcdefg"),
            "next_due_on": [D(2024, 5, 12), D(2024, 5, 6), D(2024, 5, 5), D(2024, 5, 13), None,
                            D(2024, 4, 20), D(2024, 5, 12)],
        }
    )


def test_due_in_week_edges_and_order() -> None:
    out = due_in_week(rentals_with_due(), MONDAY, WS)
    assert out["house_code"].tolist() == [
        "H-overdue-16", "H-overdue-1", "H-mon", "H-sun-after", "H-sun-in"]
    assert out["days_overdue"].tolist() == [16, 1, 0, 0, 0]
    assert out["overdue"].tolist() == [True, True, False, False, False]
    assert out["address"].tolist() == ["f", "c", "b", "a", "g"]  # other columns kept


def test_due_in_week_computes_due_dates_without_next_due_on() -> None:
    frame = pd.DataFrame(
        {
            "house_code": ["k-reg", "k-insp", "u", "t", "k-late"],
            "rental_class": ["key", "key", "uneasy", "trusted", "key"],
            "last_inspected_on": [None, D(2024, 5, 5), D(2024, 4, 21), None, None],
            "registered_on": [D(2024, 4, 29), D(2024, 1, 1), D(2024, 1, 1), D(2024, 1, 1),
                              D(2024, 5, 7)],
        }
    )
    out = due_in_week(frame, MONDAY, WS)
    # k-reg due 05-06, k-insp 05-12, u 05-06, k-late 05-14 (next week), t never
    assert out["house_code"].tolist() == ["k-reg", "u", "k-insp"]
    assert out["due_on"].tolist() == [pd.Timestamp(d) for d in ("2024-05-06", "2024-05-06",
                                                                 "2024-05-12")]


def test_due_in_week_needs_a_monday_and_columns() -> None:
    with pytest.raises(BadInput, match="Wednesday.*2024-05-06"):
        due_in_week(rentals_with_due(), D(2024, 5, 8), WS)
    with pytest.raises(BadInput, match="lacks"):
        due_in_week(pd.DataFrame({"house_code": ["x"]}), MONDAY, WS)


def test_due_in_week_empty_week() -> None:
    out = due_in_week(rentals_with_due(), D(2024, 1, 1), WS)
    assert out.empty
    assert {"due_on", "overdue", "days_overdue"} <= set(out.columns)


# ---- class changes ----------------------------------------------------------------------


def test_upgrade_brings_the_visit_forward() -> None:
    # uneasy, due 05-20; becomes key on 05-06 → due 05-13
    assert apply_class_change(D(2024, 5, 20), "key", D(2024, 5, 6), WS) == D(2024, 5, 13)


def test_downgrade_keeps_the_scheduled_visit_then_new_interval() -> None:
    # key, due 05-08; becomes uneasy on 05-06 → still due 05-08
    due = apply_class_change(D(2024, 5, 8), "uneasy", D(2024, 5, 6), WS)
    assert due == D(2024, 5, 8)
    # the visit on 05-08 then schedules at the new, half-monthly interval
    assert record_inspection("uneasy", D(2024, 5, 8), WS) == D(2024, 5, 23)


def test_change_on_the_old_due_date_and_overdue() -> None:
    # change + new interval equal to the old due date: that date
    assert apply_class_change(D(2024, 5, 13), "key", D(2024, 5, 6), WS) == D(2024, 5, 13)
    # an overdue visit is not erased by a class change
    assert apply_class_change(D(2024, 4, 1), "uneasy", D(2024, 5, 6), WS) == D(2024, 4, 1)


def test_change_to_and_from_trusted() -> None:
    assert apply_class_change(D(2024, 5, 8), "trusted", D(2024, 5, 6), WS) is None
    assert apply_class_change(None, "key", D(2024, 5, 6), WS) == D(2024, 5, 13)
    with pytest.raises(BadInput, match="unknown"):
        apply_class_change(None, "vip", D(2024, 5, 6), WS)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.none() | dates, st.sampled_from(["key", "uneasy", "trusted"]),
                          dates), min_size=1, max_size=30))
def test_class_change_vectorised_matches_scalar(rows: list[tuple[D | None, str, D]]) -> None:
    old, new, changed = zip(*rows, strict=True)
    out = class_change_due_dates(list(old), list(new), list(changed), WS)
    for got, (o, n, c) in zip(out, rows, strict=True):
        want = apply_class_change(o, n, c, WS)
        assert (np.isnat(got) and want is None) or got == np.datetime64(want, "D")
