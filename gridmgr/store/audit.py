"""The audit log: who looked up which person or house's residents, when, and from where."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from gridmgr.errors import BadInput

ACTIONS: tuple[str, ...] = ("house_residents", "person_houses", "house_rental")
"""Lookups that are always written to the audit log."""

INSERT_SQL = (
    "INSERT INTO audit_log (at, actor, role, action, target, client_addr, detail) "
    "VALUES (:at, :actor, :role, :action, :target, :client_addr, :detail)"
)

INSERT_RETURNING_SQL = INSERT_SQL + " RETURNING id"
SET_DETAIL_SQL = "UPDATE audit_log SET detail = :detail WHERE id = :id"


@dataclass(frozen=True)
class AuditEntry:
    """One audit row to write: the caller, the lookup, and what it found."""

    actor: str
    role: str
    action: str
    target: str
    client_addr: str | None
    outcome: str = "found"
    rows: int = 0

    def detail(self) -> str:
        """The JSON text kept in ``audit_log.detail``: outcome and number of rows returned."""
        return json.dumps({"outcome": self.outcome, "rows": self.rows}, separators=(",", ":"))

    def params(self, at: dt.datetime | None = None) -> dict[str, Any]:
        """Bound parameters for ``INSERT_SQL``."""
        return {"at": at or utcnow(), "actor": self.actor[:100], "role": self.role[:16],
                "action": self.action[:64], "target": self.target[:200],
                "client_addr": None if self.client_addr is None else self.client_addr[:64],
                "detail": self.detail()}


def utcnow() -> dt.datetime:
    """The current UTC time without tzinfo, as the audit_log column stores it."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def write_audit(conn: Connection, entry: AuditEntry, at: dt.datetime | None = None) -> None:
    """Write one audit row on `conn` (inside the caller's transaction, with the read)."""
    conn.execute(text(INSERT_SQL), entry.params(at))


def query_audit(conn: Connection, *, actor: str | None = None, action: str | None = None,
                target: str | None = None, since: dt.datetime | None = None,
                until: dt.datetime | None = None, before_id: int | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    """Audit rows, newest first, filtered by any of actor, action, target and time range.

    ``before_id`` continues a listing after the last row of the previous page.
    """
    if not 1 <= limit <= 1000:
        raise BadInput(f"limit {limit} must be 1 to 1000")
    where: list[str] = []
    params: dict[str, Any] = {"lim": int(limit)}
    for column, value in (("actor", actor), ("action", action), ("target", target)):
        if value is not None:
            where.append(f"{column} = :{column}")
            params[column] = value
    if since is not None:
        where.append("at >= :since")
        params["since"] = since
    if until is not None:
        where.append("at < :until")
        params["until"] = until
    if before_id is not None:
        where.append("id < :before")
        params["before"] = int(before_id)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(text(
        "SELECT id, at, actor, role, action, target, client_addr, detail FROM audit_log"
        f"{clause} ORDER BY id DESC LIMIT :lim"), params).fetchall()
    out = []
    for r in rows:
        at = r[1] if not isinstance(r[1], str) else dt.datetime.fromisoformat(r[1])
        try:
            detail = json.loads(r[7]) if r[7] else None
        except ValueError:
            detail = {"text": r[7]}
        out.append({"id": int(r[0]), "at": at, "actor": r[2], "role": r[3], "action": r[4],
                    "target": r[5], "client_addr": r[6], "detail": detail})
    return out
