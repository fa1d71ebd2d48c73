from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridmgr.errors import BadInput
from gridmgr.settings import TierSettings, WorkloadSettings
from gridmgr.workload import (
    COUNT_COLUMNS,
    DERIVED_INT_COLUMNS,
    INPUT_COLUMNS,
    KPIS,
    LEVELS,
    SUMMED_INT_COLUMNS,
    ancestors,
    derive_workload,
    kpi_rates,
    rollup,
    staffing,
)

WS = WorkloadSettings()
# Pin the thresholds the tier assertions below rely on (not the default calibration).
TS = TierSettings(key_persons_key=3, key_persons_strong=10, rental_share_key=0.30,
                  rental_share_strong=0.50, min_houses_for_share=100,
                  key_dimensions_for_strengthened=2)


def row(grid_id: str = "g", community_code: str = "c", **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {c: 0 for c in INPUT_COLUMNS}
    base.update(grid_id=grid_id, community_code=community_code, area_km2=1.0)
    base.update(over)
    return base


def derive(rows: list[dict[str, Any]], ws: WorkloadSettings = WS) -> pd.DataFrame:
    return derive_workload(pd.DataFrame(rows), ws, TS)


def test_count_columns_match_the_store_table() -> None:
    from gridmgr.store.models import GridCount

    table_columns = [c.name for c in GridCount.__table__.columns
                     if c.name not in ("grid_pk", "plan_id")]
    assert list(COUNT_COLUMNS) == table_columns


# ---- inspections per month -------------------------------------------------------------


def test_inspections_per_month_by_class() -> None:
    out = derive([row(rental_houses=15, rental_key=3, rental_uneasy=2, rental_trusted=10,
                      rental_registered=15)])
    assert out["police_inspections_per_month"].item() == pytest.approx(3 * 52 / 12)
    assert out["committee_inspections_per_month"].item() == pytest.approx(4.0)
    assert out["inspections_per_month"].item() == pytest.approx(3 * 52 / 12 + 4.0)


def test_trusted_rentals_get_police_visits_only_when_configured() -> None:
    ws = WorkloadSettings(trusted_interval_days=30)
    out = derive([row(rental_houses=10, rental_trusted=10, rental_registered=10)], ws)
    assert out["police_inspections_per_month"].item() == pytest.approx(10 * 12 / 12)
    assert out["committee_inspections_per_month"].item() == 0.0


def test_frequencies_are_configurable() -> None:
    ws = WorkloadSettings(key_interval_days=14, uneasy_interval_days=30)
    out = derive([row(rental_houses=2, rental_key=1, rental_uneasy=1, rental_registered=2)], ws)
    assert out["police_inspections_per_month"].item() == pytest.approx(26 / 12)
    assert out["committee_inspections_per_month"].item() == pytest.approx(12 / 12)


# ---- staffing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("floating", "co_managers", "specialists"),
    [(0, 0, 0), (1, 1, 1), (499, 1, 1), (500, 1, 1), (501, 2, 1), (1000, 2, 1), (1001, 3, 2)],
)
def test_co_managers_and_specialists_needed(floating: int, co_managers: int,
                                            specialists: int) -> None:
    out = derive([row(floating_residents=floating, floating_registered=floating,
                      co_managers_assigned=1)])
    assert out["co_managers_needed"].item() == co_managers
    assert out["specialists_needed"].item() == specialists
    assert out["co_managers_gap"].item() == co_managers - 1
    assert out["co_managers_needed"].dtype == np.int64


def test_ratio_is_configurable() -> None:
    out = derive([row(floating_residents=1200, floating_registered=1200)],
                 WorkloadSettings(co_manager_ratio=300, specialist_ratio=600))
    assert out["co_managers_needed"].item() == 4
    assert out["specialists_needed"].item() == 2


# ---- KPIs -------------------------------------------------------------------------------


def test_kpi_rates_targets_and_zero_denominators() -> None:
    out = derive(
        [
            row("a", floating_residents=100, floating_registered=90,  # exactly at 90 %
                rental_houses=100, rental_registered=94,  # just below 95 %
                registered_persons=1000, consistent_persons=701),  # just above 70 %
            row("b"),  # every denominator zero
        ]
    )
    a, b = out.iloc[0], out.iloc[1]
    assert a["floating_registration_rate"] == pytest.approx(0.90)
    assert bool(a["floating_registration_rate_ok"]) is True
    assert a["rental_registration_rate"] == pytest.approx(0.94)
    assert bool(a["rental_registration_rate_ok"]) is False
    assert bool(a["consistency_rate_ok"]) is True
    for kpi in KPIS:
        assert np.isnan(b[kpi.name])
        assert bool(b[f"{kpi.name}_ok"]) is True
        assert b[f"{kpi.name}_target"] == WS.kpi_targets()[kpi.name]
    assert out["floating_registration_rate_ok"].dtype == bool


def test_kpi_numerators_and_denominators_name_count_columns() -> None:
    for kpi in KPIS:
        assert kpi.numerator in COUNT_COLUMNS
        assert kpi.denominator in COUNT_COLUMNS
    assert [k.name for k in KPIS] == [
        "floating_registration_rate", "rental_registration_rate", "consistency_rate"]


def test_kpi_rates_function() -> None:
    rate, ok = kpi_rates([0, 7, 0], [0, 10, 5], 0.7)
    assert np.isnan(rate[0]) and rate[1] == pytest.approx(0.7) and rate[2] == 0.0
    assert ok.tolist() == [True, True, False]


def test_workload_has_tier_and_reasons() -> None:
    out = derive([row("a", key_persons=4, houses=100, rental_houses=38, rental_registered=38),
                  row("b")])
    assert out["tier"].tolist() == ["strengthened", "routine"]
    assert out["tier_reasons"].iloc[0].startswith("strengthened: 4 key persons ≥ 3")


def test_input_not_mutated_and_extra_columns_kept() -> None:
    frame = pd.DataFrame([row(houses=5)])
    frame["note"] = "x"
    before = frame.copy()
    out = derive_workload(frame, WS, TS)
    pd.testing.assert_frame_equal(frame, before)
    assert out["note"].tolist() == ["x"]


# ---- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame([row()]).drop(columns=["houses"]), "lack column"),
        (pd.DataFrame([row(houses=-1)]), "houses must be a whole number"),
        (pd.DataFrame([row(houses=1.5)]), "houses must be a whole number"),
        (pd.DataFrame([row(houses=None)]), "houses must be a whole number"),
        (pd.DataFrame([row(floating_residents=5, floating_registered=6)]), "exceeds"),
        (pd.DataFrame([row("g1"), row("g1")]), "repeated"),
        (pd.DataFrame([row(area_km2=-1.0)]), "area_km2"),
    ],
)
def test_bad_counts_are_rejected(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        derive_workload(frame, WS, TS)


# ---- roll-ups ---------------------------------------------------------------------------

AREAS = pd.DataFrame(
    {
        # codes share no prefixes with their parents: roll-ups must follow parent_code
        "code": ["510100", "D1", "D2", "S1", "S2", "S3", "C1", "C2", "C3", "C4"],
        "level": ["city", "district", "district", "street", "street", "street",
                  "community", "community", "community", "community"],
        "parent_code": [None, "510100", "510100", "D1", "D1", "D2", "S1", "S2", "S3", "S3"],
        "name": ["City", "Dist 1", "Dist 2", "St 1", "St 2", "St 3", "Co 1", "Co 2", "Co 3",
                 "Co 4"],
    }
)


def small_workload() -> pd.DataFrame:
    return derive(
        [
            row("g1", "C1", floating_residents=1, floating_registered=1, co_managers_assigned=0),
            row("g2", "C1", floating_residents=1, floating_registered=0, co_managers_assigned=1),
            row("g3", "C2", floating_residents=600, floating_registered=540, houses=100,
                rental_houses=40, rental_registered=40, rental_key=40),
            row("g4", "C3", floating_residents=100, floating_registered=100),
        ]
    )


def test_rollup_needs_are_sum_of_grid_needs_and_rates_recomputed() -> None:
    w = small_workload()
    community = rollup(w, AREAS, "community").set_index("area_code")
    # two grids of one floating resident each need one co-manager each: 2, not ceil(2/500)
    assert community.loc["C1", "co_managers_needed"] == 2
    assert community.loc["C1", "co_managers_gap"] == 1
    assert community.loc["C1", "floating_registration_rate"] == pytest.approx(0.5)
    assert community.loc["C1", "name"] == "Co 1"
    assert community.loc["C1", "parent_code"] == "S1"
    district = rollup(w, AREAS, "district").set_index("area_code")
    # D1 = g1 + g2 + g3: 541 / 602 registered, not the mean of the grid rates
    assert district.loc["D1", "floating_registration_rate"] == pytest.approx(541 / 602)
    assert district.loc["D1", "grids"] == 3
    assert bool(district.loc["D1", "floating_registration_rate_ok"]) is False  # 89.9 %
    assert district.loc["D1", "co_managers_needed"] == 4
    city = rollup(w, AREAS, "city")
    assert len(city) == 1 and city["area_code"].item() == "510100"
    assert city["inspections_per_month"].item() == pytest.approx(40 * 52 / 12)


def test_rollup_tier_counts() -> None:
    w = small_workload()
    street = rollup(w, AREAS, "street").set_index("area_code")
    for code in street.index:
        grids = w[ancestors(w["community_code"], AREAS, "street").to_numpy() == code]
        for tier in ("strengthened", "key", "routine"):
            assert street.loc[code, f"grids_{tier}"] == (grids["tier"] == tier).sum()
    assert (street[["grids_strengthened", "grids_key", "grids_routine"]].sum(axis=1)
            == street["grids"]).all()


def test_rollup_grid_level_keeps_grids() -> None:
    w = small_workload()
    g = rollup(w, AREAS, "grid")
    assert g["area_code"].tolist() == ["g1", "g2", "g3", "g4"]
    assert g["parent_code"].tolist() == ["C1", "C1", "C2", "C3"]
    assert (g["grids"] == 1).all()


def test_rollup_include_empty_areas() -> None:
    w = small_workload()
    out = rollup(w, AREAS, "community", include_empty=True).set_index("area_code")
    assert out.loc["C4", "grids"] == 0
    assert out.loc["C4", "houses"] == 0
    assert np.isnan(out.loc["C4", "floating_registration_rate"])
    assert bool(out.loc["C4", "floating_registration_rate_ok"]) is True
    assert "C4" not in rollup(w, AREAS, "community").set_index("area_code").index


def test_city_without_city_row_uses_common_parent_or_city() -> None:
    w = small_workload()
    no_city = AREAS[AREAS["level"] != "city"]
    out = rollup(w, no_city, "city")
    assert out["area_code"].tolist() == ["510100"]
    orphan = no_city.assign(parent_code=no_city["parent_code"].where(
        no_city["level"] != "district", None))
    assert rollup(w, orphan, "city")["area_code"].tolist() == ["city"]


def test_rollup_bad_areas() -> None:
    w = small_workload()
    with pytest.raises(BadInput, match="C3 .* not in the areas"):
        rollup(w, AREAS[AREAS["code"] != "C3"], "street")
    broken = AREAS.copy()
    broken.loc[broken["code"] == "C1", "parent_code"] = None
    with pytest.raises(BadInput, match="no street above community C1"):
        rollup(w, broken, "street")
    cyclic = AREAS.copy()
    cyclic.loc[cyclic["code"] == "S1", "parent_code"] = "C1"
    with pytest.raises(BadInput, match="cycle"):
        rollup(w, cyclic, "district")
    with pytest.raises(BadInput, match="level"):
        rollup(w, AREAS, "province")  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="derive_workload"):
        rollup(w.drop(columns=["tier"]), AREAS, "city")


@st.composite
def city(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random hierarchy with random codes, and random grid counts in it."""
    labels = iter(draw(st.permutations(range(1000, 1200))))
    with_city_row = draw(st.booleans())
    areas: list[dict[str, Any]] = []
    if with_city_row:
        areas.append({"code": "CITY", "level": "city", "parent_code": None})
    communities: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        d = f"d{next(labels)}"
        areas.append({"code": d, "level": "district", "parent_code": "CITY"})
        for _ in range(draw(st.integers(1, 3))):
            s = f"s{next(labels)}"
            areas.append({"code": s, "level": "street", "parent_code": d})
            for _ in range(draw(st.integers(1, 3))):
                c = f"c{next(labels)}"
                areas.append({"code": c, "level": "community", "parent_code": s})
                communities.append(c)
    n = draw(st.integers(1, 25))
    big = st.integers(0, 2_000_000_000)
    rows = []
    for i in range(n):
        r = row(f"grid{i}", draw(st.sampled_from(communities)),
                area_km2=draw(st.floats(0, 50, allow_nan=False)))
        for col in SUMMED_INT_COLUMNS:
            r[col] = draw(big)
        for kpi in KPIS:
            r[kpi.numerator] = draw(st.integers(0, r[kpi.denominator]))
        rows.append(r)
    return pd.DataFrame(rows), pd.DataFrame(areas)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(city())
def test_rollup_sums_every_count_exactly_at_every_level(
    data: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    counts, areas = data
    w = derive_workload(counts, WS, TS)
    parent = dict(zip(areas["code"], areas["parent_code"], strict=True))
    level_of = dict(zip(areas["code"], areas["level"], strict=True))

    def up(code: str, level: str) -> str:
        while level_of.get(code) != level:
            code = parent[code]
        return code

    for level in LEVELS:
        out = rollup(w, areas, level)  # type: ignore[arg-type]
        for col in (*SUMMED_INT_COLUMNS, *DERIVED_INT_COLUMNS):
            assert out[col].dtype == np.int64, col
            assert int(out[col].sum()) == int(w[col].sum()), (level, col)
        assert int(out["grids"].sum()) == len(w)
        if level == "city":
            assert len(out) == 1
            total = out.iloc[0]
            for col in SUMMED_INT_COLUMNS:
                assert int(total[col]) == int(w[col].astype(object).sum()), col
            for kpi in KPIS:
                den = int(w[kpi.denominator].sum())
                if den:
                    assert total[kpi.name] == pytest.approx(int(w[kpi.numerator].sum()) / den)
        if level not in ("grid", "city"):
            expected = w.assign(k=[up(c, level) for c in w["community_code"]]).groupby("k")[
                list(SUMMED_INT_COLUMNS)].sum()
            got = out.set_index("area_code")[list(SUMMED_INT_COLUMNS)]
            pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index(),
                                          check_names=False)


# ---- staffing ---------------------------------------------------------------------------


def test_staffing_at_ratio_and_level() -> None:
    w = small_workload()
    s = staffing(w, 500, "street", AREAS).set_index("area_code")
    assert list(s.columns) == ["level", "name", "parent_code", "grids", "floating_residents",
                               "co_manager_ratio", "co_managers_needed",
                               "co_managers_assigned", "co_managers_gap"]
    assert s.loc["S1", "co_managers_needed"] == 2
    assert s.loc["S2", "co_managers_needed"] == 2  # 600 floating → 2 at 500:1
    s1000 = staffing(w, 1000, "street", AREAS).set_index("area_code")
    assert s1000.loc["S2", "co_managers_needed"] == 1
    assert s1000.loc["S2", "co_managers_gap"] == 1
    grid = staffing(w, 500, "grid", AREAS)
    assert grid["co_managers_needed"].tolist() == [1, 1, 2, 1]


@pytest.mark.parametrize("ratio", [0, -5, 2.5, True])
def test_staffing_bad_ratio(ratio: Any) -> None:
    with pytest.raises(BadInput, match="ratio"):
        staffing(small_workload(), ratio, "city", AREAS)


def test_empty_workload_rolls_up_to_nothing_or_empty_areas() -> None:
    empty = pd.DataFrame([row()]).iloc[:0]
    w = derive_workload(empty, WS, TS)
    assert w.empty and {"tier", "tier_reasons", "inspections_per_month"} <= set(w.columns)
    assert rollup(w, AREAS, "street").empty
    filled = rollup(w, AREAS, "street", include_empty=True)
    assert filled["area_code"].tolist() == ["S1", "S2", "S3"]
    assert (filled["grids"] == 0).all()
