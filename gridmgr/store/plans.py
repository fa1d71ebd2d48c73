"""Boundary plans in the store: the adopted plan, drafts, and their grids."""

from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import Connection, text

from gridmgr.store.bulk import geometries, read_frame

BASE_PLAN = "base"


def adopted_plan_id(conn: Connection) -> int | None:
    """The id of the adopted plan, or None before any grids are loaded."""
    row = conn.execute(text("SELECT id FROM boundary_plan WHERE status = 'adopted'")).first()
    return int(row[0]) if row else None


def ensure_adopted_plan(conn: Connection, by: str = "load") -> int:
    """Return the adopted plan, creating the base plan on the first grid load."""
    plan = adopted_plan_id(conn)
    if plan is not None:
        return plan
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    plan = conn.execute(text(
        "INSERT INTO boundary_plan (name, status, created_at, note) "
        "VALUES (:n, 'adopted', :t, 'grids as loaded') RETURNING id"),
        {"n": BASE_PLAN, "t": now}).scalar_one()
    conn.execute(text("INSERT INTO plan_adoption (plan_id, adopted_at, adopted_by) "
                      "VALUES (:p, :t, :b)"), {"p": plan, "t": now, "b": by})
    return int(plan)


def plan_grids(conn: Connection, plan_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A plan's grids sorted by grid_id: (grid pks, geometries, grid_ids).

    Sorting by grid_id makes the assignment tie rule "smallest grid_id wins".
    """
    df = read_frame(conn, "SELECT id, grid_id, ST_AsBinary(geom) AS wkb FROM grid "
                          "WHERE plan_id = :p ORDER BY grid_id", {"p": int(plan_id)})
    if df.empty:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=object), np.empty(0, dtype=object)
    return (df["id"].to_numpy(dtype=np.int64), geometries(df["wkb"]),
            df["grid_id"].astype(str).to_numpy(dtype=object))
