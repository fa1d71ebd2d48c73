"""GeoAlchemy2 models: one schema for SpatiaLite and PostGIS (geometries in EPSG:4326)."""

from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gridmgr.workload import COUNT_COLUMNS

SRID = 4326
# SQLite only aliases INTEGER PRIMARY KEY to the rowid; BIGINT keys there would not autoincrement.
PK = BigInteger().with_variant(Integer, "sqlite")


def code_text(length: int) -> String:
    """A code or identifier column (area codes, house codes, source ids, ID numbers).

    On PostgreSQL these compare byte by byte (collation "C", as SQLite's BINARY does):
    equality is the same as under any deterministic collation, but a btree over them sorts
    with abbreviated keys instead of a strcoll call per comparison, which made building the
    house_code, source_id and community_code indexes of a 6.7 M-house load several times
    slower. Every column compared with another holds this collation too, so no comparison
    mixes two.
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")

# Maintained per-grid counts: the domain names them, the grid_count table holds them.
GRID_COUNT_COLUMNS = COUNT_COLUMNS


class Base(DeclarativeBase):
    """Declarative base of every gridmgr table."""


class AdminArea(Base):
    """A node of the hierarchy: district, street or community (行政区划)."""

    __tablename__ = "admin_area"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    code: Mapped[str] = mapped_column(code_text(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16), index=True)
    parent_code: Mapped[str | None] = mapped_column(code_text(20), index=True)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=False)


class BoundaryPlan(Base):
    """A versioned set of grid boundaries: draft, adopted (exactly one), retired or discarded."""

    __tablename__ = "boundary_plan"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    base_plan_id: Mapped[int | None] = mapped_column(ForeignKey("boundary_plan.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    note: Mapped[str | None] = mapped_column(Text)


class PlanAdoption(Base):
    """When a plan was in force: the dates that make house→grid links dated."""

    __tablename__ = "plan_adoption"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("boundary_plan.id"), index=True)
    adopted_at: Mapped[dt.datetime] = mapped_column(DateTime)
    retired_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    adopted_by: Mapped[str | None] = mapped_column(String(100))


class Grid(Base):
    """A management grid of one plan, inside one community (网格)."""

    __tablename__ = "grid"
    __table_args__ = (UniqueConstraint("plan_id", "grid_id"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("boundary_plan.id"), index=True)
    grid_id: Mapped[str] = mapped_column(String(40))
    community_code: Mapped[str] = mapped_column(code_text(20), index=True)
    tier: Mapped[str | None] = mapped_column(String(16))
    police_area: Mapped[str | None] = mapped_column(String(40))
    co_managers_assigned: Mapped[int] = mapped_column(Integer, default=0)
    area_km2: Mapped[float] = mapped_column(Float, default=0.0)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=False)


class House(Base):
    """A dwelling unit with a point, a standard address and a house code (房屋编码)."""

    __tablename__ = "house"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are never reused
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    source_id: Mapped[str] = mapped_column(code_text(64), unique=True)
    house_code: Mapped[str | None] = mapped_column(code_text(23), unique=True)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(300))
    building: Mapped[int | None] = mapped_column(Integer)
    unit: Mapped[int | None] = mapped_column(Integer)
    room: Mapped[int | None] = mapped_column(Integer)
    area_m2: Mapped[float | None] = mapped_column(Float)
    use: Mapped[str | None] = mapped_column(String(32))
    community_code: Mapped[str | None] = mapped_column(code_text(20), index=True)
    outside_areas: Mapped[bool] = mapped_column(Boolean, default=False)
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=False)


class HouseGrid(Base):
    """Which grid of a plan holds a house; dated through the plan's adoptions.

    A derived cache of the assignment (rebuilt by `gridmgr assign`), written only from ids
    the same transaction holds; it has no foreign keys because checking three of them per
    row made bulk COPY of 6.7 M links several times slower.
    """

    __tablename__ = "house_grid"
    __table_args__ = (Index("ix_house_grid_plan_grid", "plan_id", "grid_pk"),)
    plan_id: Mapped[int] = mapped_column(PK, primary_key=True)
    house_id: Mapped[int] = mapped_column(PK, primary_key=True)
    grid_pk: Mapped[int] = mapped_column(PK)


class BusinessGrid(Base):
    """Which grid of a plan holds a business."""

    __tablename__ = "business_grid"
    __table_args__ = (Index("ix_business_grid_plan_grid", "plan_id", "grid_pk"),)
    plan_id: Mapped[int] = mapped_column(PK, primary_key=True)
    business_id: Mapped[int] = mapped_column(PK, primary_key=True)
    grid_pk: Mapped[int] = mapped_column(PK)


class Person(Base):
    """A resident, registered (户籍) or floating (流动人口)."""

    __tablename__ = "person"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    source_id: Mapped[str] = mapped_column(code_text(64), unique=True)
    id_number: Mapped[str] = mapped_column(code_text(18), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    hukou_code: Mapped[str] = mapped_column(code_text(12))
    floating: Mapped[bool] = mapped_column(Boolean, index=True)
    person_class: Mapped[str] = mapped_column(String(16), default="trusted")
    registered_on: Mapped[dt.date | None] = mapped_column(Date)
    registered_house_id: Mapped[int | None] = mapped_column(ForeignKey("house.id"))


class Residence(Base):
    """A person living at a house from arrived_on until left_on (null while current)."""

    __tablename__ = "residence"
    __table_args__ = (
        Index(
            "ux_residence_current",
            "person_id",
            unique=True,
            postgresql_where=text("left_on IS NULL"),
            sqlite_where=text("left_on IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    house_id: Mapped[int] = mapped_column(ForeignKey("house.id"), index=True)
    arrived_on: Mapped[dt.date] = mapped_column(Date)
    left_on: Mapped[dt.date | None] = mapped_column(Date)
    entered_on: Mapped[dt.date | None] = mapped_column(Date)
    # The person's count flags (counts.person_flags_sql) while this residence is current, so
    # the full recount reads no person rows. Bulk loads write them; otherwise triggers
    # (migration 0005) fill them on insert and follow every change of the person's
    # floating / registration / class. Frozen once the residence closes.
    person_flags: Mapped[int | None] = mapped_column(SmallInteger)


class Business(Base):
    """An employer (用工单位) with a location and a worker count."""

    __tablename__ = "business"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    source_id: Mapped[str] = mapped_column(code_text(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    workers: Mapped[int] = mapped_column(Integer)
    community_code: Mapped[str | None] = mapped_column(code_text(20), index=True)
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=False)


class Employment(Base):
    """A person working for a business (以业管人)."""

    __tablename__ = "employment"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"), index=True)
    started_on: Mapped[dt.date | None] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)


class RentalRecord(Base):
    """A house let to tenants, its class and its inspection schedule (出租房屋)."""

    __tablename__ = "rental_record"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    house_id: Mapped[int] = mapped_column(ForeignKey("house.id"), unique=True)
    landlord_id_number: Mapped[str] = mapped_column(code_text(18))
    tenants: Mapped[int] = mapped_column(Integer)
    rental_class: Mapped[str] = mapped_column(String(16))
    registered_on: Mapped[dt.date | None] = mapped_column(Date)
    class_changed_on: Mapped[dt.date | None] = mapped_column(Date)
    last_inspected_on: Mapped[dt.date | None] = mapped_column(Date)
    next_due_on: Mapped[dt.date | None] = mapped_column(Date, index=True)


class Inspection(Base):
    """One recorded inspection of a rental house."""

    __tablename__ = "inspection"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    rental_id: Mapped[int] = mapped_column(ForeignKey("rental_record.id"), index=True)
    inspected_on: Mapped[dt.date] = mapped_column(Date)
    inspector: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(200))


class GridCount(Base):
    """Per-grid counts kept up to date in the same transaction as every change."""

    __tablename__ = "grid_count"
    grid_pk: Mapped[int] = mapped_column(ForeignKey("grid.id"), primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("boundary_plan.id"), index=True)
    houses: Mapped[int] = mapped_column(Integer, default=0)
    rental_houses: Mapped[int] = mapped_column(Integer, default=0)
    rental_key: Mapped[int] = mapped_column(Integer, default=0)
    rental_uneasy: Mapped[int] = mapped_column(Integer, default=0)
    rental_trusted: Mapped[int] = mapped_column(Integer, default=0)
    rental_registered: Mapped[int] = mapped_column(Integer, default=0)
    businesses: Mapped[int] = mapped_column(Integer, default=0)
    workers: Mapped[int] = mapped_column(Integer, default=0)
    big_employers: Mapped[int] = mapped_column(Integer, default=0)
    residents: Mapped[int] = mapped_column(Integer, default=0)
    floating_residents: Mapped[int] = mapped_column(Integer, default=0)
    floating_registered: Mapped[int] = mapped_column(Integer, default=0)
    registered_persons: Mapped[int] = mapped_column(Integer, default=0)
    consistent_persons: Mapped[int] = mapped_column(Integer, default=0)
    key_persons: Mapped[int] = mapped_column(Integer, default=0)
    uneasy_persons: Mapped[int] = mapped_column(Integer, default=0)


class ApiToken(Base):
    """A bearer token (stored as a SHA-256 hash) with a role and an optional area."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    area_code: Mapped[str | None] = mapped_column(code_text(20))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditLog(Base):
    """Who looked up which person or house, when, and from where."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)


# The event, permit and plan-history tables live in their own modules; importing them here
# puts them on Base.metadata, so migrations, drop_all and the schema check see one schema.
from gridmgr.store import models_events, models_plans  # noqa: E402,F401
