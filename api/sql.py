"""The API's SQL for each store: PostGIS (GiST, geography distances) and SpatiaLite (SpatialIndex).

Every value is a bound parameter (``:name``); the only text put together here is SQL
itself (fixed fragments chosen by dialect and by whether the caller is scoped to an area).
Spatial lookups use the spatial index on both stores: on PostGIS ``&&``/``ST_Intersects``
and KNN ``<->`` through GiST, with geodesic metres from ``geography``; on SpatiaLite the
``SpatialIndex`` virtual table (R*Tree) as the prefilter and ``ST_Distance(a, b, 1)`` for
metres on the WGS84 ellipsoid.
"""

# S608 flags f-strings that build SQL.  Here they only join the fixed fragments above and
# below (columns, joins, dialect functions); every value reaches the database bound.
# ruff: noqa: S608

from __future__ import annotations

import functools

from gridmgr.store.models import GRID_COUNT_COLUMNS

PG, LITE = "postgresql", "sqlite"

ADOPTED = "(SELECT id FROM boundary_plan WHERE status = 'adopted' ORDER BY id DESC LIMIT 1)"

HOUSE_GRID_JOIN = (
    f"LEFT JOIN house_grid hg ON hg.house_id = h.id AND hg.plan_id = {ADOPTED} "
    "LEFT JOIN grid g ON g.id = hg.grid_pk"
)

HOUSE_BY_CODE = (
    "SELECT h.id, h.house_code, h.address, h.building, h.unit, h.room, h.area_m2, h.use, "
    "h.community_code, h.outside_areas, h.lon, h.lat, g.grid_id, "
    "g.community_code AS grid_community, g.tier AS grid_tier "
    f"FROM house h {HOUSE_GRID_JOIN} WHERE h.house_code = :code"
)

RESIDENTS = (
    "SELECT p.id AS person_id, p.name, p.sex, p.birth_date, p.id_number, p.phone, "
    "p.hukou_code, p.floating, p.person_class, p.registered_on, r.arrived_on "
    "FROM residence r JOIN person p ON p.id = r.person_id "
    "WHERE r.house_id = :house_id AND r.left_on IS NULL ORDER BY r.arrived_on, p.id"
)

PERSON = (
    "SELECT p.id AS person_id, p.name, p.sex, p.birth_date, p.id_number, p.phone, "
    "p.hukou_code, p.floating, p.person_class, p.registered_on FROM person p "
    "WHERE p.id = :person_id"
)

PERSON_RESIDENCES = (
    "SELECT r.arrived_on, r.left_on, h.house_code, h.address, h.community_code, h.lon, h.lat, "
    f"g.grid_id FROM residence r JOIN house h ON h.id = r.house_id {HOUSE_GRID_JOIN} "
    "WHERE r.person_id = :person_id "
    "ORDER BY CASE WHEN r.left_on IS NULL THEN 0 ELSE 1 END, r.arrived_on DESC, r.id DESC"
)

@functools.cache
def residents_audited(scoped: bool) -> str:
    """PostGIS: a house, its current residents and the audit row, in one statement.

    A statement is one transaction, and a data-modifying CTE always runs to completion,
    so the audit row is written (with the outcome) exactly when the read happens — in one
    round trip instead of BEGIN, two reads, INSERT and COMMIT.  The outcome text matches
    ``gridmgr.store.audit.AuditEntry.detail``.
    """
    in_scope = ("COALESCE(h.community_code = ANY(CAST(:codes AS text[])), FALSE)" if scoped
                else "TRUE")
    house = HOUSE_BY_CODE.replace("SELECT h.id,", f"SELECT {in_scope} AS in_scope, h.id,", 1)
    people = RESIDENTS.replace("FROM residence r", "FROM h JOIN residence r ON r.house_id = h.id"
                               " AND h.in_scope", 1).replace("r.house_id = :house_id AND ", "")
    people = people[:people.index(" ORDER BY")]
    return (
        f"WITH h AS ({house}), p AS ({people}), a AS ("
        "INSERT INTO audit_log (at, actor, role, action, target, client_addr, detail) "
        "SELECT :at, :actor, :role, :action, :target, :client_addr, "
        "'{\"outcome\":\"' || CASE WHEN NOT EXISTS (SELECT 1 FROM h) THEN 'not_found' "
        "WHEN NOT (SELECT in_scope FROM h) THEN 'outside_area' ELSE 'found' END "
        "|| '\",\"rows\":' || (SELECT count(*) FROM p) || '}' RETURNING id) "
        "SELECT h.*, p.* FROM h LEFT JOIN p ON TRUE ORDER BY p.arrived_on, p.person_id"
    )


TOKEN = (
    "SELECT id, name, role, area_code FROM api_token "
    "WHERE token_hash = :token_hash AND revoked = :revoked"
)

GRID_COLUMNS = (
    "g.id AS grid_pk, g.plan_id, g.grid_id, g.community_code, g.tier, g.police_area, "
    "g.co_managers_assigned, g.area_km2, g.locked"
)
COUNT_COLUMNS = ", ".join(f"c.{c}" for c in GRID_COUNT_COLUMNS)
GRID_INPUTS = (
    f"SELECT {COUNT_COLUMNS}, g.co_managers_assigned, g.area_km2 FROM grid g "
    f"JOIN grid_count c ON c.grid_pk = g.id WHERE g.plan_id = {ADOPTED}"
)
"""Every grid's workload inputs (counts, staff, area) in the adopted plan."""

GRID_LOOKUP = (
    f"SELECT g.id AS grid_pk, g.plan_id, g.community_code FROM grid g "
    f"WHERE g.plan_id = {ADOPTED} AND g.grid_id = :grid_id"
)

GRID_HOUSES = (
    "SELECT h.id, h.house_code, h.address, h.community_code, h.building, h.unit, h.room, "
    "h.use, h.lon, h.lat FROM house_grid hg JOIN house h ON h.id = hg.house_id "
    "WHERE hg.plan_id = :plan_id AND hg.grid_pk = :grid_pk AND hg.house_id > :after{scope} "
    "ORDER BY hg.house_id LIMIT :lim"
)


def in_codes(dialect: str, column: str, param: str = "codes") -> str:
    """`column` is one of the bound list of codes (text[] on PostGIS, JSON on SpatiaLite)."""
    if dialect == PG:
        return f" AND {column} = ANY(CAST(:{param} AS text[]))"
    return f" AND {column} IN (SELECT value FROM json_each(:{param}))"


def _geojson(dialect: str, column: str) -> str:
    return f"ST_AsGeoJSON({column}, 7)" if dialect == PG else f"AsGeoJSON({column}, 7)"


def _point(dialect: str) -> str:
    if dialect == PG:
        return "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
    return "MakePoint(:lon, :lat, 4326)"


def _rtree(table: str, alias: str, frame: str) -> str:
    # SpatiaLite's R*Tree through the SpatialIndex virtual table; rowid = the integer key.
    return (f" AND {alias}.id IN (SELECT ROWID FROM SpatialIndex WHERE f_table_name = '{table}'"
            f" AND f_geometry_column = 'geom' AND search_frame = {frame})")


@functools.cache
def grid_detail(dialect: str, by: str, scoped: bool) -> str:
    """A grid of the adopted plan with its boundary and counts, by ``grid_id`` or ``point``."""
    scope = in_codes(dialect, "g.community_code") if scoped else ""
    head = (f"SELECT {GRID_COLUMNS}, {_geojson(dialect, 'g.geom')} AS geojson, {COUNT_COLUMNS} "
            "FROM grid g LEFT JOIN grid_count c ON c.grid_pk = g.id "
            f"WHERE g.plan_id = {ADOPTED}")
    if by == "grid_id":
        return f"{head} AND g.grid_id = :grid_id{scope}"
    pt = _point(dialect)
    if dialect == PG:
        where = f" AND ST_Intersects(g.geom, {pt})"
    else:
        where = _rtree("grid", "g", pt) + f" AND ST_Intersects(g.geom, {pt})"
    # A point on a shared edge belongs to the smallest grid_id, as in assignment.
    return f"{head}{where}{scope} ORDER BY g.grid_id LIMIT 1"


@functools.cache
def grid_houses(dialect: str, scoped: bool) -> str:
    """One keyset page of a grid's houses in the adopted plan."""
    return GRID_HOUSES.format(scope=in_codes(dialect, "h.community_code") if scoped else "")


@functools.cache
def houses_near(dialect: str, scoped: bool) -> str:
    """Houses within :r metres of (:lon, :lat), nearest first, at most :lim.

    PostGIS: a GiST KNN scan (``<->``, in degrees) finds :lim candidates inside the box
    that circumscribes the circle; the largest geodesic distance among them bounds the
    true :lim nearest, so a second indexed pass inside that smaller circle, ordered by
    geodesic distance, is exact — and its cost follows :lim, not the radius.
    SpatiaLite: the R*Tree prefilters the box (:x0..:y1), distances are on the ellipsoid.
    """
    scope = in_codes(dialect, "h.community_code") if scoped else ""
    cols = "h.id, h.house_code, h.address, h.community_code, h.lon, h.lat"
    if dialect == PG:
        pt = _point(dialect)
        geog = f"CAST({pt} AS geography)"
        return (
            "WITH knn AS ("
            f" SELECT ST_Distance(CAST(h.geom AS geography), {geog}) AS d FROM house h"
            f" WHERE h.geom && ST_Expand({pt}, CAST(:dx AS float8), CAST(:dy AS float8)){scope}"
            f" ORDER BY h.geom <-> {pt} LIMIT :lim),"
            " bound AS (SELECT CASE WHEN count(*) < :lim THEN CAST(:r AS float8)"
            # ST_DWithin(g, p, ST_Distance(g, p)) can be false by rounding: pad by 1 mm
            " ELSE LEAST(max(d) + 0.001, CAST(:r AS float8)) END AS r FROM knn)"
            # Houses stack in buildings (every unit at one point): the geodesic distance,
            # the costly part, is computed once per distinct point, not once per house.
            ", cand AS (SELECT h.id, h.house_code, h.address, h.community_code, h.lon, h.lat"
            " FROM bound, house h"
            f" WHERE h.geom && ST_Expand({pt}, CAST(:dx AS float8) * bound.r / CAST(:r AS float8),"
            f" CAST(:dy AS float8) * bound.r / CAST(:r AS float8)){scope}),"
            # MATERIALIZED, or the planner inlines it and computes per house again
            " pts AS MATERIALIZED (SELECT p.lon, p.lat, ST_Distance(CAST("
            f"ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326) AS geography), {geog}) AS distance_m"
            " FROM (SELECT DISTINCT lon, lat FROM cand) p)"
            " SELECT h.*, g.grid_id FROM ("
            " SELECT c.*, pts.distance_m FROM bound, cand c JOIN pts ON pts.lon = c.lon"
            " AND pts.lat = c.lat WHERE pts.distance_m <= bound.r"
            " ORDER BY pts.distance_m, c.id LIMIT :lim) h"
            f" {HOUSE_GRID_JOIN} ORDER BY h.distance_m, h.id"
        )
    frame = "BuildMbr(:x0, :y0, :x1, :y1, 4326)"
    return (
        "SELECT h.*, g.grid_id FROM (SELECT * FROM ("
        f"SELECT {cols}, ST_Distance(h.geom, {_point(dialect)}, 1) AS distance_m"
        f" FROM house h WHERE 1 = 1{_rtree('house', 'h', frame)}{scope})"
        f" WHERE distance_m <= :r ORDER BY distance_m, id LIMIT :lim) h {HOUSE_GRID_JOIN}"
        " ORDER BY h.distance_m, h.id"
    )


COLLECTIONS = ("grids", "houses", "areas")


@functools.cache
def items(dialect: str, collection: str, *, bbox: bool, scoped: bool, by_id: bool = False,
          count: bool = False) -> str:
    """OGC items of a collection: a page, one item, or the capped count alone.

    A page (:lim, :off) carries its capped count (:cap) as ``number_matched``; one item
    is looked up by :fid.
    """
    env = ("ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)" if dialect == PG
           else "BuildMbr(:x0, :y0, :x1, :y1, 4326)")
    if collection == "houses":
        cols = ("h.id, h.house_code, h.address, h.community_code, h.building, h.unit, h.room, "
                "h.area_m2, h.use, h.lon, h.lat")
        src = count_src = "house h"
        where = "1 = 1"
        if bbox:
            # exact point-in-box test on the stored lon/lat; the index does the prefilter
            exact = " AND h.lon BETWEEN :x0 AND :x1 AND h.lat BETWEEN :y0 AND :y1"
            where += (f" AND h.geom && {env}" if dialect == PG
                      else _rtree("house", "h", env)) + exact
        if scoped:
            where += in_codes(dialect, "h.community_code")
        key, order = "h.house_code", "h.id"
    elif collection == "grids":
        cols = ("g.grid_id, g.community_code, g.tier, g.police_area, g.co_managers_assigned, "
                f"g.area_km2, {_geojson(dialect, 'g.geom')} AS geojson")
        src = count_src = "grid g"
        where = f"g.plan_id = {ADOPTED}"
        if bbox:
            if dialect != PG:
                where += _rtree("grid", "g", env)
            where += f" AND ST_Intersects(g.geom, {env})"
        if scoped:
            where += in_codes(dialect, "g.community_code")
        key, order = "g.grid_id", "g.grid_id"
    elif collection == "areas":
        cols = f"a.code, a.name, a.level, a.parent_code, {_geojson(dialect, 'a.geom')} AS geojson"
        src = count_src = "admin_area a"
        where = "1 = 1"
        if bbox:
            if dialect != PG:
                where += _rtree("admin_area", "a", env)
            where += f" AND ST_Intersects(a.geom, {env})"
        if scoped:
            where += in_codes(dialect, "a.code")
        key, order = "a.code", "a.code"
    else:
        raise ValueError(f"unknown collection {collection!r}")
    counted = f"SELECT count(*) FROM (SELECT 1 FROM {count_src} WHERE {where} LIMIT :cap) s"
    if count:
        return counted.replace("count(*)", "count(*) AS n", 1)
    if by_id:
        page = f"SELECT {cols} FROM {src} WHERE {where} AND {key} = :fid"
    else:
        # numberMatched comes back with the page (one round trip); an uncorrelated
        # subquery runs once.  An empty page needs the count query on its own.
        page = (f"SELECT {cols}, ({counted}) AS number_matched FROM {src} WHERE {where} "
                f"ORDER BY {order} LIMIT :lim OFFSET :off")
    if collection != "houses":
        return page
    # A house's grid is joined to the page only, not to every house in the box.
    return (f"SELECT h.*, g.grid_id FROM ({page}) h {HOUSE_GRID_JOIN}"
            + ("" if by_id else " ORDER BY h.id"))


HOUSE_BOX_COLUMNS = ("n", "id", "house_code", "address", "community_code", "building", "unit",
                     "room", "area_m2", "use", "lon", "lat", "grid_id")
"""The columns of ``house_box_page``, in order (``hotpath.house_box_features`` unpacks them)."""


@functools.cache
def house_box_page(scoped: bool) -> str:
    """PostGIS: a page of the houses in a bbox (:lim, :off) and how many match (``n``), in one pass.

    The box is read once: the count and the page's row addresses (ctid) and ids, in house
    order, come from the same bitmap scan; the rows are then fetched by address (a TID
    scan, no index descent), their grid rows by one index scan over the page's ids.  The
    page query of ``items`` reads the box twice (page and capped count) and looks up each
    house's grid row on its own.  There is always one row: past the end only ``n`` is set.
    Every match is sorted, so it suits boxes whose plan is the bitmap scan anyway (not
    the whole city); :lim + :off must fit an int4.  The subquery's ORDER BY also keeps
    the planner from flattening it into a join over the whole house table, which it does
    to the generic plan otherwise; there is one outer row, so its order is the result's.
    """
    # A filter on the box's rows (a hashed subplan), not an index condition: the generic
    # plan would otherwise AND the box's bitmap with the community index's (661 k entries
    # for a district, 35 ms), or test `= ANY` against every code of the array in turn.
    scope = (" AND (h.community_code IN (SELECT unnest(CAST(:codes AS text[])))) IS TRUE"
             if scoped else "")
    page = "[CAST(:off AS int) + 1 : CAST(:off AS int) + CAST(:lim AS int)]"
    return (
        f"WITH s AS (SELECT count(*) AS n, (array_agg(h.ctid ORDER BY h.id)){page} AS t, "
        f"(array_agg(h.id ORDER BY h.id)){page} AS i FROM house h "
        "WHERE h.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) "
        f"AND h.lon BETWEEN :x0 AND :x1 AND h.lat BETWEEN :y0 AND :y1{scope}) "
        f"SELECT s.n, {', '.join('p.' + c for c in HOUSE_BOX_COLUMNS[1:])} FROM s "
        "LEFT JOIN LATERAL (SELECT h.id, h.house_code, h.address, h.community_code, h.building, "
        "h.unit, h.room, h.area_m2, h.use, h.lon, h.lat, g.grid_id FROM house h "
        "LEFT JOIN (SELECT hg.house_id, hg.grid_pk FROM house_grid hg "
        f"WHERE hg.plan_id = {ADOPTED} AND hg.house_id = ANY(s.i)) hg ON hg.house_id = h.id "
        "LEFT JOIN grid g ON g.id = hg.grid_pk "
        "WHERE h.ctid = ANY(s.t) ORDER BY h.id) p ON TRUE"
    )


@functools.cache
def extent(dialect: str) -> str:
    """The bounding box of every admin area (the city the store holds)."""
    if dialect == PG:
        return ("SELECT min(ST_XMin(geom)) AS x0, min(ST_YMin(geom)) AS y0, "
                "max(ST_XMax(geom)) AS x1, max(ST_YMax(geom)) AS y1 FROM admin_area")
    return ("SELECT min(MbrMinX(geom)) AS x0, min(MbrMinY(geom)) AS y0, "
            "max(MbrMaxX(geom)) AS x1, max(MbrMaxY(geom)) AS y1 FROM admin_area")
