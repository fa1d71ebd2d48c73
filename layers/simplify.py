"""Make grid and area boundaries light enough to draw 5,155 grids in a browser.

Coordinates are snapped to a fixed grid (1e-5° ≈ 1 m) *before* simplifying, so the
simplified output is exactly representable with five decimals: rounding after
simplifying is what creates overlaps. Simplification is topological, like
TopoJSON/mapshaper: every polygon ring is cut into arcs at the nodes where its
neighbours change, each shared arc is simplified once (Douglas–Peucker, in C via
shapely) and the rings are put back together from the simplified arcs, so two
neighbours can never disagree about their common edge. The result is checked; arcs
of any polygon that came out invalid or overlapping are put back unsimplified, and if
that does not settle it GEOS ``coverage_simplify`` (slower, topology-safe) does the job.

Real grid files are often not a clean coverage (overlaps, slivers, invalid rings).
They are made valid, then the part of the coverage that is broken (plus its
neighbours) is rebuilt with GEOS ``coverage_clean`` (overlaps go to the polygon with
the longest common border; optionally gaps narrower than ``gap_width`` are closed), and
only then simplified. Other gaps are kept: the map shows no gap the source did not have.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely import GeometryType

__all__ = [
    "Coverage",
    "coverage_overlaps",
    "polygonal",
    "repair_coverage",
    "simplify_coverage",
    "simplify_lines",
]

log = logging.getLogger(__name__)

Geoms = npt.NDArray[np.object_]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_MAX_REVERT_ROUNDS = 6


@dataclass(frozen=True)
class Coverage:
    """Simplified polygons (one per input, empty if one vanished) and their unique arcs.

    ``arcs`` holds every edge of the coverage once (a shared border is one LineString,
    not two), which is what boundary lines are drawn from. ``method`` says which path
    ran: ``arcs`` (the fast one), ``arcs+filled`` (gaps and outside filled while
    simplifying), ``+revert`` (some arcs kept unsimplified) or ``geos`` (GEOS
    coverage_simplify); a ``cleaned+`` prefix means the input was not a valid coverage
    and was repaired first, and ``repaired`` counts the polygons rebuilt.
    """

    geometries: Geoms
    arcs: Geoms
    method: str
    repaired: int
    vertices_in: int
    vertices_out: int


class _NotACoverage(Exception):
    """Raised inside this module when the arc topology cannot be built."""


def polygonal(geoms: npt.ArrayLike) -> Geoms:
    """Valid polygonal geometries: invalid ones made valid, non-polygonal parts dropped.

    Missing geometries become empty polygons so positions still line up with the input.
    """
    arr = np.asarray(geoms, dtype=object).copy()
    arr[shapely.is_missing(arr)] = shapely.Polygon()
    arr = shapely.force_2d(arr)
    bad = ~shapely.is_valid(arr)
    if bad.any():
        arr[bad] = shapely.make_valid(arr[bad])
    types = shapely.get_type_id(arr)
    odd = ~np.isin(types, [GeometryType.POLYGON, GeometryType.MULTIPOLYGON])
    for i in np.flatnonzero(odd):  # only the few that make_valid turned into collections
        parts = shapely.get_parts(arr[i])
        keep = parts[np.isin(shapely.get_type_id(parts), [3, 6])]
        arr[i] = shapely.union_all(keep) if len(keep) else shapely.Polygon()
        if shapely.get_type_id(arr[i]) not in (3, 6):
            arr[i] = shapely.Polygon()
    return arr


def _snap(geoms: Geoms, grid: float) -> Geoms:
    """Snap vertices to the grid; polygons that snapping breaks are snapped the careful way."""
    snapped = shapely.set_precision(geoms, grid, mode="pointwise")
    snapped[shapely.is_empty(snapped)] = shapely.Polygon()  # GEOS may return LINEARRING EMPTY
    bad = ~shapely.is_valid(snapped)
    if bad.any():
        snapped[bad] = shapely.set_precision(geoms[bad], grid)
        types = shapely.get_type_id(snapped[bad])
        fix = np.flatnonzero(bad)[~np.isin(types, [3, 6])]
        snapped[fix] = polygonal(snapped[fix])
        snapped[shapely.is_empty(snapped)] = shapely.Polygon()
    return snapped


def _ranges(starts: IntArray, counts: IntArray) -> IntArray:
    """Concatenation of ``starts[i] + arange(counts[i])`` for every i."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    before = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.repeat(starts - before, counts) + np.arange(total, dtype=np.int64)


@dataclass
class _Topology:
    """Rings of a polygon coverage cut into arcs; see ``_topology``."""

    keys: IntArray  # (M,) packed grid point of every vertex, rings open, rotated to a node
    origin: tuple[int, int]  # grid point that keys are relative to
    ring_sizes: IntArray  # vertices per open ring
    poly_offsets: IntArray  # rings per polygon (offsets)
    geom_offsets: IntArray  # polygons per geometry (offsets)
    occ_start: IntArray  # per arc occurrence: position of its first point
    occ_count: IntArray  # per arc occurrence: points before its end node
    occ_end: IntArray  # per arc occurrence: position of its end node
    occ_ring: IntArray  # per arc occurrence: its ring
    occ_reversed: BoolArray  # occurrence runs against the arc's canonical direction
    occ_arc: IntArray  # per arc occurrence: unique arc id
    arc_first: IntArray  # per unique arc: one occurrence of it

    @property
    def n_arcs(self) -> int:
        """Number of unique arcs."""
        return len(self.arc_first)

    def points(self, positions: IntArray) -> IntArray:
        """Grid coordinates (x, y) of the vertices at ``positions``."""
        k = self.keys[positions]
        return np.column_stack([(k >> 32) + self.origin[0], (k & 0xFFFFFFFF) + self.origin[1]])


def _ragged(geoms: Geoms) -> tuple[npt.NDArray[np.float64], IntArray, IntArray, IntArray]:
    """Coordinates and ring/polygon/geometry offsets of polygonal geometries."""
    if len(geoms) == 0:
        z = np.zeros(1, dtype=np.int64)
        return np.zeros((0, 2)), z, z, z
    _, xy, offsets = shapely.to_ragged_array(geoms, include_z=False)
    if len(offsets) == 2:  # all Polygons: one polygon per geometry
        ring_off, poly_off = offsets
        geom_off = np.arange(len(poly_off), dtype=np.int64)
    else:
        ring_off, poly_off, geom_off = offsets
    return (
        np.asarray(xy, dtype=np.float64),
        np.asarray(ring_off, dtype=np.int64),
        np.asarray(poly_off, dtype=np.int64),
        np.asarray(geom_off, dtype=np.int64),
    )


def _topology(geoms: Geoms, grid: float) -> _Topology:
    """Cut every ring into arcs between nodes and number the distinct arcs.

    Vertices are snapped to the grid here (one packed integer per point). A vertex is a
    node when the same point is passed by rings with different neighbouring points
    (where the set of polygons along the edge changes); a ring with no node (an island
    and the hole it fills) is cut at its smallest point, the same one for both rings.
    An arc is identified by its end points and the point next to its canonical start,
    so the two traversals of a shared edge get one id.
    """
    xy, ring_off, poly_off, geom_off = _ragged(geoms)
    n_rings = len(ring_off) - 1
    if len(xy) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Topology(
            empty, (0, 0), np.zeros(n_rings, dtype=np.int64), poly_off, geom_off,
            empty, empty, empty, empty, np.zeros(0, dtype=bool), empty, empty,
        )  # fmt: skip
    qx = np.rint(xy[:, 0] / grid).astype(np.int64)
    qy = np.rint(xy[:, 1] / grid).astype(np.int64)
    x0, y0 = int(qx.min()), int(qy.min())
    if qx.max() - x0 >= 2**31 or qy.max() - y0 >= 2**32:
        raise _NotACoverage("extent too large for the precision grid")
    key = ((qx - x0) << 32) | (qy - y0)
    # drop repeated consecutive points and the closing point of each ring
    ring_of = np.repeat(np.arange(n_rings), np.diff(ring_off))
    keep = np.ones(len(key), dtype=bool)
    keep[1:] = (key[1:] != key[:-1]) | (ring_of[1:] != ring_of[:-1])
    keep[ring_off[1:][np.diff(ring_off) > 0] - 1] = False
    key, ring_of = key[keep], ring_of[keep]
    sizes = np.bincount(ring_of, minlength=n_rings).astype(np.int64)
    if (sizes < 3).any():
        raise _NotACoverage("a ring has fewer than three distinct points")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    wraps = key[starts[:-1]] == key[starts[1:] - 1]  # ring ended on its first point
    if wraps.any():
        keep = np.ones(len(key), dtype=bool)
        keep[starts[1:][wraps] - 1] = False
        key, ring_of = key[keep], ring_of[keep]
        sizes = np.bincount(ring_of, minlength=n_rings).astype(np.int64)
        if (sizes < 3).any():
            raise _NotACoverage("a ring has fewer than three distinct points")
        starts = np.concatenate([[0], np.cumsum(sizes)])
    m = len(key)
    pos = np.arange(m, dtype=np.int64)
    ring_start = starts[:-1][ring_of]
    ring_end = starts[1:][ring_of]
    nxt = pos + 1
    nxt[nxt == ring_end] = ring_start[nxt == ring_end]
    prv = pos - 1
    at_start = pos == ring_start
    prv[at_start] = ring_end[at_start] - 1
    k_prev, k_next = key[prv], key[nxt]
    lo = np.minimum(k_prev, k_next)
    hi = np.maximum(k_prev, k_next)
    # occurrences of one point, in any order: if all neighbour pairs agree, every
    # consecutive pair agrees, so sorting by the point alone is enough
    order = np.argsort(key)
    k_s, lo_s, hi_s = key[order], lo[order], hi[order]
    same_point = k_s[1:] == k_s[:-1]
    differs = same_point & ((lo_s[1:] != lo_s[:-1]) | (hi_s[1:] != hi_s[:-1]))
    group = np.concatenate([[0], np.cumsum(~same_point)])
    group_is_node = np.zeros(int(group[-1]) + 1, dtype=bool)
    group_is_node[group[1:][differs]] = True
    is_node = np.empty(m, dtype=bool)
    is_node[order] = group_is_node[group]
    lonely = np.flatnonzero(np.bincount(ring_of[is_node], minlength=n_rings) == 0)
    if len(lonely):
        members = _ranges(starts[:-1][lonely], sizes[lonely])
        by_ring_then_key = members[np.lexsort((key[members], ring_of[members]))]
        first_of_ring = np.concatenate([[0], np.cumsum(sizes[lonely])[:-1]])
        is_node[by_ring_then_key[first_of_ring]] = True
    # rotate each ring so it starts at its first node (node positions ascend by ring)
    node_pos = np.flatnonzero(is_node)
    node_ring = ring_of[node_pos]
    first_idx = np.flatnonzero(np.concatenate([[True], node_ring[1:] != node_ring[:-1]]))
    shift = np.zeros(n_rings, dtype=np.int64)
    shift[node_ring[first_idx]] = node_pos[first_idx] - starts[:-1][node_ring[first_idx]]
    rot = ring_start + (pos - ring_start + shift[ring_of]) % sizes[ring_of]
    key = key[rot]
    is_node = is_node[rot]
    occ_start = np.flatnonzero(is_node)
    occ_count = np.diff(np.append(occ_start, m))
    last = occ_start + occ_count - 1
    occ_ring = ring_of[occ_start]
    at_ring_end = last + 1 == starts[1:][occ_ring]
    occ_end = np.where(at_ring_end, starts[:-1][occ_ring], last + 1)
    k_start, k_end = key[occ_start], key[occ_end]
    k_second = np.where(occ_count > 1, key[np.minimum(occ_start + 1, m - 1)], k_end)
    k_before_end = np.where(occ_count > 1, key[last], k_start)
    rev = (k_start > k_end) | ((k_start == k_end) & (k_before_end < k_second))
    ident = np.column_stack(
        [
            np.where(rev, k_end, k_start),
            np.where(rev, k_start, k_end),
            np.where(rev, k_before_end, k_second),
        ]
    )
    ident_order = np.lexsort(ident.T[::-1])
    ident_sorted = ident[ident_order]
    new_arc = np.ones(len(ident), dtype=bool)
    new_arc[1:] = (ident_sorted[1:] != ident_sorted[:-1]).any(axis=1)
    occ_arc = np.empty(len(ident), dtype=np.int64)
    occ_arc[ident_order] = np.cumsum(new_arc) - 1
    return _Topology(
        keys=key,
        origin=(x0, y0),
        ring_sizes=sizes,
        poly_offsets=poly_off,
        geom_offsets=geom_off,
        occ_start=occ_start,
        occ_count=occ_count,
        occ_end=occ_end,
        occ_ring=occ_ring,
        occ_reversed=rev,
        occ_arc=occ_arc,
        arc_first=ident_order[new_arc],
    )


def _degrees(points: IntArray, grid: float) -> npt.NDArray[np.float64]:
    """Grid units back to degrees, as the nearest double to the decimal value."""
    inverse = 1.0 / grid
    if abs(inverse - round(inverse)) < 1e-9 * inverse:
        return points / float(round(inverse))
    return points.astype(np.float64) * grid


def _arc_lines(top: _Topology, grid: float) -> Geoms:
    """Every unique arc as a LineString in its canonical direction, in degrees."""
    first = top.arc_first
    if len(first) == 0:
        return np.zeros(0, dtype=object)
    counts = top.occ_count[first] + 1
    offsets = np.concatenate([[0], np.cumsum(counts)])
    arc_of = np.repeat(np.arange(len(first)), counts)
    t = np.arange(offsets[-1], dtype=np.int64) - offsets[arc_of]
    flip = top.occ_reversed[first][arc_of]
    step = np.where(flip, counts[arc_of] - 1 - t, t)  # index along the occurrence
    start = top.occ_start[first][arc_of]
    is_end = step == counts[arc_of] - 1
    positions = np.where(is_end, top.occ_end[first][arc_of], start + step)
    coords = _degrees(top.points(positions), grid)
    lines: Geoms = shapely.from_ragged_array(GeometryType.LINESTRING, coords, (offsets,))
    return lines


def _assemble(top: _Topology, arcs: Geoms) -> Geoms:
    """Polygons rebuilt from (simplified) arcs, one per input geometry."""
    n_geoms = len(top.geom_offsets) - 1
    if top.n_arcs == 0:
        return np.array([shapely.Polygon()] * n_geoms, dtype=object)
    coords, owner = shapely.get_coordinates(arcs, return_index=True)
    arc_len = np.bincount(owner, minlength=len(arcs)).astype(np.int64)
    arc_off = np.concatenate([[0], np.cumsum(arc_len)])
    arc = top.occ_arc
    take = arc_len[arc] - 1  # each occurrence contributes all but its end point
    occ_off = np.concatenate([[0], np.cumsum(take)])
    occ_of = np.repeat(np.arange(len(arc)), take)
    t = np.arange(occ_off[-1], dtype=np.int64) - occ_off[occ_of]
    a = arc[occ_of]
    idx = np.where(top.occ_reversed[occ_of], arc_off[a] + arc_len[a] - 1 - t, arc_off[a] + t)
    n_rings = len(top.ring_sizes)
    ring_pts = np.bincount(top.occ_ring, weights=take, minlength=n_rings).astype(np.int64)
    if (ring_pts < 3).any():
        raise _NotACoverage("a ring collapsed")
    ring_start = np.concatenate([[0], np.cumsum(ring_pts)])
    closing = idx[ring_start[:-1]]
    idx = np.insert(idx, ring_start[1:], closing)
    ring_off = np.concatenate([[0], np.cumsum(ring_pts + 1)])
    out: Geoms = shapely.from_ragged_array(
        GeometryType.MULTIPOLYGON, coords[idx], (ring_off, top.poly_offsets, top.geom_offsets)
    )
    # single-part results as Polygons, as the input mostly was
    single = shapely.get_num_geometries(out) == 1
    out[single] = shapely.get_geometry(out[single], 0)
    return out


def _simplify_arcs(original: Geoms, tolerance: float, keep: BoolArray) -> Geoms:
    """Douglas–Peucker on each arc; arcs marked in ``keep`` stay as they are."""
    out = original.copy()
    if tolerance <= 0:
        return out
    todo = ~keep
    closed = shapely.is_closed(original)
    open_todo = todo & ~closed
    out[open_todo] = shapely.simplify(original[open_todo], tolerance, preserve_topology=False)
    closed_todo = todo & closed
    if closed_todo.any():  # a closed arc is a whole ring: keep it a ring
        out[closed_todo] = shapely.simplify(
            original[closed_todo], tolerance, preserve_topology=True
        )
    return out


def _nonempty_ok(geoms: Geoms) -> bool:
    """True if the non-empty geometries are valid and form a valid coverage."""
    live = geoms[~shapely.is_empty(geoms)]
    if len(live) == 0:
        return True
    return bool(shapely.is_valid(live).all() and shapely.coverage_is_valid(live))


def _bad_mask(geoms: Geoms, gap_width: float = 0.0) -> BoolArray:
    """Polygons that are invalid, break the coverage or border a gap narrower than gap_width."""
    empty = shapely.is_empty(geoms)
    bad = ~shapely.is_valid(geoms) & ~empty
    live = np.flatnonzero(~empty)
    if len(live):
        edges = shapely.coverage_invalid_edges(geoms[live], gap_width=gap_width)
        bad[live[~shapely.is_empty(edges)]] = True
    return np.asarray(bad, dtype=bool)


class _InputNotACoverage(_NotACoverage):
    """The snapped input itself is not a valid coverage (repair it first)."""


def _gap_fillers(live: Geoms, grid: float) -> Geoms:
    """Polygons covering everything around and between ``live`` inside a padded frame.

    Added to the coverage while simplifying, they turn the edges along gaps and along
    the outside into shared edges, so two edges facing each other across a narrow gap
    are simplified without crossing. They are dropped afterwards.
    """
    union = shapely.coverage_union_all(live)
    xmin, ymin, xmax, ymax = shapely.bounds(union)
    pad = max(xmax - xmin, ymax - ymin, 100 * grid) * 0.05
    lo = np.floor((np.array([xmin, ymin]) - pad) / grid) * grid
    hi = np.ceil((np.array([xmax, ymax]) + pad) / grid) * grid
    frame = shapely.box(lo[0], lo[1], hi[0], hi[1])
    fillers = shapely.get_parts(shapely.difference(frame, union))
    return np.asarray(fillers[~shapely.is_empty(fillers)], dtype=object)


def _arc_simplify(
    snapped: Geoms,
    tolerance: float,
    grid: float,
    *,
    check_input: bool,
    fill_gaps: bool,
    revert: bool,
) -> tuple[Geoms, Geoms, str]:
    """Topological Douglas–Peucker; raises _NotACoverage if the result is not a coverage.

    ``check_input``: when the result is broken, check the input and raise
    ``_InputNotACoverage`` if it is to blame. ``fill_gaps``: simplify together with
    ``_gap_fillers``. ``revert``: keep the arcs of broken polygons unsimplified and retry.
    """
    out = np.array([shapely.Polygon()] * len(snapped), dtype=object)
    live = np.flatnonzero(~shapely.is_empty(snapped))
    if len(live) == 0:
        return out, np.zeros(0, dtype=object), "arcs"
    polys = snapped[live]
    n_real = len(polys)
    if fill_gaps:
        polys = np.concatenate([polys, _gap_fillers(polys, grid)])
    try:
        top = _topology(polys, grid)
    except _NotACoverage as exc:
        raise _InputNotACoverage(str(exc)) from exc
    original = _arc_lines(top, grid)
    ring_geom = _ring_owner(top)
    # polygons smaller than a few tolerances (slivers) would collapse: keep them as they are
    small = shapely.area(polys) < (4 * tolerance) ** 2
    keep = np.zeros(len(original), dtype=bool)
    keep[top.occ_arc[small[ring_geom[top.occ_ring]]]] = True
    method = "arcs+filled" if fill_gaps else "arcs"
    for _ in range(_MAX_REVERT_ROUNDS + 1):
        arcs = _simplify_arcs(original, tolerance, keep)
        try:
            result: Geoms | None = _assemble(top, arcs)
        except _NotACoverage:
            result = None
        if result is not None and _nonempty_ok(result):
            out[live] = result[:n_real]
            real_arcs = np.unique(top.occ_arc[ring_geom[top.occ_ring] < n_real])
            return out, arcs[real_arcs], method
        if check_input:
            if not _nonempty_ok(polys):
                raise _InputNotACoverage("the input is not a valid coverage")
            check_input = False
        if not revert:
            break
        # keep the arcs of broken polygons (or of collapsed rings) unsimplified
        method += "+revert"
        if result is None:
            arc_len = shapely.get_num_coordinates(arcs)
            ring_pts = np.bincount(
                top.occ_ring, weights=arc_len[top.occ_arc] - 1, minlength=len(top.ring_sizes)
            )
            broken = np.isin(top.occ_ring, np.flatnonzero(ring_pts < 3))
        else:
            broken = _bad_mask(result)[ring_geom[top.occ_ring]]
        newly = np.unique(top.occ_arc[broken])
        newly = newly[~keep[newly]]
        if len(newly) == 0:
            break
        keep[newly] = True
    raise _NotACoverage("arc simplification did not give a valid coverage")


def _ring_owner(top: _Topology) -> IntArray:
    """Geometry index of every ring."""
    rings_per_poly = np.diff(top.poly_offsets)
    polys_per_geom = np.diff(top.geom_offsets)
    poly_geom = np.repeat(np.arange(len(polys_per_geom)), polys_per_geom)
    return np.repeat(poly_geom, rings_per_poly)


def _arcs_of(geoms: Geoms, grid: float) -> Geoms:
    """Unique edges of a valid coverage (no simplification)."""
    live = geoms[~shapely.is_empty(geoms)]
    try:
        return _arc_lines(_topology(live, grid), grid)
    except _NotACoverage:
        return np.asarray(shapely.boundary(live), dtype=object)


def _neighbourhood(geoms: Geoms, mask: BoolArray, tree: shapely.STRtree) -> BoolArray:
    """``mask`` grown by every polygon that touches or overlaps a polygon in it."""
    grown = mask.copy()
    if mask.any():
        grown[np.unique(tree.query(geoms[mask], predicate="intersects")[1])] = True
    return grown


def _clean(snapped: Geoms, grid: float, gap_width: float) -> tuple[Geoms, int]:
    """A valid coverage on the grid from a broken one, and how many polygons were rebuilt.

    Only the broken polygons and their neighbours are rebuilt when that is enough; the
    rest keep their exact edges.
    """
    live = ~shapely.is_empty(snapped)
    bad = _bad_mask(snapped, gap_width)
    tree = shapely.STRtree(snapped)
    region = _neighbourhood(snapped, bad, tree) & live
    if region.any() and region.sum() < 0.5 * live.sum():
        out = snapped.copy()
        out[region] = _clean_all(snapped[region], grid, gap_width)
        # pairs outside the region were fine; check the region against its surroundings
        check = _neighbourhood(out, region, shapely.STRtree(out))
        if _nonempty_ok(out[check]):
            return out, int(region.sum())
    out = snapped.copy()
    out[live] = _clean_all(snapped[live], grid, gap_width)
    if _nonempty_ok(out):
        return out, int(live.sum())
    raise _NotACoverage("the grid boundaries could not be repaired into a coverage")


def _clean_all(geoms: Geoms, grid: float, gap_width: float) -> Geoms:
    """Rebuild polygons as a coverage: GEOS coverage_clean, else noding and polygonizing."""
    if hasattr(shapely, "coverage_clean"):
        cleaned = shapely.coverage_clean(geoms, gap_width=gap_width)
        snapped = _snap(polygonal(cleaned), grid)
        if _nonempty_ok(snapped):
            return snapped
    return _clean_by_faces(geoms, grid)


def _clean_by_faces(geoms: Geoms, grid: float) -> Geoms:
    """Node all edges on the grid, polygonize, give each face to the first polygon holding it.

    Slower than coverage_clean but exact on the grid; faces inside no polygon stay gaps.
    """
    noded = shapely.union_all(shapely.boundary(geoms), grid_size=grid)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    out = np.array([shapely.Polygon()] * len(geoms), dtype=object)
    if len(faces) == 0:
        return out
    inside = shapely.point_on_surface(faces)
    face_idx, geom_idx = shapely.STRtree(geoms).query(inside, predicate="within")
    owner = np.full(len(faces), len(geoms), dtype=np.int64)
    np.minimum.at(owner, face_idx, geom_idx)
    order = np.argsort(owner, kind="stable")
    cuts = np.flatnonzero(np.diff(owner[order])) + 1
    for group in np.split(order, cuts):  # one union per grid
        g = int(owner[group[0]])
        if g < len(geoms):
            out[g] = shapely.coverage_union_all(faces[group])
    return out


def repair_coverage(
    geoms: npt.ArrayLike, *, grid_size: float = 1e-5, gap_width: float = 0.0
) -> tuple[Geoms, int]:
    """Polygons snapped to the grid and, if they are not a valid coverage, repaired into one.

    Returns the polygons and how many were rebuilt. Repair is the slow part of a map
    of messy grids (seconds at city scale), so a loader may run it once and store the
    result; ``simplify_coverage`` on a clean coverage then takes the fast path.
    """
    snapped = _snap(polygonal(geoms), grid_size)
    if _nonempty_ok(snapped):
        return snapped, 0
    return _clean(snapped, grid_size, gap_width)


def simplify_coverage(
    geoms: npt.ArrayLike,
    tolerance: float,
    *,
    grid_size: float = 1e-5,
    gap_width: float = 0.0,
) -> Coverage:
    """Simplify polygons as a coverage: no overlaps, no new gaps, vertices on a grid.

    Parameters
    ----------
    geoms
        Polygons or multipolygons in degrees (one per grid or area).
    tolerance
        Douglas–Peucker tolerance in degrees (largest distance an edge may move);
        0 only snaps.
    grid_size
        Precision grid in degrees; every output vertex is a multiple of it.
    gap_width
        When the input has to be repaired, gaps narrower than this between neighbours
        are closed too (slivers; GEOS makes this slow, so 0 = keep every gap).
    """
    if grid_size <= 0 or tolerance < 0:
        from gridmgr.errors import BadInput

        raise BadInput(f"grid_size must be > 0 and tolerance >= 0 (got {grid_size}, {tolerance})")
    valid = polygonal(geoms)
    vertices_in = int(shapely.get_num_coordinates(valid).sum())
    snapped = _snap(valid, grid_size)
    repaired = 0
    prefix = ""
    arcs: Geoms
    try:
        # checking the simplified output is much cheaper than checking the input first
        out, arcs, method = _arc_simplify(
            snapped, tolerance, grid_size, check_input=True, fill_gaps=False, revert=False
        )
    except _NotACoverage as exc:
        if isinstance(exc, _InputNotACoverage):
            log.info("input is not a valid coverage: repairing it before simplifying")
            snapped, repaired = _clean(snapped, grid_size, gap_width)
            prefix = "cleaned+"
        try:
            out, arcs, method = _arc_simplify(
                snapped, tolerance, grid_size, check_input=False, fill_gaps=True, revert=True
            )
        except _NotACoverage:
            log.info("arc simplification failed; falling back to GEOS coverage_simplify")
            out = _geos_simplify(snapped, tolerance)
            arcs, method = _arcs_of(out, grid_size), "geos"
    return Coverage(
        geometries=out,
        arcs=arcs,
        method=prefix + method,
        repaired=repaired,
        vertices_in=vertices_in,
        vertices_out=int(shapely.get_num_coordinates(out).sum()),
    )


def _geos_simplify(snapped: Geoms, tolerance: float) -> Geoms:
    """GEOS coverage_simplify (Visvalingam–Whyatt, topology-preserving) on the live polygons."""
    out = snapped.copy()
    live = np.flatnonzero(~shapely.is_empty(snapped))
    if len(live) and tolerance > 0:
        # VW tolerance is about the square root of a removed triangle's area: scale it
        # so it removes about what Douglas–Peucker at ``tolerance`` would
        simplified = shapely.coverage_simplify(snapped[live], tolerance * 2.0)
        out[live] = simplified
        if not _nonempty_ok(out):  # cannot happen on a valid coverage; stay safe
            out[live] = snapped[live]
    return out


def simplify_lines(geoms: npt.ArrayLike, tolerance: float, *, grid_size: float = 1e-5) -> Geoms:
    """Boundary lines of polygons, each shared border once, snapped and simplified.

    For drawing only (district, street and community outlines over the grids): the
    polygons need not form a clean coverage and the lines are not checked for crossings.
    """
    arr = shapely.force_2d(np.asarray(geoms, dtype=object))
    polygonal_type = np.isin(shapely.get_type_id(arr), [3, 6])
    arr = arr[polygonal_type & ~shapely.is_empty(arr)]
    if len(arr) == 0:
        return np.zeros(0, dtype=object)
    try:  # _topology snaps the vertices itself
        lines = _arc_lines(_topology(arr, grid_size), grid_size)
    except _NotACoverage:
        snapped = shapely.set_precision(arr, grid_size, mode="pointwise")
        lines = shapely.get_parts(shapely.boundary(snapped[~shapely.is_empty(snapped)]))
    if tolerance > 0:
        closed = shapely.is_closed(lines)
        lines = lines.copy()
        lines[~closed] = shapely.simplify(lines[~closed], tolerance, preserve_topology=False)
        lines[closed] = shapely.simplify(lines[closed], tolerance, preserve_topology=True)
    return np.asarray(lines, dtype=object)


def coverage_overlaps(geoms: npt.ArrayLike) -> int:
    """Number of pairs of polygons whose interiors intersect (0 for a valid coverage)."""
    arr = np.asarray(geoms, dtype=object)
    arr = arr[~shapely.is_empty(arr)]
    if len(arr) < 2:
        return 0
    tree = shapely.STRtree(arr)

    def pairs(predicate: str) -> int:
        left, right = tree.query(arr, predicate=predicate)
        return int(np.count_nonzero(left < right))

    return pairs("intersects") - pairs("touches")
