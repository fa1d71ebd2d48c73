"""Blocks tile the parent exactly; the rebalance returns contiguous, balanced, compact grids."""

from __future__ import annotations

import math

import geopandas as gpd
import h3
import numpy as np
import pytest
import shapely

from gridmgr.blocks import Adjacency, BlockSet, adjacency_from_geometry, build_blocks
from gridmgr.errors import BadInput
from gridmgr.rebalance import (
    RebalanceSettings,
    compare_with_maxp,
    describe_partition,
    feasible_k,
    rebalance,
)

LON0, LAT0 = 104.06, 30.66
MX = 1.0 / (111_320.0 * math.cos(math.radians(LAT0)))
MY = 1.0 / 111_320.0
K, FLOOR, CEILING = 6, 300.0, 600.0


def to_deg(geom: shapely.Geometry) -> shapely.Geometry:
    """Metres east/north of (LON0, LAT0) to lon/lat."""
    return shapely.transform(
        geom, lambda c: np.column_stack([LON0 + c[:, 0] * MX, LAT0 + c[:, 1] * MY])
    )


def street_polygon() -> shapely.Polygon:
    """A C-shaped (non-convex) street of about 2 km² with a wavy edge."""
    outline = [
        (0, 0),
        (1800, 0),
        (1850, 500),
        (900, 550),
        (850, 1050),
        (1750, 1100),
        (1800, 1600),
        (0, 1650),
        (-60, 800),
    ]
    return to_deg(shapely.Polygon(outline))


def clustered_houses(
    parent: shapely.Polygon, n: int, residents: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Houses in a few dense clusters plus a sparse background; floating residents per house."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = parent.bounds
    pts = np.empty((0, 2))
    centres = np.column_stack([rng.uniform(minx, maxx, 60), rng.uniform(miny, maxy, 60)])
    centres = centres[shapely.contains_xy(parent, centres[:, 0], centres[:, 1])][:12]
    while pts.shape[0] < n:
        which = rng.integers(0, centres.shape[0], n)
        spread = np.array([120 * MX, 120 * MY])
        cl = centres[which] + rng.normal(0, 1, (n, 2)) * spread
        bg = np.column_stack([rng.uniform(minx, maxx, n // 3), rng.uniform(miny, maxy, n // 3)])
        cand = np.vstack([cl[: n - n // 4], bg])
        pts = np.vstack([pts, cand[shapely.contains_xy(parent, cand[:, 0], cand[:, 1])]])
    pts = pts[:n]
    rate = rng.lognormal(0, 0.7, n)
    load = rng.multinomial(residents, rate / rate.sum()).astype(float)
    return pts[:, 0], pts[:, 1], load


@pytest.fixture(scope="module")
def street() -> tuple[shapely.Polygon, BlockSet, np.ndarray]:
    parent = street_polygon()
    lon, lat, load = clustered_houses(parent, 4000, 2600, seed=3)
    return parent, build_blocks(parent, lon, lat, load, resolution=10), load


def metric(geoms: np.ndarray) -> np.ndarray:
    return np.asarray(gpd.GeoSeries(geoms, crs="EPSG:4326").to_crs("EPSG:32648").values)


# --------------------------------------------------------------------------- blocks


def test_blocks_tile_the_parent_exactly(street: tuple[shapely.Polygon, BlockSet, np.ndarray]):
    parent, bs, load = street
    blocks = bs.blocks
    assert 100 <= len(blocks) <= 300
    geoms = np.asarray(blocks.geometry.values)
    assert (shapely.get_type_id(geoms) == 3).all(), "every block is a single Polygon"
    assert shapely.is_valid(geoms).all()
    union = shapely.union_all(geoms)
    assert shapely.area(shapely.symmetric_difference(union, parent)) / parent.area < 1e-9
    # No overlaps: the block areas add up to the parent's area.
    assert math.isclose(shapely.area(geoms).sum(), parent.area, rel_tol=1e-9)
    assert shapely.coverage_is_valid(geoms)
    assert blocks["block_id"].is_unique
    assert bs.houses_outside == 0
    assert blocks["houses"].sum() == 4000
    assert math.isclose(blocks["load"].sum(), load.sum())
    np.testing.assert_allclose(blocks["area_m2"], shapely.area(metric(geoms)), rtol=1e-9)


def test_house_block_points_into_the_block_that_contains_the_house() -> None:
    parent = street_polygon()
    lon, lat, load = clustered_houses(parent, 500, 300, seed=5)
    outside = np.array([LON0 - 0.05]), np.array([LAT0])
    bs = build_blocks(
        parent, np.r_[lon, outside[0]], np.r_[lat, outside[1]], np.r_[load, 7.0], resolution=10
    )
    assert bs.houses_outside == 1 and bs.house_block[-1] == -1
    geoms = np.asarray(bs.blocks.geometry.values)[bs.house_block[:-1]]
    assert shapely.intersects(geoms, shapely.points(lon, lat)).all()
    assert math.isclose(bs.blocks["load"].sum(), load.sum())


def test_adjacency_means_a_shared_edge(street: tuple[shapely.Polygon, BlockSet, np.ndarray]):
    _, bs, _ = street
    adj = bs.adjacency
    geoms = metric(np.asarray(bs.blocks.geometry.values))
    src = np.repeat(np.arange(adj.n), np.diff(adj.indptr))
    shared = shapely.length(shapely.intersection(geoms[src], geoms[adj.indices]))
    assert (shared > 1.0).all()
    assert adj.shared_m is not None
    np.testing.assert_allclose(adj.shared_m, shared, rtol=1e-6)
    # Symmetric, no self loops, and the pairs that merely touch are left out.
    pairs = set(zip(src.tolist(), adj.indices.tolist(), strict=True))
    assert all((j, i) in pairs for i, j in pairs)
    assert all(i != j for i, j in pairs)
    a, b = shapely.STRtree(geoms).query(geoms, predicate="touches")
    touching = shapely.length(shapely.intersection(geoms[a], geoms[b])) > 1e-3
    assert {(int(i), int(j)) for i, j in zip(a[touching], b[touching], strict=True)} == pairs
    assert adj.components().max() == 0


def test_adjacency_ignores_corner_contact() -> None:
    squares = np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2), shapely.box(1, 0, 2, 1)])
    adj = adjacency_from_geometry(squares)
    assert sorted(adj.neighbours(0).tolist()) == [2]
    assert sorted(adj.neighbours(1).tolist()) == [2]
    assert sorted(adj.neighbours(2).tolist()) == [0, 1]


def test_cell_cut_in_two_by_the_parent_becomes_two_blocks() -> None:
    # A 6 m wide slit runs from the south edge 900 m into the street, cutting through cells.
    outer = shapely.box(0, 0, 1200, 1200)
    slit = shapely.box(597, -10, 603, 900)
    parent = to_deg(outer.difference(slit))
    lon, lat, load = clustered_houses(parent, 300, 200, seed=1)
    bs = build_blocks(parent, lon, lat, load, resolution=10, min_piece_fraction=0.0)
    blocks = bs.blocks
    split = blocks[blocks["cell"].duplicated(keep=False)]
    assert len(split) >= 4, "cells crossed by the slit yield one block per piece"
    assert split["block_id"].str.contains("-").all()
    geoms = np.asarray(blocks.geometry.values)
    assert (shapely.get_type_id(geoms) == 3).all()
    union = shapely.union_all(geoms)
    assert shapely.area(shapely.symmetric_difference(union, parent)) / parent.area < 1e-9
    # Pieces of one cell are disjoint, so they are never neighbours of each other.
    for _, group in split.groupby("cell"):
        idx = group.index.to_numpy()
        for i in idx:
            assert not set(bs.adjacency.neighbours(int(i)).tolist()) & set(idx.tolist())
            others = geoms[idx[idx != i]]
            assert not shapely.intersects(geoms[i], others).any()


def test_slivers_merge_into_a_neighbour() -> None:
    parent = street_polygon()
    lon, lat, load = clustered_houses(parent, 300, 200, seed=2)
    raw = build_blocks(parent, lon, lat, load, resolution=10, min_piece_fraction=0.0)
    merged = build_blocks(parent, lon, lat, load, resolution=10, min_piece_fraction=0.2)
    assert len(merged.blocks) < len(raw.blocks)
    full = np.array([h3.cell_area(c, unit="m^2") for c in merged.blocks["cell"]])
    assert (merged.blocks["area_m2"] >= 0.2 * full).all()
    union = shapely.union_all(np.asarray(merged.blocks.geometry.values))
    assert shapely.area(shapely.symmetric_difference(union, parent)) / parent.area < 1e-9
    assert math.isclose(merged.blocks["load"].sum(), raw.blocks["load"].sum())


@pytest.mark.parametrize(
    ("parent", "lon", "load", "resolution", "fragment"),
    [
        (shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)]), [0.5], [1.0], 10, "not a valid"),
        (to_deg(shapely.box(0, 0, 500, 500)), [LON0], [-1.0], 10, "not negative"),
        (to_deg(shapely.box(0, 0, 500, 500)), [LON0], [1.0], 3, "resolution"),
        (shapely.box(500_000, 0, 501_000, 1000), [LON0], [1.0], 10, "EPSG:4326"),
    ],
)
def test_build_blocks_rejects_bad_input(parent, lon, load, resolution, fragment) -> None:
    with pytest.raises(BadInput, match=fragment):
        build_blocks(parent, lon, [LAT0], load, resolution=resolution)


# --------------------------------------------------------------------------- rebalance


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rebalance_meets_the_targets(
    street: tuple[shapely.Polygon, BlockSet, np.ndarray], seed: int
) -> None:
    parent, bs, _ = street
    result = rebalance(bs.blocks, bs.adjacency, K, FLOOR, CEILING, seed=seed, time_limit_s=30)
    labels = result.labels
    assert labels.shape == (len(bs.blocks),)
    assert set(labels.tolist()) == set(range(K)), "every block used once, every grid non-empty"
    assert not result.timed_out
    loads = np.bincount(labels, weights=bs.blocks["load"], minlength=K)
    np.testing.assert_allclose(result.loads, loads)
    assert ((loads >= FLOOR) & (loads <= CEILING)).all()
    assert result.within_bounds == 1.0
    assert loads.std() / loads.mean() <= 0.05
    assert result.cv <= 0.05
    assert result.contiguous_graph.all() and result.contiguous_geometry.all()
    geoms = np.asarray(bs.blocks.geometry.values)
    regions = [shapely.union_all(geoms[labels == r]) for r in range(K)]
    assert all(g.geom_type == "Polygon" for g in regions), "each grid is one polygon"
    union = shapely.union_all(regions)
    assert shapely.area(shapely.symmetric_difference(union, parent)) / parent.area < 1e-9
    # Graph contiguity checked independently of the engine.
    for r in range(K):
        members = set(np.flatnonzero(labels == r).tolist())
        start = next(iter(members))
        seen, stack = {start}, [start]
        while stack:
            v = stack.pop()
            for w in bs.adjacency.neighbours(v).tolist():
                if w in members and w not in seen:
                    seen.add(w)
                    stack.append(w)
        assert seen == members
    assert result.mean_polsby_popper >= 0.5


def test_rebalance_is_deterministic_per_seed(
    street: tuple[shapely.Polygon, BlockSet, np.ndarray],
) -> None:
    _, bs, _ = street
    a = rebalance(bs.blocks, bs.adjacency, K, FLOOR, CEILING, seed=7, time_limit_s=30)
    b = rebalance(bs.blocks, bs.adjacency, K, FLOOR, CEILING, seed=7, time_limit_s=30)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.objective == b.objective


def test_rebalance_accepts_neighbour_lists_without_lengths(
    street: tuple[shapely.Polygon, BlockSet, np.ndarray],
) -> None:
    _, bs, _ = street
    lists = bs.adjacency.to_lists()
    a = rebalance(bs.blocks, lists, K, FLOOR, CEILING, seed=1, time_limit_s=30)
    b = rebalance(bs.blocks, bs.adjacency, K, FLOOR, CEILING, seed=1, time_limit_s=30)
    assert a.within_bounds == 1.0 and a.contiguous_graph.all()
    np.testing.assert_array_equal(a.labels, b.labels)


def test_coarsened_search_still_meets_the_targets(
    street: tuple[shapely.Polygon, BlockSet, np.ndarray],
) -> None:
    _, bs, _ = street
    cfg = RebalanceSettings(coarsen_above=60, restarts=2)
    result = rebalance(
        bs.blocks, bs.adjacency, K, FLOOR, CEILING, seed=0, time_limit_s=30, settings=cfg
    )
    assert result.within_bounds == 1.0
    assert result.cv <= 0.05
    assert result.contiguous_graph.all() and result.contiguous_geometry.all()


@pytest.mark.parametrize("k", [1, 2, 9, 40])
def test_infeasible_k_names_the_feasible_range(
    street: tuple[shapely.Polygon, BlockSet, np.ndarray], k: int
) -> None:
    _, bs, load = street
    lo, hi = feasible_k(float(load.sum()), FLOOR, CEILING)
    assert (lo, hi) == (5, 8)
    with pytest.raises(BadInput, match=r"choose k in 5\.\.8"):
        rebalance(bs.blocks, bs.adjacency, k, FLOOR, CEILING)


def test_bad_bounds_are_rejected(street: tuple[shapely.Polygon, BlockSet, np.ndarray]) -> None:
    _, bs, _ = street
    with pytest.raises(BadInput, match="floor"):
        rebalance(bs.blocks, bs.adjacency, K, 700, 600)
    with pytest.raises(BadInput, match="at least 1"):
        rebalance(bs.blocks, bs.adjacency, 0, FLOOR, CEILING)


def test_separate_parts_get_their_own_grids() -> None:
    west = to_deg(shapely.box(0, 0, 800, 800))
    east = to_deg(shapely.box(1500, 0, 2300, 800))
    parts = [clustered_houses(p, 750, 600, seed=i) for i, p in enumerate([west, east])]
    lon, lat, load = (np.concatenate(x) for x in zip(*parts, strict=True))
    bs = build_blocks(shapely.MultiPolygon([west, east]), lon, lat, load, resolution=10)
    comp = bs.adjacency.components()
    assert comp.max() == 1
    result = rebalance(bs.blocks, bs.adjacency, 4, 200, 400, seed=0, time_limit_s=30)
    for r in range(4):
        assert len(set(comp[result.labels == r].tolist())) == 1, "a grid never spans both parts"
    assert result.contiguous_graph.all() and result.contiguous_geometry.all()
    assert result.within_bounds == 1.0
    # 3 grids of 200–400 could hold 1,200 in all, but each part (600) needs two of them.
    with pytest.raises(BadInput, match=r"separate parts.*choose k in 4\.\.6"):
        rebalance(bs.blocks, bs.adjacency, 3, 200, 400, seed=0)


def test_describe_partition_single_region_is_the_parent(
    street: tuple[shapely.Polygon, BlockSet, np.ndarray],
) -> None:
    parent, bs, load = street
    m = describe_partition(bs.blocks, np.zeros(len(bs.blocks), dtype=int), floor=0, ceiling=1e9)
    parent_m = metric(np.array([parent]))[0]
    expected = 4 * math.pi * parent_m.area / parent_m.length**2
    assert m.k == 1 and m.cv == 0.0 and m.within_bounds == 1.0
    assert math.isclose(m.mean_polsby_popper, expected, rel_tol=1e-6)
    assert math.isclose(m.max_load, load.sum())
    assert m.contiguous


def test_describe_partition_flags_a_split_region(
    street: tuple[shapely.Polygon, BlockSet, np.ndarray],
) -> None:
    _, bs, _ = street
    adj: Adjacency = bs.adjacency
    far = int(np.argmax(bs.blocks.to_crs("EPSG:32648").centroid.x.to_numpy()))
    labels = np.zeros(len(bs.blocks), dtype=int)
    labels[0] = 1
    labels[far] = 1  # two far-apart blocks in one region
    m = describe_partition(bs.blocks, labels, adjacency=adj)
    assert m.contiguous_graph is not None and not m.contiguous_graph[1]
    assert not m.contiguous_geometry[1]
    assert not m.contiguous


def test_compare_with_maxp_reports_the_same_metrics() -> None:
    parent = to_deg(shapely.box(0, 0, 900, 700))
    lon, lat, load = clustered_houses(parent, 600, 400, seed=6)
    bs = build_blocks(parent, lon, lat, load, resolution=10)
    out = compare_with_maxp(
        bs.blocks,
        bs.adjacency,
        80,
        ceiling=200,
        time_limit_s=120,
        max_iterations_construction=2,
        max_iterations_sa=1,
    )
    assert not out.timed_out and out.error is None, out
    assert out.labels is not None and out.metrics is not None
    assert out.labels.shape == (len(bs.blocks),)
    assert math.isclose(out.metrics.loads.sum(), load.sum())
    assert out.metrics.min_load >= 80  # max-p enforces the floor
    assert out.metrics.contiguous


def test_compare_with_maxp_times_out_cleanly(
    street: tuple[shapely.Polygon, BlockSet, np.ndarray],
) -> None:
    _, bs, _ = street
    out = compare_with_maxp(bs.blocks, bs.adjacency, FLOOR, time_limit_s=0.05)
    assert out.timed_out and out.labels is None and out.metrics is None
    assert out.as_dict()["timed_out"] is True
