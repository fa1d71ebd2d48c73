"""The API's reads: one implementation over both stores, shaped into response dicts.

``Store`` holds a ``Db`` (asyncpg on PostGIS, the sync engine in the threadpool on
SpatiaLite), the sync engine for the pandas-based reports (workload, staffing), and the
per-worker caches.  Every method takes the ``Caller`` and applies its scope: a police
token sees only rows whose community lies inside its area.  Lookups of people and of a
house's residents write their audit row in the same transaction as the read.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import pandas as pd
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api import sql
from api.database import Db, Row
from gridmgr.errors import Conflict, NotFound
from gridmgr.privacy import mask_id_number, mask_phone
from gridmgr.settings import TierSettings, WorkloadSettings
from gridmgr.store.audit import INSERT_RETURNING_SQL, SET_DETAIL_SQL, AuditEntry, utcnow
from gridmgr.store.models import GRID_COUNT_COLUMNS
from gridmgr.store.tokens import AREA_SUBTREE_SQL
from gridmgr.tokens import hash_token, sees_unmasked
from gridmgr.workload import derive_workload

T = TypeVar("T")

# Metres per degree of latitude are at least this anywhere on the WGS84 ellipsoid.
_MIN_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON_EQUATOR = 111_320.0
_BOX_MARGIN = 1.01
# A bbox up to this size (about 2 × 2 km) is always best served through the spatial index,
# so its page can reuse one generic plan; a bigger one is planned for the box it is.
_SMALL_BOX_DEG2 = 0.0004
_INT4_MAX = 2**31 - 1


@dataclass(frozen=True)
class Caller:
    """Whoever holds the bearer token of a request: role and the area it may see."""

    token_id: int
    name: str
    role: str
    area_code: str | None
    areas: frozenset[str] | None  # codes at or under the area; None = the whole city
    communities: tuple[str, ...] | None  # community codes under the area; None = all

    @property
    def actor(self) -> str:
        """How the audit log names this caller: ``name#token_id``."""
        return f"{self.name}#{self.token_id}"

    @property
    def scoped(self) -> bool:
        """True when the caller sees only one area."""
        return self.areas is not None

    @property
    def masked(self) -> bool:
        """True when ID and phone numbers are masked for this caller."""
        return not sees_unmasked(self.role)

    def sees_community(self, code: str | None) -> bool:
        """True when a row of community ``code`` is inside the caller's area."""
        return self.areas is None or (code is not None and code in self.areas)

    def sees_area(self, code: str | None) -> bool:
        """True when an admin area is the caller's area or lies under it."""
        return self.areas is None or (code is not None and code in self.areas)


def box_degrees(lat: float, radius_m: float) -> tuple[float, float]:
    """Half-width and half-height in degrees of a box that surely holds a circle of radius_m."""
    dy = radius_m / _MIN_M_PER_DEG_LAT * _BOX_MARGIN
    top = min(abs(lat) + dy, 89.9)
    dx = radius_m / (_M_PER_DEG_LON_EQUATOR * math.cos(math.radians(top))) * _BOX_MARGIN
    return min(dx, 180.0), min(dy, 90.0)


def display_code(code: str) -> str:
    """The hyphenated display form of a canonical (stored) house code."""
    return f"{code[:12]}-{code[12:16]}-{code[16:18]}-{code[18:22]}-{code[22:]}"


def point(lon: float, lat: float) -> dict[str, Any]:
    """A GeoJSON Point."""
    return {"type": "Point", "coordinates": [float(lon), float(lat)]}


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def _float(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _geometry(geojson: Any) -> Any:
    return orjson.loads(geojson) if geojson is not None else None


# --------------------------------------------------------------------------- workload cache


WORKLOAD_INPUTS: tuple[str, ...] = (*GRID_COUNT_COLUMNS, "co_managers_assigned", "area_km2")
WORKLOAD_OUTPUTS: tuple[str, ...] = (
    *WORKLOAD_INPUTS,
    "police_inspections_per_month", "committee_inspections_per_month", "inspections_per_month",
    "co_managers_needed", "specialists_needed", "co_managers_gap",
    "floating_registration_rate", "floating_registration_rate_target",
    "floating_registration_rate_ok", "rental_registration_rate",
    "rental_registration_rate_target", "rental_registration_rate_ok", "consistency_rate",
    "consistency_rate_target", "consistency_rate_ok", "tier", "tier_reasons",
)


class WorkloadCache:
    """Derived workload of a grid, keyed by its inputs (the counts row), so never stale.

    ``gridmgr.workload.derive_workload`` is a pure function of one grid's counts, staff
    and area (tens of milliseconds through pandas for a single row), so a worker derives
    every grid once at start-up in one vectorised call and afterwards only the grids whose
    counts have changed.
    """

    def __init__(self, settings: WorkloadSettings, tiers: TierSettings, size: int) -> None:
        self.settings, self.tiers, self.size = settings, tiers, size
        self._cache: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(row: Mapping[str, Any]) -> tuple[Any, ...]:
        """The inputs of one grid's derivation (missing counts are 0)."""
        return tuple(int(row.get(c) or 0) for c in WORKLOAD_INPUTS[:-1]) + (
            round(float(row.get("area_km2") or 0.0), 9),)

    def get(self, row: Mapping[str, Any]) -> dict[str, Any] | None:
        """The cached workload for a grid's inputs, or None."""
        return self._cache.get(self.key(row))

    def derive(self, rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Derive (vectorised) and cache the workload of many grids' inputs (sync)."""
        if not rows:
            return []
        keys = [self.key(r) for r in rows]
        frame = pd.DataFrame([dict(zip(WORKLOAD_INPUTS, k, strict=True)) for k in keys])
        frame.insert(0, "grid_id", [f"g{i}" for i in range(len(keys))])
        frame.insert(1, "community_code", "")
        derived = derive_workload(frame, self.settings, self.tiers)
        out = []
        for key, rec in zip(keys, derived[list(WORKLOAD_OUTPUTS)].to_dict("records"),
                            strict=True):
            rec = {k: (_float(v) if isinstance(v, float) else v) for k, v in rec.items()}
            out.append(rec)
            with self._lock:
                if self.size and len(self._cache) >= self.size:
                    self._cache.clear()
                if self.size:
                    self._cache[key] = rec
        return out

    async def workload(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The workload of one grid, derived in the threadpool on a cache miss."""
        hit = self.get(row)
        if hit is not None:
            return hit
        return (await run_in_threadpool(self.derive, [row]))[0]


# --------------------------------------------------------------------------- shaping


def house_out(row: Row) -> dict[str, Any]:
    """A HouseOut dict from a HOUSE_BY_CODE row."""
    code = str(row["house_code"])
    grid = None
    if row["grid_id"] is not None:
        grid = {"grid_id": row["grid_id"], "community_code": row["grid_community"],
                "assigned_tier": row["grid_tier"]}
    return {
        "house_code": code, "display_code": display_code(code),
        "district_code": code[:6], "street_code": code[:9],
        "community_code": row["community_code"], "address": row["address"],
        "building": _int(row["building"]), "unit": _int(row["unit"]), "room": _int(row["room"]),
        "area_m2": _float(row["area_m2"]), "use": row["use"],
        "outside_areas": bool(row["outside_areas"]), "location": point(row["lon"], row["lat"]),
        "grid": grid,
    }


def person_out(row: Row, masked: bool, *, resident: bool = False) -> dict[str, Any]:
    """A PersonOut (or, with ``resident``, ResidentOut) dict, masked for the role."""
    out = {
        "person_id": int(row["person_id"]), "name": row["name"], "sex": row["sex"],
        "birth_date": None if masked else row["birth_date"],
        "id_number": mask_id_number(row["id_number"]) if masked else row["id_number"],
        "phone": (mask_phone(row["phone"]) if masked else row["phone"]) or None,
        "hukou_code": row["hukou_code"], "floating": bool(row["floating"]),
        "person_class": row["person_class"], "registered_on": row["registered_on"],
    }
    if resident:
        out["arrived_on"] = row["arrived_on"]
    return out


def grid_out(row: Row, workload: dict[str, Any]) -> dict[str, Any]:
    """A GridOut dict from a grid_detail row and its derived workload."""
    geometry = _geometry(row["geojson"])
    if geometry is not None and geometry.get("type") == "Polygon":
        geometry = {"type": "MultiPolygon", "coordinates": [geometry["coordinates"]]}
    return {
        "grid_id": row["grid_id"], "community_code": row["community_code"],
        "police_area": row["police_area"], "assigned_tier": row["tier"],
        "tier": workload["tier"], "co_managers_assigned": int(row["co_managers_assigned"]),
        "area_km2": float(row["area_km2"]), "locked": bool(row["locked"]),
        "boundary": geometry, "workload": workload,
    }


def feature(collection: str, row: Row) -> dict[str, Any]:
    """A GeoJSON Feature of an OGC collection from an items row."""
    if collection == "houses":
        return _house_feature(row["id"], row["house_code"], row["address"],
                              row["community_code"], row["building"], row["unit"], row["room"],
                              row["area_m2"], row["use"], row["lon"], row["lat"],
                              row["grid_id"])
    if collection == "grids":
        props = {"grid_id": row["grid_id"], "community_code": row["community_code"],
                 "tier": row["tier"], "police_area": row["police_area"],
                 "co_managers_assigned": int(row["co_managers_assigned"]),
                 "area_km2": float(row["area_km2"])}
        return {"type": "Feature", "id": row["grid_id"], "geometry": _geometry(row["geojson"]),
                "properties": props}
    props = {"code": row["code"], "name": row["name"], "level": row["level"],
             "parent_code": row["parent_code"]}
    return {"type": "Feature", "id": row["code"], "geometry": _geometry(row["geojson"]),
            "properties": props}


def _house_feature(hid: int, code: str | None, address: str | None, community: str | None,
                   building: int | None, unit: int | None, room: int | None,
                   area_m2: float | None, use: str | None, lon: float, lat: float,
                   grid_id: str | None) -> dict[str, Any]:
    # building/unit/room are INTEGER and area_m2 REAL in both stores: no conversion.
    return {"type": "Feature", "id": code if code is not None else f"house-{hid}",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"house_code": code, "address": address, "community_code": community,
                           "grid_id": grid_id, "building": building, "unit": unit, "room": room,
                           "area_m2": area_m2, "use": use}}


def house_box_features(rows: list[Any]) -> list[dict[str, Any]]:
    """GeoJSON Features from ``sql.house_box_page`` rows (asyncpg Records, unpacked in order).

    The same features as ``feature("houses", row)``, built by the same function; unpacking
    each record once instead of looking up eleven columns by name is cheaper on the busiest
    route.
    """
    return [_house_feature(*row[1:]) for row in rows]


# --------------------------------------------------------------------------- the store


class Store:
    """Every read the API makes, over one store, scoped by caller."""

    def __init__(self, db: Db, engine: Engine, workload: WorkloadCache) -> None:
        self.db, self.engine, self.workload = db, engine, workload
        self.dialect = db.dialect

    # ---- lifecycle

    async def open(self, prewarm: bool = True) -> None:
        """Open pools and derive every grid's workload once."""
        await self.db.open()
        if prewarm:
            await self.prewarm()

    async def close(self) -> None:
        """Close pools and the sync engine."""
        await self.db.close()
        await run_in_threadpool(self.engine.dispose)

    async def prewarm(self) -> int:
        """Derive and cache the workload of every grid of the adopted plan; return how many."""
        async with self.db.unit() as u:
            rows = await u.fetch(sql.GRID_INPUTS)
        await run_in_threadpool(self.workload.derive, [dict(r) for r in rows])
        return len(rows)

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, *args, **kwargs)`` on a sync SQLAlchemy connection in the threadpool."""
        def call() -> T:
            with self.engine.connect() as conn:
                return fn(conn, *args, **kwargs)

        return await run_in_threadpool(call)

    def _codes(self, caller: Caller, params: dict[str, Any]) -> bool:
        """Bind the caller's communities as :codes when scoped; return whether it is."""
        if caller.communities is None:
            return False
        params["codes"] = self.db.codes_param(caller.communities)
        return True

    # ---- tokens

    async def caller_for(self, token: str) -> Caller | None:
        """The caller holding a live token, with the area it may see; None if unknown."""
        async with self.db.unit(generic=True) as u:
            row = await u.fetchrow(sql.TOKEN, {"token_hash": hash_token(token), "revoked": False})
            if row is None:
                return None
            area = row["area_code"]
            areas = communities = None
            if area is not None:
                sub = await u.fetch(AREA_SUBTREE_SQL, {"a": area})
                areas = frozenset(str(r["code"]) for r in sub)
                communities = tuple(sorted(str(r["code"]) for r in sub
                                           if r["level"] == "community"))
        return Caller(token_id=int(row["id"]), name=str(row["name"]), role=str(row["role"]),
                      area_code=area, areas=areas, communities=communities)

    # ---- houses and people

    async def house(self, code: str, caller: Caller) -> dict[str, Any]:
        """The house with a canonical code, its grid and location."""
        async with self.db.unit(generic=True) as u:
            row = await u.fetchrow(sql.HOUSE_BY_CODE, {"code": code})
        if row is None or not caller.sees_community(row["community_code"]):
            raise NotFound(f"no house with code {code}")
        return house_out(row)

    async def residents(self, code: str, caller: Caller, client: str | None) -> dict[str, Any]:
        """Who lives at a house now (以房找人), masked by role; audited in the same transaction."""
        entry = AuditEntry(actor=caller.actor, role=caller.role, action="house_residents",
                           target=code, client_addr=client)
        if self.dialect == sql.PG:
            return await self._residents_pg(code, caller, entry)
        async with self.db.unit(write=True) as u:
            # The audit row is written first: a SpatiaLite transaction that starts with a
            # write holds the write lock from then on and cannot fail later upgrading a read.
            audit = await u.fetchrow(INSERT_RETURNING_SQL, entry.params(utcnow()))
            row = await u.fetchrow(sql.HOUSE_BY_CODE, {"code": code})
            if row is None:
                entry = _outcome(entry, "not_found")
            elif not caller.sees_community(row["community_code"]):
                entry = _outcome(entry, "outside_area")
            else:
                people = await u.fetch(sql.RESIDENTS, {"house_id": row["id"]})
                entry = _outcome(entry, "found", len(people))
            assert audit is not None
            await u.execute(SET_DETAIL_SQL, {"id": audit["id"], "detail": entry.detail()})
        if entry.outcome != "found":
            # Outside the caller's area reads exactly like a missing house: no oracle.
            raise NotFound(f"no house with code {code}")
        assert row is not None
        masked = caller.masked
        residents = [person_out(p, masked, resident=True) for p in people]
        return {"house": house_out(row), "masked": masked, "count": len(residents),
                "residents": residents}

    async def _residents_pg(self, code: str, caller: Caller, entry: AuditEntry
                            ) -> dict[str, Any]:
        """Residents on PostGIS: read and audit row in one statement (one round trip)."""
        params: dict[str, Any] = {"code": code, **entry.params(utcnow())}
        scoped = self._codes(caller, params)
        async with self.db.unit() as u:
            rows = await u.fetch(sql.residents_audited(scoped), params)
        if not rows or not rows[0]["in_scope"]:
            raise NotFound(f"no house with code {code}")
        masked = caller.masked
        residents = [person_out(p, masked, resident=True) for p in rows
                     if p["person_id"] is not None]
        return {"house": house_out(rows[0]), "masked": masked, "count": len(residents),
                "residents": residents}

    async def person_houses(self, person_id: int, caller: Caller, client: str | None
                            ) -> dict[str, Any]:
        """Where a person lives and has lived, newest first; audited in the same transaction.

        A police caller sees the person only through stays inside its area, and only
        those stays.
        """
        entry = AuditEntry(actor=caller.actor, role=caller.role, action="person_houses",
                           target=str(person_id), client_addr=client)
        stays: list[Row] = []
        async with self.db.unit(write=True) as u:
            audit = await u.fetchrow(INSERT_RETURNING_SQL, entry.params(utcnow()))
            person = await u.fetchrow(sql.PERSON, {"person_id": person_id})
            if person is None:
                entry = _outcome(entry, "not_found")
            else:
                stays = [s for s in await u.fetch(sql.PERSON_RESIDENCES, {"person_id": person_id})
                         if caller.sees_community(s["community_code"])]
                if caller.scoped and not stays:
                    entry = _outcome(entry, "outside_area")
                else:
                    entry = _outcome(entry, "found", len(stays))
            assert audit is not None
            await u.execute(SET_DETAIL_SQL, {"id": audit["id"], "detail": entry.detail()})
        if entry.outcome != "found":
            raise NotFound(f"no person with id {person_id}")
        assert person is not None
        houses = [{"house_code": s["house_code"], "address": s["address"],
                   "community_code": s["community_code"], "grid_id": s["grid_id"],
                   "location": point(s["lon"], s["lat"]), "arrived_on": s["arrived_on"],
                   "left_on": s["left_on"], "current": s["left_on"] is None} for s in stays]
        return {"person": person_out(person, caller.masked), "masked": caller.masked,
                "count": len(houses), "houses": houses}

    async def houses_near(self, lon: float, lat: float, radius_m: float, limit: int,
                          caller: Caller) -> dict[str, Any]:
        """Houses within radius_m metres of a point, nearest first."""
        dx, dy = box_degrees(lat, radius_m)
        params: dict[str, Any] = {"lon": lon, "lat": lat, "r": float(radius_m), "lim": limit}
        if self.dialect == sql.PG:
            params.update(dx=dx, dy=dy)
        else:
            params.update(x0=lon - dx, y0=lat - dy, x1=lon + dx, y1=lat + dy)
        scoped = self._codes(caller, params)
        async with self.db.unit(generic=True) as u:
            rows = await u.fetch(sql.houses_near(self.dialect, scoped), params)
        houses = [{"house_code": r["house_code"], "address": r["address"],
                   "community_code": r["community_code"], "grid_id": r["grid_id"],
                   "location": point(r["lon"], r["lat"]),
                   "distance_m": round(float(r["distance_m"]), 3)} for r in rows]
        return {"lon": lon, "lat": lat, "radius_m": radius_m, "count": len(houses),
                "houses": houses}

    # ---- grids

    async def grid(self, caller: Caller, *, grid_id: str | None = None,
                   lon: float | None = None, lat: float | None = None) -> dict[str, Any]:
        """A grid of the adopted plan by id, or the one holding a point, with its workload."""
        params: dict[str, Any] = {}
        scoped = self._codes(caller, params)
        if grid_id is not None:
            params["grid_id"] = grid_id
            q = sql.grid_detail(self.dialect, "grid_id", scoped)
        else:
            params.update(lon=lon, lat=lat)
            q = sql.grid_detail(self.dialect, "point", scoped)
        async with self.db.unit(generic=True) as u:
            row = await u.fetchrow(q, params)
        if row is None:
            if grid_id is not None:
                raise NotFound(f"no grid {grid_id!r} in the adopted plan")
            raise NotFound(f"no grid of the adopted plan holds the point ({lon}, {lat})")
        return grid_out(row, await self.workload.workload(row))

    async def grid_houses(self, grid_id: str, caller: Caller, *, after: int, limit: int,
                          plan_id: int | None) -> tuple[int, list[dict[str, Any]], bool]:
        """One page of a grid's houses after house id ``after``: (plan, houses, more?)."""
        async with self.db.unit() as u:
            grid = await u.fetchrow(sql.GRID_LOOKUP, {"grid_id": grid_id})
            if grid is None or not caller.sees_community(grid["community_code"]):
                raise NotFound(f"no grid {grid_id!r} in the adopted plan")
            if plan_id is not None and int(grid["plan_id"]) != plan_id:
                raise Conflict("the cursor belongs to a plan that is no longer adopted; "
                               "start again without a cursor")
            params: dict[str, Any] = {"plan_id": grid["plan_id"], "grid_pk": grid["grid_pk"],
                                      "after": after, "lim": limit + 1}
            scoped = self._codes(caller, params)
            rows = await u.fetch(sql.grid_houses(self.dialect, scoped), params)
        more = len(rows) > limit
        houses = [{"id": int(r["id"]), "house_code": r["house_code"], "address": r["address"],
                   "community_code": r["community_code"], "building": _int(r["building"]),
                   "unit": _int(r["unit"]), "room": _int(r["room"]), "use": r["use"],
                   "location": point(r["lon"], r["lat"])} for r in rows[:limit]]
        return int(grid["plan_id"]), houses, more

    # ---- OGC API Features

    async def items(self, collection: str, caller: Caller, *,
                    bbox: tuple[float, float, float, float] | None, limit: int, offset: int,
                    count_cap: int) -> tuple[list[dict[str, Any]], int | None]:
        """A page of features and numberMatched (None when more than ``count_cap`` match)."""
        params: dict[str, Any] = {"lim": limit, "off": offset}
        small = False
        if bbox is not None:
            params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
            small = (bbox[2] - bbox[0]) * (bbox[3] - bbox[1]) <= _SMALL_BOX_DEG2
        scoped = self._scope_collection(collection, caller, params)
        if (small and collection == "houses" and self.dialect == sql.PG
                and offset + limit <= _INT4_MAX):
            async with self.db.unit(generic=True) as u:
                rows = await u.fetch(sql.house_box_page(scoped), params)
            n = int(rows[0]["n"])
            page = house_box_features(rows) if rows[0]["id"] is not None else []
            return page, (n if n <= count_cap else None)
        page_sql = sql.items(self.dialect, collection, bbox=bbox is not None, scoped=scoped)
        count_sql = sql.items(self.dialect, collection, bbox=bbox is not None, scoped=scoped,
                              count=True)
        count_params = {k: v for k, v in params.items() if k not in ("lim", "off")}
        count_params["cap"] = count_cap + 1
        params["cap"] = count_cap + 1
        async with self.db.unit(generic=small) as u:
            rows = await u.fetch(page_sql, params)
            if rows:
                n = rows[0]["number_matched"]
            else:
                n = (await u.fetchrow(count_sql, count_params) or {"n": 0})["n"]
        matched = int(n) if int(n) <= count_cap else None
        return [feature(collection, r) for r in rows], matched

    async def item(self, collection: str, fid: str, caller: Caller) -> dict[str, Any]:
        """One feature of a collection by its id."""
        params: dict[str, Any] = {"fid": fid}
        scoped = self._scope_collection(collection, caller, params)
        async with self.db.unit() as u:
            row = await u.fetchrow(sql.items(self.dialect, collection, bbox=False,
                                             scoped=scoped, by_id=True), params)
        if row is None:
            raise NotFound(f"no feature {fid!r} in collection {collection!r}")
        return feature(collection, row)

    def _scope_collection(self, collection: str, caller: Caller, params: dict[str, Any]
                          ) -> bool:
        if collection == "areas":
            if caller.areas is None:
                return False
            params["codes"] = self.db.codes_param(sorted(caller.areas))
            return True
        return self._codes(caller, params)

    async def extent(self) -> list[float] | None:
        """The bounding box of the loaded admin areas, or None when there are none."""
        async with self.db.unit() as u:
            row = await u.fetchrow(sql.extent(self.dialect))
        if row is None or row["x0"] is None:
            return None
        return [float(row["x0"]), float(row["y0"]), float(row["x1"]), float(row["y1"])]


def _outcome(entry: AuditEntry, outcome: str, rows: int = 0) -> AuditEntry:
    return AuditEntry(entry.actor, entry.role, entry.action, entry.target, entry.client_addr,
                      outcome, rows)
