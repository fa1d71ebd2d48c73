"""Grid workload: inspections, co-manager staffing, registration KPIs, tier, roll-ups.

Everything here is derived from per-grid counts that the store maintains
(``COUNT_COLUMNS``) plus ``co_managers_assigned`` and ``area_km2``; nothing is typed
in. The functions are pure and vectorised over grids.

- inspections per month: key rentals (重点户) weekly by the area police (52/12 a
  month), uneasy rentals (不放心户) every half-month by the community committee
  (24/12 = 2 a month), trusted rentals (放心户) by the landlord (0 police visits unless
  configured); see gridmgr.inspections;
- co-managers (协管员) needed: ceil(floating residents / 500), specialists (专管员)
  ceil(floating residents / 1000), both ratios configurable;
- KPIs with numerator and denominator: floating-resident registration (暂住人口登记率)
  ≥ 90 %, rental-house registration (出租房屋登记率) ≥ 95 %, person–household
  consistency (人户一致率) ≥ 70 %;
- tier and its reasons (gridmgr.tiers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from gridmgr.errors import BadInput
from gridmgr.inspections import inspection_intervals, visits_per_month
from gridmgr.settings import Kpi, TierSettings, WorkloadSettings
from gridmgr.tiers import TIERS, assign_tiers

#: Integer counts the store maintains per grid (same names and order as the
#: grid_count table).
COUNT_COLUMNS: tuple[str, ...] = (
    "houses",
    "rental_houses",
    "rental_key",
    "rental_uneasy",
    "rental_trusted",
    "rental_registered",
    "businesses",
    "workers",
    "big_employers",
    "residents",
    "floating_residents",
    "floating_registered",
    "registered_persons",
    "consistent_persons",
    "key_persons",
    "uneasy_persons",
)
KEY_COLUMNS: tuple[str, ...] = ("grid_id", "community_code")
#: Every integer column summed exactly by ``rollup`` (the counts plus staff assigned).
SUMMED_INT_COLUMNS: tuple[str, ...] = (*COUNT_COLUMNS, "co_managers_assigned")
INPUT_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *SUMMED_INT_COLUMNS, "area_km2")

#: Registration KPIs: name, numerator column, denominator column, target setting, label.
KPIS: tuple[Kpi, ...] = WorkloadSettings.KPIS

DERIVED_INT_COLUMNS: tuple[str, ...] = (
    "co_managers_needed",
    "specialists_needed",
    "co_managers_gap",
)
DERIVED_FLOAT_COLUMNS: tuple[str, ...] = (
    "police_inspections_per_month",
    "committee_inspections_per_month",
    "inspections_per_month",
)
LEVELS: tuple[str, ...] = ("grid", "community", "street", "district", "city")
Level = Literal["grid", "community", "street", "district", "city"]

# A rate exactly at its target is on target even if the division lands one ulp below.
_EPS = 1e-9


def _first(values: pd.Series, limit: int = 5) -> str:
    shown = [str(v) for v in values.iloc[:limit]]
    more = len(values) - limit
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def validate_counts(counts: pd.DataFrame) -> pd.DataFrame:
    """Check a per-grid counts frame and return a copy with int64 counts and float area.

    Raises BadInput for missing columns, duplicate grid ids, missing, negative or
    fractional counts, and KPI numerators above their denominators.
    """
    missing = [c for c in INPUT_COLUMNS if c not in counts.columns]
    if missing:
        raise BadInput(
            f"workload counts lack column(s) {', '.join(missing)}; "
            f"give one row per grid with {', '.join(INPUT_COLUMNS)}"
        )
    dup = counts["grid_id"][counts["grid_id"].duplicated()]
    if len(dup):
        raise BadInput(f"grid_id repeated in workload counts: {_first(dup)}; one row per grid")
    out = counts.copy()
    for col in SUMMED_INT_COLUMNS:
        raw = out[col].to_numpy()
        if raw.dtype.kind in "iu":  # the store's path: only the sign needs checking
            bad = np.asarray(raw < 0)
            values = raw
        else:
            coerced = pd.to_numeric(out[col], errors="coerce").to_numpy(dtype=float)
            bad = np.isnan(coerced) | (coerced < 0) | (coerced != np.floor(coerced))
            values = np.where(bad, 0, coerced)
        if bad.any():
            raise BadInput(
                f"{col} must be a whole number ≥ 0; bad for grid(s) "
                f"{_first(out.loc[bad, 'grid_id'])}"
            )
        out[col] = values.astype(np.int64)
    area = pd.to_numeric(out["area_km2"], errors="coerce")
    if (area.isna() | (area < 0)).any():
        bad = area.isna() | (area < 0)
        raise BadInput(
            f"area_km2 must be a number ≥ 0; bad for grid(s) {_first(out.loc[bad, 'grid_id'])}"
        )
    out["area_km2"] = area.astype(float)
    for kpi in KPIS:
        over = out[kpi.numerator] > out[kpi.denominator]
        if over.any():
            raise BadInput(
                f"{kpi.numerator} exceeds {kpi.denominator} for grid(s) "
                f"{_first(out.loc[over, 'grid_id'])}; recompute the counts"
            )
    return out


def kpi_rates(
    numerator: npt.ArrayLike, denominator: npt.ArrayLike, target: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Rate and on-target flag; a zero denominator gives rate NaN and ok True."""
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rate = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    ok = np.isnan(rate) | (rate >= target - _EPS)
    return rate, ok


def ceil_div(values: npt.ArrayLike, ratio: int) -> npt.NDArray[np.int64]:
    """Whole staff needed for ``values`` at ``ratio`` per person (0 for 0), exactly."""
    if ratio < 1:
        raise BadInput(f"staffing ratio {ratio} must be a whole number ≥ 1, e.g. 500")
    v = np.asarray(values, dtype=np.int64)
    return np.asarray(-(-v // ratio), dtype=np.int64)


def derive_workload(
    counts: pd.DataFrame, settings: WorkloadSettings, tiers: TierSettings
) -> pd.DataFrame:
    """Add inspections, staffing, KPI and tier columns to per-grid counts (one row per grid).

    Added columns: police_/committee_/inspections_per_month, co_managers_needed,
    specialists_needed, co_managers_gap (needed − assigned, > 0 = short), for each KPI
    ``<kpi>`` (rate, NaN when the denominator is 0), ``<kpi>_target`` and ``<kpi>_ok``
    (True when on target or undefined), tier and tier_reasons. Numerators and
    denominators are the count columns named in ``KPIS``.
    """
    out = validate_counts(counts)
    intervals = inspection_intervals(settings)
    per_month = {cls: visits_per_month(days) for cls, days in intervals.items()}
    key = out["rental_key"].to_numpy(dtype=float)
    uneasy = out["rental_uneasy"].to_numpy(dtype=float)
    trusted = out["rental_trusted"].to_numpy(dtype=float)
    # Trusted rentals are the landlord's; visits only if an interval is configured,
    # and then by the police.
    police = key * per_month["key"] + trusted * per_month["trusted"]
    committee = uneasy * per_month["uneasy"]
    out["police_inspections_per_month"] = police
    out["committee_inspections_per_month"] = committee
    out["inspections_per_month"] = police + committee

    floating = out["floating_residents"].to_numpy()
    out["co_managers_needed"] = ceil_div(floating, settings.co_manager_ratio)
    out["specialists_needed"] = ceil_div(floating, settings.specialist_ratio)
    out["co_managers_gap"] = out["co_managers_needed"] - out["co_managers_assigned"]

    targets = settings.kpi_targets()
    for kpi in KPIS:
        rate, ok = kpi_rates(out[kpi.numerator], out[kpi.denominator], targets[kpi.name])
        out[kpi.name] = rate
        out[f"{kpi.name}_target"] = targets[kpi.name]
        out[f"{kpi.name}_ok"] = ok

    tiered = assign_tiers(out, tiers, targets)
    out["tier"] = tiered["tier"].astype(object)
    out["tier_reasons"] = tiered["tier_reasons"].astype(object)
    return out


AreaTables = tuple[dict[str, str], dict[str, str | None]]


def _area_tables(areas: pd.DataFrame) -> AreaTables:
    """Level and parent of every area code, checked (codes unique, columns present)."""
    missing = [c for c in ("code", "level", "parent_code") if c not in areas.columns]
    if missing:
        raise BadInput(f"areas lack column(s) {', '.join(missing)}; need code, level, parent_code")
    codes = areas["code"].astype(str)
    dup = codes[codes.duplicated()]
    if len(dup):
        raise BadInput(f"area code repeated: {_first(dup)}; each area once")
    code_list = codes.tolist()
    level_of = dict(zip(code_list, areas["level"].astype(str).tolist(), strict=True))
    parents = areas["parent_code"].astype(object).where(areas["parent_code"].notna(), None)
    parent_of: dict[str, str | None] = {
        c: (None if p is None else str(p))
        for c, p in zip(code_list, parents.tolist(), strict=True)
    }
    return level_of, parent_of


def ancestors(
    community_codes: pd.Series | npt.ArrayLike, areas: pd.DataFrame, level: Level
) -> pd.Series:
    """Code of the area at ``level`` above each community, following ``parent_code``.

    At city level: the area of level 'city' if the areas hold one, else the parent
    code of the top area (the common parent of the districts), else "city".
    """
    if level not in LEVELS or level == "grid":
        raise BadInput(f"level {level!r} is unknown here; use community, street, district or city")
    return _ancestors(community_codes, _area_tables(areas), level)


def _ancestors(
    community_codes: pd.Series | npt.ArrayLike, tables: AreaTables, level: str
) -> pd.Series:
    level_of, parent_of = tables
    comm = pd.Series(community_codes).astype(str)
    memo: dict[str, str] = {}
    for start in comm.unique().tolist():  # a loop per community, not per house
        if start not in level_of:
            grids = comm[comm == start]
            raise BadInput(
                f"community_code {start} ({len(grids)} grid(s)) is not in the areas table; "
                "load the admin areas first"
            )
        memo[start] = _walk_up(start, level, level_of, parent_of)
    return comm.map(memo)


def _walk_up(
    start: str, level: str, level_of: Mapping[str, str], parent_of: Mapping[str, str | None]
) -> str:
    code: str | None = start
    seen: list[str] = []
    while code is not None:
        if code not in level_of:
            if level == "city":
                return code  # a parent outside the table: the city's own code
            break
        if level_of[code] == level:
            return code
        if code in seen:
            raise BadInput(f"areas form a cycle through {code}; fix parent_code")
        seen.append(code)
        parent = parent_of[code]
        if parent is None and level == "city":
            return "city"
        code = parent
    chain = " → ".join(seen)
    raise BadInput(
        f"no {level} above community {start} (chain {chain}); check level and parent_code"
    )


def _rollup_columns(workload: pd.DataFrame) -> tuple[list[str], list[str]]:
    ints = [c for c in (*SUMMED_INT_COLUMNS, *DERIVED_INT_COLUMNS) if c in workload.columns]
    floats = [c for c in ("area_km2", *DERIVED_FLOAT_COLUMNS) if c in workload.columns]
    return ints, floats


def _check_workload(workload: pd.DataFrame) -> None:
    need = [*INPUT_COLUMNS, *DERIVED_INT_COLUMNS, *DERIVED_FLOAT_COLUMNS, "tier"]
    need += [f"{k.name}_target" for k in KPIS]
    missing = [c for c in need if c not in workload.columns]
    if missing:
        raise BadInput(
            f"workload lacks column(s) {', '.join(missing)}; pass the frame derive_workload built"
        )


def rollup(
    workload: pd.DataFrame,
    areas: pd.DataFrame,
    level: Level,
    *,
    include_empty: bool = False,
) -> pd.DataFrame:
    """Workload summed at a level of the hierarchy, one row per area (key ``area_code``).

    Every integer count is summed exactly; rates are recomputed from the summed
    numerators and denominators (never averaged) against the grids' targets;
    co_managers_needed and specialists_needed at area level are the SUM OF GRID NEEDS
    (co-managers work grid by grid), not ceil(area floating / ratio); grids,
    grids_strengthened, grids_key, grids_routine count the grids by tier. The area
    chain comes from ``areas`` (code, level, parent_code), never from code prefixes.
    At level 'grid' the rows are the grids themselves (area_code = grid_id). With
    ``include_empty`` areas of the level without grids appear with zeros.
    """
    if level not in LEVELS:
        raise BadInput(f"level {level!r} is unknown; use one of {', '.join(LEVELS)}")
    _check_workload(workload)
    ints, floats = _rollup_columns(workload)
    tier_flags = pd.DataFrame(
        {f"grids_{t}": (workload["tier"] == t).astype(np.int64) for t in TIERS},
        index=workload.index,
    )
    targets = {
        k.name: float(workload[f"{k.name}_target"].iloc[0]) if len(workload) else np.nan
        for k in KPIS
    }
    if level == "grid":
        out = workload.copy()
        out.insert(0, "area_code", out["grid_id"].astype(str))
        out.insert(1, "level", "grid")
        out.insert(2, "parent_code", out["community_code"].astype(str))
        out.insert(3, "grids", np.int64(1))
        for col in tier_flags.columns:
            out[col] = tier_flags[col]
        return out.reset_index(drop=True)

    tables = _area_tables(areas)
    key = _ancestors(workload["community_code"], tables, level).to_numpy()
    parts = pd.concat(
        [workload[ints].astype(np.int64), workload[floats].astype(float), tier_flags], axis=1
    )
    parts["grids"] = np.int64(1)
    parts["area_code"] = key
    summed = parts.groupby("area_code", sort=True).sum()
    if include_empty and level != "city":
        codes = areas.loc[areas["level"].astype(str) == level, "code"].astype(str)
        summed = summed.reindex(sorted(set(summed.index) | set(codes)), fill_value=0)
    int_cols = [*ints, *tier_flags.columns, "grids"]
    summed[int_cols] = summed[int_cols].astype(np.int64)
    summed = summed.reset_index()

    parent_of = tables[1]
    names = (
        dict(zip(areas["code"].astype(str).tolist(), areas["name"].tolist(), strict=True))
        if "name" in areas.columns
        else {}
    )
    lead = pd.DataFrame(
        {
            "area_code": summed["area_code"],
            "level": level,
            "name": summed["area_code"].map(names),
            "parent_code": [parent_of.get(c) for c in summed["area_code"].tolist()],
        }
    )
    body = summed[["grids", *tier_flags.columns, *ints, *floats]]
    out = pd.concat([lead, body], axis=1)
    if "co_managers_gap" in out.columns:
        out["co_managers_gap"] = out["co_managers_needed"] - out["co_managers_assigned"]
    for kpi in KPIS:
        rate, ok = kpi_rates(out[kpi.numerator], out[kpi.denominator], targets[kpi.name])
        out[kpi.name] = rate
        out[f"{kpi.name}_target"] = targets[kpi.name]
        out[f"{kpi.name}_ok"] = ok
    return out


STAFFING_COLUMNS: tuple[str, ...] = (
    "area_code",
    "level",
    "name",
    "parent_code",
    "grids",
    "floating_residents",
    "co_manager_ratio",
    "co_managers_needed",
    "co_managers_assigned",
    "co_managers_gap",
)


def staffing(
    workload: pd.DataFrame,
    ratio: int,
    level: Level,
    areas: pd.DataFrame,
) -> pd.DataFrame:
    """Co-managers needed at ``ratio`` floating residents each, assigned and gap, per area.

    Needs are computed per grid (ceil(floating / ratio)) and summed upwards; a positive
    gap means too few co-managers assigned.
    """
    if isinstance(ratio, bool) or not isinstance(ratio, int | np.integer) or ratio < 1:
        raise BadInput(f"ratio {ratio!r} must be a whole number ≥ 1, e.g. 500")
    _check_workload(workload)
    grids = workload.copy()
    grids["co_managers_needed"] = ceil_div(grids["floating_residents"].to_numpy(), int(ratio))
    grids["co_managers_gap"] = grids["co_managers_needed"] - grids["co_managers_assigned"]
    rolled = rollup(grids, areas, level)
    rolled["co_manager_ratio"] = int(ratio)
    if "name" not in rolled.columns:
        rolled["name"] = None
    return rolled[list(STAFFING_COLUMNS)]
