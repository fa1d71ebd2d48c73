"""Grid tiers (加强型 / 重点型 / 常规型): a documented trigger rule with reasons.

Chengdu divided its 5,155 grids into strengthened, key and routine grids "by the
number and distribution of people, houses and businesses (人、房、业) and how hard they
are to manage". The rule here (docs/tiers.md has the table):

- every measure has a key threshold and a strong threshold (TierSettings);
- measures belong to four dimensions: people (人), houses (房), businesses (业) and
  registration (登记, shortfall of the KPIs below target);
- **strengthened** if any strong threshold is reached, or key thresholds are reached
  in at least ``key_dimensions_for_strengthened`` (default 2) different dimensions;
- **key** if any key threshold is reached; **routine** otherwise.

Counting dimensions, not triggers, keeps one cause from counting twice: a big estate
with many houses is one problem, not two because it also has many rentals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from gridmgr.errors import BadInput
from gridmgr.settings import TierSettings, WorkloadSettings

TIERS: tuple[str, ...] = ("strengthened", "key", "routine")
DIMENSIONS: tuple[str, ...] = ("people", "houses", "businesses", "registration")

Unit = Literal["count", "percent", "permille", "per_km2", "points"]

# A ratio is compared with this slack so that a value exactly at a threshold counts
# even when the division lands one ulp below it.
_EPS = 1e-9


@dataclass(frozen=True)
class Rule:
    """One tier trigger: a measure, its dimension, and how a reason reads."""

    name: str
    dimension: str
    label: str
    unit: Unit
    setting: str  # stem of the TierSettings fields <setting>_key / <setting>_strong


RULES: tuple[Rule, ...] = (
    Rule("floating_residents", "people", "floating residents", "count", "floating_residents"),
    Rule("key_persons", "people", "key persons", "count", "key_persons"),
    Rule("key_person_share", "people", "key persons", "permille", "key_person_share"),
    Rule("houses", "houses", "houses", "count", "houses"),
    Rule("rental_share", "houses", "rentals", "percent", "rental_share"),
    Rule("businesses", "businesses", "businesses", "count", "businesses"),
    Rule(
        "big_employers", "businesses", "big employers (≥ 10 workers)", "count", "big_employers"
    ),
    Rule("business_density", "businesses", "businesses/km²", "per_km2", "business_density"),
    Rule(
        "floating_registration_rate",
        "registration",
        "pts short of the floating-registration target",
        "points",
        "registration_shortfall",
    ),
    Rule(
        "rental_registration_rate",
        "registration",
        "pts short of the rental-registration target",
        "points",
        "registration_shortfall",
    ),
    Rule(
        "consistency_rate",
        "registration",
        "pts short of the consistency target",
        "points",
        "registration_shortfall",
    ),
)

NEEDED_COLUMNS: tuple[str, ...] = (
    "houses",
    "rental_houses",
    "rental_registered",
    "businesses",
    "big_employers",
    "residents",
    "floating_residents",
    "floating_registered",
    "registered_persons",
    "consistent_persons",
    "key_persons",
    "area_km2",
)

Measures = dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]]


def _col(frame: pd.DataFrame, name: str) -> npt.NDArray[np.float64]:
    return frame[name].to_numpy(dtype=float)


def _ratio(
    num: npt.NDArray[np.float64], den: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def tier_measures(
    counts: pd.DataFrame, settings: TierSettings, targets: Mapping[str, float]
) -> Measures:
    """Each rule's value per grid and whether it is eligible (base large enough).

    ``targets`` maps KPI names (WorkloadSettings.KPIS) to target rates; the
    registration measures are the shortfall target − rate, in fractions.
    """
    missing = [c for c in NEEDED_COLUMNS if c not in counts.columns]
    if missing:
        raise BadInput(f"counts lack column(s) {', '.join(missing)}; tiering needs them")
    every = np.ones(len(counts), dtype=bool)
    residents = _col(counts, "residents")
    houses = _col(counts, "houses")
    businesses = _col(counts, "businesses")
    area = _col(counts, "area_km2")
    measures: Measures = {
        "floating_residents": (_col(counts, "floating_residents"), every),
        "key_persons": (_col(counts, "key_persons"), every),
        "key_person_share": (
            _ratio(_col(counts, "key_persons"), residents),
            residents >= settings.min_residents_for_share,
        ),
        "houses": (houses, every),
        "rental_share": (
            _ratio(_col(counts, "rental_houses"), houses),
            houses >= settings.min_houses_for_share,
        ),
        "businesses": (businesses, every),
        "big_employers": (_col(counts, "big_employers"), every),
        "business_density": (
            _ratio(businesses, area),
            (businesses >= settings.min_businesses_for_density) & (area > 0),
        ),
    }
    for kpi in WorkloadSettings.KPIS:
        den = _col(counts, kpi.denominator)
        rate = _ratio(_col(counts, kpi.numerator), den)
        measures[kpi.name] = (targets[kpi.name] - rate, den >= settings.min_base_for_rate)
    return measures


_SCALE: dict[str, float] = {
    "count": 1.0, "percent": 100.0, "permille": 1000.0, "per_km2": 1.0, "points": 100.0
}
_SUFFIX: dict[str, str] = {
    "count": "", "percent": " %", "permille": " ‰", "per_km2": "", "points": ""
}


def _fmt_number(values: npt.NDArray[np.float64], unit: Unit) -> npt.NDArray[np.object_]:
    """Text of values in a unit (rounding is monotone: a value never shows below its threshold)."""
    shown = np.round(np.asarray(values, dtype=float) * _SCALE[unit], 1)
    whole = (np.abs(shown) < 1e15) & (shown == np.floor(shown))
    as_int = np.where(whole, shown, 0).astype(np.int64).astype(str)
    text: npt.NDArray[np.object_] = np.where(whole, as_int, shown.astype(str)).astype(object)
    if _SUFFIX[unit]:
        text = text + _SUFFIX[unit]
    return text


def classify(
    measures: Measures, settings: TierSettings
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_]]:
    """Tier and reasons per grid from rule measures (the pure, vectorised core).

    Returns two object arrays: tier names and reason texts such as
    "key: 38 % rentals ≥ 30 %; 4 key persons ≥ 3".
    """
    n = len(next(iter(measures.values()))[0]) if measures else 0
    strong_any = np.zeros(n, dtype=bool)
    dims_hit = {d: np.zeros(n, dtype=bool) for d in DIMENSIONS}
    text = np.full(n, "", dtype=object)
    for rule in RULES:
        if rule.name not in measures:
            continue
        values, eligible = measures[rule.name]
        key_t = getattr(settings, f"{rule.setting}_key")
        strong_t = getattr(settings, f"{rule.setting}_strong")
        ok = eligible & ~np.isnan(values)
        safe = np.where(ok, values, -np.inf)
        key_hit = ok & (safe >= key_t - _EPS) if key_t is not None else np.zeros(n, bool)
        strong_hit = (
            ok & (safe >= strong_t - _EPS) if strong_t is not None else np.zeros(n, bool)
        )
        fired = key_hit | strong_hit
        if not fired.any():
            continue
        strong_any |= strong_hit
        dims_hit[rule.dimension] |= fired
        # Format only the grids where the rule fired; the rest keep "".
        idx = np.flatnonzero(fired)
        strong_idx = strong_hit[idx]
        threshold = np.where(strong_idx, strong_t or 0.0, key_t or 0.0)
        unit_txt = " pts" if rule.unit == "points" else ""
        part = (
            _fmt_number(values[idx], rule.unit)
            + f" {rule.label} ≥ "
            + _fmt_number(threshold, rule.unit)
            + unit_txt
            + np.where(strong_idx, " (strong)", "").astype(object)
        )
        sep = np.where(text[idx] != "", "; ", "").astype(object)
        text[idx] = text[idx] + sep + part
    n_dims = np.sum([dims_hit[d] for d in DIMENSIONS], axis=0) if n else np.zeros(0, int)
    need = settings.key_dimensions_for_strengthened
    by_dims = (n_dims >= need) & ~strong_any
    strengthened = strong_any | (n_dims >= need)
    key = ~strengthened & (n_dims >= 1)
    tier = np.where(strengthened, "strengthened", np.where(key, "key", "routine")).astype(object)
    dims_txt = n_dims.astype(str).astype(object)
    suffix = np.where(by_dims, "; key in " + dims_txt + f" dimensions ≥ {need}", "")
    body = np.where(tier == "routine", "no trigger", text + suffix)
    reasons = tier + ": " + body
    return tier, reasons.astype(object)


def assign_tiers(
    counts: pd.DataFrame, settings: TierSettings, targets: Mapping[str, float]
) -> pd.DataFrame:
    """Frame of ``tier`` and ``tier_reasons`` for every grid, on the index of ``counts``."""
    tier, reasons = classify(tier_measures(counts, settings, targets), settings)
    return pd.DataFrame({"tier": tier, "tier_reasons": reasons}, index=counts.index)


def trigger_rates(
    counts: pd.DataFrame, settings: TierSettings, targets: Mapping[str, float]
) -> pd.DataFrame:
    """Share of grids where each rule reaches its key and its strong threshold (for calibration)."""
    measures = tier_measures(counts, settings, targets)
    rows = []
    for rule in RULES:
        values, eligible = measures[rule.name]
        ok = eligible & ~np.isnan(values)
        safe = np.where(ok, values, -np.inf)
        shares = {}
        for kind in ("key", "strong"):
            t = getattr(settings, f"{rule.setting}_{kind}")
            hit = ok & (safe >= t - _EPS) if t is not None else np.zeros(len(ok), bool)
            shares[kind] = float(hit.mean()) if len(hit) else 0.0
        rows.append({"rule": rule.name, "dimension": rule.dimension, **shares})
    return pd.DataFrame(rows)


def rule_table(settings: TierSettings) -> pd.DataFrame:
    """Tabulate the rule: rule, dimension, unit, key and strong thresholds, minimum base."""
    base = {
        "key_person_share": f"residents ≥ {settings.min_residents_for_share}",
        "rental_share": f"houses ≥ {settings.min_houses_for_share}",
        "business_density": f"businesses ≥ {settings.min_businesses_for_density}, area > 0",
    }
    rows = []
    for rule in RULES:
        rows.append(
            {
                "rule": rule.name,
                "dimension": rule.dimension,
                "unit": rule.unit,
                "key": getattr(settings, f"{rule.setting}_key"),
                "strong": getattr(settings, f"{rule.setting}_strong"),
                "min_base": base.get(
                    rule.name,
                    f"denominator ≥ {settings.min_base_for_rate}"
                    if rule.dimension == "registration"
                    else "",
                ),
            }
        )
    return pd.DataFrame(rows)
