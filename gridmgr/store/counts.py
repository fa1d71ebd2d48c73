"""Per-grid counts: maintained by deltas inside every write, recomputed in full as the check."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from gridmgr.store.bulk import (
    bulk_insert,
    iter_int_columns,
    read_frame,
    read_int_columns,
)
from gridmgr.store.models import GRID_COUNT_COLUMNS

BIG_EMPLOYER_WORKERS = 10  # DESIGN §1: employers with ≥ 10 workers sign an agreement


def live_plans(conn: Connection) -> list[int]:
    """Plans whose links and counts are kept current: the adopted one and the drafts."""
    rows = conn.execute(text(
        "SELECT id FROM boundary_plan WHERE status IN ('adopted', 'draft') ORDER BY id"
    )).scalars().all()
    return [int(r) for r in rows]


def dense_map(keys: np.ndarray, values: np.ndarray, size: int | None = None) -> np.ndarray:
    """An array indexed by key giving value, -1 where a key has none."""
    keys = np.asarray(keys, dtype=np.int64)
    top = int(keys.max()) + 1 if keys.size else 0
    out = np.full(max(top, size or 0), -1, dtype=np.int64)
    out[keys] = np.asarray(values, dtype=np.int64)
    return out


def house_grid_map(conn: Connection, plan_id: int) -> np.ndarray:
    """house_id → grid_pk of a plan as a dense array (-1: unassigned)."""
    links = _links(conn, plan_id)
    return dense_map(links[:, 0], links[:, 1])


def _links_sql(plan_id: int) -> str:
    return f"SELECT house_id, grid_pk FROM house_grid WHERE plan_id = {int(plan_id)}"


def _links(conn: Connection, plan_id: int) -> np.ndarray:
    """(house_id, grid_pk) of every house link of a plan."""
    return read_int_columns(conn, _links_sql(plan_id), 2)


def _lookup(mapping: np.ndarray, keys: np.ndarray) -> np.ndarray:
    keys = np.asarray(keys, dtype=np.int64)
    ok = (keys >= 0) & (keys < mapping.size)
    out = np.full(keys.size, -1, dtype=np.int64)
    out[ok] = mapping[keys[ok]]
    return out


def tally(grid_pk: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Sum each column per grid (rows with grid -1 are dropped); index = grid_pk."""
    grid_pk = np.asarray(grid_pk, dtype=np.int64)
    keep = grid_pk >= 0
    if not keep.any():
        return pd.DataFrame(columns=list(columns), dtype=np.int64)
    g = grid_pk[keep]
    top = int(g.max()) + 1
    # Grid keys are small integers: count straight into them, no sort of the rows.
    dense = top <= 4 * g.size + 1_000_000
    if dense:
        uniq, inv, size = np.flatnonzero(np.bincount(g, minlength=top)), g, top
    else:
        uniq, inv = np.unique(g, return_inverse=True)
        size = uniq.size
    data = {}
    for name, vals in columns.items():
        summed = np.bincount(inv, weights=np.asarray(vals)[keep], minlength=size)
        data[name] = (summed[uniq] if dense else summed).round().astype(np.int64)
    return pd.DataFrame(data, index=pd.Index(uniq, name="grid_pk"))


def tally_flags(grid_pk: np.ndarray, flags: np.ndarray,
                columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Like tally, for rows described by a small packed flag value (0 ≤ flag < n).

    ``columns`` give each flag value's contribution (arrays of length n). One bincount over
    (grid, flag) pairs, then a small matrix product, replaces a weighted bincount per column
    over millions of rows.
    """
    width = len(next(iter(columns.values())))
    grid_pk = np.asarray(grid_pk, dtype=np.int64)
    keep = grid_pk >= 0
    if not keep.any():
        return pd.DataFrame(columns=list(columns), dtype=np.int64)
    g, f = grid_pk[keep], np.asarray(flags, dtype=np.int64)[keep]
    if f.min() < 0 or f.max() >= width:
        raise ValueError(f"flag values outside 0..{width - 1}")
    uniq, inv = np.unique(g, return_inverse=True) if g.max() > 4 * g.size + 1_000_000 else (
        None, g)
    size = uniq.size if uniq is not None else int(g.max()) + 1
    per = np.bincount(inv * width + f, minlength=size * width).reshape(size, width)
    if uniq is None:
        uniq = np.flatnonzero(per.any(axis=1))
        per = per[uniq]
    weights = np.stack([np.asarray(w, dtype=np.int64) for w in columns.values()], axis=1)
    return pd.DataFrame(per @ weights, columns=list(columns),
                        index=pd.Index(uniq, name="grid_pk"))


def house_columns(n: int) -> dict[str, np.ndarray]:
    """Count contributions of n houses."""
    return {"houses": np.ones(n, dtype=np.int64)}


def rental_columns(rental_class: np.ndarray, registered: np.ndarray) -> dict[str, np.ndarray]:
    """Count contributions of rental records."""
    cls = np.asarray(rental_class, dtype=object)
    return {
        "rental_houses": np.ones(cls.size, dtype=np.int64),
        "rental_key": (cls == "key").astype(np.int64),
        "rental_uneasy": (cls == "uneasy").astype(np.int64),
        "rental_trusted": (cls == "trusted").astype(np.int64),
        "rental_registered": np.asarray(registered, dtype=bool).astype(np.int64),
    }


def business_columns(workers: np.ndarray) -> dict[str, np.ndarray]:
    """Count contributions of businesses."""
    w = np.asarray(workers, dtype=np.int64)
    return {"businesses": np.ones(w.size, dtype=np.int64), "workers": w,
            "big_employers": (w >= BIG_EMPLOYER_WORKERS).astype(np.int64)}


def person_columns(floating: np.ndarray, registered: np.ndarray, consistent: np.ndarray,
                   person_class: np.ndarray) -> dict[str, np.ndarray]:
    """Count contributions of people at their current houses."""
    fl = np.asarray(floating, dtype=bool)
    reg = np.asarray(registered, dtype=bool)
    cls = np.asarray(person_class, dtype=object)
    return {
        "residents": np.ones(fl.size, dtype=np.int64),
        "floating_residents": fl.astype(np.int64),
        "floating_registered": (fl & reg).astype(np.int64),
        "registered_persons": reg.astype(np.int64),
        "consistent_persons": (reg & np.asarray(consistent, dtype=bool)).astype(np.int64),
        "key_persons": (cls == "key").astype(np.int64),
        "uneasy_persons": (cls == "uneasy").astype(np.int64),
    }


def apply_deltas(conn: Connection, deltas: pd.DataFrame, sign: int = 1) -> None:
    """Add (or with sign=-1 subtract) per-grid deltas to the maintained counts."""
    if deltas.empty:
        return
    cols = [c for c in deltas.columns if c in GRID_COUNT_COLUMNS]
    sets = ", ".join(f"{c} = {c} + :{c}" for c in cols)
    rows = [
        {"grid_pk": int(g), **{c: sign * int(v) for c, v in zip(cols, vals, strict=True)}}
        for g, vals in zip(deltas.index, deltas[cols].to_numpy(), strict=True)
    ]
    conn.execute(text(f"UPDATE grid_count SET {sets} WHERE grid_pk = :grid_pk"), rows)


def recompute(conn: Connection, plan_id: int) -> pd.DataFrame:
    """Recompute every count of every grid of a plan from the base tables (the check).

    Each table is read as a few integer columns (small flags packed into one) and tallied
    with bincount; this is several times faster than a GROUP BY over the joins. The reads
    run side by side on one shared snapshot when they can (see iter_int_columns), and each
    is tallied as soon as what it needs has arrived.
    """
    plan = int(plan_id)
    queries = {
        "grids": (f"SELECT id FROM grid WHERE plan_id = {plan}", 1),
        "links": (_links_sql(plan), 2),
        "rentals": (RENTALS_SQL, 1),
        "businesses": ("SELECT bg.grid_pk, b.workers FROM business_grid bg JOIN business b "
                       f"ON b.id = bg.business_id WHERE bg.plan_id = {plan}", 2),
    }
    # Each current residence carries its person's packed flags (kept by triggers, see
    # models.Residence), so no person row is read: the person table is 5.67 M wide rows at
    # scale 1 and sending them was the largest part of the check on PostgreSQL.
    queries["packed"] = (RESIDENT_FLAGS_SQL, 1)
    got: dict[str, np.ndarray] = {}
    parts: list[pd.DataFrame] = []
    for name, array in iter_int_columns(conn, queries):
        got[name] = array
        parts += _ready_tallies(got)  # work on what has arrived while the rest is read
    index = pd.Index(np.sort(got.pop("grids")[:, 0]), name="grid_pk")
    got.pop("hg", None)
    if got:
        raise RuntimeError(f"recompute left reads unused: {sorted(got)}")
    total = pd.DataFrame(0, index=index, columns=list(GRID_COUNT_COLUMNS), dtype=np.int64)
    for part in parts:
        total = total.add(part.reindex(index, fill_value=0), fill_value=0)
    return total[list(GRID_COUNT_COLUMNS)].astype(np.int64)


def _ready_tallies(got: dict[str, np.ndarray]) -> list[pd.DataFrame]:
    """The per-grid tallies recompute's reads in ``got`` allow so far; consumed reads go.

    The house → grid map (from "links") feeds rentals and people, so it is kept as "hg".
    """
    parts = []
    if "links" in got:
        links = got.pop("links")
        got["hg"] = dense_map(links[:, 0], links[:, 1])
        parts.append(tally_flags(links[:, 1], np.zeros(len(links), dtype=np.int64),
                                 house_columns(1)))
    if "businesses" in got:
        biz = got.pop("businesses")
        parts.append(tally(biz[:, 0], business_columns(biz[:, 1])))
    if "hg" in got and "rentals" in got:
        rentals = got.pop("rentals")[:, 0]
        parts.append(tally_flags(_lookup(got["hg"], rentals // 8), rentals % 8,
                                 RENTAL_FLAG_COLUMNS))
    if "hg" in got and "packed" in got:
        people = got.pop("packed")[:, 0]
        if people.size and people.min() < 0:
            raise RuntimeError(
                f"{int((people < 0).sum())} current residences have no person flags "
                "(residence.person_flags is kept by the store's triggers; were they dropped?)")
        parts.append(tally_flags(_lookup(got["hg"], people // 32), people % 32,
                                 PERSON_FLAG_COLUMNS))
    return parts


_FLAGS8, _FLAGS32 = np.arange(8), np.arange(32)
# What each packed flag value of RENTALS_SQL / PEOPLE_PACKED_SQL contributes, defined by the
# same functions that count single records, so the bulk path cannot drift from them.
RENTAL_FLAG_COLUMNS = rental_columns(
    np.array(["", "key", "uneasy", "trusted"], dtype=object)[_FLAGS8 // 2], _FLAGS8 % 2 == 1)
PERSON_FLAG_COLUMNS = person_columns(
    (_FLAGS32 & 1) > 0, (_FLAGS32 & 2) > 0, (_FLAGS32 & 4) > 0,
    np.array(["trusted", "key", "uneasy", "trusted"], dtype=object)[(_FLAGS32 >> 3) & 3])

RENTALS_SQL = (
    "SELECT house_id * 8 + 2 * (CASE rental_class WHEN 'key' THEN 1 WHEN 'uneasy' THEN 2 "
    "WHEN 'trusted' THEN 3 ELSE 0 END) + (CASE WHEN registered_on IS NULL THEN 0 ELSE 1 END) "
    "FROM rental_record"
)


def person_flags_sql(p: str, house: str) -> str:
    """SQL packing person ``p``'s count flags (0..31) for a residence at house ``house``.

    1 floating, 2 registered, 4 registered at this house (人户一致), 8 × class (key 1,
    uneasy 2); migration 0005's triggers hold a frozen copy of this expression.
    """
    return (f"(CASE WHEN {p}.floating THEN 1 ELSE 0 END) "
            f"+ (CASE WHEN {p}.registered_on IS NULL THEN 0 ELSE 2 END) "
            f"+ (CASE WHEN {p}.registered_house_id = {house} THEN 4 ELSE 0 END) "
            f"+ 8 * (CASE {p}.person_class WHEN 'key' THEN 1 WHEN 'uneasy' THEN 2 ELSE 0 END)")


def person_flags(floating: np.ndarray, registered: np.ndarray, consistent: np.ndarray,
                 person_class: np.ndarray) -> np.ndarray:
    """The packed flags of person_flags_sql for arrays of people (int16, 0..31)."""
    cls = np.asarray(person_class, dtype=object)
    return (np.asarray(floating, dtype=bool) * 1 + np.asarray(registered, dtype=bool) * 2
            + np.asarray(consistent, dtype=bool) * 4
            + 8 * ((cls == "key") * 1 + (cls == "uneasy") * 2)).astype(np.int16)


# -1 marks a current residence whose flags are missing, so recompute refuses it.
RESIDENT_FLAGS_SQL = ("SELECT coalesce(house_id * 32 + person_flags, -1) FROM residence "
                      "WHERE left_on IS NULL")
PEOPLE_PACKED_SQL = (
    f"SELECT r.house_id * 32 + {person_flags_sql('p', 'r.house_id')} "
    "FROM residence r JOIN person p ON p.id = r.person_id WHERE r.left_on IS NULL"
)
PEOPLE_SQL = (
    "SELECT r.house_id, CASE WHEN p.floating THEN 1 ELSE 0 END AS floating, "
    "CASE WHEN p.registered_on IS NULL THEN 0 ELSE 1 END AS reg, "
    "CASE WHEN p.registered_house_id = r.house_id THEN 1 ELSE 0 END AS consistent, "
    "p.person_class FROM residence r JOIN person p ON p.id = r.person_id "
    "WHERE r.left_on IS NULL"
)


def stale_person_flags(conn: Connection) -> int:
    """How many current residences carry flags that differ from their person's (0 when sound).

    Recompute trusts residence.person_flags; this checks them against the person table.
    """
    return int(conn.execute(text(
        "SELECT count(*) FROM residence r JOIN person p ON p.id = r.person_id "
        "WHERE r.left_on IS NULL AND (r.person_flags IS NULL OR r.person_flags <> "
        f"{person_flags_sql('p', 'r.house_id')})")).scalar_one())


def people_tally(hg: np.ndarray, people: pd.DataFrame) -> pd.DataFrame:
    """Per-grid person counts from rows of PEOPLE_SQL and a house→grid map."""
    return tally(
        _lookup(hg, people["house_id"].to_numpy(dtype=np.int64)),
        person_columns(people["floating"].to_numpy(dtype=np.int64) == 1,
                       people["reg"].to_numpy(dtype=np.int64) == 1,
                       people["consistent"].to_numpy(dtype=np.int64) == 1,
                       people["person_class"].to_numpy(dtype=object)),
    )


def write_counts(conn: Connection, plan_id: int, counts: pd.DataFrame) -> None:
    """Replace the maintained counts of a plan's grids with `counts` (repair / first fill)."""
    plan = int(plan_id)
    conn.execute(text("DELETE FROM grid_count WHERE plan_id = :p"), {"p": plan})
    frame = counts.reset_index().rename(columns={"index": "grid_pk"})
    frame.insert(1, "plan_id", plan)
    bulk_insert(conn, "grid_count", frame[["grid_pk", "plan_id", *GRID_COUNT_COLUMNS]])


def maintained(conn: Connection, plan_id: int) -> pd.DataFrame:
    """The maintained counts of a plan's grids, indexed by grid_pk."""
    df = read_frame(conn, f"SELECT grid_pk, {', '.join(GRID_COUNT_COLUMNS)} FROM grid_count "
                          f"WHERE plan_id = {int(plan_id)} ORDER BY grid_pk")
    return df.set_index("grid_pk").astype(np.int64)
