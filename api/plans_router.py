"""Boundary plans over HTTP: ``/plans`` — create, list, edit, diff, rebalance, adopt.

Routes are a few lines each over :mod:`gridmgr.store.plan_ops`; every edit runs in one
transaction, so a rejected edit (400 ``plan_rule_violation``, with every broken rule in
``problems``) leaves the draft unchanged. Times are sent in UTC (RFC 3339, ``...Z``); names,
grid ids, geometries and H3 cells are checked here, so bad input is a JSON 4xx, never a 500.

What this router expects from the app that includes it:

- ``request.app.state.engine``: a SQLAlchemy Engine on the store (else
  ``request.app.state.store.engine`` is used, as ``api.app`` opens it);
- ``request.state.role`` (and optionally ``request.state.actor``, the name kept in the plan
  history and the audit log), set by an app-level dependency before the route runs; the
  simplest is to include the router with ``dependencies=[Depends(caller_role)]``, which
  authenticates the bearer token with :func:`api.auth.current_caller`. A request without a
  role is refused (401), never let through.
- gridmgr errors mapped to JSON ``{"error": code, "detail": ...}`` (``api.errors.install``);
- optionally ``app.state.workload_settings`` / ``app.state.tier_settings`` (as ``api.app``
  sets them), used for the diff's workload and the rebalance's default bounds.

Roles: reading (list, get, history, diff) needs planner, supervisor or admin; editing and
rebalancing needs planner or admin; adopting needs supervisor or admin. Police have no
access to plans.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import h3
import numpy as np
import shapely
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Engine

from api.deps import parse_house_code, plan_name
from api.errors import Unauthorized
from api.models import UtcDateTime
from gridmgr.errors import BadInput, Forbidden

READ_ROLES: tuple[str, ...] = ("planner", "supervisor", "admin")
EDIT_ROLES: tuple[str, ...] = ("planner", "admin")
ADOPT_ROLES: tuple[str, ...] = ("supervisor", "admin")

router = APIRouter(prefix="/plans", tags=["plans"])


def get_engine(request: Request) -> Engine:
    """The store's engine: ``app.state.engine``, else ``app.state.store.engine``."""
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        engine = getattr(getattr(request.app.state, "store", None), "engine", None)
    if engine is None:
        raise RuntimeError("the app has no store engine: set app.state.engine in its lifespan")
    return engine  # type: ignore[no-any-return]


EngineDep = Annotated[Engine, Depends(get_engine)]


def require_role(request: Request, roles: Sequence[str]) -> str:
    """Check ``request.state.role`` against ``roles``; return the actor name for the record."""
    role = getattr(request.state, "role", None)
    if role is None:
        raise Unauthorized("send the header Authorization: Bearer <token>; plans need the planner, "
                     "supervisor or admin role")
    if role not in roles:
        raise Forbidden(f"the {role} role may not use this route; it needs "
                        f"{' or '.join(roles)}")
    actor = getattr(request.state, "actor", None)
    return str(actor or role)


async def caller_role(request: Request) -> None:
    """App-level dependency: authenticate the bearer token and put role and actor on the request.

    Include the router with ``app.include_router(router, dependencies=[Depends(caller_role)])``.
    """
    from fastapi.security import HTTPAuthorizationCredentials

    from api.auth import bearer, current_caller

    credentials: HTTPAuthorizationCredentials | None = await bearer(request)
    caller = await current_caller(request, credentials)
    request.state.role = caller.role
    request.state.actor = caller.actor


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


# ----------------------------------------------------------------------------- parameters

PlanNamePath = Annotated[str, Path(max_length=100, description="the plan's name",
                                   examples=["draft-2026-03"])]
"""The ``name`` path parameter of every plan route; check it with ``plan_name``."""


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must hold printable characters only")
    return value


def _note_text(value: str) -> str:
    if not value.replace("\n", " ").replace("\r", " ").replace("\t", " ").isprintable():
        raise ValueError("must hold printable characters (and line breaks) only")
    return value


MIN_CELL_RES = 7
"""Coarsest H3 cell a move may name (≈ 5 km²); coarser cells are bigger than a community."""

GridId = Annotated[str, Field(min_length=1, max_length=40, examples=["510104001001-01"]),
                   AfterValidator(_printable)]
"""A grid id in a request body: 1 to 40 printable characters."""


# ----------------------------------------------------------------------------- models


class _Body(BaseModel):
    """A request body: strict types, so a value of the wrong JSON type is refused (400)."""

    model_config = ConfigDict(strict=True)


class PlanCreate(_Body):
    """A new draft: its name and the plan it copies (default: the adopted one)."""

    name: str = Field(min_length=1, max_length=100, examples=["draft-2026-03"],
                      description="1–100 letters, digits, '.', '-' or '_'")
    source: Annotated[str, AfterValidator(_printable)] | None = Field(
        default=None, max_length=100, description="plan to copy; default the adopted one")
    note: Annotated[str, AfterValidator(_note_text)] | None = Field(default=None,
                                                                   max_length=2000)


class Adoption(BaseModel):
    """One period a plan was in force (UTC)."""

    adopted_at: UtcDateTime
    retired_at: UtcDateTime | None
    adopted_by: str | None


class PlanOut(BaseModel):
    """A plan: status (draft, adopted, retired, discarded), base, grids, edits, periods."""

    id: int
    name: str
    status: str
    base: str | None
    created_at: UtcDateTime | None
    note: str | None
    grids: int
    edits: int
    adoptions: list[Adoption]


class PlanEdit(BaseModel):
    """One edit of a plan: what it was, what it did, who made it, and whether it was undone."""

    seq: int
    op: str
    args: dict[str, Any]
    summary: dict[str, Any]
    actor: str | None
    at: UtcDateTime | None
    undone_at: UtcDateTime | None
    undone_by: str | None


class ReshapeIn(_Body):
    """A new boundary for one grid (GeoJSON geometry in lon/lat, or WKT)."""

    grid_id: GridId
    geometry: dict[str, Any] | str = Field(description="GeoJSON Polygon/MultiPolygon or WKT")


class SplitIn(_Body):
    """A line across one grid (GeoJSON LineString in lon/lat, or WKT)."""

    grid_id: GridId
    line: dict[str, Any] | str = Field(description="GeoJSON LineString or WKT",
                                       examples=["LINESTRING (104.061 30.650, 104.068 30.652)"])


class MergeIn(_Body):
    """Neighbouring grids of one community; the first keeps its id."""

    grid_ids: list[GridId] = Field(min_length=2, max_length=50)


class LockIn(_Body):
    """Grids to lock (or, with locked false, unlock)."""

    grid_ids: list[GridId] = Field(min_length=1, max_length=500)
    locked: bool = True


class MoveIn(_Body):
    """Houses, H3 blocks or an area to move into grid ``to_grid``."""

    to_grid: GridId
    house_codes: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=5000)
    cells: list[Annotated[str, Field(max_length=20)]] = Field(
        default_factory=list, max_length=5000,
        description=f"H3 cell ids of resolution {MIN_CELL_RES}–15 (blocks)")
    polygon: dict[str, Any] | str | None = None
    resolution: int = Field(default=11, ge=7, le=13)


class MovedHouse(BaseModel):
    """A house whose grid changes (None: in no grid)."""

    house_code: str | None
    from_: str | None = Field(alias="from")
    to: str | None

    model_config = {"populate_by_name": True}


class OpOut(BaseModel):
    """What an edit did."""

    plan: str
    op: str
    seq: int | None
    removed: list[str]
    added: list[str]
    reshaped: list[str]
    retouched: list[str] = Field(
        default_factory=list,
        description="grids whose boundary stayed but whose lock or staff changed")
    houses_moved: int
    moved: list[MovedHouse]
    houses_tested: int
    businesses_moved: int
    seconds: float
    notes: list[str]


class DiffGrids(BaseModel):
    """Grid ids by kind of change."""

    added: list[str]
    removed: list[str]
    reshaped: list[str]
    restaffed: list[str]


class DiffOut(BaseModel):
    """Houses moved, and per-grid and rolled-up workload before (other) and after (plan)."""

    plan: str
    other: str
    houses_moved: int
    moved: list[MovedHouse]
    grids: DiffGrids
    before: list[dict[str, Any]]
    after: list[dict[str, Any]]
    rollup: list[dict[str, Any]]
    seconds: float


class AdoptIn(_Body):
    """Adopt even if the draft was made from a plan no longer in force."""

    force: bool = False


class AdoptOut(BaseModel):
    """The plan now in force, the one retired, when (UTC), and how many houses changed grid."""

    plan: str
    previous: str | None
    adopted_at: UtcDateTime
    houses_moved: int
    relinked: bool


class DiscardOut(BaseModel):
    """A discarded draft and how many house links went with it."""

    plan: str
    status: str
    links_deleted: int


class RebalanceIn(_Body):
    """Rebalance one street or community into ``grids`` grids of load floor..ceiling."""

    area: str = Field(pattern=r"^[0-9]{1,20}$", description="street or community code")
    grids: int = Field(ge=1, le=500)
    floor: float | None = Field(default=None, ge=0, le=1e9, allow_inf_nan=False)
    ceiling: float | None = Field(default=None, gt=0, le=1e9, allow_inf_nan=False)
    resolution: int = Field(default=10, ge=9, le=12)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    maxp: bool = False


class RebalanceOut(BaseModel):
    """The proposal's figures next to today's grids (and max-p's when asked)."""

    plan: str
    area: str
    communities: dict[str, int]
    floor: float
    ceiling: float
    resolution: int
    seed: int
    blocks: int
    houses: int
    load_total: float
    current: dict[str, Any]
    proposal: dict[str, Any]
    maxp: dict[str, Any] | None
    op: OpOut


POLYGONS: tuple[str, ...] = ("Polygon", "MultiPolygon")
LINES: tuple[str, ...] = ("LineString", "MultiLineString")


def parse_geometry(value: dict[str, Any] | str, what: str,
                   kinds: Sequence[str]) -> BaseGeometry:
    """A 2-D geometry of one of ``kinds`` in lon/lat from GeoJSON or WKT, or BadInput saying why."""
    try:
        geom = (shapely.from_wkt(value) if isinstance(value, str)
                else shapely.geometry.shape(value))
    except Exception as exc:  # GEOS, shapely and plain Python errors alike: all bad input
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise BadInput(f"{what} is not a GeoJSON geometry or WKT: {reason}") from None
    if geom is None or geom.is_empty:
        raise BadInput(f"{what} is empty; give a {' or '.join(kinds)} in lon/lat (EPSG:4326)")
    if geom.geom_type not in kinds:
        raise BadInput(f"{what} is a {geom.geom_type}; give a {' or '.join(kinds)} in lon/lat "
                       "(EPSG:4326)")
    geom = shapely.force_2d(geom)
    xy = shapely.get_coordinates(geom)
    if not np.isfinite(xy).all():
        raise BadInput(f"{what} has coordinates that are not finite numbers")
    x0, y0, x1, y1 = (float(v) for v in geom.bounds)
    if x0 < -180 or x1 > 180 or y0 < -90 or y1 > 90:
        raise BadInput(f"{what} is not in lon/lat degrees (longitudes -180..180, latitudes "
                       "-90..90): reproject it to EPSG:4326")
    return geom


def _cells(cells: Sequence[str]) -> list[str]:
    """H3 cell ids, checked: valid and of resolution MIN_CELL_RES or finer."""
    for c in cells:
        if not h3.is_valid_cell(c):
            raise BadInput(f"{c[:20]!r} is not an H3 cell id (e.g. 8a4a1072a0d7fff)")
        if h3.get_resolution(c) < MIN_CELL_RES:
            raise BadInput(f"H3 cell {c} has resolution {h3.get_resolution(c)}; name blocks of "
                           f"resolution {MIN_CELL_RES} or finer")
    return list(cells)


# ----------------------------------------------------------------------------- routes


@router.post("", status_code=201, response_model=PlanOut, summary="Create a draft plan")
def create_plan(body: PlanCreate, request: Request, engine: EngineDep) -> dict[str, Any]:
    """A draft copy of the adopted grids (or of ``source``), with their links and counts."""
    from gridmgr.store import plan_ops

    actor = require_role(request, EDIT_ROLES)
    with engine.begin() as conn:
        info = plan_ops.create_draft(conn, name=body.name, source=body.source, actor=actor,
                                     note=body.note)
    return info.as_dict()


@router.get("", response_model=list[PlanOut], summary="List the plans")
def list_plans(request: Request, engine: EngineDep) -> list[dict[str, Any]]:
    """Every plan with status, base, grids, edits and the periods it was in force."""
    from gridmgr.store import plan_ops

    require_role(request, READ_ROLES)
    with engine.connect() as conn:
        return [p.as_dict() for p in plan_ops.list_plans(conn)]


@router.get("/{name}", response_model=PlanOut, summary="One plan")
def get_plan(name: PlanNamePath, request: Request, engine: EngineDep) -> dict[str, Any]:
    """A plan's status, base, grids, edits and adoption periods."""
    from gridmgr.store import plan_ops

    require_role(request, READ_ROLES)
    with engine.connect() as conn:
        return plan_ops.plan_info(conn, plan_name(name)).as_dict()


@router.get("/{name}/history", response_model=list[PlanEdit],
            summary="A plan's edits, in order")
def plan_history(name: PlanNamePath, request: Request,
                 engine: EngineDep) -> list[dict[str, Any]]:
    """Each edit with its arguments, outcome, author and whether it was undone."""
    from gridmgr.store import plan_ops

    require_role(request, READ_ROLES)
    with engine.connect() as conn:
        return plan_ops.history(conn, plan_name(name))


def _op(request: Request, engine: Engine, fn: Any,
        args: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run edit ``fn`` in one transaction; ``args`` parses the request once the role is checked."""
    actor = require_role(request, EDIT_ROLES)
    kwargs = args()
    with engine.begin() as conn:
        return fn(conn, actor=actor, **kwargs).as_dict()  # type: ignore[no-any-return]


@router.post("/{name}/reshape", response_model=OpOut, summary="Give a grid a new boundary")
def reshape(name: PlanNamePath, body: ReshapeIn, request: Request,
            engine: EngineDep) -> dict[str, Any]:
    """The grid takes the new boundary; neighbours in its community adjust."""
    from gridmgr.store import plan_ops

    return _op(request, engine, plan_ops.reshape, lambda: {
        "plan": plan_name(name), "grid_id": body.grid_id,
        "geometry": parse_geometry(body.geometry, "geometry", POLYGONS)})


@router.post("/{name}/split", response_model=OpOut, summary="Split a grid along a line")
def split(name: PlanNamePath, body: SplitIn, request: Request,
          engine: EngineDep) -> dict[str, Any]:
    """The pieces get new grid ids (``added``)."""
    from gridmgr.store import plan_ops

    return _op(request, engine, plan_ops.split, lambda: {
        "plan": plan_name(name), "grid_id": body.grid_id,
        "line": parse_geometry(body.line, "line", LINES)})


@router.post("/{name}/merge", response_model=OpOut, summary="Merge neighbouring grids")
def merge(name: PlanNamePath, body: MergeIn, request: Request,
          engine: EngineDep) -> dict[str, Any]:
    """The first grid named keeps its id."""
    from gridmgr.store import plan_ops

    return _op(request, engine, plan_ops.merge, lambda: {
        "plan": plan_name(name), "grid_ids": body.grid_ids})


@router.post("/{name}/lock", response_model=OpOut, summary="Lock or unlock grids")
def lock(name: PlanNamePath, body: LockIn, request: Request,
         engine: EngineDep) -> dict[str, Any]:
    """Locked grids are left alone by edits and rebalances."""
    from gridmgr.store import plan_ops

    return _op(request, engine, plan_ops.lock, lambda: {
        "plan": plan_name(name), "grid_ids": body.grid_ids, "locked": body.locked})


@router.post("/{name}/move", response_model=OpOut, summary="Move houses or blocks to a grid")
def move(name: PlanNamePath, body: MoveIn, request: Request,
         engine: EngineDep) -> dict[str, Any]:
    """The ground the houses stand on (their H3 blocks) joins ``to_grid``."""
    from gridmgr.store import plan_ops

    return _op(request, engine, plan_ops.move, lambda: {
        "plan": plan_name(name), "to_grid": body.to_grid,
        "house_codes": [parse_house_code(c) for c in body.house_codes],
        "cells": _cells(body.cells), "resolution": body.resolution,
        "polygon": (None if body.polygon is None
                    else parse_geometry(body.polygon, "polygon", POLYGONS))})


@router.post("/{name}/undo", response_model=OpOut, summary="Undo the last edit")
def undo(name: PlanNamePath, request: Request, engine: EngineDep) -> dict[str, Any]:
    """Undo the last edit not undone yet."""
    from gridmgr.store import plan_ops

    return _op(request, engine, plan_ops.undo, lambda: {"plan": plan_name(name)})


@router.get("/{name}/diff", response_model=DiffOut, summary="Compare two plans")
def diff(name: PlanNamePath, request: Request, engine: EngineDep,
         other: Annotated[str | None, Query(max_length=100, description=(
             "plan to compare with; default the adopted one"))] = None) -> dict[str, Any]:
    """Houses that change grid; workload, tier and staffing per grid and area, before/after."""
    from gridmgr.store import plan_ops

    require_role(request, READ_ROLES)
    state = request.app.state
    with engine.connect() as conn:
        return plan_ops.diff(conn, plan=plan_name(name),
                             other=None if other is None else plan_name(other),
                             settings=getattr(state, "workload_settings", None),
                             tiers=getattr(state, "tier_settings", None)).as_dict()


@router.post("/{name}/adopt", response_model=AdoptOut, summary="Put a plan in force")
def adopt(name: PlanNamePath, request: Request, engine: EngineDep,
          body: AdoptIn | None = None) -> dict[str, Any]:
    """Atomic switch; the plan in force is retired and kept; the adoption is audited."""
    from gridmgr.store import plan_ops

    actor = require_role(request, ADOPT_ROLES)
    plan = plan_name(name)
    with engine.begin() as conn:
        res = plan_ops.adopt(conn, plan=plan, actor=actor,
                             role=str(getattr(request.state, "role", "")),
                             client_addr=_client(request), force=bool(body and body.force))
    return res.as_dict()


@router.post("/{name}/discard", response_model=DiscardOut, summary="Give up a draft")
def discard(name: PlanNamePath, request: Request, engine: EngineDep) -> dict[str, Any]:
    """The draft stops being kept current and its house links go; grids and edits stay."""
    from gridmgr.store import plan_ops

    actor = require_role(request, EDIT_ROLES)
    with engine.begin() as conn:
        res = plan_ops.discard(conn, plan=plan_name(name), actor=actor,
                               role=str(getattr(request.state, "role", "")),
                               client_addr=_client(request))
    return res.as_dict()


@router.post("/{name}/rebalance", response_model=RebalanceOut,
             summary="Propose balanced grids for a street or community")
def rebalance(name: PlanNamePath, body: RebalanceIn, request: Request,
              engine: EngineDep) -> dict[str, Any]:
    """Writes the proposal into the draft (one undoable edit) and reports its figures."""
    from gridmgr.store import plan_ops

    actor = require_role(request, EDIT_ROLES)
    plan = plan_name(name)
    with engine.begin() as conn:
        rep = plan_ops.rebalance_area(conn, plan=plan, area=body.area, grids=body.grids,
                                      floor=body.floor, ceiling=body.ceiling,
                                      resolution=body.resolution, seed=body.seed,
                                      maxp=body.maxp, actor=actor,
                                      workload=getattr(request.app.state,
                                                       "workload_settings", None))
    return rep.as_dict()
