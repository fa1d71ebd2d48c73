"""Boundary plans on both stores: every edit, rejections, undo, incremental == full, diff, adopt.

A small demo city (one district, two streets, six communities, 24 grids, 3,000 houses) is
loaded once per store and module into a template; each test works on a fresh copy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import Connection, text

from gridmgr.assign import assign_points
from gridmgr.demo import DemoSettings, load_bundled_districts, make_city
from gridmgr.errors import BadInput, Conflict, NotFound
from gridmgr.plan_rules import PlanRuleViolation, cells_of_points, cells_polygon
from gridmgr.store import counts, plan_ops
from gridmgr.store.bulk import geometries, read_frame
from gridmgr.store.engine import make_engine
from gridmgr.store.load import load_file
from gridmgr.store.plans import adopted_plan_id, plan_grids

SMALL = DemoSettings(streets=2, communities=6, grids=24, houses=3000, rented_houses=500,
                     floating_residents=2400, businesses=40)
ORDER = ("areas", "grids", "houses", "businesses", "people", "rentals")
PLAN_TABLES = ("boundary_plan", "plan_adoption", "grid", "house_grid", "business_grid",
               "grid_count", "plan_op", "plan_op_grid", "audit_log")
M = 1 / 111_000  # about a metre in degrees


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    districts = load_bundled_districts()
    city = make_city(scale=1, seed=3, districts=districts[districts["code"] == "510104"],
                     settings=SMALL)
    return city.write(tmp_path_factory.mktemp("demo"))


def _load(url: str, files: dict[str, Path], tmp: Path) -> None:
    engine = make_engine(url)
    for kind in ORDER:
        load_file(engine, kind, files[kind], report_path=tmp / f"{kind}.report.csv")
    engine.dispose()


@pytest.fixture(scope="module", params=["spatialite", "postgis"])
def template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             demo_files: dict[str, Path]) -> tuple[str, Any]:
    tmp = tmp_path_factory.mktemp("tmpl")
    if request.param == "spatialite":
        path = tmp / "template.db"
        _load(f"sqlite:///{path}", demo_files, tmp)
        return "spatialite", path
    cluster = request.getfixturevalue("pg_cluster")
    name = "tmpl_" + uuid.uuid4().hex[:10]
    _load(cluster.create_database(name), demo_files, tmp)
    return "postgis", (cluster, name)


@pytest.fixture
def url(template: tuple[str, Any], tmp_path: Path) -> Iterator[str]:
    kind, src = template
    if kind == "spatialite":
        dst = tmp_path / "city.db"
        shutil.copyfile(src, dst)
        yield f"sqlite:///{dst}"
        return
    import psycopg2

    cluster, name = src
    new = "t_" + uuid.uuid4().hex[:12]
    conn = psycopg2.connect(host="127.0.0.1", port=cluster.port, user=cluster.user,
                            dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{new}" TEMPLATE "{name}"')
    conn.close()
    yield cluster.url(new)


# ----------------------------------------------------------------------------- helpers


def grids_of(conn: Connection, plan: str) -> pd.DataFrame:
    """grid_id, community, locked, co-managers and geometry of a plan's grids."""
    pid = plan_ops.get_plan(conn, plan).id
    df = read_frame(conn, "SELECT id, grid_id, community_code, locked, co_managers_assigned, "
                          "ST_AsBinary(geom) AS wkb FROM grid WHERE plan_id = :p "
                          "ORDER BY grid_id", {"p": pid})
    df["geom"] = geometries(df["wkb"])
    df["locked"] = df["locked"].astype(bool)
    return df.set_index("grid_id")


def links(conn: Connection, plan: str, kind: str = "house") -> dict[int, str]:
    """house (or business) id → grid_id in a plan."""
    link, key = ("house_grid", "house_id") if kind == "house" else ("business_grid",
                                                                  "business_id")
    pid = plan_ops.get_plan(conn, plan).id
    rows = conn.execute(text(f"SELECT l.{key}, g.grid_id FROM {link} l JOIN grid g "
                             f"ON g.id = l.grid_pk WHERE l.plan_id = :p"), {"p": pid}).all()
    return {int(a): str(b) for a, b in rows}


def full_links(conn: Connection, plan: str, kind: str = "house") -> dict[int, str]:
    """What a full reassignment of every house (or business) to the plan's grids gives."""
    pid = plan_ops.get_plan(conn, plan).id
    pks, geoms, ids = plan_grids(conn, pid)
    df = read_frame(conn, f"SELECT id, lon, lat FROM {kind} ORDER BY id")
    gi = assign_points(df["lon"].to_numpy(float), df["lat"].to_numpy(float), geoms)
    return {int(h): str(ids[g]) for h, g in zip(df["id"], gi, strict=True) if g >= 0}


def check_consistent(conn: Connection, plan: str) -> None:
    """Links equal a full reassignment; maintained counts equal a recomputation."""
    assert links(conn, plan) == full_links(conn, plan)
    assert links(conn, plan, "business") == full_links(conn, plan, "business")
    pid = plan_ops.get_plan(conn, plan).id
    kept = counts.maintained(conn, pid).sort_index()
    fresh = counts.recompute(conn, pid).sort_index()
    pd.testing.assert_frame_equal(kept, fresh, check_names=False)


def digest(url: str) -> str:
    """A digest of every row of the plan tables (and, on SpatiaLite, of the file itself)."""
    engine = make_engine(url)
    h = hashlib.sha256()
    with engine.connect() as conn:
        for t in PLAN_TABLES:
            geo = "ST_AsBinary(geom)" if t in ("grid", "plan_op_grid") else "NULL"
            rows = conn.execute(text(f"SELECT *, {geo} FROM {t} ORDER BY 1, 2, 3")).fetchall()
            h.update(repr([tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                           for r in rows]).encode())
    engine.dispose()
    if engine.dialect.name == "sqlite":
        h.update(Path(engine.url.database or "").read_bytes())
    return h.hexdigest()


def _main(geom: shapely.Geometry) -> shapely.Geometry:
    parts = shapely.get_parts(geom)
    return parts[np.argmax(shapely.area(parts))]


def neighbours(g: pd.DataFrame, points: np.ndarray | None = None) -> tuple[str, str]:
    """Two grids a, b of one community sharing an edge; with ``points`` (houses), the pair
    where a house of b lies nearest to a."""
    best, pair = np.inf, ("", "")
    for _, grp in g.groupby("community_code"):
        ids = list(grp.index)
        for a in ids:
            for b in ids:
                if a == b:
                    continue
                edge = shapely.length(shapely.intersection(_main(g.at[a, "geom"]).boundary,
                                                           g.at[b, "geom"].boundary))
                if edge < 200 * M:
                    continue
                if points is None:
                    score = -edge
                else:
                    inside = points[shapely.contains(g.at[b, "geom"], points)]
                    if not inside.size:
                        continue
                    score = float(shapely.distance(inside, _main(g.at[a, "geom"])).min())
                if score < best:
                    best, pair = score, (a, b)
    return pair


HOUSES: dict[str, np.ndarray] = {}


def house_points(conn: Connection) -> np.ndarray:
    """Every house as a shapely point (cached per store file)."""
    key = str(conn.engine.url)
    if key not in HOUSES:
        df = read_frame(conn, "SELECT lon, lat FROM house")
        HOUSES[key] = shapely.points(df["lon"].to_numpy(float), df["lat"].to_numpy(float))
    return HOUSES[key]


def grow_into(g: pd.DataFrame, a: str, b: str, metres: float = 60.0,
              points: np.ndarray | None = None) -> shapely.Geometry:
    """Grid a plus the strip of its neighbour b near a's main part.

    With ``points``, the strip widens from ``metres`` until it holds some of them while b
    stays one piece of at least a third of its area.
    """
    main = _main(g.at[a, "geom"])
    bg = g.at[b, "geom"]
    for w in ([metres] if points is None else [metres * f for f in (1, 2, 3, 5, 8, 12)]):
        strip = shapely.intersection(bg, shapely.buffer(main, w * M))
        rest = shapely.difference(bg, strip)
        if points is None or (shapely.contains(strip, points).any()
                              and len(shapely.get_parts(rest)) == 1
                              and rest.area > bg.area / 3):
            return shapely.union(g.at[a, "geom"], strip)
    raise AssertionError(f"no strip of {b} next to {a} holds houses")


def line_across(geom: shapely.Geometry) -> shapely.LineString:
    """A north–south line through the middle of a grid, reaching past its edges."""
    x0, y0, x1, y1 = geom.bounds
    p = shapely.point_on_surface(geom)
    return shapely.LineString([(p.x, y0 - 0.01), (p.x, y1 + 0.01)])


def new_draft(url: str, name: str = "d1") -> None:
    with make_engine(url).begin() as conn:
        plan_ops.create_draft(conn, name=name, actor="tester")


def strip_to_take(url: str, plan: str = "d1") -> tuple[pd.DataFrame, str, str, Any]:
    """The plan's grids, two neighbours a and b, and a's boundary grown into b's houses."""
    with make_engine(url).connect() as conn:
        g = grids_of(conn, plan)
        a, b = neighbours(g, house_points(conn))
        return g, a, b, grow_into(g, a, b, points=house_points(conn))


# ----------------------------------------------------------------------------- tests


def test_new_draft_copies_grids_links_and_counts(url: str) -> None:
    new_draft(url)
    with make_engine(url).connect() as conn:
        base = grids_of(conn, "base")
        draft = grids_of(conn, "d1")
        assert list(base.index) == list(draft.index) and len(draft) == 24
        assert (base["wkb"].map(bytes) == draft["wkb"].map(bytes)).all()
        assert set(base["id"]).isdisjoint(set(draft["id"]))
        assert links(conn, "d1") == links(conn, "base")
        assert links(conn, "d1", "business") == links(conn, "base", "business")
        check_consistent(conn, "d1")
        info = plan_ops.plan_info(conn, "d1")
        assert (info.status, info.base, info.grids, info.edits) == ("draft", "base", 24, 0)
        with pytest.raises(Conflict, match="exists already"):
            plan_ops.create_draft(conn, name="d1")
        with pytest.raises(BadInput, match="plan name"):
            plan_ops.create_draft(conn, name="bad name!")


def test_every_edit_equals_full_reassignment_and_undo_restores(url: str) -> None:
    new_draft(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        start = grids_of(conn, "d1")
        start_links = links(conn, "d1")
        base_digest_links = links(conn, "base")
        a, b = neighbours(start, house_points(conn))
    results = []
    with engine.begin() as conn:  # reshape: a takes a strip of b
        grown = grow_into(start, a, b, points=house_points(conn))
        r = plan_ops.reshape(conn, plan="d1", grid_id=a, geometry=grown, actor="t")
        assert set(r.reshaped) == {a, b} and r.houses_moved > 0
        assert all(m["from"] == b and m["to"] == a for m in r.moved)
        results.append(r)
    with engine.begin() as conn:
        check_consistent(conn, "d1")
        g = grids_of(conn, "d1")
        assert g.at[a, "geom"].area > start.at[a, "geom"].area
        assert g.at[b, "geom"].area < start.at[b, "geom"].area
        # b's co-managers were split between its pieces by floating residents
        r = plan_ops.split(conn, plan="d1", grid_id=b, line=line_across(g.at[b, "geom"]),
                           actor="t")
        assert r.removed == [b] and len(r.added) == 2
        assert all(x.startswith(start.at[b, "community_code"] + "-") for x in r.added)
        results.append(r)
    with engine.begin() as conn:
        check_consistent(conn, "d1")
        g = grids_of(conn, "d1")
        assert b not in g.index and set(r.added) <= set(g.index)
        assert int(g.loc[r.added, "co_managers_assigned"].sum()) == int(
            start.at[b, "co_managers_assigned"])
        r = plan_ops.merge(conn, plan="d1", grid_ids=[a, r.added[0]], actor="t")
        results.append(r)
    with engine.begin() as conn:
        check_consistent(conn, "d1")
        g = grids_of(conn, "d1")
        house, res, src, tgt = _movable(conn, "d1", g)
        r = plan_ops.move(conn, plan="d1", to_grid=tgt, house_codes=[house], resolution=res,
                          actor="t")
        assert house in {m["house_code"] for m in r.moved}
        assert all(m["from"] == src and m["to"] == tgt for m in r.moved)
        assert set(r.reshaped) == {src, tgt}
        results.append(r)
    with engine.begin() as conn:
        check_consistent(conn, "d1")
        r = plan_ops.lock(conn, plan="d1", grid_ids=[a], actor="t")
        assert r.houses_moved == 0 and r.seq == 5
        # Nothing moved, but the planner sees which grid changed (its before/after rows).
        assert r.retouched == [a] and not (r.added or r.removed or r.reshaped)
    with engine.begin() as conn:
        assert grids_of(conn, "d1").at[a, "locked"]
        hist = plan_ops.history(conn, "d1")
        assert [h["op"] for h in hist] == ["reshape", "split", "merge", "move", "lock"]
        assert links(conn, "base") == base_digest_links  # the adopted plan never moves
    for _ in range(5):
        with engine.begin() as conn:
            plan_ops.undo(conn, plan="d1", actor="t")
        with engine.connect() as conn:
            check_consistent(conn, "d1")
    with engine.connect() as conn:
        end = grids_of(conn, "d1")
        assert list(end.index) == list(start.index)
        assert (end["wkb"].map(bytes) == start["wkb"].map(bytes)).all()
        assert (end["co_managers_assigned"] == start["co_managers_assigned"]).all()
        assert not end["locked"].any()
        assert links(conn, "d1") == start_links
        assert all(h["undone_at"] is not None for h in plan_ops.history(conn, "d1"))
        with pytest.raises(BadInput, match="no edit left to undo"):
            plan_ops.undo(conn, plan="d1")


def _movable(conn: Connection, plan: str, geoms: pd.DataFrame) -> tuple[str, int, str, str]:
    """A house whose H3 block touches a neighbouring grid of its community along an edge.

    Returns (house code, resolution, its grid, the neighbour); moving the block keeps both
    grids in one piece.
    """
    pid = plan_ops.get_plan(conn, plan).id
    df = read_frame(conn, "SELECT h.house_code, h.lon, h.lat, g.grid_id FROM house h "
                          "JOIN house_grid hg ON hg.house_id = h.id JOIN grid g "
                          "ON g.id = hg.grid_pk WHERE hg.plan_id = :p", {"p": pid})
    pts = shapely.points(df["lon"], df["lat"])
    tries = []
    for tgt_id in geoms.index:
        comm = geoms.at[tgt_id, "community_code"]
        for src_id in geoms.index[(geoms["community_code"] == comm) & (geoms.index != tgt_id)]:
            sel = np.flatnonzero(df["grid_id"].to_numpy() == src_id)
            if sel.size:
                d = shapely.distance(pts[sel], geoms.at[tgt_id, "geom"])
                tries += [(float(d[j]), int(sel[j]), src_id, tgt_id)
                          for j in np.argsort(d)[:5]]
    for res in (11, 10, 9):
        for _, i, src_id, tgt_id in sorted(tries)[:40]:
            src, tgt = geoms.at[src_id, "geom"], geoms.at[tgt_id, "geom"]
            cell = cells_polygon(cells_of_points([df["lon"].iloc[i]], [df["lat"].iloc[i]], res))
            piece = shapely.intersection(src, cell)
            rest = shapely.difference(src, cell)
            if shapely.length(shapely.intersection(piece.boundary, tgt.boundary)) > 10 * M \
                    and len(shapely.get_parts(rest)) == len(shapely.get_parts(src)) \
                    and len(shapely.get_parts(shapely.union(tgt, piece))) \
                    == len(shapely.get_parts(tgt)):
                return str(df["house_code"].iloc[i]), res, src_id, tgt_id
    raise AssertionError("no house sits in a block touching a neighbouring grid")


def test_rejected_edits_leave_the_draft_byte_for_byte(url: str) -> None:
    new_draft(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        g = grids_of(conn, "d1")
    engine.dispose()
    a, b = neighbours(g)
    comm = g.at[a, "community_code"]
    foreign = next(x for x in g.index if g.at[x, "community_code"] != comm
                   and shapely.intersects(shapely.buffer(g.at[x, "geom"], 1 * M),
                                          g.at[a, "geom"]))
    apart = next((x, y) for x in g.index for y in g.index if x < y
                 and g.at[x, "community_code"] == g.at[y, "community_code"]
                 and shapely.distance(g.at[x, "geom"], g.at[y, "geom"]) > 10 * M)
    hole = shapely.difference(g.at[a, "geom"], shapely.buffer(
        shapely.point_on_surface(g.at[a, "geom"]), 30 * M))
    x0, y0, _, _ = g.at[a, "geom"].bounds
    bowtie = shapely.Polygon([(x0, y0), (x0 + 0.01, y0 + 0.01), (x0 + 0.01, y0),
                              (x0, y0 + 0.01)])
    before = digest(url)

    def rejected(fn: Any, match: str, names: tuple[str, ...], **kw: Any) -> None:
        with pytest.raises((PlanRuleViolation, BadInput, Conflict)) as info:
            with make_engine(url).begin() as conn:
                fn(conn, plan="d1", **kw)
        assert any(word in str(info.value) for word in match.split("|")), str(info.value)
        for n in names:
            assert n in str(info.value)
        assert "unchanged" in str(info.value) or "nothing" in str(info.value) \
            or fn is plan_ops.merge
        assert digest(url) == before, f"{fn.__name__} changed the store"

    # into the neighbouring community: outside its own
    rejected(plan_ops.reshape, "outside its community", (a,), grid_id=a,
             geometry=grow_into(g, a, foreign, 80))
    # not a valid polygon
    rejected(plan_ops.reshape, "not a valid polygon", (a,), grid_id=a, geometry=bowtie)
    # a hole that no neighbour can take: a gap inside the community
    rejected(plan_ops.reshape, "in no grid", (a,), grid_id=a, geometry=hole)
    # the line misses the grid
    rejected(plan_ops.split, "does not cut", (a,), grid_id=a,
             line=shapely.LineString([(x0 - 0.2, y0 - 0.2), (x0 - 0.1, y0 - 0.2)]))
    # different communities
    rejected(plan_ops.merge, "different communities", (a, foreign), grid_ids=[a, foreign])
    # grids that do not touch make a grid in two pieces
    rejected(plan_ops.merge, "not one piece", (apart[0],), grid_ids=list(apart))
    # a detached block: area far from the target grid
    blob = shapely.buffer(shapely.point_on_surface(g.at[foreign, "geom"]), 20 * M)
    rejected(plan_ops.move, "outside its community|not one piece", (a,), to_grid=a,
             polygon=blob)
    # locked neighbour
    with make_engine(url).begin() as conn:
        plan_ops.lock(conn, plan="d1", grid_ids=[b])
    before = digest(url)
    rejected(plan_ops.reshape, "locked", (b,), grid_id=a, geometry=grow_into(g, a, b))
    rejected(plan_ops.split, "locked", (b,), grid_id=b, line=line_across(g.at[b, "geom"]))
    # edits go to drafts only
    with pytest.raises(BadInput, match="adopted"):
        with make_engine(url).begin() as conn:
            plan_ops.reshape(conn, plan="base", grid_id=a, geometry=g.at[a, "geom"])
    with pytest.raises(NotFound, match="no grid"):
        with make_engine(url).begin() as conn:
            plan_ops.split(conn, plan="d1", grid_id="nope", line=line_across(g.at[a, "geom"]))
    assert digest(url) == before


def test_diff_lists_moved_houses_and_workload_before_after(url: str) -> None:
    new_draft(url)
    engine = make_engine(url)
    g, a, b, grown = strip_to_take(url)
    with engine.begin() as conn:
        plan_ops.reshape(conn, plan="d1", grid_id=a, geometry=grown)
        r = plan_ops.split(conn, plan="d1", grid_id=a, line=line_across(grown))
    with engine.connect() as conn:
        d = plan_ops.diff(conn, plan="d1")
        old, new = links(conn, "base"), links(conn, "d1")
        codes = dict(conn.execute(text("SELECT id, house_code FROM house")).all())
    expect = sorted((codes[h], old.get(h), new.get(h)) for h in set(old) | set(new)
                    if old.get(h) != new.get(h))
    assert d.houses_moved == len(expect) > 0
    assert sorted((m["house_code"], m["from"], m["to"]) for m in d.moved) == expect
    assert (d.plan, d.other) == ("d1", "base")
    assert d.added == sorted(r.added) and d.removed == [a] and d.reshaped == [b]
    before = d.before.set_index("grid_id")
    after = d.after.set_index("grid_id")
    assert set(before.index) == {a, b} and set(after.index) == {b, *r.added}
    # the houses only moved among these grids: their totals agree, and match the links
    for col in ("houses", "residents", "floating_residents", "rental_houses"):
        assert before[col].sum() == after[col].sum()
    assert after.at[b, "houses"] == sum(1 for v in new.values() if v == b)
    assert {"tier", "co_managers_needed", "inspections_per_month"} <= set(after.columns)
    roll = d.rollup.set_index(["level", "area_code"])
    comm = g.at[a, "community_code"]
    assert roll.at[("community", comm), "grids_change"] == 1
    assert roll.at[("community", comm), "floating_residents_change"] == 0
    assert set(roll.index.get_level_values("level")) == {"community", "street", "district",
                                                        "city"}
    js = json.loads(json.dumps(d.as_dict()))
    assert js["houses_moved"] == d.houses_moved and len(js["moved"]) == d.houses_moved
    assert {m["house_code"] for m in js["moved"]} == {e[0] for e in expect}
    assert {r["grid_id"] for r in js["before"]} == {a, b}
    table = d.table()
    assert set(table["change"]) == {"removed", "reshaped", "added"}
    with engine.connect() as conn:  # the other way round
        back = plan_ops.diff(conn, plan="base", other="d1", levels=())
        same = plan_ops.diff(conn, plan="d1", other="d1", levels=())
    assert back.houses_moved == d.houses_moved and back.added == [a]
    assert same.houses_moved == 0 and not same.added and not same.reshaped


def test_adopt_is_atomic_dated_audited_and_readoptable(url: str) -> None:
    new_draft(url)
    engine = make_engine(url)
    g, a, b, grown = strip_to_take(url)
    with engine.begin() as conn:
        r = plan_ops.reshape(conn, plan="d1", grid_id=a, geometry=grown)
    moved_code = r.moved[0]["house_code"]
    t0 = dt.datetime(2030, 1, 1)
    t1 = dt.datetime(2030, 6, 1)
    with engine.begin() as conn:
        res = plan_ops.adopt(conn, plan="d1", actor="chief", role="supervisor",
                             client_addr="10.0.0.9", at=t0)
        assert (res.plan, res.previous, res.houses_moved) == ("d1", "base", r.houses_moved)
    with engine.connect() as conn:
        status = dict(conn.execute(text("SELECT name, status FROM boundary_plan")).all())
        assert status == {"base": "retired", "d1": "adopted"}
        assert adopted_plan_id(conn) == plan_ops.get_plan(conn, "d1").id
        audit = conn.execute(text("SELECT actor, role, action, target, client_addr, detail "
                                  "FROM audit_log WHERE action = 'plan_adopt'")).all()
        assert len(audit) == 1 and audit[0][:5] == ("chief", "supervisor", "plan_adopt", "d1",
                                                   "10.0.0.9")
        assert json.loads(audit[0][5])["previous"] == "base"
        periods = plan_ops.house_grid_history(conn, house_code=moved_code)
        assert [(p["plan"], p["grid_id"]) for p in periods] == [("base", b), ("d1", a)]
        assert periods[0]["until"] == t0 and periods[1]["from"] == t0
        assert plan_ops.grid_of_house_on(conn, house_code=moved_code,
                                         when=t0 - dt.timedelta(days=1)) == b
        assert plan_ops.grid_of_house_on(conn, house_code=moved_code, when=t0) == a
        with pytest.raises(BadInput, match="already adopted"):
            plan_ops.adopt(conn, plan="d1")
        with pytest.raises(BadInput, match="retired"):
            plan_ops.reshape(conn, plan="base", grid_id=a, geometry=g.at[a, "geom"])
    with engine.begin() as conn:  # the old plan can be adopted again
        res = plan_ops.adopt(conn, plan="base", actor="chief", at=t1)
        assert res.relinked and res.previous == "d1"
    with engine.connect() as conn:
        check_consistent(conn, "base")
        periods = plan_ops.house_grid_history(conn, house_code=moved_code)
        assert [(p["plan"], p["grid_id"]) for p in periods] == [("base", b), ("d1", a),
                                                                 ("base", b)]
        assert plan_ops.grid_of_house_on(conn, house_code=moved_code,
                                         when=t1 + dt.timedelta(days=1)) == b
        infos = {p.name: p for p in plan_ops.list_plans(conn)}
        assert len(infos["base"].adoptions) == 2 and infos["d1"].status == "retired"


def test_a_stale_draft_needs_force(url: str) -> None:
    new_draft(url, "d1")
    new_draft(url, "d2")
    engine = make_engine(url)
    with engine.begin() as conn:
        plan_ops.adopt(conn, plan="d1", actor="x")
    with pytest.raises(Conflict, match="--force"):
        with engine.begin() as conn:
            plan_ops.adopt(conn, plan="d2", actor="x")
    with engine.begin() as conn:
        assert plan_ops.adopt(conn, plan="d2", actor="x", force=True).previous == "d1"


def test_a_discarded_draft_drops_its_links_and_keeps_its_record(url: str) -> None:
    new_draft(url, "d1")
    engine = make_engine(url)
    g, a, b, grown = strip_to_take(url)
    with engine.begin() as conn:
        plan_ops.reshape(conn, plan="d1", grid_id=a, geometry=grown)
        pid = plan_ops.get_plan(conn, "d1").id
        linked = conn.execute(text("SELECT count(*) FROM house_grid WHERE plan_id = :p"),
                              {"p": pid}).scalar_one()
    with engine.begin() as conn:
        res = plan_ops.discard(conn, plan="d1", actor="alice", client_addr="10.0.0.7")
    assert res.links_deleted == linked > 0
    with engine.connect() as conn:
        for table in ("house_grid", "business_grid", "grid_count"):
            assert conn.execute(text(f"SELECT count(*) FROM {table} WHERE plan_id = :p"),
                                {"p": pid}).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM grid WHERE plan_id = :p"),
                            {"p": pid}).scalar_one() == len(g)  # the grids are kept
        assert pid not in counts.live_plans(conn)
        assert len(plan_ops.history(conn, "d1")) == 1
        audit = conn.execute(text("SELECT actor, action, target, client_addr FROM audit_log "
                                  "WHERE action = 'plan_discard'")).all()
        assert [tuple(r) for r in audit] == [("alice", "plan_discard", "d1", "10.0.0.7")]
        assert plan_ops.plan_info(conn, "d1").status == "discarded"
        with pytest.raises(BadInput, match="discarded"):
            plan_ops.reshape(conn, plan="d1", grid_id=a, geometry=g.at[a, "geom"])
        with pytest.raises(BadInput, match="discarded"):
            plan_ops.adopt(conn, plan="d1")
        with pytest.raises(BadInput, match="discarded"):
            plan_ops.diff(conn, plan="d1")
        with pytest.raises(BadInput, match="only a draft"):
            plan_ops.discard(conn, plan="base")
    with engine.begin() as conn:  # what was tried can be taken up again, relinked in full
        plan_ops.create_draft(conn, name="d2", source="d1", actor="alice")
    with engine.connect() as conn:
        check_consistent(conn, "d2")
        assert grids_of(conn, "d2").at[a, "geom"].equals(grids_of(conn, "d1").at[a, "geom"])


def test_drafts_stay_current_when_houses_are_loaded(url: str, tmp_path: Path) -> None:
    new_draft(url)
    engine = make_engine(url)
    g, a, b, grown = strip_to_take(url)
    with engine.begin() as conn:
        plan_ops.reshape(conn, plan="d1", grid_id=a, geometry=grown)
    p = shapely.point_on_surface(shapely.difference(grown, g.at[a, "geom"]))
    pd.DataFrame({"source_id": ["NEW1"], "lon": [p.x], "lat": [p.y], "address": ["新房"],
                  "building": [1], "unit": [1], "room": [9901], "area_m2": [50.0],
                  "use": ["residential"]}).to_csv(tmp_path / "h.csv", index=False)
    load_file(engine, "houses", tmp_path / "h.csv", report_path=tmp_path / "r.csv")
    with engine.connect() as conn:
        check_consistent(conn, "d1")
        new_id = conn.execute(text("SELECT id FROM house WHERE source_id = 'NEW1'")).scalar()
        assert links(conn, "d1")[new_id] == a and links(conn, "base")[new_id] == b


def test_rebalance_a_community_writes_balanced_contiguous_grids(url: str) -> None:
    new_draft(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        g = grids_of(conn, "d1")
        comm = g.groupby("community_code").size().idxmax()
        olds = list(g.index[g["community_code"] == comm])
        staff = int(g.loc[olds, "co_managers_assigned"].sum())
        wl = plan_ops.grid_workload(conn, plan_ops.get_plan(conn, "d1").id,
                                    communities=[comm])
    total = int(wl["floating_residents"].sum())
    k = 3
    with engine.begin() as conn:
        plan_ops.lock(conn, plan="d1", grid_ids=[olds[0]])
        rep = plan_ops.rebalance_area(conn, plan="d1", area=comm, grids=k,
                                      floor=0.6 * total / (k + 1),
                                      ceiling=1.6 * total / (k + 1), seed=1)
    assert rep.communities == {comm: k}
    assert set(rep.op.removed) == set(olds[1:]) and len(rep.op.added) == k
    assert olds[0] not in rep.op.removed  # locked grids stay as they are
    assert rep.proposal["k"] == k and rep.proposal["contiguous_geometry"]
    assert rep.current["k"] == len(olds) - 1
    assert {"min", "max", "cv", "within_bounds", "pp_mean", "seconds"} <= set(rep.proposal)
    with engine.connect() as conn:
        check_consistent(conn, "d1")
        after = grids_of(conn, "d1")
        new = after.loc[rep.op.added]
        assert all(geom.geom_type == "MultiPolygon" and len(geom.geoms) == 1
                   for geom in new["geom"])
        assert int(after.loc[after["community_code"] == comm, "co_managers_assigned"].sum()) \
            == staff
        boundary = plan_ops.community_geometries(conn, [comm])[comm]
        cover = shapely.union_all(after.loc[after["community_code"] == comm, "geom"].to_numpy())
        assert shapely.symmetric_difference(cover, boundary).area < 1e-6 * boundary.area + 1e-9
        d = plan_ops.diff(conn, plan="d1")
        assert sorted(d.added) == sorted(rep.op.added)
    with engine.begin() as conn:
        plan_ops.undo(conn, plan="d1")
    with engine.connect() as conn:
        assert list(grids_of(conn, "d1").index) == list(g.index)
        check_consistent(conn, "d1")
    with pytest.raises(BadInput, match="choose"):
        with engine.begin() as conn:
            plan_ops.rebalance_area(conn, plan="d1", area=comm, grids=1, floor=1,
                                    ceiling=total / 5)


def test_migrations_match_the_plan_models(url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from geoalchemy2 import alembic_helpers

    import gridmgr.store.models_plans  # noqa: F401 - registers plan_op, plan_op_grid
    from gridmgr.store.models import Base

    engine = make_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={
            "include_object": alembic_helpers.include_object})
        found = compare_metadata(ctx, Base.metadata)
    mine = [d for d in found if "plan_op" in repr(d)]
    assert mine == []


@pytest.mark.parametrize("template", ["spatialite"], indirect=True)
def test_cli_plan_commands(url: str, tmp_path: Path) -> None:
    import re

    import typer
    from typer.testing import CliRunner

    from gridmgr.cli_plan import plan_app

    root = typer.Typer()
    root.add_typer(plan_app, name="plan")
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(root, ["plan", *args, "--db", url])

    res = run("new", "d1", "--actor", "tester")
    assert res.exit_code == 0 and "draft d1 created from base with 24 grids" in res.output
    assert run("new", "d1").exit_code == 2
    g, a, b, grown = strip_to_take(url)
    (tmp_path / "a.wkt").write_text(grown.wkt)
    res = run("reshape", "d1", a, str(tmp_path / "a.wkt"))
    assert res.exit_code == 0, res.output
    assert "houses moved" in res.output and f"{b} → {a}" in res.output
    line = line_across(grown)
    res = run("split", "d1", a, "--line", line.wkt)
    assert res.exit_code == 0, res.output
    new_ids = res.output.splitlines()[:2]
    assert all(i.startswith(g.at[a, "community_code"] + "-") for i in new_ids)
    res = run("split", "d1", new_ids[0], "--line", "LINESTRING (0 0, 1 1)")
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "does not cut" in res.output
    res = run("diff", "d1", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["houses_moved"] == len(doc["moved"]) > 0
    assert {"house_code", "from", "to"} == set(doc["moved"][0])
    assert {r["grid_id"] for r in doc["before"]} >= {a, b}
    assert {r["grid_id"] for r in doc["after"]} >= set(new_ids)
    res = run("diff", "d1", "--map", str(tmp_path / "diff.html"))
    assert res.exit_code == 0, res.output
    html = (tmp_path / "diff.html").read_text(encoding="utf-8")
    assert new_ids[0] in html
    assert not re.findall(r"<(?:script|link)[^>]+(?:src|href)=[\"']https?://", html)
    assert run("lock", "d1", b).exit_code == 0
    assert run("unlock", "d1", b).exit_code == 0
    res = run("history", "d1")
    assert res.exit_code == 0 and "split" in res.output and "unlock" in res.output
    assert run("undo", "d1").exit_code == 0
    res = run("list", "--format", "json")
    assert {p["name"]: p["edits"] for p in json.loads(res.output)} == {"base": 0, "d1": 3}
    res = run("adopt", "d1", "--actor", "chief")
    assert res.exit_code == 0 and "base retired" in res.output
    assert run("adopt", "nope").exit_code == 2
    assert run("new", "d9").exit_code == 0
    res = run("discard", "d9")
    assert res.exit_code == 0 and re.search(r"draft d9 discarded; [1-9]\d* house links", res.output)
    res = run("discard", "d9")
    assert res.exit_code == 2 and "only a draft" in res.output


def test_http_routes(url: str) -> None:
    from fastapi import FastAPI, Request
    from fastapi.testclient import TestClient

    from api import errors
    from api.plans_router import router

    app = FastAPI()
    errors.install(app)
    app.state.engine = make_engine(url)

    @app.middleware("http")
    async def role(request: Request, call_next: Any) -> Any:
        if "x-role" in request.headers:
            request.state.role = request.headers["x-role"]
            request.state.actor = "alice"
        return await call_next(request)

    app.include_router(router)
    client = TestClient(app)
    planner, chief = {"x-role": "planner"}, {"x-role": "supervisor"}
    assert client.get("/plans").status_code == 401
    assert client.get("/plans", headers={"x-role": "police"}).status_code == 403
    r = client.post("/plans", json={"name": "d1"}, headers=planner)
    assert r.status_code == 201 and r.json()["grids"] == 24
    assert client.post("/plans", json={"name": "d1"}, headers=planner).status_code == 409
    assert client.post("/plans", json={"name": "d2"}, headers=chief).status_code == 403
    g, a, b, grown = strip_to_take(url)
    r = client.post("/plans/d1/reshape", headers=planner,
                    json={"grid_id": a, "geometry": shapely.geometry.mapping(grown)})
    assert r.status_code == 200, r.text
    assert r.json()["houses_moved"] > 0 and r.json()["moved"][0]["from"] == b
    r = client.post("/plans/d1/split", headers=planner,
                    json={"grid_id": a, "line": "LINESTRING (0 0, 1 1)"})
    assert r.status_code == 400 and r.json()["error"] == "bad_input"
    assert a in r.json()["detail"]
    r = client.post("/plans/d1/merge", headers=planner, json={"grid_ids": [a, b]})
    assert r.status_code == 200 and r.json()["removed"] == [b]
    r = client.post("/plans/d1/lock", headers=planner, json={"grid_ids": [a]})
    assert r.status_code == 200 and r.json()["op"] == "lock"
    r = client.post("/plans/d1/reshape", headers=planner,
                    json={"grid_id": a, "geometry": shapely.geometry.mapping(g.at[a, "geom"])})
    assert r.status_code == 400 and "locked" in r.json()["detail"]
    assert client.post("/plans/d1/undo", headers=planner).json()["op"] == "undo lock"
    r = client.get("/plans/d1/diff", headers=chief)
    assert r.status_code == 200
    body = r.json()
    assert body["houses_moved"] == len(body["moved"]) and body["grids"]["removed"] == [b]
    assert client.get("/plans/d1/diff?other=nope", headers=chief).status_code == 404
    assert len(client.get("/plans/d1/history", headers=planner).json()) == 3
    assert client.post("/plans/d1/adopt", headers=planner).status_code == 403
    r = client.post("/plans/d1/adopt", headers=chief, json={"force": False})
    assert r.status_code == 200 and r.json()["previous"] == "base"
    plans = {p["name"]: p for p in client.get("/plans", headers=chief).json()}
    assert plans["d1"]["status"] == "adopted" and plans["base"]["status"] == "retired"
    assert client.get("/plans/nope", headers=chief).status_code == 404
    assert "/plans/{name}/rebalance" in app.openapi()["paths"]
    assert client.post("/plans", json={"name": "d3"}, headers=planner).status_code == 201
    assert client.post("/plans/d3/discard", headers={"x-role": "police"}).status_code == 403
    r = client.post("/plans/d3/discard", headers=planner)
    assert r.status_code == 200 and r.json()["status"] == "discarded"
    assert r.json()["links_deleted"] > 0
    r = client.post("/plans/d3/discard", headers=planner)
    assert r.status_code == 400 and "only a draft" in r.json()["detail"]
    assert client.post("/plans/nope/discard", headers=planner).status_code == 404


def test_assign_nearby_follows_the_assignment_tie_rule() -> None:
    from gridmgr.assign import assign_nearby

    rng = np.random.default_rng(5)
    cells = [shapely.box(104.0 + i * 0.01, 30.6 + j * 0.01, 104.01 + i * 0.01, 30.61 + j * 0.01)
             for i in range(4) for j in range(3)]
    geoms = np.asarray(cells + [shapely.box(104.005, 30.605, 104.025, 30.615)], dtype=object)
    x = np.concatenate([rng.uniform(103.995, 104.045, 4000), np.full(50, 104.01),
                        [np.nan, 104.02]])
    y = np.concatenate([rng.uniform(30.595, 30.635, 4000), rng.uniform(30.6, 30.63, 50),
                        [30.61, np.inf]])
    expect = assign_points(x, y, geoms, method="strtree")
    assert (expect >= 0).sum() > 2000 and not (expect == 12).any()  # lower ids win overlaps
    assert np.array_equal(assign_nearby(x, y, geoms), expect)
    # A handful of points takes the per-polygon loop; a None or empty grid covers nothing.
    few = np.r_[0:30, 4000:4010, 4050:4052]
    holes = np.asarray([None, shapely.Polygon(), *geoms], dtype=object)
    got = assign_nearby(x[few], y[few], holes)
    assert np.array_equal(got, np.where(expect[few] >= 0, expect[few] + 2, -1))


def test_rebalance_keeps_an_inherited_island(store_url: str, tmp_path: Path) -> None:
    from cityfiles import C2, write_city

    _load(store_url, write_city(tmp_path / "city"), tmp_path)
    new_draft(store_url)
    engine = make_engine(store_url)
    with engine.begin() as conn:
        rep = plan_ops.rebalance_area(conn, plan="d1", area=C2, grids=1, floor=1, ceiling=10,
                                      resolution=9)
    assert rep.communities == {C2: 1} and len(rep.op.added) == 1
    with engine.connect() as conn:
        check_consistent(conn, "d1")
        grid = grids_of(conn, "d1").loc[rep.op.added[0], "geom"]
        # the far triangle (outside the community, as loaded) stays with the new grid
        assert len(shapely.get_parts(grid)) == 2
        assert grid.covers(shapely.Point(104.305, 30.601))
        assert links(conn, "d1") == links(conn, "base") | {
            h: rep.op.added[0] for h, g in links(conn, "base").items() if g == f"{C2}-01"}
