"""Models of the registration history, residence permits and let rooms (migration 0002)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.store.models import PK, Base

EVENT_TYPES = ("arrive", "move", "leave", "correct")


class PersonEvent(Base):
    """One registration event on a person, append-only (来有登记、去有注销).

    ``event_key`` makes a replayed event a no-op: the caller's event id, or a digest of
    person, type, date, houses and corrected values; ``content_hash`` tells a replay from
    a different event that reuses an id.
    """

    __tablename__ = "person_event"
    __table_args__ = (Index("ix_person_event_person_id_id", "person_id", "id"),
                      {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    event_key: Mapped[str] = mapped_column(String(80), unique=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    event_type: Mapped[str] = mapped_column(String(12))
    occurred_on: Mapped[dt.date] = mapped_column(Date)
    arrived_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    entered_at: Mapped[dt.datetime] = mapped_column(DateTime)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    house_id: Mapped[int | None] = mapped_column(ForeignKey("house.id"))
    from_house_id: Mapped[int | None] = mapped_column(ForeignKey("house.id"))
    residence_id: Mapped[int | None] = mapped_column(ForeignKey("residence.id"), index=True)
    closed_residence_id: Mapped[int | None] = mapped_column(ForeignKey("residence.id"))
    intended_stay_days: Mapped[int | None] = mapped_column(Integer)
    changes: Mapped[str | None] = mapped_column(Text)
    clerk: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime)


class ResidencePermit(Base):
    """A residence permit (居住证): first or renewal, its years and validity (inclusive)."""

    __tablename__ = "residence_permit"
    __table_args__ = (UniqueConstraint("person_id", "valid_from"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    permit_no: Mapped[str | None] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(12))
    years: Mapped[int] = mapped_column(Integer)
    basis: Mapped[str | None] = mapped_column(String(20))
    issued_on: Mapped[dt.date] = mapped_column(Date)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date, index=True)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("residence_permit.id"))
    clerk: Mapped[str | None] = mapped_column(String(100))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime)


class RentalRoom(Base):
    """A room let under a rental record: its type, area and tenants."""

    __tablename__ = "rental_room"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    rental_id: Mapped[int] = mapped_column(ForeignKey("rental_record.id"), index=True)
    label: Mapped[str | None] = mapped_column(String(40))
    room_type: Mapped[str] = mapped_column(String(16))
    area_m2: Mapped[float | None] = mapped_column(Float)
    tenants: Mapped[int | None] = mapped_column(Integer)


class RentalViolation(Base):
    """A rental rule the let breaks, kept with the let so it is never stored as valid."""

    __tablename__ = "rental_violation"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    rental_id: Mapped[int] = mapped_column(ForeignKey("rental_record.id"), index=True)
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rental_room.id"))
    rule: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text)
    found_on: Mapped[dt.date] = mapped_column(Date)
