"""Models of boundary-plan edit history: each operation and the grids before and after it.

Migration 0003 creates these tables. An operation on a draft plan (reshape, split, merge,
move, lock, unlock, rebalance) writes one ``plan_op`` row and one ``plan_op_grid`` row per
grid it touched on each side: ``before`` (the grid as it was) and ``after`` (as it became).
Undo replays the last operation backwards from those rows and stamps ``undone_at``.
"""

from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.store.models import PK, SRID, Base, code_text

OP_KINDS = ("reshape", "split", "merge", "move", "lock", "unlock", "rebalance")
"""Operations recorded in ``plan_op.op``."""


class PlanOp(Base):
    """One edit of a draft plan, in order (``seq`` 1, 2, …), with who, when and what it did."""

    __tablename__ = "plan_op"
    __table_args__ = (UniqueConstraint("plan_id", "seq"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("boundary_plan.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(16))
    args: Mapped[str | None] = mapped_column(Text)
    """The request as JSON (grid ids, the line, the area code, …)."""
    summary: Mapped[str | None] = mapped_column(Text)
    """The outcome as JSON: new grid ids, houses moved."""
    actor: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    undone_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    undone_by: Mapped[str | None] = mapped_column(String(100))


class PlanOpGrid(Base):
    """A grid touched by an operation, as it was (``before``) or became (``after``)."""

    __tablename__ = "plan_op_grid"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    op_id: Mapped[int] = mapped_column(ForeignKey("plan_op.id"), index=True)
    side: Mapped[str] = mapped_column(String(6))
    grid_id: Mapped[str] = mapped_column(String(40))
    community_code: Mapped[str] = mapped_column(code_text(20))
    tier: Mapped[str | None] = mapped_column(String(16))
    police_area: Mapped[str | None] = mapped_column(String(40))
    co_managers_assigned: Mapped[int] = mapped_column(Integer, default=0)
    area_km2: Mapped[float] = mapped_column(Float, default=0.0)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False),
                         nullable=False)
