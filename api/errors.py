"""Errors as JSON ``{"error": code, "detail": ...}``: API error kinds and one status table."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridmgr.errors import BadInput, Conflict, Forbidden, GridmgrError, NotFound

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


def error_response(status: int, code: str, detail: str, *,
                   problems: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """A JSON error response with the gridmgr error shape."""
    body: dict[str, Any] = {"error": code, "detail": detail}
    if problems:
        body["problems"] = problems
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=headers)


async def _gridmgr_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GridmgrError)
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(status, exc.code, " ".join(str(exc).split()), headers=headers)


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
