"""Tests for gridmgr.assign: the tie rule, islands, holes, PostGIS agreement, incremental."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box

from gridmgr.assign import (
    UNASSIGNED,
    Method,
    affected_points,
    assign_frame,
    assign_points,
    reassign_incremental,
)
from gridmgr.errors import BadInput

METHODS: list[Method] = ["raster", "strtree"]
STEP = 1 / 1024  # dyadic grid: edge midpoints and quarter points are exact doubles


def reference(x: np.ndarray, y: np.ndarray, geoms: np.ndarray) -> np.ndarray:
    """Brute force: lowest index whose polygon covers the point (GEOS covers), else -1."""
    pts = shapely.points(x, y)
    cover = shapely.covers(np.asarray(geoms, dtype=object)[:, None], pts[None, :])
    cover &= ~shapely.is_missing(np.asarray(geoms, dtype=object))[:, None]
    first = np.argmax(cover, axis=0)
    return np.where(cover.any(axis=0), first, UNASSIGNED).astype(np.int64)


def tessellation(seed: int, n: int, origin: tuple[float, float] = (104.0, 30.6),
                 size: float = 0.25) -> np.ndarray:
    """Voronoi cells of n random seeds over a box, snapped to the dyadic STEP grid."""
    rng = np.random.default_rng(seed)
    x0, y0 = origin
    frame = box(x0, y0, x0 + size, y0 + size)
    seeds = shapely.multipoints(np.c_[rng.uniform(x0, x0 + size, n), rng.uniform(y0, y0 + size, n)])
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame.buffer(size)))
    cells = shapely.intersection(cells, frame)
    cells = shapely.set_precision(cells, STEP)
    cells = cells[~shapely.is_empty(cells)]
    return cells[np.argsort(shapely.get_x(shapely.centroid(cells)), kind="stable")]


def boundary_points(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every vertex, and the midpoint and quarter points of every edge (exact doubles)."""
    rings = shapely.get_rings(shapely.get_parts(geoms))
    xs, ys = [], []
    for ring in rings:
        c = shapely.get_coordinates(ring)
        a, b = c[:-1], c[1:]
        for t in (0.0, 0.25, 0.5, 0.75):
            xs.append(a[:, 0] + t * (b[:, 0] - a[:, 0]))
            ys.append(a[:, 1] + t * (b[:, 1] - a[:, 1]))
    return np.concatenate(xs), np.concatenate(ys)


def city(seed: int = 0, n_grids: int = 60, n_random: int = 3000):
    """A small city: snapped Voronoi grids, one island grid, one holed grid, test points."""
    cells = tessellation(seed, n_grids)
    rng = np.random.default_rng(seed + 1)
    # Grid 3 also owns an island off the coast; grid 5 gets a hole that nobody fills.
    island = box(104.3, 30.65, 104.3 + 64 * STEP, 30.65 + 32 * STEP)
    cells[3] = MultiPolygon([*shapely.get_parts(cells[3]), island])
    c5 = cells[5]
    cx, cy = (np.round(np.array(c5.centroid.coords[0]) / STEP) * STEP).tolist()
    hole = box(cx - 2 * STEP, cy - 2 * STEP, cx + 2 * STEP, cy + 2 * STEP)
    if c5.contains(hole):
        cells[5] = c5.difference(hole)
    bx, by = boundary_points(cells)
    lo, hi = 104.0 - 0.02, 104.0 + 0.35
    rx = rng.uniform(lo, hi, n_random)
    ry = rng.uniform(30.6 - 0.02, 30.6 + 0.27, n_random)
    x = np.concatenate([bx, rx, [104.31, 104.5, np.nan, 104.1, np.inf]])
    y = np.concatenate([by, ry, [30.66, 30.7, 30.7, np.nan, 30.7]])
    return cells, x, y


# ---------------------------------------------------------------- hand-built cases
@pytest.mark.parametrize("method", METHODS)
def test_shared_edge_and_vertex_go_to_lowest_index(method: Method) -> None:
    a, b = box(0, 0, 1, 1), box(1, 0, 2, 1)
    x = np.array([1.0, 1.0, 1.0, 0.5, 1.5, 2.0, 3.0, 0.0])
    y = np.array([0.5, 1.0, 0.0, 0.5, 0.5, 0.5, 3.0, 0.0])
    got = assign_points(x, y, [a, b], method=method)
    assert got.tolist() == [0, 0, 0, 0, 1, 1, -1, 0]
    # Swap the order: the shared edge follows the lower index, not the shape.
    got = assign_points(x, y, [b, a], method=method)
    assert got.tolist() == [0, 0, 0, 1, 0, 0, -1, 1]


@pytest.mark.parametrize("method", METHODS)
def test_four_grids_meeting_at_a_vertex(method: Method) -> None:
    quads = [box(1, 1, 2, 2), box(0, 1, 1, 2), box(1, 0, 2, 1), box(0, 0, 1, 1)]
    got = assign_points([1.0, 1.0, 0.5, 1.0], [1.0, 0.5, 1.0, 2.0], quads, method=method)
    # (1,1) touches all four -> 0; (1,0.5) is on the edge of 2 and 3 -> 2;
    # (0.5,1) on 1 and 3 -> 1; (1,2) on 0 and 1 -> 0.
    assert got.tolist() == [0, 2, 1, 0]


@pytest.mark.parametrize("method", METHODS)
def test_island_hole_overlap_and_outside(method: Method) -> None:
    mainland = box(0, 0, 4, 4)
    island = box(10, 10, 11, 11)
    holed = Polygon(mainland.exterior.coords, [box(1, 1, 2, 2).exterior.coords])
    grids = [
        MultiPolygon([holed, island]),  # 0: mainland with a hole, plus an island
        box(1, 1, 2, 2),  # 1: fills the hole exactly
        box(3, 3, 6, 6),  # 2: overlaps grid 0 in [3,4]x[3,4]
        None,  # 3: a removed slot covers nothing
        Polygon(),  # 4: an empty shape covers nothing
    ]
    pts = {
        (10.5, 10.5): 0,  # on the island
        (10.0, 11.0): 0,  # island corner
        (7.0, 7.0): -1,  # sea between mainland and island
        (1.5, 1.5): 1,  # inside the hole -> the grid that fills it
        (1.0, 1.5): 0,  # on the hole's rim: both cover, lowest wins
        (3.5, 3.5): 0,  # overlap of 0 and 2
        (5.0, 5.0): 2,
        (-1.0, 2.0): -1,
    }
    x = np.array([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    got = assign_points(x, y, grids, method=method)
    assert got.tolist() == list(pts.values())
    assert got.tolist() == reference(x, y, np.array(grids, dtype=object)).tolist()


@pytest.mark.parametrize("method", METHODS)
def test_nan_and_inf_points_are_unassigned(method: Method) -> None:
    x = np.array([np.nan, 0.5, np.inf, -np.inf, 0.5])
    y = np.array([0.5, np.nan, 0.5, 0.5, 0.5])
    assert assign_points(x, y, [box(0, 0, 1, 1)], method=method).tolist() == [-1, -1, -1, -1, 0]


def test_no_points_and_no_polygons() -> None:
    assert assign_points([], [], [box(0, 0, 1, 1)]).size == 0
    assert assign_points([0.5], [0.5], [], method="raster").tolist() == [-1]
    assert assign_points([0.5], [0.5], [None], method="raster").tolist() == [-1]


def test_bad_input_is_rejected_with_a_reason() -> None:
    with pytest.raises(BadInput, match="LineString"):
        assign_points([0.0], [0.0], [box(0, 0, 1, 1), shapely.LineString([(0, 0), (1, 1)])])
    with pytest.raises(BadInput, match="differ in length"):
        assign_points([0.0, 1.0], [0.0], [box(0, 0, 1, 1)])
    with pytest.raises(BadInput, match="method"):
        assign_points([0.0], [0.0], [box(0, 0, 1, 1)], method="magic")  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="shapely geometries"):
        assign_points([0.0], [0.0], ["POLYGON"])


def test_degenerate_zero_area_polygon() -> None:
    flat = Polygon([(0, 0), (2, 0), (1, 0), (0, 0)])  # zero-width box: always tested exactly
    x, y = np.array([1.0, 1.0, 3.0]), np.array([0.0, 0.5, 0.0])
    grids = np.array([flat, box(0, 0, 2, 2)], dtype=object)
    want = reference(x, y, grids)
    for method in METHODS:
        assert assign_points(x, y, grids, method=method).tolist() == want.tolist()


# ---------------------------------------------------- the raster path is exact at scale
@pytest.mark.parametrize("seed", [0, 1])
def test_raster_path_equals_brute_force_on_a_city(seed: int) -> None:
    cells, x, y = city(seed)
    want = reference(x, y, cells)
    for workers in (1, 2):
        got = assign_points(x, y, cells, method="raster", workers=workers)
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(assign_points(x, y, cells, method="strtree"), want)
    # Boundary points really were exercised, and some landed on more than one grid.
    pts = shapely.points(x, y)
    multi = shapely.covers(cells[:, None], pts[None, :]).sum(axis=0) > 1
    assert multi.sum() > 100
    assert (want == UNASSIGNED).sum() >= 5


def test_raster_path_with_many_chunks_and_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import gridmgr.assign as mod

    monkeypatch.setattr(mod, "_CHUNK", 257)
    cells, x, y = city(3, n_grids=40, n_random=2000)
    want = reference(x, y, cells)
    np.testing.assert_array_equal(assign_points(x, y, cells, method="raster", workers=3), want)


def test_large_auto_path_matches_strtree() -> None:
    # Above the small-input threshold "auto" takes the raster path.
    cells = tessellation(7, 120)
    rng = np.random.default_rng(8)
    bx, by = boundary_points(cells)
    x = np.concatenate([rng.uniform(103.99, 104.26, 60_000), bx])
    y = np.concatenate([rng.uniform(30.59, 30.86, 60_000), by])
    np.testing.assert_array_equal(assign_points(x, y, cells), assign_points(x, y, cells,
                                                                          method="strtree"))


# ------------------------------------------------------------------ property test
@st.composite
def grids_and_points(draw: st.DrawFn):
    n = draw(st.integers(2, 25))
    seed = draw(st.integers(0, 2**31 - 1))
    cells = list(tessellation(seed, n, origin=(0.0, 0.0), size=1.0))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()) and len(cells) > 3:
        # Some overlap: a grown copy of one cell (appended, so ties go both ways).
        cells.append(shapely.set_precision(cells[1].buffer(8 * STEP), STEP))
    if draw(st.booleans()) and len(cells) > 3:
        cells[0] = MultiPolygon([*shapely.get_parts(cells[0]), box(2, 2, 2.25, 2.5)])
    order = draw(st.permutations(range(len(cells))))
    geoms = np.array([cells[i] for i in order], dtype=object)
    bx, by = boundary_points(geoms)
    k = draw(st.integers(0, bx.size))
    pick = rng.choice(bx.size, size=min(k, 200), replace=False) if bx.size else np.zeros(0, int)
    m = draw(st.integers(0, 200))
    x = np.concatenate([bx[pick], rng.uniform(-0.2, 2.5, m)])
    y = np.concatenate([by[pick], rng.uniform(-0.2, 2.7, m)])
    return geoms, x, y


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grids_and_points())
def test_property_every_covered_point_gets_the_lowest_covering_grid(data) -> None:
    geoms, x, y = data
    pts = shapely.points(x, y)
    cover = shapely.covers(geoms[:, None], pts[None, :])
    for method in METHODS:
        got = assign_points(x, y, geoms, method=method)
        assert got.shape == x.shape
        covered = cover.any(axis=0)
        # Uncovered points get -1; covered points get one index that covers them...
        assert np.all(got[~covered] == UNASSIGNED)
        idx = np.flatnonzero(covered)
        assert np.all(cover[got[idx], idx])
        # ... and no lower index covers them.
        lower = np.arange(geoms.size)[:, None] < got[None, :]
        assert not np.any(cover & lower & covered[None, :])


# ------------------------------------------------------------------- PostGIS
def _pg_connect(url: str):
    import psycopg2

    return psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))


@pytest.mark.postgis
def test_agrees_with_postgis_st_covers(postgis_url: str) -> None:
    cells, x, y = city(11, n_grids=80, n_random=4000)
    finite = np.isfinite(x) & np.isfinite(y)
    conn = _pg_connect(postgis_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE grids (idx integer PRIMARY KEY, geom geometry)")
            cur.execute("CREATE TABLE houses (id integer PRIMARY KEY, geom geometry(Point, 4326))")
            from psycopg2.extras import execute_values

            execute_values(
                cur, "INSERT INTO grids (idx, geom) VALUES %s",
                [(i, shapely.to_wkb(g)) for i, g in enumerate(cells)],
                template="(%s, ST_GeomFromWKB(%s, 4326))",
            )
            ids = np.flatnonzero(finite)
            execute_values(
                cur, "INSERT INTO houses (id, geom) VALUES %s",
                [(int(i), float(x[i]), float(y[i])) for i in ids],
                template="(%s, ST_SetSRID(ST_MakePoint(%s, %s), 4326))", page_size=5000,
            )
            cur.execute("CREATE INDEX ON grids USING gist (geom)")
            cur.execute("ANALYZE")
            cur.execute(
                "SELECT h.id, g.idx FROM houses h JOIN grids g ON ST_Covers(g.geom, h.geom)"
            )
            rows = np.array(cur.fetchall(), dtype=np.int64).reshape(-1, 2)
    finally:
        conn.close()
    candidates: dict[int, set[int]] = {}
    for hid, gidx in rows.tolist():
        candidates.setdefault(hid, set()).add(gidx)
    for method in METHODS:
        got = assign_points(x, y, cells, method=method)
        for i in range(x.size):
            cands = candidates.get(i, set())
            if not cands:
                assert got[i] == UNASSIGNED, (i, x[i], y[i], got[i])
            else:
                assert got[i] in cands and got[i] == min(cands), (i, got[i], cands)
    multi = sum(len(c) > 1 for c in candidates.values())
    assert multi > 100  # the comparison really covered shared edges and vertices
    assert (got == UNASSIGNED).sum() >= 5  # and houses outside every grid


# --------------------------------------------------------------------- incremental
@pytest.fixture(scope="module")
def base_city():
    cells, x, y = city(21, n_grids=50, n_random=6000)
    return cells, x, y, assign_points(x, y, cells)


def test_incremental_reshape_equals_full(base_city) -> None:
    cells, x, y, current = base_city
    i = 10
    new = cells.copy()
    # Grow grid 10 over its neighbours: the overlap makes ties on both sides of the rule.
    new[i] = shapely.set_precision(cells[i].buffer(12 * STEP), STEP)
    got = reassign_incremental(x, y, current, new, [i], [cells[i]])
    np.testing.assert_array_equal(got, assign_points(x, y, new))
    assert (got != current).sum() > 0
    # Shrink it back: the points it took are given back.
    back = reassign_incremental(x, y, got, cells, [i], [new[i]])
    np.testing.assert_array_equal(back, current)


def test_incremental_only_retests_the_changed_area(base_city) -> None:
    cells, x, y, current = base_city
    i = 10
    new = cells.copy()
    new[i] = shapely.set_precision(cells[i].buffer(12 * STEP), STEP)
    mask = affected_points(x, y, [cells[i]], [new[i]])
    pts = shapely.points(x, y)
    expect = shapely.covers(cells[i], pts) | shapely.covers(new[i], pts)
    np.testing.assert_array_equal(mask, expect)
    assert 0 < mask.sum() < x.size // 5
    changed = assign_points(x, y, new) != current
    assert not np.any(changed & ~mask)


def _split(poly: Polygon) -> tuple[Polygon, Polygon]:
    from shapely.ops import split

    minx, miny, maxx, maxy = poly.bounds
    mid = round((minx + maxx) / 2 / STEP) * STEP
    parts = shapely.get_parts(split(poly, shapely.LineString([(mid, miny - 1), (mid, maxy + 1)])))
    left = shapely.union_all([p for p in parts if p.centroid.x < mid])
    right = shapely.union_all([p for p in parts if p.centroid.x >= mid])
    return left, right


def test_incremental_split_appended_equals_full(base_city) -> None:
    cells, x, y, current = base_city
    i = 20
    left, right = _split(cells[i])
    new = np.concatenate([cells, np.array([None], dtype=object)])
    new[i], new[-1] = left, right
    got = reassign_incremental(x, y, current, new, [i, new.size - 1], [cells[i]])
    np.testing.assert_array_equal(got, assign_points(x, y, new))
    assert (got == new.size - 1).sum() > 0


def test_incremental_split_inserted_with_index_map(base_city) -> None:
    cells, x, y, current = base_city
    i = 20
    left, right = _split(cells[i])
    new = np.concatenate([cells[:i], [left, right], cells[i + 1:]])
    index_map = np.concatenate([np.arange(i + 1), np.arange(i + 1, cells.size) + 1])
    got = reassign_incremental(x, y, current, new, [i, i + 1], [cells[i]], index_map=index_map)
    np.testing.assert_array_equal(got, assign_points(x, y, new))


def test_incremental_merge_with_slot_left_empty_and_with_deletion(base_city) -> None:
    cells, x, y, current = base_city
    pts = shapely.points(x, y)
    i = 15
    nbrs = [j for j in range(cells.size) if j != i and cells[i].intersection(cells[j]).length > 0]
    j = max(nbrs)
    merged = shapely.union_all([cells[i], cells[j]])
    # (a) the merged-away grid stays as an empty slot: arrays aligned, no index_map.
    new = cells.copy()
    new[i], new[j] = merged, None
    got = reassign_incremental(x, y, current, new, [i], [cells[i], cells[j]])
    np.testing.assert_array_equal(got, assign_points(x, y, new))
    assert not np.any(got == j)
    assert np.any(shapely.covers(cells[j], pts) & (got == i))
    # (b) the grid is deleted from the array: index_map shifts the rest down.
    new_b = np.delete(new, j)
    index_map = np.arange(cells.size)
    index_map[j] = -1
    index_map[j + 1:] -= 1
    got_b = reassign_incremental(x, y, current, new_b, [i], [cells[i], cells[j]],
                                 index_map=index_map)
    np.testing.assert_array_equal(got_b, assign_points(x, y, new_b))
    # (c) a caller who forgets the removed grid's old shape still gets no stale index.
    got_c = reassign_incremental(x, y, current, new_b, [i], [cells[i]], index_map=index_map)
    np.testing.assert_array_equal(got_c, got_b)


def test_incremental_rejects_reordering_and_bad_indices(base_city) -> None:
    cells, x, y, current = base_city
    swap = np.arange(cells.size)
    swap[[0, 1]] = [1, 0]
    with pytest.raises(BadInput, match="same order"):
        reassign_incremental(x, y, current, cells, [], [], index_map=swap)
    with pytest.raises(BadInput, match="outside"):
        reassign_incremental(x, y, current, cells, [cells.size], [])
    with pytest.raises(BadInput, match="index_map"):
        reassign_incremental(x, y, current, cells[:5], [], [])
    with pytest.raises(BadInput, match="one per point"):
        reassign_incremental(x, y, current[:-1], cells, [], [])


def test_incremental_in_place_with_index_map(base_city) -> None:
    cells, x, y, current = base_city
    i = 15
    j = next(j for j in range(i + 1, cells.size) if cells[i].intersection(cells[j]).length > 0)
    merged = shapely.union_all([cells[i], cells[j]])
    new = np.delete(cells, j)
    new[i] = merged
    index_map = np.arange(cells.size)
    index_map[j] = -1
    index_map[j + 1:] -= 1
    buf = current.copy()
    got = reassign_incremental(x, y, buf, new, [i], [cells[i], cells[j]], index_map=index_map,
                               out=buf)
    assert got is buf
    np.testing.assert_array_equal(got, assign_points(x, y, new))
    with pytest.raises(BadInput, match="int64"):
        reassign_incremental(x, y, current, cells, [], [], out=np.zeros(3, dtype=np.int64))


def test_small_loop_path_matches_brute_force() -> None:
    from gridmgr.assign import _assign_loop

    cells, x, y = city(4, n_grids=30, n_random=1500)
    np.testing.assert_array_equal(_assign_loop(x, y, cells), reference(x, y, cells))


def test_incremental_with_nothing_changed_is_identity(base_city) -> None:
    cells, x, y, current = base_city
    np.testing.assert_array_equal(reassign_incremental(x, y, current, cells, [], []), current)


# -------------------------------------------------------------------- frame adapter
def test_assign_frame_with_lonlat_and_geodataframe() -> None:
    grids = gpd.GeoDataFrame(
        {"grid_id": ["G-B", "G-A", "G-C"]},
        geometry=[box(104.0, 30.0, 104.1, 30.1), box(104.1, 30.0, 104.2, 30.1),
                  box(105.0, 31.0, 105.1, 31.1)],
        crs="EPSG:4326",
    )
    houses = pd.DataFrame(
        {"source_id": ["h1", "h2", "h3", "h4", "h5"],
         "lon": [104.05, 104.1, 104.15, 110.0, None],
         "lat": [30.05, 30.05, 30.05, 30.0, 30.0]},
        index=[10, 11, 12, 13, 14],
    )
    got = assign_frame(houses, grids)
    # h2 sits on the shared edge of G-B and G-A: the smaller grid_id, G-A, wins.
    assert got.tolist() == ["G-B", "G-A", "G-A", None, None]
    assert got.index.tolist() == [10, 11, 12, 13, 14]
    assert got.name == "grid_id"

    gdf = gpd.GeoDataFrame(houses[["source_id"]], geometry=gpd.points_from_xy(
        houses.lon, houses.lat), crs="EPSG:4326")
    assert assign_frame(gdf, grids).tolist() == got.tolist()
    # Projected houses are brought into the grids' CRS first.
    assert assign_frame(gdf.iloc[[0, 2]].to_crs(32648), grids).tolist() == ["G-B", "G-A"]


def test_assign_frame_rejects_bad_frames() -> None:
    grids = gpd.GeoDataFrame({"grid_id": ["a", "a"]}, geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)])
    houses = pd.DataFrame({"lon": [0.5], "lat": [0.5]})
    with pytest.raises(BadInput, match="unique"):
        assign_frame(houses, grids)
    with pytest.raises(BadInput, match="no 'code'"):
        assign_frame(houses, grids, id_col="code")
    with pytest.raises(BadInput, match="lon and lat"):
        assign_frame(pd.DataFrame({"x": [1]}), grids.iloc[:1])
    lines = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (1, 1)])])
    with pytest.raises(BadInput, match="points"):
        assign_frame(lines, grids.iloc[:1])
