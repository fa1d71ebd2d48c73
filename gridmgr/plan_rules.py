"""Rules a boundary plan's grids must keep, and the geometry of plan edits (pure).

A plan (网格划分方案) is valid when every grid is a valid polygon inside its one community,
no two grids overlap, the grids of a community leave no gap inside it, and every grid is
one piece. Real boundary files are not perfect: the grids as loaded may already stick out
of their community a little, overlap along a noisy edge, or own a detached part (飞地, an
island such as a compound surrounded by a neighbouring grid). So an *edit* is judged by
what it changes:

- :func:`problems` lists every problem of a set of grids (for a report of a whole plan);
- :func:`new_problems` lists only the problems an edit *creates*: a problem region of the
  grids after the edit that the grids before it did not have (region by region, so an
  island may be kept, shrunk or handed on, but never created, and a grid that already
  stuck out of its community may not stick out further).

Regions narrower than ``2 × tolerance_m`` (noding noise, a boundary digitised twice) are not
problems. Distances are measured in a local equirectangular frame around the grids (metres;
good to a fraction of a percent over a city), areas in m².

The edit helpers (:func:`split_by_line`, :func:`merge_geometries`, :func:`reshape_grids`,
:func:`transfer`) take and return lon/lat geometries and never touch a store. Polsby–Popper
compactness (4πA/P², 1 for a disc) is :func:`polsby_popper`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import h3
import numpy as np
import numpy.typing as npt
import shapely
import shapely.ops
from pydantic_settings import BaseSettings, SettingsConfigDict
from shapely.geometry.base import BaseGeometry

from gridmgr.errors import BadInput

GeomArray = npt.NDArray[np.object_]

RULES: tuple[str, ...] = (
    "invalid",
    "unknown_community",
    "duplicate_grid_id",
    "outside_community",
    "overlap",
    "gap",
    "not_contiguous",
)
"""Every rule, in the order problems are reported."""

CHECK_GRID_DEG = 1e-9
"""The rules' overlays snap to this grid (≈ 0.1 mm): floating-point overlays of boundaries
that nearly coincide can fail outright (a whole community reported as a gap), snap-rounded
ones cannot, and a tenth of a millimetre is far below the tolerance."""

_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON = 111_320.0


class PlanRuleSettings(BaseSettings):
    """Tolerances of the plan rules (env prefix ``GRIDMGR_PLAN_``)."""

    model_config = SettingsConfigDict(env_prefix="GRIDMGR_PLAN_", extra="ignore")

    tolerance_m: float = 0.5
    """Overlaps, gaps, islands and parts outside a community narrower than twice this many
    metres are noise, not problems; slivers that thin are also dropped from edited grids."""
    min_grid_area_m2: float = 100.0
    """A grid smaller than this is empty for practical purposes and rejected."""


class Grids(NamedTuple):
    """Grids as parallel arrays: ids, community codes and lon/lat (Multi)Polygons."""

    grid_ids: npt.NDArray[np.object_]
    community_codes: npt.NDArray[np.object_]
    geoms: GeomArray

    @classmethod
    def of(cls, grid_ids: Sequence[str], community_codes: Sequence[str],
           geoms: Sequence[BaseGeometry | None] | GeomArray) -> Grids:
        """Build from any sequences of equal length."""
        ids = np.asarray(list(grid_ids), dtype=object)
        codes = np.asarray(list(community_codes), dtype=object)
        g = np.empty(len(ids), dtype=object)
        g[:] = list(geoms)
        if not (ids.size == codes.size == g.size):
            raise BadInput(f"{ids.size} grid ids, {codes.size} community codes and {g.size} "
                           "geometries: give one of each per grid")
        return cls(ids, codes, g)


@dataclass(frozen=True)
class Problem:
    """One broken rule: which grids, what is wrong, how big, and where.

    ``region`` (lon/lat) is the offending area itself — the overlap, the gap, the part
    outside the community or the detached part — used to tell old problems from new ones.
    """

    rule: str
    grids: tuple[str, ...]
    detail: str
    area_m2: float = 0.0
    where: tuple[float, float] | None = None
    community: str | None = None
    region: BaseGeometry | None = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        """Render as 'grid A, B: overlap of 1,234 m² near (104.06512, 30.65731)'."""
        who = "grid " + ", ".join(self.grids) if self.grids else f"community {self.community}"
        near = f" near ({self.where[0]:.5f}, {self.where[1]:.5f})" if self.where else ""
        return f"{who}: {self.detail}{near}"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (no geometry)."""
        return {"rule": self.rule, "grids": list(self.grids), "detail": self.detail,
                "area_m2": round(self.area_m2, 1), "where": list(self.where) if self.where
                else None, "community": self.community}


class PlanRuleViolation(BadInput):
    """An edit would break the plan rules; nothing was changed. Carries the problems."""

    code = "plan_rule_violation"

    def __init__(self, action: str, found: Sequence[Problem]) -> None:
        self.problems = list(found)
        shown = "; ".join(str(p) for p in self.problems[:5])
        more = len(self.problems) - 5
        tail = f"; and {more} more" if more > 0 else ""
        super().__init__(f"{action} rejected, the plan is unchanged: {shown}{tail}")


# ----------------------------------------------------------------------------- measuring


class _Frame:
    """A local metric frame (equirectangular at the grids' latitude): lon/lat → metres."""

    def __init__(self, lat0: float) -> None:
        self.kx = _M_PER_DEG_LON * math.cos(math.radians(lat0))
        self.ky = _M_PER_DEG_LAT

    @classmethod
    def around(cls, geoms: Sequence[BaseGeometry | None] | GeomArray) -> _Frame:
        arr = np.asarray([g for g in geoms if g is not None and not g.is_empty], dtype=object)
        if arr.size == 0:
            return cls(30.0)
        b = shapely.total_bounds(arr)
        return cls((b[1] + b[3]) / 2.0)

    def metric(self, geom: BaseGeometry) -> BaseGeometry:
        k = np.array([self.kx, self.ky])
        return shapely.transform(geom, lambda xy: xy * k)

    def significant(self, geom: BaseGeometry | None, tol_m: float) -> bool:
        """True when the region holds a disc of radius tol_m somewhere (not a sliver)."""
        if geom is None or geom.is_empty:
            return False
        m = self.metric(geom)
        if shapely.area(m) <= 0:
            return False
        return not shapely.buffer(m, -tol_m, quad_segs=2).is_empty

    def area_m2(self, geom: BaseGeometry) -> float:
        return float(shapely.area(self.metric(geom)))


def _polygonal(geom: BaseGeometry | None) -> BaseGeometry:
    """The polygonal part of a geometry (a collection's lines and points dropped)."""
    if geom is None or geom.is_empty:
        return shapely.MultiPolygon()
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return shapely.MultiPolygon()
    return shapely.union_all(parts)


def _pieces(region: BaseGeometry, frame: _Frame, tol_m: float) -> list[BaseGeometry]:
    """The significant polygons of a region."""
    region = _polygonal(region)
    return [p for p in shapely.get_parts(region) if frame.significant(p, tol_m)]


def _where(geom: BaseGeometry) -> tuple[float, float]:
    p = shapely.point_on_surface(geom)
    return (round(float(p.x), 6), round(float(p.y), 6))


def _fmt_area(a: float) -> str:
    return f"{a / 1e6:,.3f} km²" if a >= 100_000 else f"{a:,.0f} m²"


def clean(geom: BaseGeometry | None, *, tolerance_m: float = 0.5,
          frame: _Frame | None = None) -> BaseGeometry:
    """Make a grid geometry valid and polygonal, dropping sliver parts and sliver holes.

    Slivers are parts (and holes) that vanish when eroded by ``tolerance_m`` metres: the
    noise an overlay leaves where two boundaries nearly coincide. Returns a Polygon, a
    MultiPolygon or an empty MultiPolygon.
    """
    if geom is None or geom.is_empty:
        return shapely.MultiPolygon()
    g = _polygonal(shapely.make_valid(geom) if not geom.is_valid else geom)
    if g.is_empty:
        return shapely.MultiPolygon()
    fr = frame or _Frame.around([g])
    kept: list[BaseGeometry] = []
    for part in shapely.get_parts(g):
        if not fr.significant(part, tolerance_m):
            continue
        holes = [r for r in part.interiors
                 if fr.significant(shapely.Polygon(r), tolerance_m)]
        kept.append(shapely.Polygon(part.exterior, holes) if len(holes) != len(part.interiors)
                    else part)
    if not kept:
        return shapely.MultiPolygon()
    return kept[0] if len(kept) == 1 else shapely.MultiPolygon(kept)


def as_multipolygon(geom: BaseGeometry) -> shapely.MultiPolygon:
    """The geometry as a MultiPolygon (the store's grid column type)."""
    g = _polygonal(geom)
    if isinstance(g, shapely.MultiPolygon):
        return g
    if isinstance(g, shapely.Polygon):
        return shapely.MultiPolygon([g])
    return shapely.MultiPolygon()


def polsby_popper(geoms: Sequence[BaseGeometry] | GeomArray) -> npt.NDArray[np.float64]:
    """Polsby–Popper compactness 4πA/P² of lon/lat polygons, measured in their UTM zone.

    1 for a disc, about 0.785 for a square, near 0 for a long thin strip; a MultiPolygon
    counts the perimeter of all its parts. Empty geometries give NaN.
    """
    from gridmgr.geo import metric_crs_for, to_metric

    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)
    out = np.full(arr.size, np.nan)
    live = ~(shapely.is_missing(arr) | shapely.is_empty(arr))
    if not live.any():
        return out
    crs = metric_crs_for(shapely.box(*shapely.total_bounds(arr[live])))
    m = to_metric(arr[live], crs)
    area, perim = shapely.area(m), shapely.length(m)
    out[live] = np.where(perim > 0, 4.0 * math.pi * area / np.maximum(perim, 1e-12) ** 2, 0.0)
    return out


# ----------------------------------------------------------------------------- the rules


def _check_inputs(grids: Grids, communities: Mapping[str, BaseGeometry]) -> None:
    for code, geom in communities.items():
        if geom is None or geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise BadInput(f"community {code}: its boundary must be a Polygon or MultiPolygon")


def problems(
    grids: Grids,
    communities: Mapping[str, BaseGeometry],
    *,
    focus: Collection[str] | None = None,
    settings: PlanRuleSettings | None = None,
) -> list[Problem]:
    """Every problem of a set of grids, in the order of :data:`RULES`.

    ``communities`` maps community code → boundary (lon/lat). With ``focus`` (grid ids)
    only problems that involve a focus grid are listed, and gaps only in the focus grids'
    communities; pass the focus grids *and* every grid that may touch them.
    """
    cfg = settings or PlanRuleSettings()
    tol = float(cfg.tolerance_m)
    _check_inputs(grids, communities)
    ids = [str(g) for g in grids.grid_ids]
    codes = [str(c) for c in grids.community_codes]
    n = len(ids)
    wanted = set(ids) if focus is None else {str(f) for f in focus}
    frame = _Frame.around([*grids.geoms, *[communities[c] for c in set(codes)
                                            if c in communities and c]])
    found: list[Problem] = []

    geoms = np.empty(n, dtype=object)
    usable = np.zeros(n, dtype=bool)
    for i, g in enumerate(grids.geoms):
        gid = ids[i]
        if g is None or not isinstance(g, BaseGeometry) or g.is_empty:
            if gid in wanted:
                found.append(Problem("invalid", (gid,), "has no geometry"))
            continue
        if g.geom_type not in ("Polygon", "MultiPolygon"):
            if gid in wanted:
                found.append(Problem("invalid", (gid,),
                                     f"is a {g.geom_type}, not a polygon"))
            continue
        if not g.is_valid:
            if gid in wanted:
                found.append(Problem("invalid", (gid,),
                                     f"is not a valid polygon ({shapely.is_valid_reason(g)})",
                                     where=_where(shapely.make_valid(g))))
            continue
        if frame.area_m2(g) < cfg.min_grid_area_m2:
            if gid in wanted:
                found.append(Problem("invalid", (gid,), f"is empty or nearly so "
                                     f"({frame.area_m2(g):,.0f} m² < {cfg.min_grid_area_m2:g})",
                                     area_m2=frame.area_m2(g)))
            continue
        geoms[i] = g
        usable[i] = True

    for i in range(n):
        if ids[i] in wanted and codes[i] not in communities:
            found.append(Problem("unknown_community", (ids[i],),
                                 f"belongs to community {codes[i]!r}, which is not loaded",
                                 community=codes[i]))
    seen: dict[str, int] = {}
    for gid in ids:
        seen[gid] = seen.get(gid, 0) + 1
    for gid, count in seen.items():
        if count > 1 and gid in wanted:
            found.append(Problem("duplicate_grid_id", (gid,), f"appears {count} times"))

    # outside the community
    for k in np.flatnonzero(usable).tolist():
        if ids[k] not in wanted or codes[k] not in communities:
            continue
        outside = shapely.difference(geoms[k], communities[codes[k]], grid_size=CHECK_GRID_DEG)
        for piece in _pieces(outside, frame, tol):
            a = frame.area_m2(piece)
            found.append(Problem("outside_community", (ids[k],),
                                 f"reaches {_fmt_area(a)} outside its community {codes[k]}",
                                 area_m2=a, where=_where(piece), community=codes[k],
                                 region=piece))

    # overlaps between grids
    idx = np.flatnonzero(usable)
    if idx.size > 1:
        tree = shapely.STRtree(geoms[idx])
        a_i, b_i = tree.query(geoms[idx], predicate="intersects")
        keep = a_i < b_i
        for a, b in zip(idx[a_i[keep]], idx[b_i[keep]], strict=True):
            if ids[a] not in wanted and ids[b] not in wanted:
                continue
            inter = shapely.intersection(geoms[a], geoms[b], grid_size=CHECK_GRID_DEG)
            for piece in _pieces(inter, frame, tol):
                ar = frame.area_m2(piece)
                pair = tuple(sorted((ids[a], ids[b])))
                found.append(Problem("overlap", pair, f"overlap by {_fmt_area(ar)}",
                                     area_m2=ar, where=_where(piece), region=piece))

    # gaps inside each community of interest
    comms = sorted({codes[i] for i in range(n) if ids[i] in wanted and codes[i] in communities})
    for code in comms:
        boundary = communities[code]
        near = idx[shapely.intersects(geoms[idx], boundary)] if idx.size else idx
        cover = shapely.union_all(geoms[near], grid_size=CHECK_GRID_DEG) if near.size \
            else shapely.MultiPolygon()
        hole = shapely.difference(boundary, cover, grid_size=CHECK_GRID_DEG)
        for piece in _pieces(hole, frame, tol):
            ar = frame.area_m2(piece)
            touching = [ids[j] for j in near
                        if shapely.distance(geoms[j], piece) <= tol / frame.ky * 4]
            found.append(Problem("gap", tuple(sorted(touching)),
                                 f"leave {_fmt_area(ar)} of community {code} in no grid",
                                 area_m2=ar, where=_where(piece), community=code, region=piece))

    # contiguity: a grid is one piece; the smaller parts of a MultiPolygon are islands
    for k in np.flatnonzero(usable).tolist():
        if ids[k] not in wanted:
            continue
        parts = [p for p in shapely.get_parts(geoms[k]) if frame.significant(p, tol)]
        if len(parts) <= 1:
            continue
        areas = [frame.area_m2(p) for p in parts]
        main = int(np.argmax(areas))
        for j, p in enumerate(parts):
            if j == main:
                continue
            found.append(Problem("not_contiguous", (ids[k],),
                                 f"is not one piece: a detached part of {_fmt_area(areas[j])}",
                                 area_m2=areas[j], where=_where(p), region=p))
    order = {r: k for k, r in enumerate(RULES)}
    found.sort(key=lambda p: (order[p.rule], p.grids, p.where or (0.0, 0.0)))
    return found


def new_problems(
    before: Grids,
    after: Grids,
    communities: Mapping[str, BaseGeometry],
    *,
    changed: Collection[str],
    settings: PlanRuleSettings | None = None,
) -> list[Problem]:
    """Problems of ``after`` that an edit created: not present, region by region, in ``before``.

    ``before`` and ``after`` are the same neighbourhood of the plan (the edited grids, every
    other grid of their communities and any grid that touches them) before and after the
    edit; ``changed`` names the edited and new grids of ``after``. A problem without a region
    (an invalid polygon, an unknown community, a duplicate id) is always new.
    """
    cfg = settings or PlanRuleSettings()
    tol = float(cfg.tolerance_m)
    focus = {str(c) for c in changed}
    after_found = problems(after, communities, focus=focus, settings=cfg)
    if not after_found:
        return []
    old = problems(before, communities, settings=cfg)
    frame = _Frame.around([*before.geoms, *after.geoms])
    old_regions: dict[str, BaseGeometry] = {}
    for rule in ("outside_community", "overlap", "gap", "not_contiguous"):
        regions = [p.region for p in old if p.rule == rule and p.region is not None]
        old_regions[rule] = shapely.union_all(regions, grid_size=CHECK_GRID_DEG) if regions \
            else shapely.MultiPolygon()
    fresh: list[Problem] = []
    for p in after_found:
        if p.region is None or p.rule not in old_regions:
            fresh.append(p)
            continue
        rest = shapely.difference(p.region, old_regions[p.rule], grid_size=CHECK_GRID_DEG)
        pieces = _pieces(rest, frame, tol)
        if not pieces:
            continue
        area = sum(frame.area_m2(x) for x in pieces)
        fresh.append(Problem(p.rule, p.grids, p.detail if area >= 0.99 * p.area_m2
                             else f"{p.detail} ({_fmt_area(area)} of it new)",
                             area_m2=area, where=_where(pieces[0]), community=p.community,
                             region=shapely.union_all(pieces)))
    return fresh


# ----------------------------------------------------------------------------- edits


def split_by_line(geom: BaseGeometry, line: BaseGeometry, *,
                  tolerance_m: float = 0.5) -> list[BaseGeometry]:
    """Cut a grid by a line into two or more pieces, ordered west to east (then south to north).

    The line must cross the grid from edge to edge. A part of a MultiPolygon grid that the
    line does not cross (an island) goes with the nearest piece. Pieces thinner than
    ``tolerance_m`` (the line grazing a corner) merge into the piece they border most.
    """
    if line is None or line.is_empty or line.geom_type not in ("LineString", "MultiLineString"):
        raise BadInput("the split line must be a LineString, e.g. "
                       "LINESTRING (104.061 30.650, 104.068 30.652)")
    if not line.is_valid:
        raise BadInput("the split line is not valid (repeated or non-finite points)")
    frame = _Frame.around([geom])
    parts = [p for p in shapely.get_parts(_polygonal(geom))]
    cut: list[BaseGeometry] = []
    islands: list[BaseGeometry] = []
    for part in parts:
        pieces = list(shapely.get_parts(shapely.ops.split(part, line))) \
            if shapely.intersects(part, line) else [part]
        if len(pieces) > 1:
            cut.extend(pieces)
        else:
            islands.append(part)
    cut = _absorb_slivers(cut, frame, tolerance_m)
    if len(cut) < 2:
        raise BadInput("the line does not cut the grid in two: draw it across the grid, "
                       "from one edge to the other")
    groups: list[list[BaseGeometry]] = [[c] for c in cut]
    for isl in islands:
        d = [shapely.distance(isl, c) for c in cut]
        groups[int(np.argmin(d))].append(isl)
    out = [g[0] if len(g) == 1 else shapely.MultiPolygon(
        [p for x in g for p in shapely.get_parts(x)]) for g in groups]
    cent = [shapely.centroid(g) for g in out]
    order = sorted(range(len(out)), key=lambda i: (round(cent[i].x, 7), round(cent[i].y, 7)))
    return [out[i] for i in order]


def _absorb_slivers(pieces: list[BaseGeometry], frame: _Frame,
                    tol_m: float) -> list[BaseGeometry]:
    keep = [p for p in pieces if frame.significant(p, tol_m)]
    thin = [p for p in pieces if not frame.significant(p, tol_m)]
    for s in thin:
        if not keep:
            break
        shared = [shapely.length(shapely.intersection(shapely.boundary(s), shapely.boundary(k)))
                  for k in keep]
        j = int(np.argmax(shared))
        keep[j] = shapely.union(keep[j], s)
    return keep


def merge_geometries(geoms: Sequence[BaseGeometry], *, tolerance_m: float = 0.5) -> BaseGeometry:
    """Union of grids (exact along shared edges), cleaned of slivers."""
    arr = np.asarray(list(geoms), dtype=object)
    try:
        merged = shapely.coverage_union_all(arr)
        if not merged.is_valid:
            raise shapely.errors.GEOSException("not a clean coverage")
    except shapely.errors.GEOSException:
        merged = shapely.union_all(arr)
    return clean(merged, tolerance_m=tolerance_m)


def reshape_grids(
    target: str,
    new_geom: BaseGeometry,
    grids: Mapping[str, BaseGeometry],
    *,
    receivers: Collection[str] | None = None,
    tolerance_m: float = 0.5,
) -> dict[str, BaseGeometry]:
    """Give grid ``target`` a new boundary and adjust its neighbours; return every changed grid.

    Area the new boundary takes in comes out of whichever grids held it. Area the grid gives
    up goes, piece by piece, to the grid in ``receivers`` (default: every other grid given)
    that borders the piece along the longest edge; a piece that borders none stays
    uncovered, which the gap rule then rejects. Geometries are lon/lat.
    """
    if target not in grids:
        raise BadInput(f"grid {target} is not in the plan")
    frame = _Frame.around([new_geom, *grids.values()])
    new = clean(new_geom, tolerance_m=tolerance_m, frame=frame)
    if new.is_empty:
        raise BadInput(f"the new boundary of grid {target} is empty or not a polygon")
    old = grids[target]
    out: dict[str, BaseGeometry] = {target: new}
    current = {k: v for k, v in grids.items() if k != target}
    for gid, g in current.items():
        if shapely.intersects(g, new):
            inter = shapely.intersection(g, new)
            if _pieces(inter, frame, tolerance_m):
                out[gid] = clean(shapely.difference(g, new), tolerance_m=tolerance_m,
                                 frame=frame)
    released = _pieces(shapely.difference(old, new), frame, tolerance_m)
    allowed = set(current) if receivers is None else {str(r) for r in receivers} - {target}
    for piece in released:
        best, best_len = None, 0.0
        edge = shapely.boundary(piece)
        for gid in sorted(allowed):
            g = out.get(gid, current.get(gid))
            if g is None or g.is_empty or not shapely.intersects(g, shapely.buffer(piece, 1e-9)):
                continue
            shared = float(shapely.length(frame.metric(shapely.intersection(edge, g))))
            if shared > best_len + 1e-9:
                best, best_len = gid, shared
        if best is not None and best_len > 2 * tolerance_m:
            base = out.get(best, current[best])
            out[best] = clean(shapely.union(base, piece), tolerance_m=tolerance_m, frame=frame)
    return out


def transfer(source: BaseGeometry, target: BaseGeometry, area: BaseGeometry, *,
             tolerance_m: float = 0.5) -> tuple[BaseGeometry, BaseGeometry, BaseGeometry]:
    """Move the part of ``source`` inside ``area`` to ``target``: (source', target', piece)."""
    frame = _Frame.around([source, target, area])
    piece = clean(shapely.intersection(source, area), tolerance_m=tolerance_m, frame=frame)
    if piece.is_empty:
        return source, target, piece
    return (clean(shapely.difference(source, piece), tolerance_m=tolerance_m, frame=frame),
            clean(shapely.union(target, piece), tolerance_m=tolerance_m, frame=frame), piece)


def cells_polygon(cells: Sequence[str]) -> BaseGeometry:
    """The union of H3 cells (hexagons of the building-block grid) as a lon/lat geometry."""
    good = []
    for c in dict.fromkeys(str(x) for x in cells):  # one per cell, not per house
        if not h3.is_valid_cell(c):
            raise BadInput(f"{c!r} is not an H3 cell id (e.g. 8a4a1072a0d7fff)")
        good.append(shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]))
    if not good:
        return shapely.MultiPolygon()
    return shapely.union_all(np.asarray(good, dtype=object))


def cells_of_points(lon: npt.ArrayLike, lat: npt.ArrayLike, resolution: int) -> list[str]:
    """The distinct H3 cells at ``resolution`` holding the given points, sorted."""
    if not 0 <= int(resolution) <= 15:
        raise BadInput(f"H3 resolution {resolution} must be 0..15 (11 ≈ 2,100 m² blocks)")
    x = np.asarray(lon, dtype=np.float64).ravel()
    y = np.asarray(lat, dtype=np.float64).ravel()
    pairs = np.unique(np.column_stack([np.round(x, 9), np.round(y, 9)]), axis=0)
    return sorted({h3.latlng_to_cell(float(b), float(a), int(resolution)) for a, b in pairs})
