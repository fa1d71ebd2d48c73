"""API tokens in the store: create, list, revoke, find, and the area a token is scoped to."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from gridmgr.errors import BadInput, NotFound
from gridmgr.tokens import check_role, hash_token, new_token


@dataclass(frozen=True)
class TokenRecord:
    """A stored token, without its secret."""

    id: int
    name: str
    role: str
    area_code: str | None
    created_at: dt.datetime
    revoked: bool

    @property
    def actor(self) -> str:
        """How the audit log names whoever holds this token: ``name#id``."""
        return f"{self.name}#{self.id}"


_COLUMNS = "id, name, role, area_code, created_at, revoked"


def _record(row: Sequence[Any]) -> TokenRecord:
    r = tuple(row)
    created = r[4]
    if isinstance(created, str):  # SQLite hands DateTime back as text through raw SQL
        created = dt.datetime.fromisoformat(created)
    return TokenRecord(id=int(r[0]), name=str(r[1]), role=str(r[2]),
                       area_code=None if r[3] is None else str(r[3]), created_at=created,
                       revoked=bool(r[5]))


def create_token(conn: Connection, *, role: str, area_code: str | None = None,
                 name: str | None = None, now: dt.datetime | None = None
                 ) -> tuple[TokenRecord, str]:
    """Store a new token and return its record and the plain token (shown only now).

    A police token's area must be a loaded admin area.
    """
    role, area = check_role(role, area_code)
    if area is not None:
        found = conn.execute(text("SELECT 1 FROM admin_area WHERE code = :c"), {"c": area}).first()
        if found is None:
            raise BadInput(f"area {area!r} is not loaded; load areas first or use a loaded code "
                           "(gridmgr workload --level district lists them)")
    label = (name or "").strip() or (f"{role}-{area}" if area else role)
    if len(label) > 100:
        raise BadInput(f"token name is {len(label)} characters; use at most 100")
    token = new_token()
    created = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    token_id = conn.execute(text(
        "INSERT INTO api_token (token_hash, name, role, area_code, created_at, revoked) "
        "VALUES (:h, :n, :r, :a, :t, :f) RETURNING id"),
        {"h": hash_token(token), "n": label, "r": role, "a": area, "t": created, "f": False},
    ).scalar_one()
    return TokenRecord(int(token_id), label, role, area, created, False), token


def list_tokens(conn: Connection, *, include_revoked: bool = False) -> list[TokenRecord]:
    """Every token, oldest first; revoked ones only when asked."""
    where = "" if include_revoked else " WHERE revoked = :f"
    rows = conn.execute(text(f"SELECT {_COLUMNS} FROM api_token{where} ORDER BY id"),
                        {"f": False}).fetchall()
    return [_record(r) for r in rows]


def revoke_token(conn: Connection, *, token_id: int | None = None, name: str | None = None
                 ) -> list[TokenRecord]:
    """Revoke a token by id, or every live token with a name; return what was revoked."""
    if (token_id is None) == (name is None):
        raise BadInput("name a token to revoke: give its id or its name (not both)")
    if token_id is not None:
        rows = conn.execute(text(f"SELECT {_COLUMNS} FROM api_token "
                                 "WHERE id = :i AND revoked = :f"),
                            {"i": int(token_id), "f": False}).fetchall()
    else:
        rows = conn.execute(text(f"SELECT {_COLUMNS} FROM api_token "
                                 "WHERE name = :n AND revoked = :f"),
                            {"n": name, "f": False}).fetchall()
    if not rows:
        what = f"id {token_id}" if token_id is not None else f"name {name!r}"
        raise NotFound(f"no live token with {what}; gridmgr token list shows them")
    ids = [int(r[0]) for r in rows]
    for i in ids:
        conn.execute(text("UPDATE api_token SET revoked = :t WHERE id = :i"), {"t": True, "i": i})
    return [_record((*tuple(r)[:5], True)) for r in rows]


def find_token(conn: Connection, token: str) -> TokenRecord | None:
    """The live (not revoked) token record for a plain token, or None."""
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM api_token "
                            "WHERE token_hash = :h AND revoked = :f"),
                       {"h": hash_token(token), "f": False}).first()
    return None if row is None else _record(row)


AREA_SUBTREE_SQL = (
    "WITH RECURSIVE sub(code, level, depth) AS ("
    " SELECT code, level, 0 FROM admin_area WHERE code = :a"
    " UNION ALL SELECT c.code, c.level, sub.depth + 1 FROM admin_area c"
    " JOIN sub ON c.parent_code = sub.code WHERE sub.depth < 10)"
    " SELECT code, level FROM sub"
)
"""Every area at or under one area code (through parent_code), with its level."""


def area_subtree(conn: Connection, area_code: str) -> list[tuple[str, str]]:
    """Codes and levels of the area and everything under it (empty when it is not loaded)."""
    rows = conn.execute(text(AREA_SUBTREE_SQL), {"a": area_code}).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]
