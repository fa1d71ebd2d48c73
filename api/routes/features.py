"""OGC API - Features: conformance, the grids/houses/areas collections, their items by bbox."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Path, Query, Request
from starlette.types import Receive, Scope, Send

from api.auth import Ctx, CtxDep
from api.deps import MAX_ID, BboxQuery, GeoJSONBytes, JSONBytes, clean_text, parse_bbox
from api.models import (
    AreaCollection,
    AreaFeature,
    CollectionOut,
    CollectionsOut,
    ConformanceOut,
    GridCollection,
    GridFeature,
    HouseCollection,
    HouseFeature,
)
from api.routes.common import AUTHED
from gridmgr.errors import BadInput
from gridmgr.tokens import looks_like_token

router = APIRouter(tags=["OGC API Features"], responses=AUTHED,
                   default_response_class=JSONBytes)

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
COLLECTIONS: dict[str, tuple[str, str]] = {
    "grids": ("Grids", "management grids (网格) of the adopted boundary plan"),
    "houses": ("Houses", "coded houses (房屋) with their grid; no personal data"),
    "areas": ("Admin areas", "districts, streets and communities (行政区划)"),
}
CollectionId = Literal["grids", "houses", "areas"]
GEOJSON = "application/geo+json"
HOUSE_ITEMS = "/collections/houses/items"
_ITEMS_QUERY = frozenset({"bbox", "limit", "offset"})
# The plain forms of limit (1..1000, checked below) and offset that their validation accepts.
_LIMIT = re.compile(r"[1-9][0-9]{0,3}")
_OFFSET = re.compile(r"0|[1-9][0-9]{0,18}")
_BBOX_MAX_LENGTH = 200  # BboxQuery's max_length


def _base(request: Request) -> str:
    """The server's base URL (cheaper than ``url_for`` on every items page)."""
    return str(request.base_url).rstrip("/")


def _collection(request: Request, cid: str, extent: list[float] | None) -> dict[str, Any]:
    title, description = COLLECTIONS[cid]
    base = f"{_base(request)}/collections/{cid}"
    return {
        "id": cid, "title": title, "description": description, "itemType": "feature",
        "crs": [CRS84],
        "extent": None if extent is None else {"spatial": {"bbox": [extent], "crs": CRS84}},
        "links": [{"href": base, "rel": "self", "type": "application/json"},
                  {"href": f"{base}/items", "rel": "items", "type": GEOJSON,
                   "title": f"{title} as GeoJSON"}],
    }


@router.get("/conformance", response_model=ConformanceOut, summary="OGC conformance classes")
async def conformance() -> JSONBytes:
    """The OGC API - Features conformance classes this server implements."""
    return JSONBytes({"conformsTo": CONFORMANCE})


@router.get("/collections", response_model=CollectionsOut, summary="Feature collections")
async def collections(request: Request, ctx: CtxDep) -> JSONBytes:
    """The grids, houses and areas collections."""
    extent = await ctx.store.extent()
    return JSONBytes({
        "collections": [_collection(request, cid, extent) for cid in COLLECTIONS],
        "links": [{"href": f"{_base(request)}/collections", "rel": "self",
                   "type": "application/json"}],
    })


@router.get("/collections/{collection_id}", response_model=CollectionOut, name="collection",
            summary="One feature collection")
async def collection(request: Request, ctx: CtxDep,
                     collection_id: Annotated[CollectionId, Path()]) -> JSONBytes:
    """Metadata of one collection."""
    return JSONBytes(_collection(request, collection_id, await ctx.store.extent()))


async def _items(request: Request, cid: str, ctx: Ctx, bbox_text: str | None, limit: int,
                 offset: int) -> GeoJSONBytes:
    bbox = parse_bbox(bbox_text)
    settings = ctx.settings
    if offset > settings.max_offset:
        raise BadInput(f"offset {offset} is above this server's maximum {settings.max_offset}; "
                       "narrow the bbox instead of paging further")
    features, matched = await ctx.store.items(cid, ctx.caller, bbox=bbox, limit=limit,
                                              offset=offset, count_cap=settings.count_cap)
    links = [{"href": str(request.url), "rel": "self", "type": GEOJSON},
             {"href": f"{_base(request)}/collections/{cid}", "rel": "collection",
              "type": "application/json"}]
    more = (offset + len(features) < matched) if matched is not None else len(features) == limit
    if more and offset + limit <= settings.max_offset:
        links.append({"href": str(request.url.include_query_params(offset=offset + limit,
                                                                     limit=limit)),
                      "rel": "next", "type": GEOJSON})
    body: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if matched is not None:
        body["numberMatched"] = matched
    body["numberReturned"] = len(features)
    body["links"] = links
    return GeoJSONBytes(body)


Limit = Annotated[int, Query(ge=1, le=1000, description="features per page, 1 to 1000")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="features to skip")]
FeatureId = Annotated[str, Path(max_length=200, description="the feature's id")]


@router.get(HOUSE_ITEMS, response_model=HouseCollection,
            response_class=GeoJSONBytes, summary="Houses in a bbox")
async def house_items(request: Request, ctx: CtxDep, bbox: BboxQuery = None,
                      limit: Limit = 10, offset: Offset = 0) -> GeoJSONBytes:
    """Houses as GeoJSON, in house order, filtered by bbox."""
    return await _items(request, "houses", ctx, bbox, limit, offset)


async def fast_house_items(app: Any, scope: Scope, receive: Receive, send: Send) -> bool:
    """Answer a plain ``GET /collections/houses/items`` without FastAPI's routing; True if so.

    FastAPI's routing, parameter validation and dependency solving cost about as much CPU
    as the page itself.  This serves only the request that needs none of it: a token the
    worker has already checked (``TokenCache``), no query parameters but bbox, limit and
    offset, each at most once, in the plain forms their validation accepts.  It then
    builds the page with the route's own ``_items``.  Anything else returns False before
    a byte is sent, and the request takes the ordinary route (which answers the errors,
    checks unknown tokens against the store and fills the cache), as does any exception
    raised while building the page, so both ways give the same answer.
    """
    if scope["method"] != "GET" or scope.get("root_path"):
        return False
    params: dict[str, str] = {}
    for key, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if key not in _ITEMS_QUERY or key in params:
            return False
        params[key] = value
    bbox = params.get("bbox")
    limit = params.get("limit", "10")
    offset = params.get("offset", "0")
    if (not _LIMIT.fullmatch(limit) or int(limit) > 1000 or not _OFFSET.fullmatch(offset)
            or int(offset) > MAX_ID or (bbox is not None and len(bbox) > _BBOX_MAX_LENGTH)):
        return False
    authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    if authorization is None:
        return False
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    token = token.strip()
    state = app.state
    if scheme.lower() != "bearer" or not looks_like_token(token):
        return False
    caller = state.tokens.get(token)
    if caller is None:
        return False
    request = Request(scope, receive)
    try:
        ctx = Ctx(caller, state.store, state.settings,
                  request.client.host if request.client else None)
        response = await _items(request, "houses", ctx, bbox, int(limit), int(offset))
    except Exception:  # the ordinary route answers it (error handlers, status codes)
        return False
    await response(scope, receive, send)
    return True


@router.get("/collections/grids/items", response_model=GridCollection,
            response_class=GeoJSONBytes, summary="Grids in a bbox")
async def grid_items(request: Request, ctx: CtxDep, bbox: BboxQuery = None,
                     limit: Limit = 10, offset: Offset = 0) -> GeoJSONBytes:
    """Grids of the adopted plan as GeoJSON, in grid_id order, filtered by bbox."""
    return await _items(request, "grids", ctx, bbox, limit, offset)


@router.get("/collections/areas/items", response_model=AreaCollection,
            response_class=GeoJSONBytes, summary="Admin areas in a bbox")
async def area_items(request: Request, ctx: CtxDep, bbox: BboxQuery = None,
                     limit: Limit = 10, offset: Offset = 0) -> GeoJSONBytes:
    """Admin areas as GeoJSON, in code order, filtered by bbox."""
    return await _items(request, "areas", ctx, bbox, limit, offset)


@router.get("/collections/houses/items/{feature_id}", response_model=HouseFeature,
            response_class=GeoJSONBytes, summary="One house feature")
async def house_item(ctx: CtxDep, feature_id: FeatureId) -> GeoJSONBytes:
    """A house by its house code."""
    fid = clean_text(feature_id, "house", 23)
    return GeoJSONBytes(await ctx.store.item("houses", fid, ctx.caller))


@router.get("/collections/grids/items/{feature_id}", response_model=GridFeature,
            response_class=GeoJSONBytes, summary="One grid feature")
async def grid_item(ctx: CtxDep, feature_id: FeatureId) -> GeoJSONBytes:
    """A grid of the adopted plan by its grid_id."""
    fid = clean_text(feature_id, "grid", 40)
    return GeoJSONBytes(await ctx.store.item("grids", fid, ctx.caller))


@router.get("/collections/areas/items/{feature_id}", response_model=AreaFeature,
            response_class=GeoJSONBytes, summary="One admin-area feature")
async def area_item(ctx: CtxDep, feature_id: FeatureId) -> GeoJSONBytes:
    """An admin area by its code."""
    fid = clean_text(feature_id, "area", 20)
    return GeoJSONBytes(await ctx.store.item("areas", fid, ctx.caller))
