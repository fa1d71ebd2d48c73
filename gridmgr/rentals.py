"""Rental-let rules (出租房屋): which rooms may be let as living space, and living area per tenant.

Field rules (DESIGN.md §1, field report 004, Kunming): kitchens, bathrooms, balconies and
basement storerooms may not be let for anyone to live in (厨房、卫生间、阳台和地下储藏室
不得出租供他人居住); the living area let per tenant may not fall below the city's
standard (人均租住面积不得低于标准). Both are settings. A let is a house with its tenant
count and, optionally, the rooms let (type, area, tenants). Violations are returned as
rows to be listed, never dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridmgr.errors import BadInput

ROOM_TYPES = ("bedroom", "living_room", "study", "kitchen", "bathroom", "balcony",
              "basement", "storage", "other")
# Names a clerk may type, in English or Chinese, for each room type.
ROOM_ALIASES: dict[str, str] = {
    **{t: t for t in ROOM_TYPES},
    "living": "living_room", "livingroom": "living_room", "lounge": "living_room",
    "toilet": "bathroom", "wc": "bathroom", "washroom": "bathroom",
    "cellar": "basement", "basement_storage": "basement", "store": "storage",
    "卧室": "bedroom", "主卧": "bedroom", "次卧": "bedroom", "房间": "bedroom",
    "客厅": "living_room", "起居室": "living_room", "书房": "study",
    "厨房": "kitchen", "卫生间": "bathroom", "厕所": "bathroom", "浴室": "bathroom",
    "洗手间": "bathroom", "阳台": "balcony", "地下室": "basement",
    "地下储藏室": "basement", "储藏室": "storage", "其他": "other",
}
RULES = ("forbidden_room", "area_per_tenant", "room_area_per_tenant",
         "room_tenants_exceed_let", "area_unknown")
VIOLATION_COLUMNS = ["let", "room", "rule", "severity", "reason"]


class RentalSettings(BaseSettings):
    """What may be let as living space and how much room each tenant needs (env GRIDMGR_RENTAL_*).

    The field reports name the rooms but not the area figure ("the city's standard");
    5 m² per tenant is the figure several large cities use. Set it to the local standard.
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMGR_RENTAL_", extra="ignore")

    forbidden_room_types: tuple[str, ...] = Field(
        default=("kitchen", "bathroom", "balcony", "basement"),
        description="rooms that may not be let as living space")
    min_area_per_tenant_m2: float = Field(default=5.0, ge=0, le=200,
                                          description="minimum living area per tenant")

    @field_validator("forbidden_room_types")
    @classmethod
    def _known_types(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [t for t in v if t not in ROOM_TYPES]
        if unknown:
            raise ValueError(f"unknown room types {unknown}; use {', '.join(ROOM_TYPES)}")
        return v


def room_types(values: Any) -> npt.NDArray[np.object_]:
    """Canonical room types for names typed in English or Chinese; BadInput naming unknown ones."""
    raw = pd.Series(np.asarray(values, dtype=object).reshape(-1)).fillna("").astype(str)
    key = raw.str.strip().str.lower().str.replace(" ", "_").str.replace("-", "_")
    canon = key.map(ROOM_ALIASES)
    bad = canon.isna()
    if bad.any():
        shown = ", ".join(sorted(set(raw[bad].tolist()))[:5])
        raise BadInput(f"unknown room type(s) {shown}; use one of {', '.join(ROOM_TYPES)} "
                       "(or 卧室, 客厅, 厨房, 卫生间, 阳台, 地下室 …)")
    return canon.to_numpy(dtype=object)


def _num(values: Any, n: int) -> npt.NDArray[np.float64]:
    if values is None:
        return np.full(n, np.nan)
    return pd.to_numeric(pd.Series(np.asarray(values, dtype=object).reshape(-1)),
                         errors="coerce").to_numpy(dtype=float)


def check_lets(*, tenants: Any, house_area_m2: Any = None, room_let: Any = (),
               room_type: Any = (), room_area_m2: Any = None, room_tenants: Any = None,
               room_label: Any = None,
               settings: RentalSettings | None = None) -> pd.DataFrame:
    """Every violation of the rental rules in a batch of lets, one row each.

    Lets are positions 0..n-1 (``tenants``, ``house_area_m2``: the house's building area,
    used when no rooms are listed). Rooms are rows with ``room_let`` (the let they belong
    to), ``room_type`` (canonical or an alias), ``room_area_m2`` and ``room_tenants``
    (NaN when not known). Returns columns let, room (-1 for the whole let), rule,
    severity (``violation`` or ``warning``) and reason; empty when every let is fine.

    Living area per tenant counts the rooms that may be lived in; with no rooms listed it
    is the house's area. A forbidden room listed in a let is a violation whatever its
    area. An area that cannot be known is a warning, not a pass.
    """
    s = settings or RentalSettings()
    n_tenants = _num(np.atleast_1d(np.asarray(tenants, dtype=object)), 0)
    n = n_tenants.size
    if (np.isnan(n_tenants) | (n_tenants < 0) | (n_tenants != np.floor(n_tenants))).any():
        raise BadInput("tenants must be a whole number ≥ 0 for every let")
    house_area = _num(house_area_m2, n) if house_area_m2 is not None else np.full(n, np.nan)
    let = np.asarray(room_let, dtype=np.int64).reshape(-1)
    m = let.size
    if m and ((let < 0) | (let >= n)).any():
        raise BadInput(f"room_let must name lets 0..{n - 1}")
    types = room_types(room_type) if m else np.empty(0, dtype=object)
    if types.size != m:
        raise BadInput(f"{m} rooms but {types.size} room types; give one type per room")
    area = _num(room_area_m2, m) if room_area_m2 is not None else np.full(m, np.nan)
    r_ten = _num(room_tenants, m) if room_tenants is not None else np.full(m, np.nan)
    if (area < 0).any() or (r_ten < 0).any():
        raise BadInput("room areas and room tenants cannot be negative")
    labels = (pd.Series(np.asarray(room_label, dtype=object).reshape(-1)).fillna("")
              .astype(str).to_numpy(dtype=object) if room_label is not None
              else np.full(m, "", dtype=object))
    named = np.where(labels != "", np.char.add(np.char.add(" '", labels.astype(str)), "'"),
                     "").astype(str)
    minimum = s.min_area_per_tenant_m2
    out: list[pd.DataFrame] = []

    def add(mask_lets: npt.NDArray[np.int64], rooms: npt.NDArray[np.int64], rule: str,
            severity: str, reason: npt.ArrayLike) -> None:
        if len(mask_lets):
            out.append(pd.DataFrame({"let": mask_lets, "room": rooms, "rule": rule,
                                     "severity": severity,
                                     "reason": np.asarray(reason, dtype=object)}))

    forbidden = np.isin(types, s.forbidden_room_types)
    idx = np.flatnonzero(forbidden)
    add(let[idx], idx, "forbidden_room", "violation",
        np.char.add(np.char.add(types[idx].astype(str), named[idx]),
                    " may not be let as living space"))

    living = ~forbidden
    has_rooms = np.bincount(let, minlength=n) > 0
    living_area = np.bincount(let[living], weights=np.nan_to_num(area[living]), minlength=n)
    unknown_room_area = np.bincount(let[living], weights=np.isnan(area[living]).astype(float),
                                    minlength=n) > 0
    no_living_room = has_rooms & (np.bincount(let[living], minlength=n) == 0)
    area_let = np.where(has_rooms, np.where(unknown_room_area, np.nan, living_area), house_area)
    occupied = n_tenants > 0
    unknown = occupied & np.isnan(area_let) & ~no_living_room
    i = np.flatnonzero(unknown)
    add(i, np.full(i.size, -1), "area_unknown", "warning",
        ["living area unknown (give room areas or the house's area_m2); area per tenant "
         "not checked"] * i.size)
    per = np.where(occupied, area_let / np.where(occupied, n_tenants, 1), np.inf)
    small = occupied & (no_living_room | (~np.isnan(per) & (per < minimum)))
    i = np.flatnonzero(small)
    add(i, np.full(i.size, -1), "area_per_tenant", "violation",
        [f"{0.0 if no_living_room[k] else per[k]:.1f} m² of living space per tenant for "
         f"{int(n_tenants[k])} tenant(s) is below the minimum {minimum:g} m²" for k in i])

    told = ~np.isnan(r_ten) & (r_ten > 0) & living
    room_per = np.where(told, area / np.where(told, r_ten, 1), np.inf)
    cramped = told & ~np.isnan(room_per) & (room_per < minimum)
    i = np.flatnonzero(cramped)
    add(let[i], i, "room_area_per_tenant", "violation",
        [f"{types[k]}{named[k]}: {room_per[k]:.1f} m² per tenant for {int(r_ten[k])} "
         f"tenant(s) is below the minimum {minimum:g} m²" for k in i])

    in_rooms = np.bincount(let, weights=np.nan_to_num(r_ten), minlength=n)
    over = has_rooms & (in_rooms > n_tenants)
    i = np.flatnonzero(over)
    add(i, np.full(i.size, -1), "room_tenants_exceed_let", "violation",
        [f"the rooms hold {int(in_rooms[k])} tenants but the let has {int(n_tenants[k])}"
         for k in i])
    if not out:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            VIOLATION_COLUMNS, ("int64", "int64", "object", "object", "object"), strict=True)})
    res = pd.concat(out, ignore_index=True)
    res["let"] = res["let"].astype(np.int64)
    res["room"] = res["room"].astype(np.int64)
    return res.sort_values(["let", "room", "rule"], kind="stable").reset_index(drop=True)


def violations_only(found: pd.DataFrame) -> pd.DataFrame:
    """The rows of `check_lets` output that break a rule (warnings left out)."""
    return found[found["severity"] == "violation"].reset_index(drop=True)
