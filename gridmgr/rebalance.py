"""Rebalance: propose contiguous, compact grids of balanced load built from small blocks.

The planner picks a parent area (a community or street), the number of grids ``k`` and a
floor and ceiling on each grid's load (for example 500–1,000 floating residents, i.e. one
or two co-managers at 500:1, 协管员). The engine assigns every block (see
:mod:`gridmgr.blocks`) to one of ``k`` grids so that

* each grid is contiguous: its blocks form a connected graph of shared edges, hence the
  union of its blocks is a single polygon;
* the grids tile the parent, since every block is used exactly once;
* the loads sit inside [floor, ceiling] and close to the mean (low coefficient of variation);
* the grids are compact (Polsby–Popper 4πA/P², computed in a metric CRS).

Algorithm (details and measurements in docs/rebalance.md):

1. Seeds: k blocks by load-weighted k-means++ on block centroids, spread by a few Lloyd steps.
2. Growth: regions grow lowest-load-first, each absorbing the frontier block nearest its seed.
3. Local search on boundary blocks: move one block, or swap two, between neighbouring regions
   whenever that lowers the objective, never disconnecting a region (a local check around
   the block, then a bounded search of the region). Per region, with d = (L − T)/T and
   T = total/k, the objective is

       d² + γ·max(0, |d| − τ) + β·(load outside [floor, ceiling])/T
          + λ·(1 − Polsby–Popper)² + μ·(1 − normalised moment of inertia)²

   The tolerance τ is tightened in steps (0.3, 0.15, 0.08, τ) so shapes settle first.
4. Recombination: two neighbouring regions are merged and regrown from two fresh seeds when
   that lowers their share of the objective (this undoes regions that wrap around others).
5. A fixed number of restarts keeps the best, so the result is a function of the seed.
   Large graphs (res 11) are first coarsened by pairing blocks along their longest shared
   edge, solved, then projected back and refined level by level.

Everything here is pure: arrays and geometries in, labels and metrics out.
"""

from __future__ import annotations

import heapq
import math
import multiprocessing as mp
import time
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridmgr.blocks import WGS84, Adjacency, adjacency_from_geometry, metric_crs
from gridmgr.errors import BadInput

_EPS = 1e-12


class RebalanceSettings(BaseSettings):
    """Tuning of the rebalance search (env prefix ``GRIDMGR_REBALANCE_``)."""

    model_config = SettingsConfigDict(env_prefix="GRIDMGR_REBALANCE_")

    compactness_weight: float = 0.3
    """λ: weight of (1 − Polsby–Popper) per region against the squared relative deviation."""
    inertia_weight: float = 0.3
    """μ: weight of (1 − normalised moment of inertia) per region, a smoother compactness."""
    bound_penalty: float = 10.0
    """β: weight of the load outside [floor, ceiling], relative to the mean load."""
    balance_tolerance: float = 0.04
    """τ: relative deviation from the mean load beyond which γ applies (keeps CV ≤ τ)."""
    tolerance_penalty: float = 5.0
    """γ: weight of the relative deviation beyond τ."""
    restarts: int = 4
    """Independent seedings; the best result is returned."""
    lloyd_steps: int = 3
    """Load-weighted k-means steps that spread the seeds before growing."""
    recombine_rounds: int = 3
    """Rounds of merging and re-splitting neighbouring regions after the local search."""
    recombine_tries: int = 1
    """Fresh splits tried per pair of regions in each round."""
    coarsen_above: int = 600
    """Blocks beyond which the graph is coarsened (pairs of blocks) before the search."""
    refine_rounds: int = 2
    """Recombination rounds on the full-resolution blocks after a coarsened solve."""
    maxp_time_limit_s: float = 120.0
    """Wall-clock limit of spopt's max-p run in :func:`compare_with_maxp`."""


@dataclass(frozen=True)
class PartitionMetrics:
    """Balance, compactness and contiguity of one partition into grids."""

    loads: NDArray[np.float64]
    polsby_popper: NDArray[np.float64]
    contiguous_geometry: NDArray[np.bool_]
    contiguous_graph: NDArray[np.bool_] | None
    floor: float | None
    ceiling: float | None

    @property
    def k(self) -> int:
        """Number of grids."""
        return int(self.loads.size)

    @property
    def min_load(self) -> float:
        """Smallest grid load."""
        return float(self.loads.min()) if self.loads.size else 0.0

    @property
    def max_load(self) -> float:
        """Largest grid load."""
        return float(self.loads.max()) if self.loads.size else 0.0

    @property
    def cv(self) -> float:
        """Coefficient of variation of the loads (population standard deviation / mean)."""
        mean = float(self.loads.mean()) if self.loads.size else 0.0
        return float(self.loads.std() / mean) if mean > 0 else 0.0

    @property
    def within_bounds(self) -> float | None:
        """Share of grids whose load is within [floor, ceiling] (None without bounds)."""
        if self.floor is None and self.ceiling is None:
            return None
        lo = -math.inf if self.floor is None else self.floor
        hi = math.inf if self.ceiling is None else self.ceiling
        return float(np.mean((self.loads >= lo) & (self.loads <= hi)))

    @property
    def mean_polsby_popper(self) -> float:
        """Mean Polsby–Popper compactness of the grids (1 is a disc)."""
        return float(self.polsby_popper.mean()) if self.polsby_popper.size else 0.0

    @property
    def contiguous(self) -> bool:
        """Whether every grid is one piece, by geometry and (when known) by block graph."""
        graph = True if self.contiguous_graph is None else bool(self.contiguous_graph.all())
        return graph and bool(self.contiguous_geometry.all())

    def as_dict(self) -> dict[str, Any]:
        """Summarise as JSON-ready values: k, min, max, mean, cv, within_bounds, pp, contiguity."""
        return {
            "k": self.k,
            "min": round(self.min_load, 3),
            "max": round(self.max_load, 3),
            "mean": round(float(self.loads.mean()), 3) if self.loads.size else 0.0,
            "cv": round(self.cv, 4),
            "within_bounds": None if self.within_bounds is None else round(self.within_bounds, 4),
            "pp_mean": round(self.mean_polsby_popper, 4),
            "pp_min": round(float(self.polsby_popper.min()), 4) if self.loads.size else 0.0,
            "contiguous_graph": None
            if self.contiguous_graph is None
            else bool(self.contiguous_graph.all()),
            "contiguous_geometry": bool(self.contiguous_geometry.all()),
        }


@dataclass(frozen=True)
class RebalanceResult:
    """A proposed partition: region label per block (0..k-1), its metrics and the run."""

    labels: NDArray[np.int64]
    metrics: PartitionMetrics
    seconds: float
    seed: int
    restarts: int
    objective: float
    timed_out: bool = False

    @property
    def loads(self) -> NDArray[np.float64]:
        """Load per region."""
        return self.metrics.loads

    @property
    def cv(self) -> float:
        """Coefficient of variation of the region loads."""
        return self.metrics.cv

    @property
    def within_bounds(self) -> float:
        """Share of regions within [floor, ceiling]."""
        share = self.metrics.within_bounds
        return 1.0 if share is None else share

    @property
    def mean_polsby_popper(self) -> float:
        """Mean Polsby–Popper compactness of the regions."""
        return self.metrics.mean_polsby_popper

    @property
    def contiguous_graph(self) -> NDArray[np.bool_]:
        """Per region: its blocks are connected in the adjacency graph."""
        flags = self.metrics.contiguous_graph
        assert flags is not None
        return flags

    @property
    def contiguous_geometry(self) -> NDArray[np.bool_]:
        """Per region: the union of its blocks is a single Polygon."""
        return self.metrics.contiguous_geometry

    def as_dict(self) -> dict[str, Any]:
        """Metrics plus seconds, seed, restarts and whether the time limit cut the search."""
        out = self.metrics.as_dict()
        out.update(
            seconds=round(self.seconds, 3),
            seed=self.seed,
            restarts=self.restarts,
            timed_out=self.timed_out,
        )
        return out


@dataclass(frozen=True)
class MaxPResult:
    """Outcome of spopt's max-p heuristic on the same blocks (for comparison).

    ``seconds`` is the solve time inside the child process (imports and start-up excluded);
    when the run was killed it is the wall time until the kill.
    """

    labels: NDArray[np.int64] | None
    metrics: PartitionMetrics | None
    seconds: float
    timed_out: bool
    error: str | None = None
    wall_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Metrics (when it finished) plus seconds, timeout and error."""
        out: dict[str, Any] = {} if self.metrics is None else self.metrics.as_dict()
        out.update(
            seconds=round(self.seconds, 3),
            wall_seconds=round(self.wall_seconds, 3),
            timed_out=self.timed_out,
            error=self.error,
        )
        return out


# ---------------------------------------------------------------------------------------
# Feasibility


def feasible_k(total: float, floor: float, ceiling: float) -> tuple[int, int]:
    """Return the range of grid counts k with floor·k ≤ total ≤ ceiling·k (none if min > max)."""
    if ceiling <= 0:
        return (1, 0)
    k_min = max(1, math.ceil(total / ceiling - 1e-9))
    k_max = math.floor(total / floor + 1e-9) if floor > 0 else 10**9
    return k_min, k_max


def _check_request(n: int, total: float, k: int, floor: float, ceiling: float) -> None:
    if k < 1:
        raise BadInput(f"the number of grids must be at least 1 (got {k})")
    if floor < 0 or ceiling <= 0 or floor > ceiling:
        raise BadInput(
            f"bounds must satisfy 0 ≤ floor ≤ ceiling and ceiling > 0 (got {floor}–{ceiling})"
        )
    if k > n:
        raise BadInput(f"{k} grids cannot be built from {n} blocks: choose k ≤ {n}")
    if floor * k > total + 1e-9 or ceiling * k < total - 1e-9:
        lo, hi = feasible_k(total, floor, ceiling)
        hi = min(hi, n)
        span = f"choose k in {lo}..{hi}" if lo <= hi else "no k is feasible: widen the bounds"
        raise BadInput(
            f"{k} grids cannot each hold {floor:g}–{ceiling:g} of a total load of {total:g}: {span}"
        )


# ---------------------------------------------------------------------------------------
# The search, on plain arrays

# Per-block and per-region aggregates, as flat lists for speed:
# load, area, perimeter, Σa·x, Σa·y, Σa·(x²+y²), Σa²/2π (each block's own inertia as a disc).
_L, _A, _P, _SX, _SY, _SXX, _SS = range(7)


@dataclass
class _Problem:
    blk: list[tuple[float, float, float, float, float, float, float]]
    xy: NDArray[np.float64]
    weights: NDArray[np.float64]
    nbr: list[list[int]]
    shr: list[list[float]]
    k: int
    floor: float
    ceiling: float
    target: float
    lam: float
    mu: float
    beta: float
    tol: float
    gamma: float

    def term(self, g: list[float]) -> float:
        """One region's share of the objective, from its aggregates."""
        t = self.target
        load, area, perim = g[_L], g[_A], g[_P]
        d = (load - t) / t
        out = d * d
        over = abs(d) - self.tol
        if over > 0:
            out += self.gamma * over
        if load < self.floor:
            out += self.beta * (self.floor - load) / t
        elif load > self.ceiling:
            out += self.beta * (load - self.ceiling) / t
        if area > 0:
            pp = 4.0 * math.pi * area / (perim * perim) if perim > 0 else 0.0
            inertia = g[_SXX] - (g[_SX] * g[_SX] + g[_SY] * g[_SY]) / area + g[_SS]
            nmi = area * area / (2.0 * math.pi * inertia) if inertia > 0 else 1.0
            out += self.lam * (1.0 - pp) ** 2 + self.mu * (1.0 - nmi) ** 2
        return out


def _minus(g: list[float], b: tuple[float, ...], perim: float) -> list[float]:
    out = [g[i] - b[i] for i in range(7)]
    out[_P] = perim
    return out


def _plus(g: list[float], b: tuple[float, ...], perim: float) -> list[float]:
    out = [g[i] + b[i] for i in range(7)]
    out[_P] = perim
    return out


class _State:
    """Labels plus per-region aggregates and terms, updated move by move."""

    def __init__(self, prob: _Problem, labels: list[int]) -> None:
        self.p = prob
        self.lab = labels
        k = prob.k
        self.G = [[0.0] * 7 for _ in range(k)]
        self.size = [0] * k
        for b, r in enumerate(labels):
            g, v = self.G[r], prob.blk[b]
            for i in range(7):
                g[i] += v[i]
            self.size[r] += 1
        for b, r in enumerate(labels):
            for j, e in zip(prob.nbr[b], prob.shr[b], strict=True):
                if labels[j] == r:
                    self.G[r][_P] -= e  # each internal edge is seen from both sides
        self.T = [prob.term(g) for g in self.G]

    def rebuild(self, regions: tuple[int, ...], members: list[int]) -> None:
        """Recompute the aggregates of some regions from their blocks (after a relabel)."""
        p, lab = self.p, self.lab
        for r in regions:
            self.G[r] = [0.0] * 7
            self.size[r] = 0
        for b in members:
            r = lab[b]
            if r in regions:
                g, v = self.G[r], p.blk[b]
                for i in range(7):
                    g[i] += v[i]
                self.size[r] += 1
                for j, e in zip(p.nbr[b], p.shr[b], strict=True):
                    if lab[j] == r:
                        g[_P] -= e
        for r in regions:
            self.T[r] = p.term(self.G[r])

    def retarget(self) -> None:
        """Recompute every region's term after the problem's weights changed."""
        self.T = [self.p.term(g) for g in self.G]

    def objective(self) -> float:
        return float(sum(self.T))

    def shared_with(self, b: int) -> dict[int, float]:
        out: dict[int, float] = {}
        lab = self.lab
        for j, e in zip(self.p.nbr[b], self.p.shr[b], strict=True):
            r = lab[j]
            out[r] = out.get(r, 0.0) + e
        return out

    def move(self, b: int, s: int, sh: dict[int, float] | None = None) -> None:
        p = self.p
        r = self.lab[b]
        if sh is None:
            sh = self.shared_with(b)
        v = p.blk[b]
        gr, gs = self.G[r], self.G[s]
        self.G[r] = _minus(gr, v, gr[_P] - v[_P] + 2.0 * sh.get(r, 0.0))
        self.G[s] = _plus(gs, v, gs[_P] + v[_P] - 2.0 * sh.get(s, 0.0))
        self.size[r] -= 1
        self.size[s] += 1
        self.lab[b] = s
        self.T[r] = p.term(self.G[r])
        self.T[s] = p.term(self.G[s])

    def stays_connected(self, b: int) -> bool:
        """Whether region lab[b] stays connected without block b."""
        r = self.lab[b]
        nbr, lab = self.p.nbr, self.lab
        inside = [j for j in nbr[b] if lab[j] == r]
        if len(inside) <= 1:
            return self.size[r] > 1 or not inside
        # If b's neighbours in r reach one another without b, every path through b can be
        # rerouted, so r − b stays connected; the search stops as soon as all are reached.
        pending = set(inside)
        start = inside[0]
        pending.discard(start)
        seen = {b, start}
        stack = [start]
        while stack:
            v = stack.pop()
            for w in nbr[v]:
                if w not in seen and lab[w] == r:
                    seen.add(w)
                    if w in pending:
                        pending.discard(w)
                        if not pending:
                            return True
                    stack.append(w)
        return not pending

    def region_connected(self, r: int, start: int) -> bool:
        """Whether region r, which contains block ``start``, is connected."""
        nbr, lab = self.p.nbr, self.lab
        seen = {start}
        stack = [start]
        while stack:
            v = stack.pop()
            for w in nbr[v]:
                if w not in seen and lab[w] == r:
                    seen.add(w)
                    stack.append(w)
        return len(seen) == self.size[r]


def _seeds(
    prob: _Problem,
    rng: np.random.Generator,
    lloyd_steps: int,
    k: int,
    members: NDArray[np.int64] | None = None,
) -> list[int]:
    """Pick k well-spread seed blocks: load-weighted k-means++ then a few Lloyd steps."""
    idx = np.arange(prob.xy.shape[0]) if members is None else members
    xy, w = prob.xy[idx], prob.weights[idx]
    n = idx.size
    base = w + (w.mean() * 0.01 if w.sum() > 0 else 1.0)
    chosen = [int(rng.choice(n, p=base / base.sum()))]
    d2 = ((xy - xy[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(1, k):
        score = base * d2
        score[chosen] = 0.0
        total = score.sum()
        pick = int(rng.choice(n, p=score / total)) if total > 0 else int(np.argmax(d2))
        chosen.append(pick)
        d2 = np.minimum(d2, ((xy - xy[pick]) ** 2).sum(axis=1))
    centres = xy[chosen].copy()
    for _ in range(lloyd_steps):
        dist = ((xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        nearest = dist.argmin(axis=1)
        for r in range(k):
            m = nearest == r
            if base[m].sum() > 0:
                centres[r] = (xy[m] * base[m, None]).sum(axis=0) / base[m].sum()
    # Snap each centre to a distinct nearest block.
    seeds: list[int] = []
    taken = np.zeros(n, dtype=bool)
    for r in range(k):
        dist = ((xy - centres[r]) ** 2).sum(axis=1)
        dist[taken] = np.inf
        j = int(np.argmin(dist))
        taken[j] = True
        seeds.append(int(idx[j]))
    return seeds


def _grow(prob: _Problem, seeds: list[int], allowed: list[bool] | None = None) -> list[int]:
    """Grow regions from the seeds, lowest load first, absorbing the nearest frontier block.

    Only ``allowed`` blocks (all when None) are labelled, with the index of their seed.
    """
    n, k = len(prob.blk), len(seeds)
    ok = allowed if allowed is not None else [True] * n
    lab = [-1] * n
    load = [0.0] * k
    heaps: list[list[tuple[float, int]]] = [[] for _ in range(k)]
    xy = prob.xy
    for r, s in enumerate(seeds):
        lab[s] = r
        load[r] = prob.blk[s][_L]
    for r, s in enumerate(seeds):
        sx, sy = xy[s]
        for j in prob.nbr[s]:
            if ok[j] and lab[j] < 0:
                heapq.heappush(heaps[r], (float((xy[j, 0] - sx) ** 2 + (xy[j, 1] - sy) ** 2), j))
    active = set(range(k))
    left = (n if allowed is None else sum(allowed)) - k
    while left and active:
        r = min(active, key=lambda q: (load[q], q))
        heap = heaps[r]
        while heap and lab[heap[0][1]] >= 0:
            heapq.heappop(heap)
        if not heap:
            active.discard(r)
            continue
        _, b = heapq.heappop(heap)
        lab[b] = r
        load[r] += prob.blk[b][_L]
        left -= 1
        sx, sy = xy[seeds[r]]
        for j in prob.nbr[b]:
            if ok[j] and lab[j] < 0:
                heapq.heappush(heap, (float((xy[j, 0] - sx) ** 2 + (xy[j, 1] - sy) ** 2), j))
    return lab


def _local_search(
    st: _State,
    rng: np.random.Generator,
    deadline: float,
    regions: set[int] | None = None,
    members: list[int] | None = None,
) -> bool:
    """Improve by boundary moves and swaps until none helps; False if the deadline hit.

    With ``regions`` (and ``members``, all their blocks), only blocks of those regions
    move, and only among them.
    """
    p = st.p
    nbr, lab, blk = p.nbr, st.lab, p.blk
    within = set(range(p.k)) if regions is None else regions
    pool = list(range(len(lab))) if members is None else members
    while True:
        if time.perf_counter() > deadline:
            return False
        improved = False
        if regions is None:
            boundary = [b for b in pool if any(lab[j] != lab[b] for j in nbr[b])]
        else:
            boundary = [
                b for b in pool if any(lab[j] != lab[b] and lab[j] in within for j in nbr[b])
            ]
        for i in rng.permutation(len(boundary)).tolist():
            b = boundary[i]
            r = lab[b]
            if st.size[r] <= 1:
                continue
            sh = st.shared_with(b)
            if len(sh) == 1 and r in sh:
                continue
            v = blk[b]
            gr = st.G[r]
            gain_r = p.term(_minus(gr, v, gr[_P] - v[_P] + 2.0 * sh.get(r, 0.0))) - st.T[r]
            best, best_s = -_EPS, -1
            for s, e in sh.items():
                if s == r or s not in within:
                    continue
                gs = st.G[s]
                delta = gain_r + p.term(_plus(gs, v, gs[_P] + v[_P] - 2.0 * e)) - st.T[s]
                if delta < best:
                    best, best_s = delta, s
            if best_s >= 0 and st.stays_connected(b):
                st.move(b, best_s, sh)
                improved = True
        if not improved:
            improved = _swap_pass(st, rng, deadline, within, pool)
        if not improved:
            return True


def _swap_pass(
    st: _State,
    rng: np.random.Generator,
    deadline: float,
    within: set[int],
    pool: list[int],
) -> bool:
    """Try exchanging a boundary block of r with one of s; True if any swap was kept."""
    p = st.p
    nbr, shr, lab, blk = p.nbr, p.shr, st.lab, p.blk
    facing: dict[tuple[int, int], list[int]] = {}
    for b in pool:
        r = lab[b]
        if r not in within:
            continue
        for s in {lab[j] for j in nbr[b]}:
            if s != r and s in within:
                facing.setdefault((r, s), []).append(b)
    pairs = sorted((r, s) for r, s in facing if r < s)
    improved = False
    for i in rng.permutation(len(pairs)).tolist():
        if time.perf_counter() > deadline:
            return improved
        r, s = pairs[i]
        for b in facing.get((r, s), []):
            if lab[b] != r:
                continue
            shb = st.shared_with(b)
            for c in facing.get((s, r), []):
                if lab[c] != s or lab[b] != r:
                    continue
                shc = st.shared_with(c)
                e_bc = 0.0
                for j, e in zip(nbr[b], shr[b], strict=True):
                    if j == c:
                        e_bc = e
                        break
                vb, vc = blk[b], blk[c]
                gr, gs = st.G[r], st.G[s]
                pr = gr[_P] - vb[_P] + 2.0 * shb.get(r, 0.0)
                pr += vc[_P] - 2.0 * (shc.get(r, 0.0) - e_bc)
                ps = gs[_P] - vc[_P] + 2.0 * shc.get(s, 0.0)
                ps += vb[_P] - 2.0 * (shb.get(s, 0.0) - e_bc)
                new_r = _plus(_minus(gr, vb, 0.0), vc, pr)
                new_s = _plus(_minus(gs, vc, 0.0), vb, ps)
                delta = p.term(new_r) - st.T[r] + p.term(new_s) - st.T[s]
                if delta >= -_EPS:
                    continue
                st.move(b, s, shb)
                st.move(c, r)
                if st.region_connected(r, c) and st.region_connected(s, b):
                    improved = True
                    break
                st.move(c, s)
                st.move(b, r)
            if lab[b] != r:
                continue
    return improved


def _recombine(st: _State, rng: np.random.Generator, deadline: float, tries: int) -> bool:
    """Merge two neighbouring regions and split them afresh when that lowers the objective.

    Local moves cannot undo a region that wraps around its neighbour; regrowing the pair
    from two new seeds can. Pairs are tried worst first; True if any was improved.
    """
    p = st.p
    nbr, lab = p.nbr, st.lab
    n = len(lab)
    pairs: set[tuple[int, int]] = set()
    for b in range(n):
        for j in nbr[b]:
            if lab[j] != lab[b]:
                pairs.add((min(lab[b], lab[j]), max(lab[b], lab[j])))
    ranked = sorted(pairs, key=lambda q: (-(st.T[q[0]] + st.T[q[1]]), q))
    improved = False
    for r, s in ranked:
        if time.perf_counter() > deadline:
            break
        before = st.T[r] + st.T[s]
        members = np.array([b for b in range(n) if lab[b] == r or lab[b] == s], dtype=np.int64)
        if members.size < 2:
            continue
        member_list = members.tolist()
        allowed = [False] * n
        for b in member_list:
            allowed[b] = True
        saved = [lab[b] for b in members.tolist()]
        best_labels: list[int] | None = None
        best = before
        for _ in range(tries):
            seeds = _seeds(p, rng, 2, 2, members)
            grown = _grow(p, seeds, allowed)
            if any(grown[b] < 0 for b in members.tolist()):
                continue
            for b in members.tolist():
                lab[b] = r if grown[b] == 0 else s
            st.rebuild((r, s), member_list)
            _local_search(st, rng, deadline, {r, s}, member_list)
            after = st.T[r] + st.T[s]
            if after < best - 1e-9:
                best = after
                best_labels = [lab[b] for b in members.tolist()]
        chosen = best_labels if best_labels is not None else saved
        for b, x in zip(members.tolist(), chosen, strict=True):
            lab[b] = x
        st.rebuild((r, s), member_list)
        improved = improved or best_labels is not None
    return improved


def _schedule(tol: float) -> list[float]:
    """Balance tolerances from loose to the target, so compact shapes form before balance."""
    steps = [0.3, 0.15, 0.08]
    return [t for t in steps if t > tol] + [tol]


def _solve_component(
    prob: _Problem,
    rng: np.random.Generator,
    restarts: int,
    lloyd_steps: int,
    deadline: float,
    recombine_rounds: int,
    recombine_tries: int,
) -> tuple[list[int], float, int, bool]:
    best: list[int] | None = None
    best_obj = math.inf
    done = 0
    timed_out = False
    target_tol = prob.tol
    for _ in range(max(1, restarts)):
        if best is not None and time.perf_counter() > deadline:
            timed_out = True
            break
        seeds = _seeds(prob, rng, lloyd_steps, prob.k)
        st = _State(prob, _grow(prob, seeds))
        finished = True
        for tol in _schedule(target_tol):
            prob.tol = tol
            st.retarget()
            finished = _local_search(st, rng, deadline)
            if not finished:
                break
        prob.tol = target_tol
        st.retarget()
        for _ in range(recombine_rounds):
            if not finished or not _recombine(st, rng, deadline, recombine_tries):
                break
            finished = _local_search(st, rng, deadline)
        done += 1
        obj = st.objective()
        if obj < best_obj - _EPS:
            best, best_obj = list(st.lab), obj
        if not finished:
            timed_out = True
            break
    assert best is not None
    return best, best_obj, done, timed_out


def _split_k(
    comp: NDArray[np.int64], load: NDArray[np.float64], k: int, floor: float, ceiling: float
) -> list[int]:
    """Share k grids among the disconnected parts of the area so each part is feasible."""
    ncomp = int(comp.max()) + 1
    totals = np.bincount(comp, weights=load, minlength=ncomp)
    sizes = np.bincount(comp, minlength=ncomp)
    lo = np.zeros(ncomp, dtype=np.int64)
    hi = np.zeros(ncomp, dtype=np.int64)
    for c in range(ncomp):
        a, b = feasible_k(float(totals[c]), floor, ceiling)
        lo[c], hi[c] = a, min(b, int(sizes[c]))
        if lo[c] > hi[c]:
            raise BadInput(
                f"the area falls into {ncomp} separate parts and one of them (load "
                f"{totals[c]:g}, {sizes[c]} blocks) cannot form grids of {floor:g}–"
                f"{ceiling:g}: rebalance the parts separately or widen the bounds"
            )
    if not lo.sum() <= k <= hi.sum():
        raise BadInput(
            f"the area falls into {ncomp} separate parts, which need between {lo.sum()} and "
            f"{hi.sum()} grids in all: choose k in {lo.sum()}..{hi.sum()}"
        )
    ks = lo.copy()
    ideal = totals / max(float(totals.sum()), _EPS) * k
    for _ in range(k - int(lo.sum())):
        room = ks < hi
        c = int(np.argmax(np.where(room, ideal - ks, -np.inf)))
        ks[c] += 1
    return [int(x) for x in ks]


@dataclass(frozen=True)
class _Level:
    """Blocks at one level of coarsening: aggregates (n, 7), centroids, adjacency."""

    blk: NDArray[np.float64]
    xy: NDArray[np.float64]
    adjacency: Adjacency

    @property
    def n(self) -> int:
        return int(self.blk.shape[0])


def _subgraph(adjacency: Adjacency, idx: NDArray[np.int64]) -> Adjacency:
    """Restrict the adjacency to blocks ``idx`` (renumbered 0..len(idx)-1)."""
    local = np.full(adjacency.n, -1, dtype=np.int64)
    local[idx] = np.arange(idx.size)
    src = np.repeat(np.arange(adjacency.n), np.diff(adjacency.indptr))
    keep = (local[src] >= 0) & (local[adjacency.indices] >= 0)
    assert adjacency.shared_m is not None
    return _aggregate(
        idx.size, local[src[keep]], local[adjacency.indices[keep]], adjacency.shared_m[keep]
    )


def _aggregate(
    n: int, i: NDArray[np.int64], j: NDArray[np.int64], length: NDArray[np.float64]
) -> Adjacency:
    """CSR adjacency from directed edges, summing the lengths of repeated (i, j)."""
    keep = i != j
    key = i[keep] * n + j[keep]
    uniq, inverse = np.unique(key, return_inverse=True)
    total = np.bincount(inverse, weights=length[keep], minlength=uniq.size).astype(np.float64)
    src, dst = uniq // n, uniq % n
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return Adjacency(indptr=indptr, indices=dst.astype(np.int64), shared_m=total)


def _coarsen(level: _Level, rng: np.random.Generator) -> tuple[_Level, NDArray[np.int64]]:
    """Pair each block with the free neighbour it shares the longest edge with (one level)."""
    adj = level.adjacency
    assert adj.shared_m is not None
    n = level.n
    mate = np.full(n, -1, dtype=np.int64)
    indptr, indices, shared = adj.indptr.tolist(), adj.indices.tolist(), adj.shared_m.tolist()
    for v in rng.permutation(n).tolist():
        if mate[v] >= 0:
            continue
        best, pick = -1.0, -1
        for t in range(indptr[v], indptr[v + 1]):
            u = indices[t]
            if mate[u] < 0 and u != v and shared[t] > best:
                best, pick = shared[t], u
        if pick >= 0:
            mate[v], mate[pick] = pick, v
    lead = np.where(mate >= 0, np.minimum(np.arange(n), mate), np.arange(n))
    uniq, mapping = np.unique(lead, return_inverse=True)
    m = uniq.size
    blk = np.zeros((m, 7))
    np.add.at(blk, mapping, level.blk)
    src = np.repeat(np.arange(n), np.diff(adj.indptr))
    inner = mapping[src] == mapping[adj.indices]
    # Each internal edge appears twice in CSR and leaves the perimeter twice.
    np.subtract.at(blk[:, _P], mapping[src[inner]], adj.shared_m[inner])
    area = np.maximum(blk[:, _A], _EPS)
    xy = np.column_stack([blk[:, _SX] / area, blk[:, _SY] / area])
    coarse = _aggregate(m, mapping[src], mapping[adj.indices], adj.shared_m)
    return _Level(blk=blk, xy=xy, adjacency=coarse), mapping


def _problem(
    level: _Level, k: int, floor: float, ceiling: float, cfg: RebalanceSettings
) -> _Problem:
    adj = level.adjacency
    assert adj.shared_m is not None
    indptr = adj.indptr.tolist()
    indices, shared = adj.indices.tolist(), adj.shared_m.tolist()
    return _Problem(
        blk=[tuple(row) for row in level.blk.tolist()],  # type: ignore[misc]
        xy=level.xy,
        weights=level.blk[:, _L].copy(),
        nbr=[indices[indptr[v] : indptr[v + 1]] for v in range(level.n)],
        shr=[shared[indptr[v] : indptr[v + 1]] for v in range(level.n)],
        k=k,
        floor=floor,
        ceiling=ceiling,
        target=max(float(level.blk[:, _L].sum()) / k, _EPS),
        lam=cfg.compactness_weight,
        mu=cfg.inertia_weight,
        beta=cfg.bound_penalty,
        tol=cfg.balance_tolerance,
        gamma=cfg.tolerance_penalty,
    )


def _solve_multilevel(
    level: _Level,
    k: int,
    floor: float,
    ceiling: float,
    cfg: RebalanceSettings,
    rng: np.random.Generator,
    deadline: float,
) -> tuple[list[int], float, int, bool]:
    """Solve on a coarsened graph, then project and refine level by level (METIS-style)."""
    levels, maps = [level], []
    while levels[-1].n > cfg.coarsen_above and len(levels) < 8:
        coarse, mapping = _coarsen(levels[-1], rng)
        if coarse.n > 0.9 * levels[-1].n or coarse.n < 2 * k:
            break
        levels.append(coarse)
        maps.append(mapping)
    prob = _problem(levels[-1], k, floor, ceiling, cfg)
    lab, obj, done, cut = _solve_component(
        prob,
        rng,
        cfg.restarts,
        cfg.lloyd_steps,
        deadline,
        cfg.recombine_rounds,
        cfg.recombine_tries,
    )
    for finer, mapping in zip(reversed(levels[:-1]), reversed(maps), strict=True):
        lab = np.asarray(lab, dtype=np.int64)[mapping].tolist()
        st = _State(_problem(finer, k, floor, ceiling, cfg), lab)
        cut = not _local_search(st, rng, deadline) or cut
        if finer is level and not cut:
            for _ in range(cfg.refine_rounds):
                if not _recombine(st, rng, deadline, cfg.recombine_tries):
                    break
                cut = not _local_search(st, rng, deadline)
                if cut:
                    break
        lab, obj = st.lab, st.objective()
    return lab, obj, done, cut


def rebalance_arrays(
    load: ArrayLike,
    area_m2: ArrayLike,
    perimeter_m: ArrayLike,
    centroid_xy_m: ArrayLike,
    adjacency: Adjacency,
    k: int,
    floor: float,
    ceiling: float,
    *,
    seed: int = 0,
    time_limit_s: float = 5.0,
    settings: RebalanceSettings | None = None,
) -> tuple[NDArray[np.int64], float, int, bool]:
    """Partition blocks into k contiguous, balanced, compact regions (pure array core).

    ``adjacency.shared_m`` must hold the shared edge lengths in metres. Returns the region
    label per block, the objective, the number of restarts run and whether the time limit
    cut the search. Raises BadInput when k cannot satisfy floor·k ≤ total ≤ ceiling·k.
    """
    cfg = settings or RebalanceSettings()
    w = np.asarray(load, dtype=np.float64).ravel()
    area = np.asarray(area_m2, dtype=np.float64).ravel()
    perim = np.asarray(perimeter_m, dtype=np.float64).ravel()
    xy = np.asarray(centroid_xy_m, dtype=np.float64).reshape(-1, 2)
    n = w.size
    if not (area.size == perim.size == xy.shape[0] == adjacency.n == n):
        raise BadInput("load, area, perimeter, centroids and adjacency must describe n blocks")
    if adjacency.shared_m is None:
        raise BadInput("adjacency needs shared edge lengths (shared_m) for the rebalance")
    if not np.isfinite(w).all() or (w < 0).any():
        raise BadInput("block loads must be finite and not negative")
    k, floor, ceiling = int(k), float(floor), float(ceiling)
    total = float(w.sum())
    _check_request(n, total, k, floor, ceiling)

    deadline = time.perf_counter() + float(time_limit_s)
    rng = np.random.default_rng(seed)
    comp = adjacency.components()
    ks = _split_k(comp, w, k, floor, ceiling) if comp.max() > 0 else [k]
    labels = np.full(n, -1, dtype=np.int64)
    objective, restarts, timed_out, offset = 0.0, 0, False, 0
    for c, kc in enumerate(ks):
        idx = np.flatnonzero(comp == c)
        if kc == 0:
            continue
        sub = _subgraph(adjacency, idx)
        cx, cy = xy[idx, 0] - xy[idx, 0].mean(), xy[idx, 1] - xy[idx, 1].mean()
        a = area[idx]
        blk = np.column_stack(
            [w[idx], a, perim[idx], a * cx, a * cy, a * (cx * cx + cy * cy), a * a / (2 * math.pi)]
        )
        level = _Level(blk=blk, xy=np.column_stack([cx, cy]), adjacency=sub)
        share = idx.size / n
        part_deadline = min(deadline, time.perf_counter() + float(time_limit_s) * share + 0.05)
        lab, obj, done, cut = _solve_multilevel(level, kc, floor, ceiling, cfg, rng, part_deadline)
        labels[idx] = np.asarray(lab, dtype=np.int64) + offset
        offset += kc
        objective += obj
        restarts = max(restarts, done)
        timed_out = timed_out or cut
    return labels, objective, restarts, timed_out


# ---------------------------------------------------------------------------------------
# GeoDataFrame adapters


def _metric_blocks(blocks: gpd.GeoDataFrame) -> NDArray[np.object_]:
    if "geometry" not in blocks or blocks.crs is None:
        raise BadInput("blocks need a geometry column with a CRS (EPSG:4326)")
    wgs = blocks.geometry.to_crs(WGS84) if not blocks.crs.equals(WGS84) else blocks.geometry
    crs_m = metric_crs(shapely.union_all(shapely.envelope(wgs.values)))
    return np.asarray(wgs.to_crs(crs_m).values, dtype=object)


def _as_adjacency(adjacency: Adjacency | list[Any], n: int) -> Adjacency:
    adj = adjacency if isinstance(adjacency, Adjacency) else Adjacency.from_lists(adjacency)
    if adj.n != n:
        raise BadInput(f"adjacency describes {adj.n} blocks but there are {n}")
    return adj


def _with_lengths(adj: Adjacency, geoms_m: NDArray[np.object_]) -> Adjacency:
    if adj.shared_m is not None:
        return adj
    src = np.repeat(np.arange(adj.n), np.diff(adj.indptr))
    shared = shapely.length(shapely.intersection(geoms_m[src], geoms_m[adj.indices]))
    return Adjacency(indptr=adj.indptr, indices=adj.indices, shared_m=shared)


def _region_connected(adj: Adjacency, labels: NDArray[np.int64], k: int) -> NDArray[np.bool_]:
    out = np.zeros(k, dtype=bool)
    for r in range(k):
        members = np.flatnonzero(labels == r)
        if members.size == 0:
            continue
        seen = {int(members[0])}
        stack = [int(members[0])]
        while stack:
            v = stack.pop()
            for w in adj.neighbours(v):
                w = int(w)
                if w not in seen and labels[w] == r:
                    seen.add(w)
                    stack.append(w)
        out[r] = len(seen) == members.size
    return out


def describe_regions(
    geometries_m: ArrayLike,
    loads: ArrayLike,
    floor: float | None = None,
    ceiling: float | None = None,
) -> PartitionMetrics:
    """Balance and compactness of given grid polygons (metric CRS) and their loads."""
    geoms = np.asarray(geometries_m, dtype=object)
    area = shapely.area(geoms)
    perim = shapely.length(geoms)
    pp = np.where(perim > 0, 4.0 * math.pi * area / np.maximum(perim, _EPS) ** 2, 0.0)
    single = np.asarray(shapely.get_type_id(geoms) == 3, dtype=bool)
    return PartitionMetrics(
        loads=np.asarray(loads, dtype=np.float64),
        polsby_popper=pp,
        contiguous_geometry=single,
        contiguous_graph=None,
        floor=floor,
        ceiling=ceiling,
    )


def describe_grids(
    grids: gpd.GeoDataFrame,
    loads: ArrayLike,
    floor: float | None = None,
    ceiling: float | None = None,
) -> PartitionMetrics:
    """Metrics of an existing plan's grid polygons (any CRS) and the load of each grid."""
    wgs = grids.geometry.to_crs(WGS84) if not grids.crs.equals(WGS84) else grids.geometry
    crs_m = metric_crs(shapely.union_all(shapely.envelope(wgs.values)))
    return describe_regions(np.asarray(wgs.to_crs(crs_m).values), loads, floor, ceiling)


def describe_partition(
    blocks: gpd.GeoDataFrame,
    labels: ArrayLike,
    *,
    floor: float | None = None,
    ceiling: float | None = None,
    adjacency: Adjacency | list[Any] | None = None,
    load_column: str = "load",
) -> PartitionMetrics:
    """Metrics of a partition of blocks given one region label (0..k-1) per block."""
    lab = np.asarray(labels, dtype=np.int64).ravel()
    n = len(blocks)
    if lab.size != n:
        raise BadInput(f"{lab.size} labels for {n} blocks")
    if n == 0:
        raise BadInput("there are no blocks to describe")
    if lab.min() < 0:
        raise BadInput("every block needs a region label ≥ 0")
    k = int(lab.max()) + 1
    geoms_m = _metric_blocks(blocks)
    adj = adjacency_from_geometry(geoms_m) if adjacency is None else _as_adjacency(adjacency, n)
    loads = np.bincount(lab, weights=blocks[load_column].to_numpy(np.float64), minlength=k)
    order = np.argsort(lab, kind="stable")
    cuts = np.searchsorted(lab[order], np.arange(k + 1))
    regions = np.empty(k, dtype=object)
    for r in range(k):
        members = geoms_m[order[cuts[r] : cuts[r + 1]]]
        regions[r] = shapely.union_all(members) if members.size else shapely.Polygon()
    base = describe_regions(regions, loads, floor, ceiling)
    return PartitionMetrics(
        loads=base.loads,
        polsby_popper=base.polsby_popper,
        contiguous_geometry=base.contiguous_geometry,
        contiguous_graph=_region_connected(adj, lab, k),
        floor=floor,
        ceiling=ceiling,
    )


def rebalance(
    blocks: gpd.GeoDataFrame,
    adjacency: Adjacency | list[Any],
    k: int,
    floor: float,
    ceiling: float,
    *,
    seed: int = 0,
    time_limit_s: float = 5.0,
    settings: RebalanceSettings | None = None,
    load_column: str = "load",
) -> RebalanceResult:
    """Propose k contiguous, compact grids of blocks with loads inside [floor, ceiling].

    ``blocks`` is a GeoDataFrame with a load column and polygon geometry (for example
    ``BlockSet.blocks`` from :func:`gridmgr.blocks.build_blocks`); ``adjacency`` is the
    blocks' edge adjacency (an :class:`~gridmgr.blocks.Adjacency` or one neighbour index
    array per block). The result is a function of ``seed`` as long as the search finishes
    within ``time_limit_s`` (``timed_out`` tells). Raises BadInput when no partition into k
    grids can respect the bounds, naming the feasible range of k.
    """
    started = time.perf_counter()
    n = len(blocks)
    if n == 0:
        raise BadInput("there are no blocks to rebalance")
    if load_column not in blocks.columns:
        raise BadInput(f"blocks have no {load_column!r} column")
    geoms_m = _metric_blocks(blocks)
    adj = _with_lengths(_as_adjacency(adjacency, n), geoms_m)
    cent = shapely.centroid(geoms_m)
    xy = np.column_stack([shapely.get_x(cent), shapely.get_y(cent)])
    labels, objective, restarts, timed_out = rebalance_arrays(
        blocks[load_column].to_numpy(np.float64),
        shapely.area(geoms_m),
        shapely.length(geoms_m),
        xy,
        adj,
        k,
        floor,
        ceiling,
        seed=seed,
        time_limit_s=time_limit_s,
        settings=settings,
    )
    metrics = describe_partition(
        blocks, labels, floor=floor, ceiling=ceiling, adjacency=adj, load_column=load_column
    )
    return RebalanceResult(
        labels=labels,
        metrics=metrics,
        seconds=time.perf_counter() - started,
        seed=seed,
        restarts=restarts,
        objective=objective,
        timed_out=timed_out,
    )


# ---------------------------------------------------------------------------------------
# spopt max-p, for comparison


def _maxp_worker(conn: Any, payload: dict[str, Any]) -> None:
    """Run spopt's MaxPHeuristic in a child process and send back the labels."""
    try:
        import random

        import libpysal
        from spopt.region import MaxPHeuristic

        np.random.seed(payload["seed"])
        random.seed(payload["seed"])
        indptr, indices = payload["indptr"], payload["indices"]
        n = indptr.size - 1
        neighbours = {i: indices[indptr[i] : indptr[i + 1]].tolist() for i in range(n)}
        w = libpysal.weights.W(neighbours, silence_warnings=True)
        frame = gpd.GeoDataFrame(
            {"load": payload["load"], "x": payload["x"], "y": payload["y"]},
            geometry=gpd.points_from_xy(payload["x"], payload["y"]),
        )
        model = MaxPHeuristic(
            frame,
            w,
            ["x", "y"],
            "load",
            payload["floor"],
            top_n=payload["top_n"],
            max_iterations_construction=payload["max_iterations_construction"],
            max_iterations_sa=payload["max_iterations_sa"],
        )
        started = time.perf_counter()
        model.solve()
        elapsed = time.perf_counter() - started
        conn.send(("ok", np.asarray(model.labels_, dtype=np.int64), elapsed))
    except Exception as exc:  # reported to the parent, which decides what to show
        conn.send(("error", f"{type(exc).__name__}: {exc}", 0.0))
    finally:
        conn.close()


def compare_with_maxp(
    blocks: gpd.GeoDataFrame,
    adjacency: Adjacency | list[Any],
    floor: float,
    *,
    ceiling: float | None = None,
    time_limit_s: float | None = None,
    seed: int = 0,
    top_n: int = 2,
    max_iterations_construction: int = 99,
    max_iterations_sa: int = 10,
    load_column: str = "load",
    settings: RebalanceSettings | None = None,
) -> MaxPResult:
    """Run spopt's max-p heuristic on the blocks (floor only) and report the same metrics.

    max-p chooses the number of regions itself and enforces only the floor; it often runs
    for a minute or more, so it runs in a child process that is killed after
    ``time_limit_s`` (default: ``settings.maxp_time_limit_s``), reported as ``timed_out``.
    """
    cfg = settings or RebalanceSettings()
    limit = cfg.maxp_time_limit_s if time_limit_s is None else float(time_limit_s)
    n = len(blocks)
    adj = _as_adjacency(adjacency, n)
    geoms_m = _metric_blocks(blocks)
    cent = shapely.centroid(geoms_m)
    payload = {
        "load": blocks[load_column].to_numpy(np.float64),
        "x": shapely.get_x(cent),
        "y": shapely.get_y(cent),
        "indptr": adj.indptr,
        "indices": adj.indices,
        "floor": float(floor),
        "seed": int(seed),
        "top_n": int(top_n),
        "max_iterations_construction": int(max_iterations_construction),
        "max_iterations_sa": int(max_iterations_sa),
    }
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    started = time.perf_counter()
    proc = ctx.Process(target=_maxp_worker, args=(child_conn, payload), daemon=True)
    proc.start()
    child_conn.close()
    try:
        ready = parent_conn.poll(limit)
        message = parent_conn.recv() if ready else None
    except EOFError:
        message = ("error", "the max-p process died without an answer", 0.0)
    finally:
        seconds = time.perf_counter() - started
        if proc.is_alive():
            proc.kill()
        proc.join()
        parent_conn.close()
    if message is None:
        return MaxPResult(
            labels=None, metrics=None, seconds=seconds, timed_out=True, wall_seconds=seconds
        )
    status, value, solve_s = message
    if status != "ok":
        return MaxPResult(
            labels=None,
            metrics=None,
            seconds=seconds,
            timed_out=False,
            error=str(value),
            wall_seconds=seconds,
        )
    labels = np.asarray(value, dtype=np.int64)
    # max-p labels regions 1..p and may leave blocks it could not place at 0.
    uniq, labels = np.unique(labels, return_inverse=True)
    metrics = describe_partition(
        blocks, labels, floor=floor, ceiling=ceiling, adjacency=adj, load_column=load_column
    )
    return MaxPResult(
        labels=labels,
        metrics=metrics,
        seconds=float(solve_s),
        timed_out=False,
        wall_seconds=seconds,
    )
