"""Settings: one small pydantic-settings class per concern, passed in as arguments.

Nothing here is read at import time; build a settings object where it is needed
(``WorkloadSettings()`` reads ``GRIDMGR_WORKLOAD_*`` from the environment then).
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Kpi(NamedTuple):
    """A registration KPI: rate = numerator / denominator, checked against a target."""

    name: str
    numerator: str
    denominator: str
    target_field: str
    label: str


class WorkloadSettings(BaseSettings):
    """Inspection intervals, staffing ratios and registration-rate targets (env GRIDMGR_WORKLOAD_*).

    Intervals are in days between scheduled visits to one rental house: key houses
    (重点户) weekly by the area police, uneasy houses (不放心户) every half-month by the
    community committee, trusted houses (放心户) by the landlord — no scheduled visit
    unless ``trusted_interval_days`` is set, and then the police make them.
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMGR_WORKLOAD_", extra="ignore")

    KPIS: ClassVar[tuple[Kpi, ...]] = (
        Kpi(
            "floating_registration_rate",
            "floating_registered",
            "floating_residents",
            "floating_registration_target",
            "floating registration",
        ),
        Kpi(
            "rental_registration_rate",
            "rental_registered",
            "rental_houses",
            "rental_registration_target",
            "rental registration",
        ),
        Kpi(
            "consistency_rate",
            "consistent_persons",
            "registered_persons",
            "consistency_target",
            "person-household consistency",
        ),
    )

    key_interval_days: int = Field(default=7, ge=1, le=366, description="key rentals, police visit")
    uneasy_interval_days: int = Field(
        default=15, ge=1, le=366, description="uneasy rentals, community-committee visit"
    )
    trusted_interval_days: int | None = Field(
        default=None, ge=1, le=366, description="trusted rentals: None = landlord only"
    )
    co_manager_ratio: int = Field(default=500, ge=1, description="floating per co-manager")
    specialist_ratio: int = Field(default=1000, ge=1, description="floating per specialist")
    floating_registration_target: float = Field(default=0.90, gt=0, le=1)
    rental_registration_target: float = Field(default=0.95, gt=0, le=1)
    consistency_target: float = Field(default=0.70, gt=0, le=1)

    def kpi_targets(self) -> dict[str, float]:
        """Map each KPI name to its target rate."""
        return {k.name: float(getattr(self, k.target_field)) for k in self.KPIS}


class TierSettings(BaseSettings):
    """Thresholds of the grid-tier rule (env GRIDMGR_TIER_*); see docs/tiers.md.

    Each measure has a ``*_key`` threshold (reaching it makes the grid at least
    ``key``) and a ``*_strong`` threshold (reaching it makes the grid
    ``strengthened``). A threshold of None switches that trigger off. Shares and
    shortfalls are fractions (0.30 = 30 %), densities are per km².
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMGR_TIER_", extra="ignore")

    # 人 people
    floating_residents_key: float | None = Field(default=2000, ge=0)
    floating_residents_strong: float | None = Field(default=3500, ge=0)
    key_persons_key: float | None = Field(default=10, ge=0)
    key_persons_strong: float | None = Field(default=25, ge=0)
    key_person_share_key: float | None = Field(default=0.006, ge=0)
    key_person_share_strong: float | None = Field(default=0.016, ge=0)
    # 房 houses
    houses_key: float | None = Field(default=2500, ge=0)
    houses_strong: float | None = Field(default=4000, ge=0)
    rental_share_key: float | None = Field(default=0.25, ge=0)
    rental_share_strong: float | None = Field(default=0.40, ge=0)
    # 业 businesses
    businesses_key: float | None = Field(default=20, ge=0)
    businesses_strong: float | None = Field(default=40, ge=0)
    big_employers_key: float | None = Field(default=4, ge=0)
    big_employers_strong: float | None = Field(default=8, ge=0)
    business_density_key: float | None = Field(default=50, ge=0)
    business_density_strong: float | None = Field(default=150, ge=0)
    # registration shortfall below target, in fractions (0.05 = 5 percentage points)
    registration_shortfall_key: float | None = Field(default=0.05, ge=0)
    registration_shortfall_strong: float | None = Field(default=0.15, ge=0)

    # Shares and rates of tiny bases are noise: a grid of 3 houses with 1 let is not
    # "33 % rentals". Ratio triggers only count once their base reaches these sizes.
    min_residents_for_share: int = Field(default=300, ge=1)
    min_houses_for_share: int = Field(default=100, ge=1)
    min_businesses_for_density: int = Field(default=5, ge=1)
    min_base_for_rate: int = Field(default=50, ge=1)

    key_dimensions_for_strengthened: int = Field(
        default=2, ge=1, le=4, description="key in this many dimensions → strengthened"
    )

    @model_validator(mode="after")
    def _strong_not_below_key(self) -> TierSettings:
        for name in type(self).model_fields:
            if not name.endswith("_key"):
                continue
            stem = name.removesuffix("_key")
            key, strong = getattr(self, name), getattr(self, f"{stem}_strong", None)
            if key is not None and strong is not None and strong < key:
                raise ValueError(
                    f"{stem}_strong ({strong}) is below {stem}_key ({key}); "
                    "the strengthened threshold must be at least the key one"
                )
        return self
