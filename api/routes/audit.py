"""The audit log, for admins: who looked up which person or house's residents."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import Ctx, require_role
from api.deps import JSONBytes, decode_cursor, encode_cursor
from api.models import AuditOut
from api.routes.common import AUTHED
from gridmgr.errors import BadInput
from gridmgr.store.audit import ACTIONS, query_audit

router = APIRouter(tags=["audit"], responses=AUTHED,
                   default_response_class=JSONBytes)

ISO_TIME = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
            r"(Z|[+-][0-9]{2}:[0-9]{2})?)?$")
Text = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


@router.get("/audit", response_model=AuditOut, summary="The audit log (admin)")
async def audit(
    ctx: Annotated[Ctx, Depends(require_role("admin"))],
    actor: Text = None, target: Text = None,
    action: Annotated[str | None, Query(description=" | ".join(ACTIONS),
                                        pattern="^(" + "|".join(ACTIONS) + ")$")] = None,
    since: Annotated[str | None, Query(pattern=ISO_TIME, description="UTC unless an offset "
                                       "is given, inclusive; e.g. 2024-05-01T08:00:00Z")] = None,
    until: Annotated[str | None, Query(pattern=ISO_TIME, description="exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JSONBytes:
    """Audit rows newest first, filtered by actor (``name#id``), action, target and time."""
    before = decode_cursor(cursor, {"b": int})["b"] if cursor is not None else None
    rows = await ctx.store.run_sync(query_audit, actor=actor, action=action, target=target,
                                since=_time("since", since), until=_time("until", until),
                                before_id=before,
                                limit=limit)
    nxt = encode_cursor({"b": rows[-1]["id"]}) if len(rows) == limit else None
    return JSONBytes({"count": len(rows), "entries": rows, "next_cursor": nxt})


def _time(name: str, value: str | None) -> dt.datetime | None:
    """An ISO 8601 date or time as the naive UTC time the audit log stores."""
    if value is None:
        return None
    try:
        t = dt.datetime.fromisoformat(value)
        return t if t.tzinfo is None else t.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise BadInput(f"{name} {value!r} is not a valid ISO 8601 time, e.g. "
                       "2024-05-01T08:00:00Z") from None
