"""Request plumbing shared by the routes: store, settings, parameter parsing, cursors, JSON."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Annotated, Any

import orjson
from fastapi import Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from api.errors import BadBbox, BadCursor, InvalidHouseCode, UnknownParameter
from api.hotpath import Store
from gridmgr import codes
from gridmgr.errors import BadInput, NotFound
from gridmgr.store.plan_ops import PLAN_NAME

MAX_LIMIT = 1000
"""Largest page size of every listing (limit ≤ 1000)."""

MAX_ID = 2**63 - 1


# No OPT_NON_STR_KEYS: every key is a str, and checking for others costs a quarter.
_ORJSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


class JSONBytes(JSONResponse):
    """A JSON response rendered by orjson (dates, numpy scalars, naive times as UTC; NaN → null)."""

    def render(self, content: Any) -> bytes:
        """Serialise with orjson."""
        return orjson.dumps(content, option=_ORJSON)


class GeoJSONBytes(JSONBytes):
    """A GeoJSON response (application/geo+json) rendered by orjson."""

    media_type = "application/geo+json"


async def get_store(request: Request) -> Store:
    """The store opened in the app's lifespan."""
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]

_DECLARED: dict[int, frozenset[str]] = {}


def _declared_query(dependant: Any) -> frozenset[str]:
    """Names of every query parameter a route declares, its dependencies' included."""
    names: set[str] = set()
    todo = [dependant]
    while todo:
        d = todo.pop()
        names.update(f.alias for f in d.query_params)
        todo.extend(d.dependencies)
    return frozenset(names)


def check_query(request: Request) -> None:
    """Answer 400 to query parameters the route does not declare.

    OGC API Features requires it (/req/core/query-param-unknown), and for good reason:
    a misspelt ``bbx=`` silently ignored would return the whole collection.
    """
    if not request.query_params:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    names = _DECLARED.get(id(route))
    if names is None:
        names = _DECLARED[id(route)] = _declared_query(dependant)
    unknown = [k for k in request.query_params if k not in names]
    if unknown:
        allowed = ", ".join(sorted(names)) or "none"
        listed = ", ".join(repr(k[:40]) for k in unknown[:5])
        raise UnknownParameter(f"unknown query parameter(s) {listed}; this route takes: {allowed}")


async def reject_unknown_query(request: Request) -> None:
    """``check_query`` as a dependency, for routes without a token."""
    check_query(request)


Lon = Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False,
                             description="longitude, WGS84 degrees", examples=[104.065])]
Lat = Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False,
                             description="latitude, WGS84 degrees", examples=[30.657])]


PageLimit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, 1 to {MAX_LIMIT}")]
"""A ``limit`` query parameter: 1 to MAX_LIMIT (give the default with ``=``)."""


_SEPARATORS = str.maketrans("", "", "- ")


def parse_house_code(raw: str) -> str:
    """The canonical form of a house code from a path, or InvalidHouseCode saying why.

    The common case (ASCII digits, optional hyphens) is checked here in microseconds;
    anything else goes through ``gridmgr.codes.normalize`` with its full rules and reasons.
    """
    c = raw.translate(_SEPARATORS)
    if (len(c) == codes.CODE_LENGTH and c.isascii() and c[:22].isdigit()
            and (c[22].isdigit() or c[22] == "X")
            and codes.iso7064_mod11_2(c[:22]) == c[22]):
        return c
    try:
        return codes.normalize(raw)
    except BadInput as exc:
        raise InvalidHouseCode(str(exc)) from None


HouseCodePath = Annotated[str, Path(
    description="house code, canonical (23 characters) or display form "
                "510104001002-0012-01-0302-2", max_length=64)]
"""The house code path parameter; parse it with ``parse_house_code``."""


def clean_text(value: str, what: str, max_length: int) -> str:
    """Reject text no store column could hold (control characters, too long) as not found."""
    if len(value) > max_length or not value.isprintable():
        raise NotFound(f"no {what} {value[:50]!r}")
    return value


GridIdPath = Annotated[str, Path(description="grid id, e.g. 510104001001-01",
                                max_length=200)]
"""The grid id path parameter; check it with ``grid_id``."""


def grid_id(value: str) -> str:
    """A grid id as given (a grid id is at most 40 printable characters, else 404)."""
    return clean_text(value, "grid", 40)


def plan_name(value: str) -> str:
    """A plan name from a path or query, or NotFound: no plan can have any other name."""
    if not PLAN_NAME.fullmatch(value):
        raise NotFound(f"no plan {value[:50]!r}: plan names are 1–100 letters, digits, "
                       "'.', '-' or '_'")
    return value


def parse_bbox(raw: str | None) -> tuple[float, float, float, float] | None:
    """``minx,miny,maxx,maxy`` in WGS84 degrees, or BadBbox saying what is wrong."""
    if raw is None:
        return None
    parts = raw.split(",")
    if len(parts) != 4:
        raise BadBbox(f"bbox {raw[:80]!r} must be four numbers minx,miny,maxx,maxy "
                      "(WGS84 lon/lat); 3-D boxes are not supported")
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        raise BadBbox(f"bbox {raw[:80]!r} must be four numbers minx,miny,maxx,maxy") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise BadBbox("bbox values must be finite numbers")
    if not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= 90 and -90 <= y1 <= 90):
        raise BadBbox(f"bbox {raw[:80]!r} is out of range: longitudes -180..180, "
                      "latitudes -90..90")
    if x0 > x1 or y0 > y1:
        raise BadBbox(f"bbox {raw[:80]!r} has min above max; give minx,miny,maxx,maxy "
                      "(boxes across the antimeridian are not supported)")
    return x0, y0, x1, y1


BboxQuery = Annotated[str | None, Query(
    description="minx,miny,maxx,maxy in WGS84 degrees (lon/lat)",
    examples=["104.0,30.6,104.1,30.7"], max_length=200)]
"""The OGC ``bbox`` query parameter; parse it with ``parse_bbox``."""


# --------------------------------------------------------------------------- cursors


def encode_cursor(fields: dict[str, Any]) -> str:
    """An opaque cursor: URL-safe base64 of compact JSON, version 1."""
    raw = orjson.dumps({"v": 1, **fields})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, expect: dict[str, type]) -> dict[str, Any]:
    """The fields of a cursor this server handed out, or BadCursor.

    ``expect`` maps each field to its type; integers must be 0 to 2**63-1.
    """
    bad = BadCursor("cursor is not one this server handed out; pass next_cursor from the "
                    "previous page unchanged, or omit it to start at the first page")
    if len(cursor) > 512 or not cursor.isascii():
        raise bad
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise bad from None
    if not isinstance(data, dict) or data.get("v") != 1 or set(data) != {"v", *expect}:
        raise bad
    for name, kind in expect.items():
        value = data[name]
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
                raise bad
        elif not isinstance(value, kind):
            raise bad
    return data
