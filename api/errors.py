"""Errors as JSON ``{"error": code, "detail": ...}``: API error kinds and one status table."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridmgr.errors import BadInput, Conflict, Forbidden, GridmgrError, NotFound, RowProblem

log = logging.getLogger("gridmgr.api")


class Unauthorized(GridmgrError):
    """No bearer token, or one that is unknown or revoked (HTTP 401)."""

    code = "unauthorized"


class InvalidHouseCode(BadInput):
    """A house code that fails validation (length, digits or check character)."""

    code = "invalid_house_code"


class BadCoordinates(BadInput):
    """A longitude or latitude that is not a finite number in range."""

    code = "bad_coordinates"


class BadBbox(BadInput):
    """A bbox that is not four finite numbers minx,miny,maxx,maxy in range and in order."""

    code = "bad_bbox"


class BadCursor(BadInput):
    """A pagination cursor that this server did not hand out."""

    code = "bad_cursor"


class UnknownParameter(BadInput):
    """A query parameter the route does not declare (OGC API Features: 400, not ignored)."""

    code = "unknown_parameter"


class LimitTooLarge(BadInput):
    """A page size above the largest allowed."""

    code = "limit_too_large"


# The one table from error kind to HTTP status (most specific class first).
STATUS: tuple[tuple[type[GridmgrError], int], ...] = (
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (BadInput, 400),
    (GridmgrError, 400),
)

# Which error code a request-validation failure of a parameter gets.
PARAM_CODES: dict[str, str] = {
    "lon": BadCoordinates.code,
    "lat": BadCoordinates.code,
    "bbox": BadBbox.code,
    "cursor": BadCursor.code,
    "house_code": InvalidHouseCode.code,
}


def status_of(exc: GridmgrError) -> int:
    """The HTTP status of a gridmgr error."""
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 400


MAX_PROBLEMS = 100
"""Most problems listed in one error body; ``problems_total`` counts them all."""


def error_response(status: int, code: str, detail: str, *,
                   problems: Sequence[dict[str, Any]] | None = None,
                   problems_total: int | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """A JSON error response with the gridmgr error shape.

    The first ``MAX_PROBLEMS`` of ``problems`` go in the body, with ``problems_total``
    (default: how many were given).
    """
    body: dict[str, Any] = {"error": code, "detail": detail}
    if problems:
        body["problems"] = list(problems[:MAX_PROBLEMS])
        body["problems_total"] = len(problems) if problems_total is None else problems_total
    # default=str: an error body must render whatever a problem carries.
    return Response(orjson.dumps(body, default=str, option=orjson.OPT_SERIALIZE_NUMPY),
                    status_code=status, media_type="application/json", headers=headers)


def _problem_dict(problem: Any) -> dict[str, Any]:
    """One problem as JSON: a RowProblem, anything with ``as_dict()``, or its text."""
    if isinstance(problem, RowProblem):
        return {"row": int(problem.row), "column": str(problem.column),
                "reason": str(problem.reason)}
    as_dict = getattr(problem, "as_dict", None)
    if callable(as_dict):
        return dict(as_dict())
    return {"detail": str(problem)}


def problems_of(exc: GridmgrError) -> tuple[list[dict[str, Any]], int]:
    """The first ``MAX_PROBLEMS`` problems an error carries as JSON, and how many in all.

    A rejected file (``ValidationFailed``) carries its report's bad rows; a rejected plan
    edit (``PlanRuleViolation``) the rules it would break.
    """
    report = getattr(exc, "report", None)
    found = getattr(report, "problems", None) if report is not None else None
    if found is None:
        found = getattr(exc, "problems", None)
    if not isinstance(found, (list, tuple)):
        return [], 0
    return [_problem_dict(p) for p in found[:MAX_PROBLEMS]], len(found)


async def _gridmgr_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GridmgrError)
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    problems, total = problems_of(exc)
    return error_response(status, exc.code, " ".join(str(exc).split()), problems=problems,
                          problems_total=total, headers=headers)


def _validation_code(errors: list[dict[str, Any]]) -> str:
    for err in errors:
        loc = err.get("loc") or ()
        name = str(loc[-1]) if loc else ""
        if name == "limit" and err.get("type") == "less_than_equal":
            return LimitTooLarge.code
        if name in ("collection_id", "kind") and loc and loc[0] == "path":
            return NotFound.code
        if name in PARAM_CODES:
            return PARAM_CODES[name]
    return BadInput.code


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    problems = [{"loc": [str(p) for p in (e.get("loc") or ())],
                 "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors]
    detail = "; ".join(f"{p['loc'][-1] if p['loc'] else 'request'}: {p['msg']}"
                       for p in problems) or "invalid request"
    code = _validation_code(errors)
    status = 404 if code == NotFound.code else 400
    return error_response(status, code, detail, problems=problems)


_HTTP_CODES = {400: "bad_input", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
               413: "too_large", 415: "unsupported_media_type"}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error" if exc.status_code >= 500 else "bad_request")
    return error_response(exc.status_code, code, str(exc.detail),
                          headers=dict(exc.headers) if exc.headers else None)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal error; the server log has the details")


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the JSON error shape."""
    app.add_exception_handler(GridmgrError, _gridmgr_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
