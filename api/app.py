"""The FastAPI application: wiring only (store in lifespan, routers, error handlers).

Run it with ``gridmgr serve`` or ``uvicorn --factory api.app:create_app``; nothing
connects to a database at import time.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from api import errors
from api.auth import TokenCache
from api.database import Db, PgDb, SyncDb
from api.deps import JSONBytes
from api.hotpath import Store, WorkloadCache
from api.routes import audit, features, grids, houses, meta, reports
from api.settings import ApiSettings
from gridmgr.errors import BadInput
from gridmgr.settings import TierSettings, WorkloadSettings

log = logging.getLogger("gridmgr.api")

DESCRIPTION = """\
The HTTP face of gridmgr: houses by code and who lives there (以房找人), a person's
houses, houses near a point, grids at a point with their workload, workload and staffing
at every level, and the grids, houses and admin areas as OGC API - Features collections.

Every route but `/health`, `/` and the OpenAPI document needs `Authorization: Bearer
<token>` (create one with `gridmgr token create --role ...`). A police token sees only
its own area: anything outside it answers 404, exactly as if it did not exist. ID and
phone numbers are masked unless the role is admin or police. Lookups of people and of
residents are written to the audit log. Errors are JSON `{"error": code, "detail": ...}`.
"""


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("gridmgr")
    except Exception:  # not installed as a distribution (running from a checkout)
        return "0.1.0"


def _check_schema(engine: Any) -> None:
    from gridmgr.store.schema import current_revision, head_revision

    try:
        current = current_revision(engine)
    except Exception as exc:
        raise BadInput(f"cannot open the store {engine.url.render_as_string()}: "
                       f"{str(exc).splitlines()[0]}") from exc
    if current != head_revision():
        raise BadInput(f"the store {engine.url.render_as_string()} is at schema revision "
                       f"{current!r}, not {head_revision()!r}: run any gridmgr command on it "
                       "(e.g. gridmgr token list --db URL) to create or upgrade the schema")


async def open_store(settings: ApiSettings, workload: WorkloadSettings,
                     tiers: TierSettings) -> Store:
    """Open the store named by the settings: asyncpg on PostGIS, the sync engine otherwise."""
    from gridmgr.store.engine import make_engine

    engine = make_engine(settings.database_url, pool_size=settings.sync_pool_size,
                         max_overflow=0, pool_timeout=30)
    await run_in_threadpool(_check_schema, engine)
    db: Db
    if engine.dialect.name == "postgresql" and settings.use_asyncpg:
        db = PgDb(engine.url.render_as_string(hide_password=False),
                  min_size=settings.pool_min_size, max_size=settings.pool_max_size)
    else:
        db = SyncDb(engine)
    store = Store(db, engine, WorkloadCache(workload, tiers, settings.workload_cache_size))
    await store.open(prewarm=settings.prewarm_workload)
    return store


def _optional(module: str) -> Any:
    """A module built under its own issue, or None while it does not exist yet.

    Only absence is tolerated: a module that exists but fails to import raises.
    """
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # its parent package is missing
        return None
    return None if found is None else importlib.import_module(module)


def _maps_router() -> Any:
    """The maps router when ``layers.build_map`` exists, else None (route not served)."""
    layers = _optional("layers")
    if layers is None or not hasattr(layers, "build_map"):
        log.warning("maps disabled: layers.build_map is not available")
        return None
    from api.routes import maps

    return maps.router


def _plans_router() -> Any:
    """The /plans router (api.plans_router) with its token check, when it is there."""
    plans = _optional("api.plans_router")
    if plans is None:
        return None
    return plans.router, [Depends(plans.caller_role)]


class GridmgrApp(FastAPI):
    """FastAPI with the busiest route's common case answered ahead of routing.

    ``features.fast_house_items`` serves a plain house-items page with the route's own
    code and hands everything else back to FastAPI.  It stands aside when the app has
    middleware or a root path, or FastAPI's tracing is on (as found at the first request,
    after start-up), so nothing those add is skipped.
    """

    fast_items: bool | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the house-items fast path when it applies, else as FastAPI."""
        if scope["type"] == "http" and scope["path"] == features.HOUSE_ITEMS:
            if self.fast_items is None:
                self.fast_items = (not self.user_middleware and not self.root_path
                                   and not _tracing(self))
            if self.fast_items and await features.fast_house_items(self, scope, receive, send):
                return
        await super().__call__(scope, receive, send)


def _tracing(app: FastAPI) -> bool:
    """True when FastAPI's own telemetry is on (its requests must go through it)."""
    telemetry = getattr(app, "_native_telemetry", None)
    return telemetry is not None and bool(telemetry.enabled())


PUBLIC_PATHS = frozenset({"/health", "/"})
"""Routes that need no token."""


def _openapi_without_422(app: FastAPI) -> Any:
    """The OpenAPI document as served: 400 (not 422) for bad parameters, errors as JSON.

    The error statuses every authenticated route can answer are documented on each.
    """
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            error_ref = {"application/json": {
                "schema": {"$ref": "#/components/schemas/ErrorOut"}}}
            for route, path in schema.get("paths", {}).items():
                for method, op in path.items():
                    if not isinstance(op, dict):
                        continue
                    responses = op.setdefault("responses", {})
                    responses.pop("422", None)
                    if route not in PUBLIC_PATHS:
                        # Every route behind a token can answer these, whoever wrote it.
                        statuses = ["400", "401", "403", "404"]
                        if method != "get":
                            statuses.append("409")
                        for status in statuses:
                            responses.setdefault(status, {"description": "error",
                                                          "content": error_ref})
                    for status, response in responses.items():
                        # FastAPI gives every response the route's media type; errors
                        # are always application/json.
                        content = response.get("content", {})
                        if status.startswith(("4", "5")) and "application/json" not in content:
                            response["content"] = {"application/json": next(
                                iter(content.values()), {})}
            comps = schema.get("components", {}).get("schemas", {})
            comps.pop("HTTPValidationError", None)
            comps.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def create_app(settings: ApiSettings | None = None, *,
               workload: WorkloadSettings | None = None,
               tiers: TierSettings | None = None) -> FastAPI:
    """Build the API for the store in ``settings`` (default: from the environment)."""
    settings = settings or ApiSettings()
    workload = workload or WorkloadSettings()
    tiers = tiers or TierSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = await open_store(settings, workload, tiers)
        try:
            yield
        finally:
            await app.state.store.close()

    app = GridmgrApp(title="gridmgr", version=_version(), description=DESCRIPTION,
                     lifespan=lifespan, default_response_class=JSONBytes,
                     docs_url="/docs" if settings.docs else None, redoc_url=None)
    app.state.settings = settings
    app.state.workload_settings = workload
    app.state.tier_settings = tiers
    app.state.tokens = TokenCache(settings.token_cache_seconds)
    errors.install(app)
    # Routes are matched in order: the hot lookups first.
    for module in (houses, grids, features, reports, audit):
        app.include_router(module.router)
    web = _optional("api.web_router")
    if web is not None:
        # The web app answers GET / for browsers (and hands others the JSON landing page),
        # so it goes ahead of meta's landing route.
        app.include_router(web.router)
    app.include_router(meta.router)
    plans = _plans_router()
    if plans is not None:
        app.include_router(plans[0], dependencies=plans[1])
    maps_router = _maps_router()
    if maps_router is not None:
        app.include_router(maps_router)
    basemaps = _optional("basemaps")
    if basemaps is not None and basemaps.static_dir().is_dir():
        # Leaflet and the map renderer, vendored: maps work on intranets with no internet.
        app.mount("/static", StaticFiles(directory=basemaps.static_dir()), name="static")
    app.openapi = _openapi_without_422(app)  # type: ignore[method-assign]
    return app
