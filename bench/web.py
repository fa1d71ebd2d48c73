"""Benchmark the planner view in a browser: how soon an edit's before/after shows, Chengdu scale.

    python bench/web.py [--scale 1] [--seed 0] [--store spatialite|postgis] [--db URL]
                        [--edits 10] [--pick random|busiest] [--plan NAME]
                        [--by-street] [--analyze] [--timeout 120]

Issue 10 asks that "after each edit the changed grids' workload, tier and staffing
before/after appear beside the map within a second at Chengdu scale". This drives the real
web app as a planner does:

1. A store holding the demo city at ``--scale`` (1 = Chengdu: 6.73 M houses, 5,155 grids),
   built with the ordinary loaders into a SpatiaLite file (or a throwaway PostGIS cluster
   with ``--store postgis``), or ``--db`` to reuse one already loaded.
2. A planner token (``gridmgr.store.tokens.create_token``, as ``gridmgr token create
   --role planner``; revoked at the end) and ``uvicorn --factory api.app:create_app`` (what
   ``gridmgr serve`` runs, one worker) on a free 127.0.0.1 port.
3. Headless Debian Chromium (Playwright) at 1366×768, zh-CN: sign in with the token, open
   the planner view, create a draft through the "new plan" form (or open ``--plan``). When
   the view needs a street (plans of more than 400 grids), the street of each edit's grid
   is chosen in the area selector first, as a planner would.
4. ``--edits`` edits on different grids drawn with ``--seed``: one merge of two neighbouring
   grids of a community, one lock, and splits for the rest (the first edit is a split).
   Each is the real UI edit of tests/e2e/test_web_planner.py: tick the grid(s) in the grid
   list; for a split press "split", click two points on the map either side of the grid and
   click the last one again to finish the line; for a merge or a lock press the button.
   Each edit is undone with the "undo" button before the next one (so edits never pile
   up); the undos are measured the same way and reported under ``per_kind.undo``, not in
   the headline figures.

The interval (all in the page, ``performance.now()``): from the ``pointerdown`` of the
press that commits the edit (the click that finishes the split line; the merge/lock
button) — a capture listener on ``window``, so before any handler of the app — to the
MutationObserver callback on ``#edit-result`` that first sees ``#edit-summary`` and the
``#edit-before``/``#edit-after`` rows (``tr[data-grid]``) naming the changed grids (for a
lock, the locked grid's unchanged rows). It
covers Geoman finishing the line, ``POST /plans/{plan}/{op}`` (the edit, its rule checks
and relinking the houses), ``GET /plans`` and ``GET /plans/{plan}/grids`` (the view's grids
with workload, tier and staffing, reloaded), rebuilding the map layers and grid list, and
rendering the before/after tables. ``client`` is the browser's own part (from the last
response the tables wait for); ``paint`` adds the wait for the next animation frame (the
frame that paints them); ``diff`` runs on until the comparison with the adopted plan
(``GET /plans/{plan}/diff``, requested after the tables render) is in ``#diff-summary``.
``requests`` gives each request's time from the browser's Resource Timing
(``server_ms`` = request sent to first byte back). Percentiles are nearest-rank.

On PostGIS a draft used to be edited before its copied rows had statistics: an edit or
undo took seconds, not tenths (14 s at scale 0.02), until autovacuum came by. Creating a
draft now runs ANALYZE; ``--analyze`` runs it again from here, to compare.

The draft is left in the store (plans are never deleted; at scale 1 each one holds another
6.73 M house links): rerun on the same store with ``--plan NAME`` (the name is in the
output). The token is revoked at the end. Progress goes to stderr; stdout gets ONE JSON
line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import build_store, log, new_store, store_counts, wait_http  # noqa: E402
from sqlalchemy import text  # noqa: E402

from gridmgr.store.bulk import geometries, read_frame  # noqa: E402
from gridmgr.store.engine import make_engine  # noqa: E402

# As tests/support.py: the Debian binary; as root it needs --no-sandbox, the rest keep it
# from calling out.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
WIDTH, HEIGHT = 1366, 768
TARGET_MS = 1000
M2_PER_DEG2 = 111_320.0 * 110_574.0
MIN_PIECE_M2 = 2_000.0  # split lines are chosen so that no piece is a scrap

# Armed before the press that commits an edit; records the interval described above.
ARM_JS = """({ gone, rows }) => {
  const B = { t0: null, tDom: null, tFrame: null, tDiff: null, before: null, after: null,
              summary: null, error: null, gridsInView: null };
  if (window.__bench && window.__bench.stop) window.__bench.stop();
  window.__bench = B;
  performance.clearResourceTimings();
  performance.setResourceTimingBufferSize(1000);
  const root = document.getElementById("edit-result");
  const errors = document.getElementById("plan-error");
  const ids = (sel) => [...document.querySelectorAll(sel)].map((tr) => tr.dataset.grid);
  const press = () => { if (B.t0 === null) B.t0 = performance.now(); };
  window.addEventListener("pointerdown", press, { capture: true, once: true });
  const check = () => {
    if (B.t0 === null) return;
    const now = performance.now();
    if (B.tDom === null && document.getElementById("edit-summary")) {
      const before = ids("#edit-before tbody tr[data-grid]");
      const after = ids("#edit-after tbody tr[data-grid]");
      if (!rows || (after.length && gone.every((g) => before.includes(g)))) {
        B.tDom = now;
        B.before = before;
        B.after = after;
        B.summary = document.getElementById("edit-summary").textContent;
        B.gridsInView = document.querySelectorAll("#grid-list input[type=checkbox]").length;
        requestAnimationFrame(() => { B.tFrame = performance.now(); });
      }
    }
    if (B.tDom !== null && B.tDiff === null && document.querySelector("#diff-summary .diff-line")) {
      B.tDiff = now;
    }
  };
  const obs = new MutationObserver(check);
  obs.observe(root, { childList: true, subtree: true, characterData: true });
  const eobs = new MutationObserver(() => {
    const alert = errors.querySelector("[role=alert]");
    if (alert && B.t0 !== null) B.error = alert.textContent;
  });
  eobs.observe(errors, { childList: true, subtree: true });
  B.stop = () => { obs.disconnect(); eobs.disconnect(); };
}"""

STATE_JS = """() => {
  const B = window.__bench;
  if (!B) return false;
  if (B.error) return "error";
  return B.tDom !== null && B.tFrame !== null && B.tDiff !== null ? "done" : false;
}"""

RESULT_JS = """() => {
  const B = window.__bench;
  B.stop();
  const res = performance.getEntriesByType("resource")
    .filter((e) => e.initiatorType === "fetch" && e.startTime >= B.t0)
    .map((e) => ({ url: e.name, start: e.startTime - B.t0, ms: e.duration,
                   server_ms: e.responseStart - e.requestStart, end: e.responseEnd - B.t0 }));
  return { t0: B.t0, tDom: B.tDom, tFrame: B.tFrame, tDiff: B.tDiff, before: B.before,
           after: B.after, summary: B.summary, error: B.error, gridsInView: B.gridsInView,
           requests: res };
}"""

# Screen points (page coordinates) of a line across a grid: horizontal through an inside
# point, else vertical, whichever has both ends on open map (not on a map control).
LINE_JS = """([lat, lon, minx, miny, maxx, maxy, horizontalFirst]) => {
  const map = window.gridmgrApp.views.planner.map;
  const el = map.getContainer();
  const box = el.getBoundingClientRect();
  const P = (la, lo) => map.latLngToContainerPoint([la, lo]);
  const c = P(lat, lon), sw = P(miny, minx), ne = P(maxy, maxx);
  const m = 16;
  const h = [[sw.x - m, c.y], [ne.x + m, c.y]];
  const v = [[c.x, ne.y - m], [c.x, sw.y + m]];
  const open = ([x, y]) => {
    if (x < 2 || y < 2 || x > box.width - 2 || y > box.height - 2) return false;
    const hit = document.elementFromPoint(x + box.left, y + box.top);
    return !!hit && el.contains(hit) && !hit.closest(".leaflet-control");
  };
  for (const [name, cand] of horizontalFirst ? [["h", h], ["v", v]] : [["v", v], ["h", h]]) {
    if (cand.every(open)) {
      return { dir: name, points: cand.map(([x, y]) => [x + box.left, y + box.top]) };
    }
  }
  return null;
}"""


# ----------------------------------------------------------------------------- store


def build_store_apart(url: str, scale: float, seed: int, workdir: Path) -> dict[str, Any]:
    """Run :func:`build_store` in a fresh process.

    The synthesised city (GBs at scale 1) and the loaders' libraries are then gone before
    anything is measured.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(build_store, url, scale, seed, workdir).result()


# ----------------------------------------------------------------------------- targets


@dataclass
class Grid:
    """A grid of the draft as the bench needs it: ids, street, houses and shape."""

    grid_id: str
    community_code: str
    street: str
    houses: int
    geom: shapely.Geometry
    inside: tuple[float, float] = (0.0, 0.0)  # lon/lat of a point inside its largest part


@dataclass
class Edit:
    """One edit to make: its kind and the grids it names (first = the split/lock grid)."""

    kind: str
    grids: list[Grid]
    horizontal: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _main_part(geom: shapely.Geometry) -> shapely.Geometry:
    parts = shapely.get_parts(geom)
    return parts[int(np.argmax(shapely.area(parts)))]


def draft_grids(url: str, plan: str) -> list[Grid]:
    """The draft's unlocked grids with their street and houses, by grid id."""
    engine = make_engine(url)
    with engine.connect() as conn:
        df = read_frame(conn, (
            "SELECT g.grid_id, g.community_code, a.parent_code AS street, "
            "COALESCE(c.houses, 0) AS houses, ST_AsBinary(g.geom) AS wkb FROM grid g "
            "JOIN boundary_plan p ON p.id = g.plan_id "
            "LEFT JOIN grid_count c ON c.grid_pk = g.id "
            "LEFT JOIN admin_area a ON a.code = g.community_code "
            "WHERE p.name = :p AND NOT g.locked ORDER BY g.grid_id"), {"p": plan})
    engine.dispose()
    geoms = geometries(df["wkb"])
    out = []
    for i, r in enumerate(df.itertuples(index=False)):  # one per grid
        g = Grid(str(r.grid_id), str(r.community_code), str(r.street or ""), int(r.houses),
                 geoms[i])
        p = shapely.point_on_surface(_main_part(g.geom))
        g.inside = (float(p.x), float(p.y))
        out.append(g)
    return out


def _area_m2(geom: shapely.Geometry, lat: float) -> float:
    return float(shapely.area(geom)) * M2_PER_DEG2 * math.cos(math.radians(lat))


def split_ok(g: Grid, horizontal: bool) -> bool:
    """Whether the line the bench will draw cuts the grid into pieces of a fair size."""
    from gridmgr.errors import BadInput
    from gridmgr.plan_rules import split_by_line

    minx, miny, maxx, maxy = g.geom.bounds
    x, y = g.inside
    pad = 1e-4
    line = (shapely.LineString([(minx - pad, y), (maxx + pad, y)]) if horizontal
            else shapely.LineString([(x, miny - pad), (x, maxy + pad)]))
    try:
        pieces = split_by_line(g.geom, line)
    except BadInput:
        return False
    return min(_area_m2(p, y) for p in pieces) >= MIN_PIECE_M2


class Picker:
    """Grids for each edit, drawn with a seed; no grid is edited twice (nor retried)."""

    def __init__(self, grids: list[Grid], seed: int, pick: str) -> None:
        rng = np.random.default_rng(seed)
        self.grids = [grids[i] for i in rng.permutation(len(grids))]
        if pick == "busiest":
            self.grids.sort(key=lambda g: -g.houses)
        self.used: set[str] = set()
        self.by_comm: dict[str, list[Grid]] = {}
        for g in grids:
            self.by_comm.setdefault(g.community_code, []).append(g)

    def _free(self) -> list[Grid]:
        return [g for g in self.grids if g.grid_id not in self.used]

    def _take(self, e: Edit) -> Edit:
        self.used.update(g.grid_id for g in e.grids)
        return e

    def next(self, kind: str) -> Edit | None:
        """The next edit of this kind, or None when no grid left suits one."""
        if kind == "lock":
            free = self._free()
            return self._take(Edit("lock", [free[0]])) if free else None
        if kind == "merge":
            for a in self._free():
                for b in self.by_comm[a.community_code]:
                    if b.grid_id == a.grid_id or b.grid_id in self.used:
                        continue
                    edge = shapely.length(shapely.intersection(a.geom.boundary,
                                                               b.geom.boundary))
                    if edge * 111_000 >= 50:  # neighbours along a street, not at a corner
                        return self._take(Edit("merge", [a, b]))
            return None
        for g in self._free():
            if g.houses == 0:
                continue
            self.used.add(g.grid_id)  # tried once, whatever comes of it
            for horizontal in (True, False):
                if split_ok(g, horizontal):
                    return Edit("split", [g], horizontal=horizontal)
        return None


def edit_kinds(n: int) -> list[str]:
    """A split first (the cold one), a merge, a lock, then splits."""
    return (["split", "merge", "lock"] + ["split"] * max(0, n - 3))[:n]


# ----------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int, logfile: Path) -> subprocess.Popen[bytes]:
    """``uvicorn --factory api.app:create_app`` (what ``gridmgr serve`` runs), one worker."""
    env = {**os.environ, "GRIDMGR_API_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    with logfile.open("wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host",
             "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log",
             "--log-level", "warning"], env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
            start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


# ----------------------------------------------------------------------------- browser


class EditRejected(Exception):
    """The app refused the edit (a rule violation): the bench tries a spare grid."""


def _route(url: str, plan: str) -> str:
    from urllib.parse import quote, unquote, urlsplit

    path = unquote(urlsplit(url).path)
    path = path.replace(f"/plans/{plan}", "/plans/{plan}").replace(
        f"/plans/{quote(plan)}", "/plans/{plan}")
    return path


class Planner:
    """The planner view in one page, driven as a planner drives it."""

    def __init__(self, page: Any, base: str, plan: str, timeout_s: float) -> None:
        self.page, self.base, self.plan = page, base, plan
        self.timeout_ms = timeout_s * 1000
        self.area_required = False

    def _wait_idle(self) -> None:
        self.page.wait_for_load_state("networkidle", timeout=self.timeout_ms)

    def _box(self, gid: str) -> Any:
        return self.page.locator(f"#grid-list input[value='{gid}']")

    def show(self, gids: list[str], street: str) -> None:
        """Make the grids appear in the view (the street, if the view needs one), unticked."""
        from playwright.sync_api import expect

        page = self.page
        if self.area_required and page.locator("#plan-area").input_value() != street:
            page.locator("#plan-area").select_option(street)
        for gid in gids:
            expect(self._box(gid)).to_have_count(1, timeout=self.timeout_ms)
        self._wait_idle()
        for box in page.locator("#grid-list input[type=checkbox]:checked").all():
            box.uncheck()

    def _measure(self, act: Any) -> dict[str, Any]:
        page = self.page
        act()
        state = page.wait_for_function(STATE_JS, timeout=self.timeout_ms).json_value()
        res: dict[str, Any] = page.evaluate(RESULT_JS)
        if state == "error":
            raise EditRejected(str(res["error"]))
        m = re.search(r"[（(]\s*([0-9,]+)\s*(?:ms|毫秒)\s*[）)]", res["summary"] or "")
        reqs = [{"route": _route(r["url"], self.plan), "start_ms": round(r["start"], 1),
                 "ms": round(r["ms"], 1), "server_ms": round(r["server_ms"], 1),
                 "end_ms": round(r["end"], 1)} for r in res["requests"]]
        ms = res["tDom"] - res["t0"]
        last = max((r["end"] for r in res["requests"] if r["end"] <= ms), default=0.0)
        return {"ms": round(ms, 1),
                # the browser's own part: from the last response the tables wait for
                "client_ms": round(ms - last, 1),
                "paint_ms": round(res["tFrame"] - res["t0"], 1),
                "diff_ms": round(res["tDiff"] - res["t0"], 1),
                "app_ms": int(m.group(1).replace(",", "")) if m else None,
                "before": res["before"], "after": res["after"],
                "grids_in_view": res["gridsInView"], "requests": reqs}

    def edit(self, e: Edit) -> dict[str, Any]:
        """Make the edit through the UI and measure it."""
        from playwright.sync_api import expect

        page = self.page
        gids = [g.grid_id for g in e.grids]
        self.show(gids, e.grids[0].street)
        for gid in gids:
            self._box(gid).check()
        # A lock changes no boundary, but its grid still gets before/after rows.
        rows = True
        arm = lambda: page.evaluate(ARM_JS, {"gone": gids, "rows": rows})  # noqa: E731
        if e.kind == "split":
            g = e.grids[0]
            page.locator("#tool-split").click()
            expect(page.locator("#draw-hint")).not_to_be_empty()
            minx, miny, maxx, maxy = g.geom.bounds
            line = page.evaluate(LINE_JS, [g.inside[1], g.inside[0], minx, miny, maxx, maxy,
                                           e.horizontal])
            if line is None:
                page.locator("#tool-cancel").click()
                raise EditRejected(f"no open map either side of grid {g.grid_id}")
            (x0, y0), (x1, y1) = line["points"]
            e.extra["line"] = "horizontal" if line["dir"] == "h" else "vertical"
            page.mouse.click(x0, y0)
            page.mouse.click(x1, y1)

            def act() -> None:
                arm()
                page.mouse.click(x1, y1)  # clicking the last vertex again finishes the line
        else:
            button = page.locator(f"#tool-{e.kind}")
            expect(button).to_be_enabled()

            def act() -> None:
                arm()
                button.click()
        run = self._measure(act)
        expect(page.locator("#edit-summary")).to_be_visible()
        if rows:
            expect(page.locator("#edit-after")).to_be_visible()
        return run

    def undo(self) -> dict[str, Any]:
        """Press undo and measure it the same way."""
        from playwright.sync_api import expect

        button = self.page.locator("#tool-undo")
        expect(button).to_be_enabled()

        def act() -> None:
            self.page.evaluate(ARM_JS, {"gone": [], "rows": False})
            button.click()

        return self._measure(act)


def open_planner(page: Any, base: str, token: str, plan: str | None,
                 timeout_s: float) -> tuple[Planner, float | None]:
    """Sign in, open the planner view and create (or open) the draft; return the time it took."""
    from playwright.sync_api import expect

    timeout_ms = timeout_s * 1000
    page.goto(base + "/")
    page.locator("#token-input").fill(token)
    page.locator("#signin-form button[type=submit]").click()
    page.locator("#whoami").wait_for(state="visible")  # the planner view is a planner's home
    expect(page.locator("#grid-list input[type=checkbox]").first).to_be_attached(
        timeout=timeout_ms)
    new_s = None
    if plan is None:
        plan = f"bench-web-{time.strftime('%Y%m%d-%H%M%S')}"
        page.locator("#new-plan-name").fill(plan)
        t0 = time.perf_counter()
        page.locator("#new-plan button[type=submit]").click()
        # plan new copies every grid and house link: allow it the long timeout several times
        expect(page.locator("#plan-select")).to_have_value(plan, timeout=timeout_ms * 10)
        new_s = time.perf_counter() - t0
        log(f"draft {plan} created through the form in {new_s:.1f} s")
    else:
        page.locator("#plan-select").select_option(plan)
    expect(page.locator("#plan-status")).to_have_attribute("class", re.compile("status-draft"))
    p = Planner(page, base, plan, timeout_s)
    p._wait_idle()
    p.area_required = bool(page.evaluate(
        "() => document.querySelector('#plan-area option[value=\"\"]').disabled"))
    return p, new_s


# ----------------------------------------------------------------------------- figures


def nearest_rank(values: list[float], q: float) -> float:
    """The smallest value at or above a fraction ``q`` of the values (nearest rank)."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def summary(values: list[float]) -> dict[str, Any]:
    """n, p50, p90 and max of some milliseconds."""
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50_ms": round(statistics.median(values), 1),
            "p90_ms": round(nearest_rank(values, 0.9), 1), "max_ms": round(max(values), 1)}


def request_table(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per route: how many, and the p50/max of its time and of the server's part."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        for q in r["requests"]:
            by.setdefault(q["route"], []).append(q)
    return {route: {"n": len(qs), "p50_ms": round(statistics.median(q["ms"] for q in qs), 1),
                    "max_ms": round(max(q["ms"] for q in qs), 1),
                    "server_p50_ms": round(statistics.median(q["server_ms"] for q in qs), 1),
                    "server_max_ms": round(max(q["server_ms"] for q in qs), 1)}
            for route, qs in sorted(by.items())}


def edit_all(planner: Planner, picker: Picker, kinds: list[str], runs: list[dict[str, Any]],
             undos: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> None:
    """Make each edit (a spare grid when the app refuses one), measure it, and undo it."""
    for kind in kinds:
        for _attempt in range(3):
            e = picker.next(kind)
            if e is None and kind != "split":
                log(f"no grid left suits a {kind}: a split instead")
                e = picker.next("split")
            if e is None:
                raise SystemExit(f"no grid left suits a {kind} or a split")
            try:
                run = planner.edit(e)
            except EditRejected as exc:
                rejected.append({"kind": e.kind, "grids": [g.grid_id for g in e.grids],
                                 "why": str(exc)[:300]})
                log(f"{e.kind} {[g.grid_id for g in e.grids]} rejected: {exc}")
                continue
            run = {"kind": e.kind, "grids": [g.grid_id for g in e.grids],
                   "houses": sum(g.houses for g in e.grids), **e.extra, **run,
                   "load_avg_1min": round(os.getloadavg()[0], 2)}
            runs.append(run)
            log(f"{e.kind} {run['grids']}: {run['ms']} ms to the tables, "
                f"{run['diff_ms']} ms to the diff; {run['grids_in_view']} grids in view")
            u = planner.undo()
            undos.append({"kind": "undo", "of": e.kind, **u})
            log(f"  undo: {u['ms']} ms")
            break
        else:
            raise SystemExit(f"three {kind}s in a row were rejected: {rejected[-3:]}")


def analyze(url: str) -> bool:
    """ANALYZE a PostGIS store (as autovacuum does in its own time); False on SpatiaLite."""
    engine = make_engine(url)
    try:
        if engine.dialect.name != "postgresql":
            log("--analyze: only PostGIS is analyzed; SpatiaLite left as it is")
            return False
        t0 = time.perf_counter()
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        log(f"ANALYZE after creating the draft: {time.perf_counter() - t0:.1f} s")
        return True
    finally:
        engine.dispose()


def run_browser(base: str, url: str, token: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every edit of the benchmark in one headless Chromium page."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing (apt-get install chromium)")
    offsite: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT},
                                          locale="zh-CN")
            page = context.new_page()
            page.set_default_timeout(args.timeout * 1000)
            # Watched, not intercepted: routing every request through Playwright would add
            # its own delay to the figures.
            page.on("request", lambda r: offsite.append(r.url) if not r.url.startswith(
                (base, "data:", "blob:", "about:")) else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            planner, new_s = open_planner(page, base, token, args.plan, args.timeout)
            planner.area_required |= args.by_street
            analyzed = args.analyze and analyze(url)
            picker = Picker(draft_grids(url, planner.plan), args.seed, args.pick)
            runs: list[dict[str, Any]] = []
            undos: list[dict[str, Any]] = []
            rejected: list[dict[str, Any]] = []
            try:
                edit_all(planner, picker, edit_kinds(args.edits), runs, undos, rejected)
            except Exception:
                fail = Path(tempfile.gettempdir()) / "gridmgr-bench-web-failed.png"
                page.screenshot(path=fail)
                state = page.evaluate(
                    "() => ({bench: window.__bench && Object.fromEntries(Object.entries("
                    "window.__bench).filter(([k]) => k !== 'stop')), "
                    "edit: document.getElementById('edit-result').innerText.slice(0, 800), "
                    "error: document.getElementById('plan-error').innerText.slice(0, 800), "
                    "hint: document.getElementById('draw-hint').innerText})")
                log(f"failed; screenshot {fail}; page state {json.dumps(state, default=str)}")
                raise
            shot = Path(tempfile.gettempdir()) / "gridmgr-bench-web.png"
            page.screenshot(path=shot)
            context.close()
        finally:
            browser.close()
    if errors:
        raise SystemExit(f"the page threw: {errors}")
    return {"plan": planner.plan, "plan_new_s": None if new_s is None else round(new_s, 2),
            "by_street": planner.area_required, "analyzed_after_draft": analyzed,
            "runs": runs, "undos": undos,
            "rejected": rejected, "offsite_requests": offsite, "screenshot": str(shot)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", choices=("spatialite", "postgis"), default="spatialite")
    ap.add_argument("--db", help="reuse a store that holds the demo city (built there if "
                                 "it is empty)")
    ap.add_argument("--edits", type=int, default=10,
                    help="edits to measure: a split, a merge, a lock, then splits")
    ap.add_argument("--pick", choices=("random", "busiest"), default="random",
                    help="grids drawn at random (with --seed), or the ones with most houses")
    ap.add_argument("--plan", help="edit this existing draft instead of creating one")
    ap.add_argument("--by-street", action="store_true",
                    help="choose each edit's street in the area selector even where the view "
                         "could show the whole city (it must above 400 grids, as at Chengdu)")
    ap.add_argument("--analyze", action="store_true",
                    help="ANALYZE a PostGIS store once the draft exists: the steady state, "
                         "not a new draft's first minutes (autovacuum has not yet seen the "
                         "copied rows, and edits then take seconds)")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="seconds to wait for any one step in the browser")
    args = ap.parse_args(argv)
    if args.edits < 1:
        ap.error("--edits must be at least 1")

    out: dict[str, Any] = {"bench": "web", "command": "python bench/web.py "
                           + " ".join(sys.argv[1:] if argv is None else argv),
                           "cpus": os.cpu_count()}
    cluster = None
    server: subprocess.Popen[bytes] | None = None
    token_id = None
    with tempfile.TemporaryDirectory(prefix="gridmgr-bench-web-") as tmp:
        workdir = Path(tmp)
        url = args.db
        try:
            if url is None:
                url, cluster = new_store(args.store, workdir)
            from gridmgr.store.schema import holds_data, upgrade
            from gridmgr.store.tokens import create_token, revoke_token

            engine = make_engine(url)
            if not holds_data(engine):  # a new store, or --db naming an empty one
                out["build"] = build_store_apart(url, args.scale, args.seed, workdir)
            upgrade(engine)  # as `gridmgr serve` does before its workers start
            with engine.begin() as conn:
                record, token = create_token(conn, role="planner", name="bench-web")
            token_id = record.id
            engine.dispose()
            out["store"], out["grids"], out["houses"] = store_counts(url)

            port = free_port()
            server_log = workdir / "server.log"
            t0 = time.perf_counter()
            server = start_server(url, port, server_log)
            base = f"http://127.0.0.1:{port}"
            try:
                wait_http(f"{base}/health", server, timeout=900)
            except RuntimeError:
                log("server log:\n" + server_log.read_text(errors="replace")[-4000:])
                raise
            out["server_start_s"] = round(time.perf_counter() - t0, 1)
            log(f"server up on {base} in {out['server_start_s']} s")
            try:
                res = run_browser(base, url, token, args)
            finally:
                stop(server)
                server = None
                lines = server_log.read_text(errors="replace").splitlines()
                out["server_log"] = [ln for ln in lines if ln.strip()][-20:]
        finally:
            if server is not None:
                stop(server)
            if token_id is not None and url is not None:
                engine = make_engine(url)
                with engine.begin() as conn:
                    revoke_token(conn, token_id=token_id)
                engine.dispose()
            if cluster is not None:
                cluster.stop()

    runs, undos = res.pop("runs"), res.pop("undos")
    ms = [r["ms"] for r in runs]
    per_kind = {k: summary([r["ms"] for r in runs if r["kind"] == k])
                for k in dict.fromkeys(r["kind"] for r in runs)}
    per_kind["undo"] = summary([u["ms"] for u in undos])
    out.update({
        "edits": len(runs),
        "p50_ms": round(statistics.median(ms), 1),
        "p90_ms": round(nearest_rank(ms, 0.9), 1),
        "max_ms": round(max(ms), 1),
        "per_kind": per_kind,
        "target_ms": TARGET_MS,
        "within_target": sum(v <= TARGET_MS for v in ms),
        "first_ms": runs[0]["ms"],
        "client": summary([r["client_ms"] for r in runs]),
        "paint": summary([r["paint_ms"] for r in runs]),
        "diff": summary([r["diff_ms"] for r in runs]),
        "grids_in_view": statistics.median(r["grids_in_view"] for r in runs),
        "requests": request_table(runs),
        "draft": res.pop("plan"),
        **res,
        "runs": runs,
        "undos": undos,
    })
    print(json.dumps(out, separators=(",", ":"), default=str, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
