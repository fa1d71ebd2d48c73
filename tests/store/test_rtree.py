"""Packed R*Trees on SQLite: valid trees that answer every box as row-by-row inserts do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cityfiles import ORDER, write_city
from sqlalchemy import text

from gridmgr.store import bulk, rtree
from gridmgr.store.engine import _sqlite_module, make_engine
from gridmgr.store.load import load_file


def _trees(n: int, seed: int, points: bool) -> tuple[Any, np.ndarray, np.ndarray]:
    """An SQLite connection with the same boxes in 'inc' (row by row) and 'packed'."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-180, 180, n)
    y = rng.uniform(-1e-3, 1e-3, n) if seed % 2 else rng.uniform(-90, 90, n)
    w = np.zeros(n) if points else rng.exponential(0.5, n)
    h = np.zeros(n) if points else rng.exponential(0.5, n)
    ids = rng.permutation(np.arange(1, 3 * n + 1))[:n] if n else np.empty(0, np.int64)
    raw = _sqlite_module().connect(":memory:", isolation_level=None)
    for name in ("inc", "packed"):
        raw.execute(f"CREATE VIRTUAL TABLE {name} USING rtree(pkid, xmin, xmax, ymin, ymax)")
    raw.execute("BEGIN")
    raw.executemany("INSERT INTO inc VALUES (?, ?, ?, ?, ?)",
                    zip(ids.tolist(), x.tolist(), (x + w).tolist(), y.tolist(),
                        (y + h).tolist(), strict=True))
    rtree.bulk_load(raw, "packed", ids, rtree.boxes_of(x, x + w, y, y + h))
    raw.execute("COMMIT")
    return raw, ids, np.stack([x, x + w, y, y + h], axis=1)


def _search(raw: Any, name: str, q: tuple[float, float, float, float]) -> list[int]:
    return [r[0] for r in raw.execute(
        f"SELECT pkid FROM {name} WHERE xmin <= ? AND xmax >= ? AND ymin <= ? AND ymax >= ? "
        "ORDER BY pkid", (q[1], q[0], q[3], q[2]))]


@pytest.mark.parametrize(("n", "points"), [(0, True), (1, True), (51, True), (52, False),
                                           (2_600, True), (20_000, False), (20_000, True)])
def test_a_packed_tree_is_valid_and_answers_as_row_by_row_inserts(n: int, points: bool) -> None:
    raw, ids, boxes = _trees(n, seed=n, points=points)
    assert raw.execute("SELECT rtreecheck('packed')").fetchone()[0] == "ok"
    # the same cells, rounded outwards to 32-bit floats exactly as the module rounds them
    assert raw.execute("SELECT * FROM packed ORDER BY pkid").fetchall() == raw.execute(
        "SELECT * FROM inc ORDER BY pkid").fetchall()
    rng = np.random.default_rng(1)
    for _ in range(25):
        x0, y0 = rng.uniform(-180, 180), rng.uniform(-90, 90)
        q = (x0, x0 + rng.exponential(20), y0, y0 + rng.exponential(10))
        got = _search(raw, "packed", q)
        assert got == _search(raw, "inc", q)
        # brute force on the doubles: the index may only add boxes within float32 rounding
        hit = (boxes[:, 0] <= q[1]) & (boxes[:, 1] >= q[0]) & (boxes[:, 2] <= q[3]) & (
            boxes[:, 3] >= q[2])
        assert set(ids[hit].tolist()) <= set(got)
        near = (boxes[:, 0] <= q[1] + 1e-4) & (boxes[:, 1] >= q[0] - 1e-4) & (
            boxes[:, 2] <= q[3] + 1e-4) & (boxes[:, 3] >= q[2] - 1e-4)
        assert set(got) <= set(ids[near].tolist())


def test_a_packed_tree_takes_further_inserts_and_deletes() -> None:
    raw, ids, _ = _trees(5_000, seed=3, points=True)
    raw.execute("BEGIN")
    for name in ("inc", "packed"):
        raw.executemany(f"INSERT INTO {name} VALUES (?, 1.5, 1.5, 2.5, 2.5)",
                        [(10**7 + i,) for i in range(300)])
        raw.executemany(f"DELETE FROM {name} WHERE pkid = ?", [(int(i),) for i in ids[::3]])
    raw.execute("COMMIT")
    assert raw.execute("SELECT rtreecheck('packed')").fetchone()[0] == "ok"
    assert raw.execute("SELECT * FROM packed ORDER BY pkid").fetchall() == raw.execute(
        "SELECT * FROM inc ORDER BY pkid").fetchall()
    assert _search(raw, "packed", (1, 2, 2, 3)) == list(range(10**7, 10**7 + 300))


def test_rowids_too_large_to_pack_are_written_one_by_one() -> None:
    raw = _sqlite_module().connect(":memory:", isolation_level=None)
    raw.execute("CREATE VIRTUAL TABLE t USING rtree(pkid, xmin, xmax, ymin, ymax)")
    ids = np.array([2**62, 5, 2**61 + 3], dtype=np.int64)
    x = np.array([1.0, 2.0, 3.0])
    rtree.bulk_load(raw, "t", ids, rtree.boxes_of(x, x, x, x))
    assert raw.execute("SELECT rtreecheck('t')").fetchone()[0] == "ok"
    assert sorted(r[0] for r in raw.execute("SELECT pkid FROM t WHERE xmin >= 1.5")) == [
        5, 2**61 + 3]


def _index_cells(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        return {t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY pkid"))]
                for t in ("idx_admin_area_geom", "idx_grid_geom", "idx_house_geom",
                          "idx_business_geom")}


def test_a_big_batch_packs_the_same_spatial_index_as_row_by_row_inserts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    city = write_city(tmp_path / "city")
    urls = {}
    for name, big in (("rows", 10**9), ("packed", 1)):
        monkeypatch.setattr(bulk, "BIG_BATCH_MIN", big)
        urls[name] = f"sqlite:///{tmp_path / name}.db"
        engine = make_engine(urls[name])
        for kind in ORDER:
            load_file(engine, kind, city[kind], report_path=tmp_path / f"{kind}.r",
                      chunk_rows=5)
        with engine.connect() as conn:
            for t in ("admin_area", "grid", "house", "business"):
                assert conn.execute(text(f"SELECT rtreecheck('idx_{t}_geom')")).scalar() == "ok"
    got, want = _index_cells(urls["packed"]), _index_cells(urls["rows"])
    assert got == want and len(got["idx_house_geom"]) == 12


def test_a_second_big_batch_repacks_the_rows_already_indexed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Houses added to a store that holds some: old and new rows all in the packed tree."""
    city = write_city(tmp_path / "city")
    houses = pd.read_csv(city["houses"], dtype=str, keep_default_na=False)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    houses.iloc[:4].to_csv(first, index=False)
    houses.iloc[4:].to_csv(second, index=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'two.db'}")
    for kind in ("areas", "grids"):
        load_file(engine, kind, city[kind], report_path=tmp_path / "r.csv")
    load_file(engine, "houses", first, report_path=tmp_path / "r.csv")  # row by row
    monkeypatch.setattr(bulk, "BIG_BATCH_MIN", 1)
    load_file(engine, "houses", second, report_path=tmp_path / "r.csv", chunk_rows=3)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT rtreecheck('idx_house_geom')")).scalar() == "ok"
        cells = conn.execute(text("SELECT pkid, xmin, ymin FROM idx_house_geom ORDER BY pkid"
                                  )).fetchall()
        rows = conn.execute(text("SELECT id, lon, lat FROM house ORDER BY id")).fetchall()
    assert [c[0] for c in cells] == [r[0] for r in rows] and len(rows) == 12
    assert all(abs(c[1] - r[1]) < 1e-4 and abs(c[2] - r[2]) < 1e-4
               for c, r in zip(cells, rows, strict=True))


def test_packing_in_place_writes_the_tree_a_copy_writes() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.uniform(100, 110, 5_000), rng.uniform(20, 30, 5_000)
    ids = rng.permutation(5_000).astype(np.int64) + 1
    raw = _sqlite_module().connect(":memory:", isolation_level=None)
    for name in ("copied", "in_place"):
        raw.execute(f"CREATE VIRTUAL TABLE {name} USING rtree(pkid, xmin, xmax, ymin, ymax)")
    given_ids, given_box = ids.copy(), rtree.boxes_of(x, x, y, y)
    rtree.bulk_load(raw, "copied", given_ids, given_box)
    assert (given_ids == ids).all()  # untouched without in_place
    rtree.bulk_load(raw, "in_place", given_ids, given_box, in_place=True)
    assert not (given_ids == ids).all()  # reordered, not copied
    for shadow in ("node", "parent", "rowid"):
        assert raw.execute(f"SELECT * FROM copied_{shadow} ORDER BY 1").fetchall() == \
            raw.execute(f"SELECT * FROM in_place_{shadow} ORDER BY 1").fetchall()
    assert raw.execute("SELECT rtreecheck('in_place')").fetchone()[0] == "ok"


def test_node_pieces_of_any_size_give_the_same_numbered_nodes() -> None:
    rng = np.random.default_rng(9)
    x, y = rng.uniform(0, 1, 3_000), rng.uniform(0, 1, 3_000)
    tree = rtree.Packed(np.arange(1, 3_001), rtree.boxes_of(x, x, y, y), node_size=244)
    whole = list(tree.node_pieces(10**9))
    small = list(tree.node_pieces(3))
    numbers = [f + i for f, p in small for i in range(len(p))]
    assert numbers == list(range(1, tree.nodes + 1))
    assert np.concatenate([p for _, p in small]).tobytes() == \
        np.concatenate([p for _, p in whole]).tobytes()
    assert all(len(p) <= 3 for _, p in small)
