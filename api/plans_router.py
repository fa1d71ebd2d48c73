"""Boundary plans over HTTP: ``/plans`` — create, list, edit, diff, rebalance, adopt.

Routes are a few lines each over :mod:`gridmgr.store.plan_ops`; every edit runs in one
transaction, so a rejected edit (400 ``plan_rule_violation`` naming the grids) leaves the
draft unchanged.

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

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any

import shapely
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Engine

from api.errors import Unauthorized
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


# ----------------------------------------------------------------------------- models


class PlanCreate(BaseModel):
    """A new draft: its name and the plan it copies (default: the adopted one)."""

    name: str = Field(min_length=1, max_length=100, examples=["draft-2026-03"])
    source: str | None = Field(default=None, description="plan to copy; default the adopted one")
    note: str | None = Field(default=None, max_length=2000)


class Adoption(BaseModel):
    """One period a plan was in force."""

    adopted_at: dt.datetime
    retired_at: dt.datetime | None
    adopted_by: str | None


class PlanOut(BaseModel):
    """A plan: status (draft, adopted, retired), base, grids, edits, periods in force."""

    id: int
    name: str
    status: str
    base: str | None
    created_at: dt.datetime | None
    note: str | None
    grids: int
    edits: int
    adoptions: list[Adoption]


class ReshapeIn(BaseModel):
    """A new boundary for one grid (GeoJSON geometry in lon/lat, or WKT)."""

    grid_id: str = Field(max_length=40)
    geometry: dict[str, Any] | str = Field(description="GeoJSON Polygon/MultiPolygon or WKT")


class SplitIn(BaseModel):
    """A line across one grid (GeoJSON LineString in lon/lat, or WKT)."""

    grid_id: str = Field(max_length=40)
    line: dict[str, Any] | str = Field(description="GeoJSON LineString or WKT",
                                       examples=["LINESTRING (104.061 30.650, 104.068 30.652)"])


class MergeIn(BaseModel):
    """Neighbouring grids of one community; the first keeps its id."""

    grid_ids: list[str] = Field(min_length=2, max_length=50)


class LockIn(BaseModel):
    """Grids to lock (or, with locked false, unlock)."""

    grid_ids: list[str] = Field(min_length=1, max_length=500)
    locked: bool = True


class MoveIn(BaseModel):
    """Houses, H3 blocks or an area to move into grid ``to_grid``."""

    to_grid: str = Field(max_length=40)
    house_codes: list[str] = Field(default_factory=list, max_length=5000)
    cells: list[str] = Field(default_factory=list, max_length=5000)
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


class AdoptIn(BaseModel):
    """Adopt even if the draft was made from a plan no longer in force."""

    force: bool = False


class AdoptOut(BaseModel):
    """The plan now in force, the one retired, when, and how many houses changed grid."""

    plan: str
    previous: str | None
    adopted_at: dt.datetime
    houses_moved: int
    relinked: bool


class RebalanceIn(BaseModel):
    """Rebalance one street or community into ``grids`` grids of load floor..ceiling."""

    area: str = Field(max_length=20)
    grids: int = Field(ge=1, le=500)
    floor: float | None = Field(default=None, ge=0)
    ceiling: float | None = Field(default=None, gt=0)
    resolution: int = Field(default=10, ge=9, le=12)
    seed: int = 0
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


def _geometry(value: dict[str, Any] | str, what: str) -> BaseGeometry:
    try:
        if isinstance(value, str):
            return shapely.from_wkt(value)
        return shapely.geometry.shape(value)
    except Exception as exc:
        raise BadInput(f"{what} is not a GeoJSON geometry or WKT: "
                       f"{str(exc).splitlines()[0][:200]}") from None


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
def get_plan(name: str, request: Request, engine: EngineDep) -> dict[str, Any]:
    """A plan's status, base, grids, edits and adoption periods."""
    from gridmgr.store import plan_ops

    require_role(request, READ_ROLES)
    with engine.connect() as conn:
        return plan_ops.plan_info(conn, name).as_dict()


@router.get("/{name}/history", summary="A plan's edits, in order")
def plan_history(name: str, request: Request, engine: EngineDep) -> list[dict[str, Any]]:
    """Each edit with its arguments, outcome, author and whether it was undone."""
    from gridmgr.store import plan_ops

    require_role(request, READ_ROLES)
    with engine.connect() as conn:
        return plan_ops.history(conn, name)


def _op(request: Request, engine: Engine, fn: Any, **kwargs: Any) -> dict[str, Any]:
    actor = require_role(request, EDIT_ROLES)
    with engine.begin() as conn:
        return fn(conn, actor=actor, **kwargs).as_dict()  # type: ignore[no-any-return]


@router.post("/{name}/reshape", response_model=OpOut, summary="Give a grid a new boundary")
def reshape(name: str, body: ReshapeIn, request: Request, engine: EngineDep) -> dict[str, Any]:
    """The grid takes the new boundary; neighbours in its community adjust."""
    from gridmgr.store import plan_ops

    return _op(request, engine, plan_ops.reshape, plan=name, grid_id=body.grid_id,
               geometry=_geometry(body.geometry, "geometry"))


@router.post("/{name}/split", response_model=OpOut, summary="Split a grid along a line")
def split(name: str, body: SplitIn, request: Request, engine: EngineDep) -> dict[str, Any]:
    """The pieces get new grid ids (``added``)."""
    from gridmgr.store import plan_ops

    return _op(request, engine, plan_ops.split, plan=name, grid_id=body.grid_id,
               line=_geometry(body.line, "line"))


@router.post("/{name}/merge", response_model=OpOut, summary="Merge neighbouring grids")
def merge(name: str, body: MergeIn, request: Request, engine: EngineDep) -> dict[str, Any]:
    """The first grid named keeps its id."""
    from gridmgr.store import plan_ops

    return _op(request, engine, plan_ops.merge, plan=name, grid_ids=body.grid_ids)


@router.post("/{name}/lock", response_model=OpOut, summary="Lock or unlock grids")
def lock(name: str, body: LockIn, request: Request, engine: EngineDep) -> dict[str, Any]:
    """Locked grids are left alone by edits and rebalances."""
    from gridmgr.store import plan_ops

    return _op(request, engine, plan_ops.lock, plan=name, grid_ids=body.grid_ids,
               locked=body.locked)


@router.post("/{name}/move", response_model=OpOut, summary="Move houses or blocks to a grid")
def move(name: str, body: MoveIn, request: Request, engine: EngineDep) -> dict[str, Any]:
    """The ground the houses stand on (their H3 blocks) joins ``to_grid``."""
    from gridmgr.store import plan_ops

    polygon = _geometry(body.polygon, "polygon") if body.polygon is not None else None
    return _op(request, engine, plan_ops.move, plan=name, to_grid=body.to_grid,
               house_codes=body.house_codes, cells=body.cells, polygon=polygon,
               resolution=body.resolution)


@router.post("/{name}/undo", response_model=OpOut, summary="Undo the last edit")
def undo(name: str, request: Request, engine: EngineDep) -> dict[str, Any]:
    """Undo the last edit not undone yet."""
    from gridmgr.store import plan_ops

    return _op(request, engine, plan_ops.undo, plan=name)


@router.get("/{name}/diff", response_model=DiffOut, summary="Compare two plans")
def diff(name: str, request: Request, engine: EngineDep,
         other: Annotated[str | None, Query(max_length=100, description=(
             "plan to compare with; default the adopted one"))] = None) -> dict[str, Any]:
    """Houses that change grid; workload, tier and staffing per grid and area, before/after."""
    from gridmgr.store import plan_ops

    require_role(request, READ_ROLES)
    state = request.app.state
    with engine.connect() as conn:
        return plan_ops.diff(conn, plan=name, other=other,
                             settings=getattr(state, "workload_settings", None),
                             tiers=getattr(state, "tier_settings", None)).as_dict()


@router.post("/{name}/adopt", response_model=AdoptOut, summary="Put a plan in force")
def adopt(name: str, request: Request, engine: EngineDep,
          body: AdoptIn | None = None) -> dict[str, Any]:
    """Atomic switch; the plan in force is retired and kept; the adoption is audited."""
    from gridmgr.store import plan_ops

    actor = require_role(request, ADOPT_ROLES)
    with engine.begin() as conn:
        res = plan_ops.adopt(conn, plan=name, actor=actor,
                             role=str(getattr(request.state, "role", "")),
                             client_addr=_client(request), force=bool(body and body.force))
    return res.as_dict()


@router.post("/{name}/rebalance", response_model=RebalanceOut,
             summary="Propose balanced grids for a street or community")
def rebalance(name: str, body: RebalanceIn, request: Request,
              engine: EngineDep) -> dict[str, Any]:
    """Writes the proposal into the draft (one undoable edit) and reports its figures."""
    from gridmgr.store import plan_ops

    actor = require_role(request, EDIT_ROLES)
    with engine.begin() as conn:
        rep = plan_ops.rebalance_area(conn, plan=name, area=body.area, grids=body.grids,
                                      floor=body.floor, ceiling=body.ceiling,
                                      resolution=body.resolution, seed=body.seed,
                                      maxp=body.maxp, actor=actor,
                                      workload=getattr(request.app.state,
                                                       "workload_settings", None))
    return rep.as_dict()
