"""Bulk loading of SQLite R*Trees: a packed tree written straight into its shadow tables.

SQLite's rtree module has no bulk load: each row inserted descends the tree and splits
full nodes, about 5 µs a point (7 s for 1.35 M houses, whatever the insert order). A
sort-tile-recursive (STR) packing of the same boxes is built here with numpy and written as
the module's own three tables (``%_node``, ``%_parent``, ``%_rowid``), in the documented
node format: big-endian 2-byte depth (root only) and cell count, then per cell a 64-bit
id and the box as 32-bit floats (xmin, xmax, ymin, ymax), rounded outwards exactly as the
module rounds the doubles it is given. Queries see the same boxes as after row-by-row
inserts; later inserts and deletes work on the packed tree as on any other, and
``rtreecheck()`` accepts it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

# The rtree module's outward rounding of a double to a 32-bit float (rtreeValueDown/Up).
_TOWARDS = 1.0 - 1.0 / 8388608.0
_AWAY = 1.0 + 1.0 / 8388608.0

_CELL = np.dtype([("id", ">i8"), ("box", ">f4", (4,))])  # one 2-D cell: 24 bytes

# Rows per statement when the shadow tables are filled: bounds the text and blobs held.
_PIECE = 1 << 20


def _rounded(d: np.ndarray, down: bool) -> np.ndarray:
    """The 32-bit float the rtree module stores for a lower (`down`) or upper bound `d`."""
    d = np.asarray(d, dtype=np.float64)
    f = d.astype(np.float32)
    off = f > d if down else f < d
    if off.any():  # moving down grows a negative value, moving up a positive one
        grow = (d[off] < 0) == down
        f[off] = (d[off] * np.where(grow, _AWAY, _TOWARDS)).astype(np.float32)
    return f


def boxes_of(xmin: np.ndarray, xmax: np.ndarray, ymin: np.ndarray, ymax: np.ndarray
             ) -> np.ndarray:
    """(n × 4) float32 boxes (xmin, xmax, ymin, ymax) as the rtree module would store them."""
    return np.stack([_rounded(xmin, True), _rounded(xmax, False), _rounded(ymin, True),
                     _rounded(ymax, False)], axis=1)


def _str_order(box: np.ndarray, per_node: int) -> np.ndarray:
    """Sort-tile-recursive order: slabs by x centre, each slab by y centre.

    One slab at a time (a few hundred for millions of boxes), so only one order array
    and one slab's centres are held: a lexsort over every box held five such arrays.
    """
    n = len(box)
    nodes = -(-n // per_node)
    size = int(np.ceil(np.sqrt(nodes))) * per_node  # boxes per slab
    order = np.argsort(box[:, 0].astype(np.float64) + box[:, 1], kind="stable")
    for start in range(0, n, size):
        part = order[start:start + size]
        cy = box[part, 2].astype(np.float64) + box[part, 3]
        order[start:start + size] = part[np.argsort(cy, kind="stable")]
    return order


def _node_boxes(box: np.ndarray, per_node: int) -> np.ndarray:
    """The box of each run of `per_node` consecutive cells."""
    starts = np.arange(0, len(box), per_node)
    return np.stack([np.minimum.reduceat(box[:, 0], starts),
                     np.maximum.reduceat(box[:, 1], starts),
                     np.minimum.reduceat(box[:, 2], starts),
                     np.maximum.reduceat(box[:, 3], starts)], axis=1)


def _node_bytes(ids: np.ndarray, box: np.ndarray, per_node: int, node_size: int,
                depth: int = 0) -> np.ndarray:
    """(nodes × node_size) bytes of consecutive cells packed `per_node` to a node.

    The cells are written straight into the node bytes through a structured view, so the
    leaves of millions of boxes are not held twice.
    """
    n = len(ids)
    nodes = max(1, -(-n // per_node))
    out = np.zeros((nodes, node_size), dtype=np.uint8)
    out[:, 0:2] = np.frombuffer(np.array([depth], dtype=">u2").tobytes(), dtype=np.uint8)
    count = np.full(nodes, per_node, dtype=">u2")
    count[-1] = n - (nodes - 1) * per_node
    out[:, 2:4] = count.view(np.uint8).reshape(nodes, 2)
    cells = out[:, 4:4 + per_node * _CELL.itemsize].view(_CELL)  # (nodes × per_node)
    full = n // per_node
    cells["id"][:full] = ids[:full * per_node].reshape(full, per_node)
    cells["box"][:full] = box[:full * per_node].reshape(full, per_node, 4)
    if n > full * per_node:
        cells["id"][full, :n - full * per_node] = ids[full * per_node:]
        cells["box"][full, :n - full * per_node] = box[full * per_node:]
    return out


class Packed:
    """An STR-packed tree: its nodes by level, the parent of each node, the leaf of each id.

    Node numbers run from the root (1) down the levels, the leaves last.
    """

    def __init__(self, ids: np.ndarray, box: np.ndarray, node_size: int,
                 in_place: bool = False) -> None:
        per_node = (node_size - 4) // _CELL.itemsize
        if per_node < 2:
            raise ValueError(f"an R*Tree node of {node_size} bytes holds no two cells")
        levels: list[tuple[np.ndarray, np.ndarray]] = []  # (child index, box), leaves first
        entry_ids = np.asarray(ids, dtype=np.int64)
        entry_box = np.asarray(box, dtype=np.float32)
        while len(entry_ids) > per_node:
            order = _str_order(entry_box, per_node)
            if in_place and not levels:  # the leaves reuse the caller's arrays
                entry_ids[:] = entry_ids[order]
                entry_box[:] = entry_box[order]
            else:
                entry_ids, entry_box = entry_ids[order], entry_box[order]
            del order
            levels.append((entry_ids, entry_box))
            entry_box = _node_boxes(entry_box, per_node)
            entry_ids = np.arange(len(entry_box), dtype=np.int64)  # index in this level
        depth = len(levels)
        counts = [-(-len(e) // per_node) for e, _ in levels]  # nodes per level
        # Node numbers: the root is 1, then each level top-down, the leaves last.
        first = np.zeros(depth + 1, dtype=np.int64)
        next_no = 2
        for k in range(depth - 1, -1, -1):
            first[k] = next_no
            next_no += counts[k]
        self.nodes = next_no - 1
        root_ids = entry_ids + (first[depth - 1] if depth else 0)
        # (cells, boxes, depth) of each level in node-number order; bytes made on demand
        self._levels = [(root_ids, entry_box, depth)]
        parent_of = np.zeros(self.nodes + 1, dtype=np.int64)
        if depth:
            parent_of[root_ids] = 1
        for k in range(depth - 1, -1, -1):
            cell_ids, cell_box = levels.pop()  # level k
            node_of_cell = first[k] + np.arange(len(cell_ids)) // per_node
            if k:  # cells point at nodes of the level below
                children = cell_ids + first[k - 1]
                parent_of[children] = node_of_cell
                cell_ids = children
            else:
                self.leaf_ids, self.leaf_nodes = cell_ids, node_of_cell
            self._levels.append((cell_ids, cell_box, 0))
        if not depth:
            self.leaf_ids = root_ids
            self.leaf_nodes = np.ones(len(root_ids), dtype=np.int64)
        self.parents = parent_of[2:]  # of nodes 2, 3, …
        self.node_size, self.per_node = node_size, per_node

    def node_pieces(self, nodes: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first node number, (≤ nodes) × node_size bytes) of every node, in number order.

        Made piece by piece: the node bytes of millions of boxes are never all held.
        """
        first = 1
        for cells, box, depth in self._levels:
            count = max(1, -(-len(cells) // self.per_node))
            for start in range(0, count, nodes):
                a, b = start * self.per_node, (start + nodes) * self.per_node
                yield first + start, _node_bytes(cells[a:b], box[a:b], self.per_node,
                                                 self.node_size, depth)
            first += count


def _int_list(values: np.ndarray) -> str:
    """A JSON array of integers, written by Arrow's C++ code rather than per value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.cast(pa.array(values, type=pa.int64()), pa.string())
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(text)], pa.int32()),
                                                     text), ",")
    return "[" + str(joined[0].as_py()) + "]"


def _write_pairs(cur: Any, table: str, column: str, keys: np.ndarray, values: np.ndarray
                 ) -> None:
    """Insert (rowid, value) pairs, ascending by key, each piece one statement in C."""
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    bits = max(int(values.max()).bit_length(), 1) if len(values) else 1
    packable = len(keys) == 0 or (keys.min() >= 0 and int(keys.max()).bit_length() + bits < 63)
    for start in range(0, len(keys), _PIECE):
        k, v = keys[start:start + _PIECE], values[start:start + _PIECE]
        if not packable:
            cur.executemany(f'INSERT INTO "{table}" (rowid, {column}) VALUES (?, ?)',
                            zip(k.tolist(), v.tolist(), strict=True))
            continue
        cur.execute(f'INSERT INTO "{table}" (rowid, {column}) SELECT value >> {bits}, '
                    f"value & {(1 << bits) - 1} FROM json_each(?)",
                    (_int_list((k << bits) | v),))


def bulk_load(raw: Any, name: str, ids: np.ndarray, box: np.ndarray,
              in_place: bool = False) -> None:
    """Replace the whole content of R*Tree `name` by (ids, float32 boxes), packed.

    `raw` is the sqlite3 connection, inside the caller's transaction; the tree's node size
    is kept from its root node. With `in_place` the int64 ids and float32 boxes given are
    reordered in place instead of copied (a 6.7 M-house load saves 160 MB of peak memory).
    """
    cur = raw.cursor()
    try:
        row = cur.execute(f'SELECT length(data) FROM "{name}_node" WHERE nodeno = 1').fetchone()
        if row is None:
            raise ValueError(f"{name} is not an R*Tree with a root node")
        tree = Packed(ids, box, int(row[0]), in_place)
        for shadow in ("node", "parent", "rowid"):
            cur.execute(f'DELETE FROM "{name}_{shadow}"')
        step = max(1, _PIECE * 16 // tree.node_size)  # nodes per statement: ~16 MB
        for first, part in tree.node_pieces(step):
            cur.execute(
                f'WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k '
                f'WHERE i + 1 < ?) INSERT INTO "{name}_node" (nodeno, data) '
                f"SELECT ? + i, substr(?, i * ? + 1, ?) FROM k",
                (len(part), first, part.tobytes(), tree.node_size, tree.node_size))
        _write_pairs(cur, f"{name}_parent", "parentnode",
                     np.arange(2, tree.nodes + 1, dtype=np.int64), tree.parents)
        _write_pairs(cur, f"{name}_rowid", "nodeno", tree.leaf_ids, tree.leaf_nodes)
    finally:
        cur.close()


def read_boxes(raw: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The (ids, float32 boxes) an R*Tree holds now, each column as one string numpy parses.

    A 32-bit float survives SQLite's text form of a double (15 or more digits) exactly.
    """
    cur = raw.cursor()
    try:
        n, ids, coords = cur.execute(
            f"SELECT count(*), group_concat(pkid, ' '), group_concat(xmin || ' ' || xmax || "
            f"' ' || ymin || ' ' || ymax, ' ') FROM \"{name}\"").fetchone()
    finally:
        cur.close()
    if not n:
        return np.empty(0, dtype=np.int64), np.empty((0, 4), dtype=np.float32)
    return (np.fromstring(ids, dtype=np.int64, sep=" "),
            np.fromstring(coords, dtype=np.float64, sep=" ").astype(np.float32).reshape(-1, 4))
