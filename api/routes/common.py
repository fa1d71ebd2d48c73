"""What every router shares: the documented error responses."""

from __future__ import annotations

from typing import Any

from fastapi import Depends

from api.deps import reject_unknown_query
from api.models import ErrorOut

_TEXT = {
    400: "bad input: the error code and detail say which parameter and how to fix it",
    401: "no bearer token, or an unknown or revoked one",
    403: "the token's role may not use this route",
    404: "not found (or outside the police token's area: the two read the same)",
    409: "the state changed under the request (e.g. the adopted plan of a cursor)",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses, all with the ErrorOut shape."""
    return {s: {"model": ErrorOut, "description": _TEXT[s]} for s in statuses}


AUTHED = errors(400, 401, 403, 404)
"""The errors any authenticated route can answer with."""

PUBLIC = [Depends(reject_unknown_query)]
"""Router dependencies of routes that need no token (the others take ``api.auth.CtxDep``)."""
