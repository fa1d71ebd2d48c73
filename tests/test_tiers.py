from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pydantic
import pytest

from gridmgr.errors import BadInput
from gridmgr.settings import TierSettings, WorkloadSettings
from gridmgr.tiers import (
    RULES,
    assign_tiers,
    classify,
    rule_table,
    tier_measures,
    trigger_rates,
)
from gridmgr.workload import INPUT_COLUMNS

TARGETS = WorkloadSettings().kpi_targets()
# Fixed thresholds: the tests pin the rule, not the default calibration (docs/tiers.md).
S = TierSettings(
    floating_residents_key=1500, floating_residents_strong=3000,
    key_persons_key=3, key_persons_strong=10,
    key_person_share_key=0.002, key_person_share_strong=0.006,
    houses_key=2000, houses_strong=4000,
    rental_share_key=0.30, rental_share_strong=0.50,
    businesses_key=20, businesses_strong=60,
    big_employers_key=3, big_employers_strong=10,
    business_density_key=100, business_density_strong=400,
    registration_shortfall_key=0.05, registration_shortfall_strong=0.20,
    min_residents_for_share=300, min_houses_for_share=100,
    min_businesses_for_density=5, min_base_for_rate=50,
    key_dimensions_for_strengthened=2,
)


def th(value: float | None) -> float:
    assert value is not None
    return value


def with_(**update: Any) -> TierSettings:
    return TierSettings(**{**S.model_dump(), **update})


def row(**over: Any) -> dict[str, Any]:
    """A quiet, fully registered grid: nothing fires unless a test sets it."""
    base: dict[str, Any] = {c: 0 for c in INPUT_COLUMNS}
    base.update(grid_id="g", community_code="c", area_km2=1.0)
    base.update(over)
    for kpi in WorkloadSettings.KPIS:  # fully registered unless a test says otherwise
        if kpi.numerator not in over:
            base[kpi.numerator] = base[kpi.denominator]
    return base


def tiers_of(rows: list[dict[str, Any]], settings: TierSettings = S) -> pd.DataFrame:
    return assign_tiers(pd.DataFrame(rows), settings, TARGETS)


def test_quiet_grid_is_routine_with_reason() -> None:
    out = tiers_of([row()])
    assert out["tier"].tolist() == ["routine"]
    assert out["tier_reasons"].tolist() == ["routine: no trigger"]


# (field overrides at, just below, just above) for each count rule's key threshold
COUNT_EDGES = [
    ("floating_residents", S.floating_residents_key),
    ("key_persons", S.key_persons_key),
    ("houses", S.houses_key),
    ("businesses", S.businesses_key),
    ("big_employers", S.big_employers_key),
]


@pytest.mark.parametrize(("column", "threshold"), COUNT_EDGES)
def test_count_rule_key_edges(column: str, threshold: float) -> None:
    t = int(threshold)
    settings = S
    extra: dict[str, Any] = {}
    if column == "big_employers":
        # big employers are businesses too; switch the other business rules off
        settings = with_(businesses_key=None, businesses_strong=None,
                         business_density_key=None, business_density_strong=None)
        extra = {"businesses": t + 1}
    rows = [row(**{column: v}, **extra) for v in (t - 1, t, t + 1)]
    out = tiers_of(rows, settings)
    assert out["tier"].tolist() == ["routine", "key", "key"]
    assert out["tier_reasons"].iloc[1].startswith(f"key: {t} ")
    assert out["tier_reasons"].iloc[1].endswith(f"≥ {t}")
    assert out["tier_reasons"].iloc[2].startswith(f"key: {t + 1} ")


@pytest.mark.parametrize(
    ("column", "threshold"),
    [
        ("floating_residents", S.floating_residents_strong),
        ("key_persons", S.key_persons_strong),
        ("houses", S.houses_strong),
    ],
)
def test_count_rule_strong_edges(column: str, threshold: float) -> None:
    t = int(threshold)
    out = tiers_of([row(**{column: t - 1}), row(**{column: t}), row(**{column: t + 1})])
    assert out["tier"].tolist() == ["key", "strengthened", "strengthened"]
    assert out["tier_reasons"].iloc[1].endswith(f"≥ {t} (strong)")
    assert "(strong)" not in out["tier_reasons"].iloc[0]


def test_rental_share_edges_and_min_base() -> None:
    houses = S.min_houses_for_share  # exactly the minimum base: eligible
    k = int(round(th(S.rental_share_key) * houses))
    out = tiers_of(
        [
            row(houses=houses, rental_houses=k - 1),
            row(houses=houses, rental_houses=k),
            row(houses=houses, rental_houses=k + 1),
            row(houses=houses - 1, rental_houses=houses - 1),  # base too small: ignored
        ]
    )
    assert out["tier"].tolist() == ["routine", "key", "key", "routine"]
    assert out["tier_reasons"].iloc[1] == "key: 30 % rentals ≥ 30 %"
    assert out["tier_reasons"].iloc[2] == "key: 31 % rentals ≥ 30 %"
    decimal = tiers_of([row(houses=200, rental_houses=77)])
    assert decimal["tier_reasons"].item() == "key: 38.5 % rentals ≥ 30 %"


def test_ratio_exactly_at_threshold_despite_float_division() -> None:
    # 3/10 and 7/10 style ratios: the quotient can land an ulp off the threshold.
    settings = with_(rental_share_key=0.29, rental_share_strong=0.57, min_houses_for_share=1)
    out = tiers_of([row(houses=100, rental_houses=29), row(houses=100, rental_houses=57),
                    row(houses=100, rental_houses=28)], settings)
    assert out["tier"].tolist() == ["key", "strengthened", "routine"]


def test_key_person_share_edges() -> None:
    residents = 1000
    k = int(round(th(S.key_person_share_key) * residents))  # 2 ‰ → 2 persons (count rule at 3)
    assert k < th(S.key_persons_key)
    out = tiers_of(
        [
            row(residents=residents, key_persons=k - 1),
            row(residents=residents, key_persons=k),
            row(residents=S.min_residents_for_share - 1, key_persons=k),
        ]
    )
    assert out["tier"].tolist() == ["routine", "key", "routine"]
    assert out["tier_reasons"].iloc[1] == "key: 2 ‰ key persons ≥ 2 ‰"


def test_business_density_needs_min_businesses_and_area() -> None:
    n = S.min_businesses_for_density
    area = n / th(S.business_density_key)  # exactly at the key density
    out = tiers_of(
        [
            row(businesses=n, area_km2=area),
            row(businesses=n, area_km2=area * 1.01),
            row(businesses=n - 1, area_km2=(n - 1) / th(S.business_density_strong)),
            row(businesses=n, area_km2=0.0),
        ]
    )
    assert out["tier"].tolist() == ["key", "routine", "routine", "routine"]
    assert "100 businesses/km² ≥ 100" in out["tier_reasons"].iloc[0]


def test_registration_shortfall_edges() -> None:
    # target 90 %; key shortfall 5 pts → a rate of 85 % fires, 86 % does not.
    out = tiers_of(
        [
            row(floating_residents=100, floating_registered=85),
            row(floating_residents=100, floating_registered=86),
            row(floating_residents=100, floating_registered=90),
            row(floating_residents=100, floating_registered=70),  # 20 pts: strong
            row(floating_residents=S.min_base_for_rate - 1, floating_registered=0),
        ]
    )
    assert out["tier"].tolist() == ["key", "routine", "routine", "strengthened", "routine"]
    assert out["tier_reasons"].iloc[0] == (
        "key: 5 pts short of the floating-registration target ≥ 5 pts"
    )


def test_zero_denominators_never_fire() -> None:
    out = tiers_of([row(houses=0, rental_houses=0, residents=0, floating_residents=0)])
    assert out["tier"].tolist() == ["routine"]


def test_two_dimensions_make_strengthened_but_one_dimension_twice_does_not() -> None:
    houses_twice = row(houses=2500, rental_houses=1000)  # houses count + rental share
    two_dims = row(key_persons=4, houses=100, rental_houses=38)
    out = tiers_of([houses_twice, two_dims])
    assert out["tier"].tolist() == ["key", "strengthened"]
    assert out["tier_reasons"].iloc[0] == "key: 2500 houses ≥ 2000; 40 % rentals ≥ 30 %"
    assert out["tier_reasons"].iloc[1] == (
        "strengthened: 4 key persons ≥ 3; 38 % rentals ≥ 30 %; key in 2 dimensions ≥ 2"
    )


def test_reason_lists_every_trigger_in_rule_order() -> None:
    settings = with_(key_dimensions_for_strengthened=3)
    out = tiers_of([row(key_persons=4, houses=100, rental_houses=38)], settings)
    assert out["tier_reasons"].iloc[0] == "key: 4 key persons ≥ 3; 38 % rentals ≥ 30 %"


def test_strong_reason_shows_strong_threshold() -> None:
    out = tiers_of([row(key_persons=12, houses=100, rental_houses=38)],
                   with_(key_dimensions_for_strengthened=4))
    assert out["tier_reasons"].iloc[0] == (
        "strengthened: 12 key persons ≥ 10 (strong); 38 % rentals ≥ 30 %"
    )


def test_none_threshold_switches_trigger_off() -> None:
    settings = with_(houses_key=None, houses_strong=None)
    assert tiers_of([row(houses=10_000)], settings)["tier"].tolist() == ["routine"]
    only_strong = with_(houses_key=None)
    out = tiers_of([row(houses=3999), row(houses=4000)], only_strong)
    assert out["tier"].tolist() == ["routine", "strengthened"]


def test_strong_below_key_is_rejected() -> None:
    with pytest.raises(pydantic.ValidationError, match="houses_strong"):
        TierSettings(houses_key=100, houses_strong=50)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDMGR_TIER_HOUSES_KEY", "10")
    assert TierSettings().houses_key == 10
    assert tiers_of([row(houses=10)], TierSettings())["tier"].tolist() == ["key"]


def test_missing_columns_are_bad_input() -> None:
    with pytest.raises(BadInput, match="houses"):
        assign_tiers(pd.DataFrame({"grid_id": ["g"]}), S, TARGETS)


def test_vectorised_classify_matches_row_by_row() -> None:
    rng = np.random.default_rng(7)
    rows = []
    for i in range(300):
        houses = int(rng.integers(0, 2600))
        businesses = int(rng.integers(0, 25))
        floating = int(rng.integers(0, 2000))
        rows.append(
            row(
                grid_id=f"g{i}",
                houses=houses,
                rental_houses=int(rng.integers(0, houses // 3 + 2)),
                businesses=businesses,
                big_employers=int(rng.integers(0, min(businesses, 4) + 1)),
                residents=int(rng.integers(0, 4000)),
                key_persons=int(rng.integers(0, 4)),
                floating_residents=floating,
                floating_registered=int(rng.integers(int(floating * 0.84), floating + 1)),
                area_km2=float(rng.uniform(0.2, 3)),
            )
        )
    whole = tiers_of(rows)
    one_by_one = pd.concat([tiers_of([r]) for r in rows], ignore_index=True)
    assert whole["tier"].tolist() == one_by_one["tier"].tolist()
    assert whole["tier_reasons"].tolist() == one_by_one["tier_reasons"].tolist()
    assert set(whole["tier"]) == {"strengthened", "key", "routine"}
    prefixes = whole["tier_reasons"].str.split(":").str[0]
    assert (prefixes == whole["tier"]).all()


def test_classify_on_arrays() -> None:
    frame = pd.DataFrame([row(key_persons=3), row()])
    tier, reasons = classify(tier_measures(frame, S, TARGETS), S)
    assert tier.tolist() == ["key", "routine"]
    assert reasons[0] == "key: 3 key persons ≥ 3"


def test_rule_table_lists_every_rule() -> None:
    table = rule_table(S)
    assert table["rule"].tolist() == [r.name for r in RULES]
    assert table.loc[table["rule"] == "rental_share", "key"].item() == 0.30


def test_trigger_rates_count_grids_per_threshold() -> None:
    frame = pd.DataFrame([row(houses=2000), row(houses=4000), row(), row()])
    rates = trigger_rates(frame, S, TARGETS).set_index("rule")
    assert rates.loc["houses", "key"] == 0.5
    assert rates.loc["houses", "strong"] == 0.25
    assert rates.loc["key_persons", "key"] == 0.0
