"""Response models of the HTTP API: the OpenAPI schema and what the tests hold responses to.

Hot routes build plain dicts with exactly these fields and serialise them with orjson
(``api.deps.JSONBytes``); the test suite validates every response against these models
and schemathesis checks them against the published OpenAPI document.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Position = list[float]


def as_utc(value: dt.datetime) -> dt.datetime:
    """The same instant as a timezone-aware UTC datetime (the store keeps naive UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


UtcDateTime = Annotated[dt.datetime, AfterValidator(as_utc)]
"""A datetime sent as RFC 3339 in UTC (``...Z``); naive values from the store are UTC."""


def fields_of(model: type[BaseModel], row: dict[str, Any],
              first: tuple[str, ...] = ()) -> dict[str, Any]:
    """The items of ``row`` that ``model`` declares (extra columns dropped), ``first`` first."""
    keys = [*first, *(k for k in model.model_fields if k not in first)]
    return {k: row[k] for k in keys if k in row}


ROW_KEYS = ("area_code", "level", "name", "parent_code", "grid_id", "community_code", "grids",
            "tier", "tier_reasons")
"""Identity columns shown first in workload rows."""


class ErrorOut(BaseModel):
    """Every error: a machine-readable code and a sentence saying what to fix."""

    error: str = Field(examples=["invalid_house_code"])
    detail: str = Field(examples=["house code '5101040010020012010302' is not valid: "
                                  "23 characters expected, got 22"])
    problems: list[dict[str, Any]] | None = Field(
        default=None, description=(
            "what exactly is wrong, one entry each: an invalid parameter ({loc, msg, type}), "
            "a bad row of a file ({row, column, reason}) or a broken plan rule "
            "({rule, grids, detail, area_m2, where, community}); the first 100 at most"))
    problems_total: int | None = Field(
        default=None, description="how many problems there are in all, listed or not")


# --------------------------------------------------------------------------- geometry


class PointGeometry(BaseModel):
    """A GeoJSON Point in WGS84 longitude, latitude."""

    type: Literal["Point"] = "Point"
    coordinates: Position = Field(min_length=2, max_length=3)


class MultiPolygonGeometry(BaseModel):
    """A GeoJSON MultiPolygon in WGS84."""

    type: Literal["MultiPolygon"] = "MultiPolygon"
    coordinates: list[list[list[Position]]]


class PolygonGeometry(BaseModel):
    """A GeoJSON Polygon in WGS84."""

    type: Literal["Polygon"] = "Polygon"
    coordinates: list[list[Position]]


AreaGeometry = MultiPolygonGeometry | PolygonGeometry


# --------------------------------------------------------------------------- houses


class GridRef(BaseModel):
    """The grid that holds a house in the adopted plan."""

    grid_id: str
    community_code: str
    assigned_tier: str | None = Field(description="tier as loaded with the grid, if any")


class HouseOut(BaseModel):
    """A house (房屋): its code, address, location and grid."""

    house_code: str = Field(description="canonical 23-character house code")
    display_code: str = Field(description="hyphenated form, e.g. 510104001002-0012-01-0302-2")
    district_code: str
    street_code: str
    community_code: str | None = Field(description="community the house lies in")
    address: str | None
    building: int | None
    unit: int | None
    room: int | None
    area_m2: float | None
    use: str | None
    outside_areas: bool = Field(description="True when the point lies outside every area")
    location: PointGeometry
    grid: GridRef | None = Field(description="null when no grid of the adopted plan holds it")


class HouseNearOut(BaseModel):
    """A house near a point, with its distance."""

    house_code: str
    address: str | None
    community_code: str | None
    grid_id: str | None
    location: PointGeometry
    distance_m: float = Field(ge=0, description="geodesic distance on WGS84, metres")


class HousesNearOut(BaseModel):
    """Houses within ``radius_m`` of a point, nearest first."""

    lon: float
    lat: float
    radius_m: float
    count: int
    houses: list[HouseNearOut]


class ResidentOut(BaseModel):
    """A person living at a house now; ID and phone masked unless the role may see them."""

    person_id: int
    name: str
    sex: str
    birth_date: dt.date | None = Field(description="null when identifiers are masked")
    id_number: str
    phone: str | None
    hukou_code: str = Field(description="registered-residence (户籍) area code")
    floating: bool = Field(description="floating resident (流动人口)")
    person_class: str = Field(description="key | uneasy | trusted")
    arrived_on: dt.date
    registered_on: dt.date | None


class ResidentsOut(BaseModel):
    """Who lives at a house now (以房找人)."""

    house: HouseOut
    masked: bool = Field(description="True when ID and phone numbers are masked")
    count: int
    residents: list[ResidentOut]


class PersonOut(BaseModel):
    """A person; identifiers masked unless the role may see them."""

    person_id: int
    name: str
    sex: str
    birth_date: dt.date | None
    id_number: str
    phone: str | None
    hukou_code: str
    floating: bool
    person_class: str
    registered_on: dt.date | None


class ResidenceOut(BaseModel):
    """A stay of a person at a house."""

    house_code: str | None
    address: str | None
    community_code: str | None
    grid_id: str | None
    location: PointGeometry
    arrived_on: dt.date
    left_on: dt.date | None
    current: bool


class PersonHousesOut(BaseModel):
    """Where a person lives and has lived, newest first."""

    person: PersonOut
    masked: bool
    count: int
    houses: list[ResidenceOut]


# --------------------------------------------------------------------------- workload


class WorkloadCounts(BaseModel):
    """Counts the store maintains per grid, summed at higher levels."""

    houses: int
    rental_houses: int
    rental_key: int
    rental_uneasy: int
    rental_trusted: int
    rental_registered: int
    businesses: int
    workers: int
    big_employers: int
    residents: int
    floating_residents: int
    floating_registered: int
    registered_persons: int
    consistent_persons: int
    key_persons: int
    uneasy_persons: int
    co_managers_assigned: int
    area_km2: float


class WorkloadDerived(WorkloadCounts):
    """Counts plus inspections, staffing and registration KPIs (rates null when 0/0)."""

    police_inspections_per_month: float
    committee_inspections_per_month: float
    inspections_per_month: float
    co_managers_needed: int
    specialists_needed: int
    co_managers_gap: int = Field(description="needed − assigned; > 0 means short")
    floating_registration_rate: float | None
    floating_registration_rate_target: float
    floating_registration_rate_ok: bool
    rental_registration_rate: float | None
    rental_registration_rate_target: float
    rental_registration_rate_ok: bool
    consistency_rate: float | None
    consistency_rate_target: float
    consistency_rate_ok: bool


class GridWorkload(WorkloadDerived):
    """One grid's workload and the tier it implies."""

    tier: str = Field(description="strengthened | key | routine")
    tier_reasons: str


class GridOut(BaseModel):
    """A grid (网格) of the adopted plan: boundary, tier and workload."""

    grid_id: str
    community_code: str
    police_area: str | None
    assigned_tier: str | None = Field(description="tier as loaded, if any")
    tier: str = Field(description="tier derived from the workload")
    co_managers_assigned: int
    area_km2: float
    locked: bool
    boundary: MultiPolygonGeometry
    workload: GridWorkload


class GridHouseOut(BaseModel):
    """A house of a grid."""

    house_code: str | None
    address: str | None
    community_code: str | None
    building: int | None
    unit: int | None
    room: int | None
    use: str | None
    location: PointGeometry


class GridHousesOut(BaseModel):
    """One page of a grid's houses; pass ``next_cursor`` as ``cursor`` for the next."""

    grid_id: str
    count: int
    houses: list[GridHouseOut]
    next_cursor: str | None


class WorkloadRow(WorkloadDerived):
    """Workload of one grid or area at a level."""

    area_code: str
    level: str
    name: str | None = None
    parent_code: str | None = None
    grids: int
    grid_id: str | None = None
    community_code: str | None = None
    grids_strengthened: int
    grids_key: int
    grids_routine: int
    tier: str | None = Field(default=None, description="grid level only")
    tier_reasons: str | None = None


class WorkloadOut(BaseModel):
    """Workload rows at a level."""

    level: str
    parent: str | None
    count: int
    rows: list[WorkloadRow]


class StaffingRow(BaseModel):
    """Co-managers (协管员) needed at a ratio vs assigned, for one grid or area."""

    area_code: str
    level: str
    name: str | None
    parent_code: str | None
    grids: int
    floating_residents: int
    co_manager_ratio: int
    co_managers_needed: int
    co_managers_assigned: int
    co_managers_gap: int


class StaffingOut(BaseModel):
    """Staffing rows at a level."""

    level: str
    ratio: int
    parent: str | None
    count: int
    rows: list[StaffingRow]


# --------------------------------------------------------------------------- audit, me


class AuditEntryOut(BaseModel):
    """One audit row."""

    id: int
    at: dt.datetime
    actor: str
    role: str
    action: str
    target: str
    client_addr: str | None
    detail: dict[str, Any] | None


class AuditOut(BaseModel):
    """A page of the audit log, newest first."""

    count: int
    entries: list[AuditEntryOut]
    next_cursor: str | None


class MeOut(BaseModel):
    """Who the token belongs to and what it may see."""

    name: str
    role: str
    area_code: str | None
    masked: bool


class HealthOut(BaseModel):
    """Liveness."""

    status: Literal["ok"]
    store: str


# --------------------------------------------------------------------------- OGC API Features


class Link(BaseModel):
    """A link (OGC API / RFC 8288)."""

    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class LandingOut(BaseModel):
    """The landing page: what this server is and where to go."""

    title: str
    description: str
    links: list[Link]


class ConformanceOut(BaseModel):
    """OGC API conformance classes implemented."""

    conformsTo: list[str]  # noqa: N815 (OGC name)


class SpatialExtent(BaseModel):
    """Bounding box of a collection."""

    bbox: list[list[float]]
    crs: str


class Extent(BaseModel):
    """Extent of a collection."""

    spatial: SpatialExtent


class CollectionOut(BaseModel):
    """One feature collection."""

    id: str
    title: str
    description: str
    itemType: str = "feature"  # noqa: N815
    crs: list[str]
    extent: Extent | None
    links: list[Link]


class CollectionsOut(BaseModel):
    """Every feature collection."""

    collections: list[CollectionOut]
    links: list[Link]


class HouseProperties(BaseModel):
    """Properties of a house feature."""

    house_code: str | None
    address: str | None
    community_code: str | None
    grid_id: str | None
    building: int | None
    unit: int | None
    room: int | None
    area_m2: float | None
    use: str | None


class GridProperties(BaseModel):
    """Properties of a grid feature."""

    grid_id: str
    community_code: str
    tier: str | None
    police_area: str | None
    co_managers_assigned: int
    area_km2: float


class AreaProperties(BaseModel):
    """Properties of an admin-area feature."""

    code: str
    name: str
    level: str
    parent_code: str | None


class HouseFeature(BaseModel):
    """A house as a GeoJSON Feature (id = house code)."""

    model_config = ConfigDict(title="HouseFeature")
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: PointGeometry
    properties: HouseProperties
    links: list[Link] | None = None


class GridFeature(BaseModel):
    """A grid as a GeoJSON Feature (id = grid_id)."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: AreaGeometry
    properties: GridProperties
    links: list[Link] | None = None


class AreaFeature(BaseModel):
    """An admin area as a GeoJSON Feature (id = area code)."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: AreaGeometry
    properties: AreaProperties
    links: list[Link] | None = None


class _FeatureCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    numberMatched: int | None = Field(  # noqa: N815
        default=None, description="omitted when more than the server's count cap match")
    numberReturned: int  # noqa: N815
    links: list[Link]


class HouseCollection(_FeatureCollection):
    """Houses as a GeoJSON FeatureCollection."""

    features: list[HouseFeature]


class GridCollection(_FeatureCollection):
    """Grids as a GeoJSON FeatureCollection."""

    features: list[GridFeature]


class AreaCollection(_FeatureCollection):
    """Admin areas as a GeoJSON FeatureCollection."""

    features: list[AreaFeature]
