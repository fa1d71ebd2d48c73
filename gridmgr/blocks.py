"""Building blocks for boundary plans: H3 cells clipped to a parent area, with load and adjacency.

A rebalance (重新划分网格) proposes grids assembled from small blocks. The blocks here are H3
cells at resolution 10 (about 15,000 m² each) or 11 (about 2,100 m²) that cover a community
or street polygon, clipped to it so that they tile it exactly: every point of the parent is
in exactly one block and the union of the blocks is the parent. Each block carries the load
of the houses inside it (for example the floating residents, 流动人口) and the number of
houses; the adjacency graph links blocks that share an edge of positive length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import h3
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry.base import BaseGeometry

from gridmgr.errors import BadInput

WGS84 = "EPSG:4326"
MIN_SHARED_EDGE_M = 1e-3
"""Shared boundaries shorter than this (a millimetre) are noding artefacts, not adjacency."""


@dataclass(frozen=True)
class Adjacency:
    """Block adjacency in CSR form: block i touches blocks ``indices[indptr[i]:indptr[i+1]]``.

    ``shared_m`` (optional, aligned with ``indices``) holds the length in metres of the edge
    each pair shares; the rebalance uses it to update region perimeters incrementally.
    """

    indptr: NDArray[np.int64]
    indices: NDArray[np.int64]
    shared_m: NDArray[np.float64] | None = None

    @property
    def n(self) -> int:
        """Number of blocks."""
        return int(self.indptr.shape[0] - 1)

    def neighbours(self, i: int) -> NDArray[np.int64]:
        """Return the indices of the blocks that share an edge with block ``i``."""
        return self.indices[self.indptr[i] : self.indptr[i + 1]]

    def to_lists(self) -> list[NDArray[np.int64]]:
        """Neighbour index arrays, one per block."""
        return [self.neighbours(i) for i in range(self.n)]

    @classmethod
    def from_pairs(
        cls,
        n: int,
        i: ArrayLike,
        j: ArrayLike,
        shared_m: ArrayLike | None = None,
    ) -> Adjacency:
        """Build a symmetric adjacency from undirected pairs (each pair given once or twice)."""
        a = np.asarray(i, dtype=np.int64)
        b = np.asarray(j, dtype=np.int64)
        if a.shape != b.shape:
            raise BadInput("adjacency pairs: i and j must have the same length")
        if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n):
            raise BadInput(f"adjacency pairs refer to blocks outside 0..{n - 1}")
        length = None if shared_m is None else np.asarray(shared_m, dtype=np.float64)
        keep = a != b
        lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
        key = lo * n + hi
        uniq, first = np.unique(key, return_index=True)
        lo, hi = uniq // n, uniq % n
        src = np.concatenate([lo, hi])
        dst = np.concatenate([hi, lo])
        order = np.lexsort((dst, src))
        src, dst = src[order], dst[order]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
        shared = None
        if length is not None:
            per_pair = length[keep][first]
            shared = np.concatenate([per_pair, per_pair])[order]
        return cls(indptr=indptr, indices=dst.astype(np.int64), shared_m=shared)

    @classmethod
    def from_lists(cls, neighbours: Sequence[ArrayLike]) -> Adjacency:
        """Build from one array of neighbour indices per block (made symmetric)."""
        n = len(neighbours)
        arrays = [np.asarray(x, dtype=np.int64).ravel() for x in neighbours]
        counts = np.array([a.size for a in arrays], dtype=np.int64)
        i = np.repeat(np.arange(n, dtype=np.int64), counts)
        j = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
        return cls.from_pairs(n, i, j)

    def components(self) -> NDArray[np.int64]:
        """Connected-component label per block (0 is the component of block 0)."""
        n = self.n
        comp = np.full(n, -1, dtype=np.int64)
        current = 0
        for start in range(n):
            if comp[start] >= 0:
                continue
            comp[start] = current
            stack = [start]
            while stack:
                v = stack.pop()
                for w in self.indices[self.indptr[v] : self.indptr[v + 1]]:
                    if comp[w] < 0:
                        comp[w] = current
                        stack.append(int(w))
            current += 1
        return comp


@dataclass(frozen=True)
class BlockSet:
    """Blocks tiling one parent area, their adjacency, and where each house fell.

    ``blocks`` has columns block_id, cell, load, houses, area_m2, perimeter_m and geometry
    (EPSG:4326), one row per block, in the order the adjacency indices refer to.
    ``house_block`` gives, per input house, the row of its block (-1 when the house lies
    outside the parent).
    """

    blocks: gpd.GeoDataFrame
    adjacency: Adjacency
    house_block: NDArray[np.int64]
    resolution: int
    metric_crs: str

    @property
    def houses_outside(self) -> int:
        """Number of input houses that lie outside the parent area."""
        return int(np.count_nonzero(self.house_block < 0))


def metric_crs(geometry: BaseGeometry) -> str:
    """Return a metric CRS for a lon/lat geometry: gridmgr.geo's choice, else its UTM zone."""
    try:  # the project-wide helper decides when it is there
        from gridmgr.geo import metric_crs_for
    except ImportError:
        minx, miny, maxx, maxy = geometry.bounds
        lon, lat = (minx + maxx) / 2.0, (miny + maxy) / 2.0
        zone = min(60, max(1, int(math.floor((lon + 180.0) / 6.0)) + 1))
        return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"
    return str(metric_crs_for(geometry))


def adjacency_from_geometry(
    geometries: ArrayLike, *, min_shared_m: float = MIN_SHARED_EDGE_M
) -> Adjacency:
    """Edge adjacency of polygons in a metric CRS: pairs whose shared boundary is a line.

    Polygons that touch only at a vertex are not neighbours. Lengths are in the units of
    the CRS (metres for a projected one) and kept in ``shared_m``.
    """
    geoms = np.asarray(geometries, dtype=object)
    n = geoms.shape[0]
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    shared = shapely.length(shapely.intersection(geoms[a], geoms[b]))
    edge = shared > min_shared_m
    return Adjacency.from_pairs(n, a[edge], b[edge], shared[edge])


def _cell_polygons(cells: Sequence[str]) -> NDArray[np.object_]:
    rings = [[(lng, lat) for lat, lng in h3.cell_to_boundary(c)] for c in cells]
    return np.asarray([shapely.Polygon(r) for r in rings], dtype=object)


def _covering_cells(parent: BaseGeometry, resolution: int) -> list[str]:
    """All cells whose hexagon may overlap the parent (a superset, filtered by the caller)."""
    edge_m = h3.average_hexagon_edge_length(resolution, unit="m")
    _, miny, _, maxy = parent.bounds
    coslat = max(0.05, math.cos(math.radians(max(abs(miny), abs(maxy)))))
    # Any cell touching the parent has its centre within one circumradius (≈ one edge length,
    # with margin for H3's distortion) of it, so the centre-filled buffer covers them all.
    pad_deg = 1.5 * edge_m / (111_320.0 * coslat)
    padded = shapely.buffer(parent, pad_deg, quad_segs=2)
    cells: set[str] = set()
    for part in shapely.get_parts(padded):
        cells.update(h3.geo_to_cells(part.__geo_interface__, resolution))
    return sorted(cells)


def _check_parent(parent: BaseGeometry) -> None:
    if not isinstance(parent, BaseGeometry) or parent.geom_type not in (
        "Polygon",
        "MultiPolygon",
    ):
        raise BadInput("the parent area must be a Polygon or MultiPolygon in EPSG:4326")
    if parent.is_empty:
        raise BadInput("the parent area is empty: give the community or street boundary")
    if not parent.is_valid:
        reason = shapely.is_valid_reason(parent)
        raise BadInput(f"the parent area is not a valid polygon ({reason}); repair it first")
    minx, miny, maxx, maxy = parent.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise BadInput("the parent area is not in lon/lat degrees (EPSG:4326): reproject it first")


def build_blocks(
    parent: BaseGeometry,
    lon: ArrayLike,
    lat: ArrayLike,
    load: ArrayLike | None = None,
    *,
    resolution: int = 10,
    min_piece_fraction: float = 0.05,
) -> BlockSet:
    """Tile a parent polygon with H3 cells clipped to it, and sum the houses' load per block.

    Parameters
    ----------
    parent
        The community or street boundary (Polygon or MultiPolygon, EPSG:4326).
    lon, lat
        House locations in degrees.
    load
        Load per house (e.g. floating residents living there); 1 per house when omitted.
    resolution
        H3 resolution of the blocks: 10 (default, ≈ 15,000 m²) or 11 (≈ 2,100 m²).
    min_piece_fraction
        A clipped piece smaller than this fraction of its cell's area is merged into the
        neighbouring block it shares the longest edge with, so that slivers along the
        parent's boundary do not become blocks of their own.

    Returns
    -------
    BlockSet
        Blocks that tile the parent exactly (a clipped cell whose pieces are disjoint
        yields one block per piece), their edge adjacency, and the block of each house.
    """
    _check_parent(parent)
    if not 6 <= int(resolution) <= 13:
        raise BadInput(f"resolution {resolution} is not supported: use 10 (default) or 11")
    if not 0.0 <= min_piece_fraction < 1.0:
        raise BadInput("min_piece_fraction must be in [0, 1)")
    x = np.asarray(lon, dtype=np.float64).ravel()
    y = np.asarray(lat, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise BadInput(f"lon and lat differ in length ({x.size} vs {y.size})")
    w = np.ones_like(x) if load is None else np.asarray(load, dtype=np.float64).ravel()
    if w.shape != x.shape:
        raise BadInput(f"load has {w.size} values for {x.size} houses")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise BadInput("house coordinates contain NaN or infinite values")
    if not np.isfinite(w).all() or (w < 0).any():
        raise BadInput("house loads must be finite and not negative")

    cells = _covering_cells(parent, int(resolution))
    hexes = _cell_polygons(cells)
    touching = shapely.intersects(hexes, parent)
    cell_ids = np.asarray(cells, dtype=object)[touching]
    hexes = hexes[touching]

    # Noding all hexagon edges together with the parent's boundary and polygonising gives
    # faces whose shared edges are bit-for-bit identical, so unions and adjacency are exact.
    lines = shapely.union_all(np.concatenate([shapely.boundary(hexes), [shapely.boundary(parent)]]))
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(lines))))
    inner = shapely.point_on_surface(faces)
    inside = shapely.within(inner, parent)
    faces, inner = faces[inside], inner[inside]
    hit_face, hit_cell = shapely.STRtree(hexes).query(inner, predicate="intersects")
    face_cell = np.full(faces.shape[0], -1, dtype=np.int64)
    face_cell[hit_face[::-1]] = hit_cell[::-1]  # the first hit wins
    if (face_cell < 0).any():
        raise BadInput("the parent area could not be covered by H3 cells; check its CRS")

    crs_m = metric_crs(parent)
    faces_m = np.asarray(gpd.GeoSeries(faces, crs=WGS84).to_crs(crs_m).values, dtype=object)
    face_area = shapely.area(faces_m)
    face_adj = adjacency_from_geometry(faces_m)
    full_area = np.array([h3.cell_area(c, unit="m^2") for c in cell_ids])[face_cell]

    root = _merge_slivers(face_adj, face_area, face_area < min_piece_fraction * full_area)
    groups, block_of_face = np.unique(root, return_inverse=True)
    block_cell = cell_ids[face_cell[groups]]
    # Order blocks by cell, then by size, so block ids do not depend on noding order.
    block_area_raw = np.bincount(block_of_face, weights=face_area)
    order = np.lexsort((-block_area_raw, block_cell.astype(str)))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    block_of_face = rank[block_of_face]
    block_cell = block_cell[order]

    nb = order.size
    geoms = np.empty(nb, dtype=object)
    geoms_m = np.empty(nb, dtype=object)
    members = np.argsort(block_of_face, kind="stable")
    bounds = np.searchsorted(block_of_face[members], np.arange(nb + 1))
    for k in range(nb):
        idx = members[bounds[k] : bounds[k + 1]]
        geoms[k] = faces[idx[0]] if idx.size == 1 else shapely.coverage_union_all(faces[idx])
        geoms_m[k] = faces_m[idx[0]] if idx.size == 1 else shapely.coverage_union_all(faces_m[idx])

    part = np.zeros(nb, dtype=np.int64)
    same = np.flatnonzero(block_cell[1:] == block_cell[:-1]) + 1
    for j in same.tolist():
        part[j] = part[j - 1] + 1
    has_parts = np.zeros(nb, dtype=bool)
    has_parts[part > 0] = True
    has_parts[np.flatnonzero(part > 0) - 1] = True
    block_id = np.array(
        [
            f"{c}-{p}" if multi else str(c)
            for c, p, multi in zip(block_cell, part, has_parts, strict=True)
        ],
        dtype=object,
    )

    house_block = np.full(x.size, -1, dtype=np.int64)
    if x.size:
        pts = shapely.points(x, y)
        hp, hb = shapely.STRtree(geoms).query(pts, predicate="intersects")
        house_block[hp[::-1]] = hb[::-1]
    placed = house_block >= 0
    block_load = np.bincount(house_block[placed], weights=w[placed], minlength=nb)
    block_houses = np.bincount(house_block[placed], minlength=nb).astype(np.int64)

    adjacency = adjacency_from_geometry(geoms_m)
    frame = gpd.GeoDataFrame(
        {
            "block_id": block_id,
            "cell": block_cell.astype(str),
            "load": block_load,
            "houses": block_houses,
            "area_m2": shapely.area(geoms_m),
            "perimeter_m": shapely.length(geoms_m),
        },
        geometry=gpd.GeoSeries(geoms, crs=WGS84),
    )
    return BlockSet(
        blocks=frame,
        adjacency=adjacency,
        house_block=house_block,
        resolution=int(resolution),
        metric_crs=crs_m,
    )


def build_blocks_from_houses(
    parent: BaseGeometry,
    houses: gpd.GeoDataFrame,
    load_column: str | None = None,
    *,
    resolution: int = 10,
) -> BlockSet:
    """Adapter of :func:`build_blocks` for a GeoDataFrame of house points."""
    if houses.crs is not None and not houses.crs.equals(WGS84):
        houses = houses.to_crs(WGS84)
    if load_column is not None and load_column not in houses.columns:
        raise BadInput(f"houses have no column {load_column!r} to use as load")
    pts = np.asarray(houses.geometry.values, dtype=object)
    load = None if load_column is None else houses[load_column].to_numpy(dtype=np.float64)
    return build_blocks(parent, shapely.get_x(pts), shapely.get_y(pts), load, resolution=resolution)


def _merge_slivers(
    adjacency: Adjacency, area: NDArray[np.float64], small: NDArray[np.bool_]
) -> NDArray[np.int64]:
    """Union-find roots after merging each small face into its longest-edge neighbour."""
    n = adjacency.n
    parent = np.arange(n, dtype=np.int64)

    def find(v: int) -> int:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = int(parent[v])
        return v

    shared = adjacency.shared_m
    assert shared is not None
    for f in np.argsort(area, kind="stable"):
        if not small[f]:
            continue
        lo, hi = adjacency.indptr[f], adjacency.indptr[f + 1]
        if lo == hi:
            continue
        nbrs, lengths = adjacency.indices[lo:hi], shared[lo:hi]
        # Prefer a full-sized neighbour so merged slivers end up inside a real block.
        big = ~small[nbrs]
        pick = nbrs[big][np.argmax(lengths[big])] if big.any() else nbrs[np.argmax(lengths)]
        rf, rt = find(int(f)), find(int(pick))
        if rf != rt:
            parent[rf] = rt
    return np.array([find(v) for v in range(n)], dtype=np.int64)
