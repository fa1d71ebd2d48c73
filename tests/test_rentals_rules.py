"""Rental-let rules: rooms that may not be let as living space, living area per tenant."""

from __future__ import annotations

import numpy as np
import pytest

from gridmgr.errors import BadInput
from gridmgr.rentals import RentalSettings, check_lets, room_types, violations_only


@pytest.mark.parametrize("kind", ["kitchen", "bathroom", "balcony", "basement",
                                  "厨房", "卫生间", "阳台", "地下储藏室", "Toilet"])
def test_forbidden_rooms_are_violations(kind: str) -> None:
    found = check_lets(tenants=[1], room_let=[0, 0], room_type=["bedroom", kind],
                       room_area_m2=[12.0, 6.0], room_label=["B1", "X"])
    assert found["rule"].tolist() == ["forbidden_room"]
    assert found["room"].tolist() == [1] and found["severity"].tolist() == ["violation"]
    assert "'X' may not be let as living space" in found["reason"].iloc[0]


def test_a_clean_let_has_no_findings() -> None:
    found = check_lets(tenants=[2], room_let=[0, 0], room_type=["bedroom", "客厅"],
                       room_area_m2=[12.0, 15.0])
    assert found.empty and list(found.columns) == ["let", "room", "rule", "severity", "reason"]


@pytest.mark.parametrize(("area", "bad"), [(10.0, False), (9.99, True), (10.01, False)])
def test_minimum_area_per_tenant_at_the_edge(area: float, bad: bool) -> None:
    found = check_lets(tenants=[2], room_let=[0], room_type=["bedroom"], room_area_m2=[area])
    assert ("area_per_tenant" in found["rule"].tolist()) is bad


def test_forbidden_rooms_do_not_count_as_living_area() -> None:
    # 8 m² bedroom + 6 m² balcony for two tenants: 4 m² each, and the balcony is let
    found = check_lets(tenants=[2], room_let=[0, 0], room_type=["bedroom", "balcony"],
                       room_area_m2=[8.0, 6.0])
    assert sorted(found["rule"]) == ["area_per_tenant", "forbidden_room"]
    assert "4.0 m² of living space per tenant" in " ".join(found["reason"])
    only_kitchen = check_lets(tenants=[1], room_let=[0], room_type=["kitchen"],
                              room_area_m2=[9.0])
    assert sorted(only_kitchen["rule"]) == ["area_per_tenant", "forbidden_room"]


def test_house_area_is_used_when_no_rooms_are_listed() -> None:
    found = check_lets(tenants=[3, 3, 0, 2], house_area_m2=[15.0, 14.0, 3.0, np.nan])
    assert found[["let", "rule"]].values.tolist() == [
        [1, "area_per_tenant"], [3, "area_unknown"]]
    assert found.loc[found["let"] == 3, "severity"].item() == "warning"
    assert violations_only(found)["let"].tolist() == [1]


def test_per_room_crowding_and_room_tenants_beyond_the_let() -> None:
    found = check_lets(tenants=[3], room_let=[0, 0], room_type=["bedroom", "bedroom"],
                       room_area_m2=[9.0, 30.0], room_tenants=[2, 2])
    rules = found.set_index("rule")
    assert rules.loc["room_area_per_tenant", "room"] == 0  # 4.5 m² each in room 0
    assert "rooms hold 4 tenants but the let has 3" in rules.loc["room_tenants_exceed_let",
                                                                  "reason"]


def test_unknown_room_area_is_a_warning_not_a_pass() -> None:
    found = check_lets(tenants=[1], room_let=[0], room_type=["bedroom"],
                       room_area_m2=[np.nan])
    assert found["rule"].tolist() == ["area_unknown"]
    assert violations_only(found).empty


def test_many_lets_at_once_keep_their_positions() -> None:
    n = 1000
    lets = np.repeat(np.arange(n), 2)
    kinds = np.tile(np.array(["bedroom", "study"], dtype=object), n)
    kinds[2 * 7 + 1] = "kitchen"
    area = np.full(2 * n, 10.0)
    tenants = np.full(n, 2)
    tenants[123] = 5  # 20 m² for 5
    found = check_lets(tenants=tenants, room_let=lets, room_type=kinds, room_area_m2=area)
    assert found[["let", "rule"]].values.tolist() == [[7, "forbidden_room"],
                                                     [123, "area_per_tenant"]]
    assert found.loc[0, "room"] == 15


def test_rules_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    s = RentalSettings(forbidden_room_types=("kitchen",), min_area_per_tenant_m2=8)
    found = check_lets(tenants=[2], room_let=[0, 0], room_type=["balcony", "bedroom"],
                       room_area_m2=[6.0, 9.0], settings=s)
    assert found["rule"].tolist() == ["area_per_tenant"]  # 15 m² for 2 < 8 m² each
    monkeypatch.setenv("GRIDMGR_RENTAL_MIN_AREA_PER_TENANT_M2", "3.5")
    assert RentalSettings().min_area_per_tenant_m2 == 3.5
    with pytest.raises(ValueError, match="unknown room types"):
        RentalSettings(forbidden_room_types=("garage",))


def test_bad_input_is_named() -> None:
    with pytest.raises(BadInput, match="unknown room type.*garage"):
        room_types(["bedroom", "garage"])
    with pytest.raises(BadInput, match="tenants must be a whole number"):
        check_lets(tenants=[1.5])
    with pytest.raises(BadInput, match="room_let must name lets 0..0"):
        check_lets(tenants=[1], room_let=[1], room_type=["bedroom"])
    with pytest.raises(BadInput, match="cannot be negative"):
        check_lets(tenants=[1], room_let=[0], room_type=["bedroom"], room_area_m2=[-1])
