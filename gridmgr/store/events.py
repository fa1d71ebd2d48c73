"""Registration events in the store: arrive, move, leave, correct, rentals and bulk import.

"Registered on arrival, cancelled on leaving" (来有登记、去有注销). Every event is
appended to ``person_event`` and, in the same transaction, updates the person's current
residence and the maintained per-grid counts of every live plan by deltas. A rejected
event changes nothing; a replayed one (same event key) changes nothing either.

One path serves a single clerk's event and a file of a million: rows are validated as a
whole (vectorised), grouped by person, and applied in rounds — round k holds each
person's k-th event — so every round is set-based and a person's events keep their order.
On PostGIS the persons of a round are locked (``SELECT … FOR UPDATE``, in id order) before
their state is read, so two clerks never both move the same person from the same house;
on SpatiaLite `write_transaction` takes the single write lock first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from gridmgr import permits, rentals
from gridmgr.errors import (
    BadInput,
    Conflict,
    NotFound,
    ValidationFailed,
    ValidationReport,
)
from gridmgr.idnumber import birth_dates_of, id_number_problems, sexes_of
from gridmgr.progress import Quiet, Reporter
from gridmgr.store import counts
from gridmgr.store.bulk import allocate_ids, bulk_insert, is_pg, read_frame
from gridmgr.store.load import city_prefixes, write_report
from gridmgr.store.models_events import EVENT_TYPES
from gridmgr.validate import CLASSES, SEX, _Checker

PERSON_FIELDS = ("name", "phone", "birth_date", "sex", "hukou_code", "person_class")
CORRECTABLE = (*PERSON_FIELDS, "registered_on", "registered_house", "new_id_number")
CLEARABLE = ("phone", "registered_on", "registered_house")
# A house may be named by one generic column (code or source id) or the two explicit ones.
HOUSE_REFS = {
    "house": ("house", "house_code", "house_source_id"),
    "from_house": ("from_house", "from_house_code", "from_house_source_id"),
    "registered_house": ("registered_house", "registered_house_code",
                         "registered_house_source_id"),
}
EVENT_FILE_COLUMNS = (
    "event_id", "event", "id_number", "occurred_on", "entered_at", "house_code",
    "house_source_id", "from_house_code", "intended_stay_days", "name", "phone",
    "birth_date", "sex", "hukou_code", "person_class", "registered_on",
    "registered_house_code", "new_id_number", "clear", "source_id", "clerk", "note",
)
SMALL = 64  # up to this many rows are inserted one by one (no table lock on PostGIS)
IN_CHUNK = 5000
FUTURE_SLACK = np.timedelta64(300, "s")  # clocks of clerks' machines drift


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EventResult:
    """What recording one event did."""

    event_id: int
    event_key: str
    person_id: int
    event_type: str
    applied: bool  # False: the same event had already been recorded (a replay)
    late: bool  # entered more than the deadline (24 h) after arrival
    residence_id: int | None
    warnings: tuple[str, ...] = ()


@dataclass
class ImportResult:
    """What a bulk import did: rows applied, replays skipped, rows rejected, late entries."""

    rows: int
    applied: int
    already: int
    duplicates: int
    late: int
    report: ValidationReport
    rejected_rows: list[int] = field(default_factory=list)
    report_path: Path | None = None

    def summary(self) -> str:
        """One line for the terminal."""
        parts = [f"events: applied {self.applied} of {self.rows} rows"]
        if self.already:
            parts.append(f"{self.already} already recorded (skipped)")
        if self.duplicates:
            parts.append(f"{self.duplicates} repeated in the file (recorded once)")
        if self.rejected_rows:
            parts.append(f"skipped {len(self.rejected_rows)} bad rows")
        if self.late:
            parts.append(f"{self.late} entered late (flagged)")
        if self.report_path:
            parts.append(f"report: {self.report_path}")
        return "; ".join(parts)


@dataclass(frozen=True)
class RentalResult:
    """A registered let: its rental record, whether it is new, and the rule findings."""

    rental_id: int
    created: bool
    findings: pd.DataFrame  # rentals.check_lets rows: let, room, rule, severity, reason

    @property
    def compliant(self) -> bool:
        """True when the let breaks no rule (warnings aside)."""
        return bool((self.findings["severity"] != "violation").all())


# --- transactions and small SQL helpers ----------------------------------------------------


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the write lock from its first statement on SpatiaLite.

    SQLite allows one writer; a transaction that read first and writes later fails if
    another writer committed in between, so the lock is taken before anything is read.
    PostGIS needs nothing here: events lock the rows they change.
    """
    with engine.begin() as conn:
        if not is_pg(conn):
            conn.execute(text("UPDATE grid_count SET plan_id = plan_id WHERE 1 = 0"))
        yield conn


def _in(sql: str, *names: str) -> Any:
    return text(sql).bindparams(*(bindparam(n, expanding=True) for n in names))


def _iso(days: np.ndarray) -> list[str | None]:
    """ISO dates (or date-times) as bound values both stores read the same way."""
    arr = np.asarray(days)
    if arr.dtype == np.dtype("datetime64[D]"):
        out = np.datetime_as_string(arr, unit="D")
    else:
        arr = arr.astype("datetime64[s]")
        out = np.char.replace(np.datetime_as_string(arr, unit="s").astype(str), "T", " ")
    missing = np.isnat(arr).tolist()
    return [None if m else str(v) for v, m in zip(out.tolist(), missing, strict=True)]


def _days(values: Any) -> np.ndarray:
    return permits.as_days(np.asarray(values, dtype=object) if len(values) else [])


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values (dates as ISO text, NaN/NaT as None)."""
    out: dict[str, list[Any]] = {}
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            unit = "s" if col.endswith("_at") else "D"
            out[col] = _iso(s.to_numpy(dtype=f"datetime64[{unit}]"))
        elif pd.api.types.is_bool_dtype(s):
            out[col] = [bool(v) for v in s.tolist()]
        else:
            out[col] = [None if (v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)))
                        else v for v in s.astype(object).tolist()]
    keys = list(out)
    return [dict(zip(keys, vals, strict=True)) for vals in zip(*out.values(), strict=True)]


def _insert_rows(conn: Connection, table: str, frame: pd.DataFrame) -> np.ndarray:
    """Insert rows and return their new ids: one by one when few, else COPY with new ids."""
    n = len(frame)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if n <= SMALL:
        cols = list(frame.columns)
        stmt = text(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                    f"({', '.join(':' + c for c in cols)}) RETURNING id")
        return np.array([conn.execute(stmt, row).scalar_one() for row in _records(frame)],
                        dtype=np.int64)
    ids = allocate_ids(conn, table, n)
    out = _plain(frame.reset_index(drop=True))
    out.insert(0, "id", ids)
    bulk_insert(conn, table, out)
    return ids


def _update_rows(conn: Connection, table: str, frame: pd.DataFrame) -> None:
    """Set columns of rows by id (frame: id + the columns): COPY + UPDATE … FROM when many."""
    if not len(frame):
        return
    cols = [c for c in frame.columns if c != "id"]
    if is_pg(conn) and len(frame) > SMALL:
        tmp = f"tmp_upd_{table}"
        conn.execute(text(f"CREATE TEMP TABLE {tmp} AS SELECT id, {', '.join(cols)} "
                          f"FROM {table} WHERE false"))
        bulk_insert(conn, tmp, _plain(frame[["id", *cols]]))
        conn.execute(text(f"UPDATE {table} t SET {', '.join(f'{c} = s.{c}' for c in cols)} "
                          f"FROM {tmp} s WHERE t.id = s.id"))
        conn.execute(text(f"DROP TABLE {tmp}"))
        return
    sets = ", ".join(f"{c} = :{c}" for c in cols)
    conn.execute(text(f"UPDATE {table} SET {sets} WHERE id = :id"), _records(frame))


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame bulk_insert writes faithfully on both stores: nullable ints and text as objects."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if col.endswith("_at") and pd.api.types.is_datetime64_any_dtype(s):
            out[col] = pd.Series(_iso(s.to_numpy(dtype="datetime64[s]")), index=out.index,
                                 dtype=object)
        elif isinstance(s.dtype, pd.Int64Dtype) or s.dtype == object:
            out[col] = s.astype(object).where(s.notna(), None)
    return out


def _blank_none(values: Any) -> np.ndarray:
    arr = np.array(values, dtype=object)
    arr[arr == ""] = None
    return arr


def _chunks(values: np.ndarray) -> Iterator[list[Any]]:
    vals = [v.item() if hasattr(v, "item") else v for v in values]
    for i in range(0, len(vals), IN_CHUNK):
        yield vals[i:i + IN_CHUNK]


def resolve_houses(conn: Connection, refs: Any) -> np.ndarray:
    """House ids for house codes (dashes and spaces ignored) or source ids; -1 where unknown."""
    raw = pd.Series(np.asarray(refs, dtype=object)).fillna("").astype(str).str.strip()
    if not (raw != "").any():
        return np.full(len(raw), -1, dtype=np.int64)
    canon = raw.str.upper().str.replace("-", "", regex=False).str.replace(" ", "", regex=False)
    wanted = np.unique(np.concatenate([raw[raw != ""].to_numpy(dtype=object),
                                       canon[canon != ""].to_numpy(dtype=object)]))
    found = read_in(conn, "SELECT id, house_code, source_id FROM house WHERE "
                           "house_code IN :c OR source_id IN :c", "c", wanted)
    ids = found["id"].to_numpy(dtype=np.int64)
    has_code = found["house_code"].notna().to_numpy()
    by_code = pd.Series(ids[has_code], index=found["house_code"][has_code].astype(str))
    by_src = pd.Series(ids, index=found["source_id"].astype(str))
    out = canon.map(by_code).fillna(raw.map(by_src)).fillna(-1)
    return out.to_numpy(dtype=np.int64)


def read_in(conn: Connection, sql: str, name: str, values: Any) -> pd.DataFrame:
    """Run `sql` with ``IN :name`` bound to `values` in chunks; concatenated results."""
    stmt = _in(sql, name)
    frames = []
    columns: list[str] = []
    for chunk in _chunks(np.asarray(values)):
        res = conn.execute(stmt, {name: chunk})
        columns = list(res.keys())
        frames.append(pd.DataFrame(res.fetchall(), columns=columns))
    if not frames:
        # IN (NULL) matches nothing: the same columns, no rows
        res = conn.execute(text(sql.replace(":" + name, "(NULL)")))
        return pd.DataFrame(columns=list(res.keys()))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def find_person(conn: Connection, ref: str) -> tuple[int, str]:
    """(person id, ID number) for an ID number, a source id or '#<id>'; NotFound otherwise."""
    ref = str(ref).strip()
    if ref.startswith("#") and ref[1:].isdigit():
        row = conn.execute(text("SELECT id, id_number FROM person WHERE id = :i"),
                           {"i": int(ref[1:])}).first()
    else:
        row = conn.execute(text("SELECT id, id_number FROM person WHERE id_number = :r "
                                "OR source_id = :r ORDER BY id LIMIT 1"),
                           {"r": ref.upper() if len(ref) == 18 else ref}).first()
        if row is None and len(ref) == 18:
            row = conn.execute(text("SELECT id, id_number FROM person WHERE source_id = :r"),
                               {"r": ref}).first()
    if row is None:
        raise NotFound(f"no person {ref!r} (give an ID number, a source id or #<person id>)")
    return int(row[0]), str(row[1])


# --- count deltas --------------------------------------------------------------------------


def _house_links(conn: Connection, house_ids: np.ndarray) -> pd.DataFrame:
    plans = counts.live_plans(conn)
    uniq = np.unique(np.asarray(house_ids, dtype=np.int64))
    uniq = uniq[uniq >= 0]
    if not plans or uniq.size == 0:
        return pd.DataFrame({"plan_id": [], "house_id": [], "grid_pk": []}, dtype=np.int64)
    frames = [conn.execute(_in("SELECT plan_id, house_id, grid_pk FROM house_grid WHERE "
                               "plan_id IN :p AND house_id IN :h", "p", "h"),
                           {"p": plans, "h": chunk}).fetchall() for chunk in _chunks(uniq)]
    rows = [r for f in frames for r in f]
    return pd.DataFrame(rows, columns=["plan_id", "house_id", "grid_pk"]).astype(np.int64)


# The rows counts.recompute tallies, for some people: deltas and recomputation agree by design.
PEOPLE_ROWS_SQL = counts.PEOPLE_SQL + " AND p.id IN :ids"


def _people_rows(conn: Connection, person_ids: np.ndarray) -> pd.DataFrame:
    """What each person contributes to the counts now (rows of counts.PEOPLE_SQL)."""
    return read_in(conn, PEOPLE_ROWS_SQL, "ids", np.unique(person_ids))


def _tally_people(rows: pd.DataFrame, links: pd.DataFrame) -> pd.DataFrame:
    m = rows.merge(links, on="house_id", how="inner")
    return counts.tally(m["grid_pk"].to_numpy(dtype=np.int64), counts.person_columns(
        m["floating"].to_numpy(dtype=np.int64) == 1, m["reg"].to_numpy(dtype=np.int64) == 1,
        m["consistent"].to_numpy(dtype=np.int64) == 1, m["person_class"].to_numpy(dtype=object)))


def apply_count_change(conn: Connection, before: pd.DataFrame, after: pd.DataFrame) -> None:
    """Move the maintained counts from `before` to `after` (per-grid tallies), in grid order.

    One UPDATE per changed grid, in ascending grid order, so concurrent writers take the
    count rows' locks in the same order and cannot deadlock on them.
    """
    delta = after.sub(before, fill_value=0).fillna(0).astype(np.int64)
    delta = delta[(delta != 0).any(axis=1)].sort_index()
    counts.apply_deltas(conn, delta)


def _people_delta(conn: Connection, before: pd.DataFrame, after: pd.DataFrame) -> None:
    houses = np.concatenate([before["house_id"].to_numpy(dtype=np.int64),
                             after["house_id"].to_numpy(dtype=np.int64)])
    links = _house_links(conn, houses)
    apply_count_change(conn, _tally_people(before, links), _tally_people(after, links))


# --- validation ------------------------------------------------------------------------------


def _col(c: _Checker, names: Iterable[str]) -> tuple[np.ndarray, str]:
    """First non-empty value across alternative columns, and the name to report."""
    names = list(names)
    vals = np.full(len(c.df), "", dtype=object)
    for name in names:
        if name in c.df.columns:
            vals = np.where(vals == "", c.text(name), vals)
    used = next((n for n in names if n in c.df.columns), names[1])
    return vals, used


def _stamps(c: _Checker, col: str, required: bool) -> tuple[np.ndarray, np.ndarray]:
    raw = c.text(col)
    parsed = pd.to_datetime(pd.Series(raw, dtype=object), errors="coerce", format="mixed")
    vals = parsed.to_numpy(dtype="datetime64[s]")
    empty = raw == ""
    if required:
        c.flag(empty, col, "missing value")
    c.flag(~empty & np.isnat(vals), col,
           lambda i: f"{raw[i]!r} is not a date or date-time (use YYYY-MM-DD or "
                     "YYYY-MM-DD HH:MM)")
    has_time = pd.Series(raw, dtype=object).astype(str).str.contains(":").to_numpy()
    return vals, has_time & ~np.isnat(vals)


def _id_numbers(c: _Checker, col: str, required: bool) -> np.ndarray:
    vals = c.required_text(col) if required else c.text(col)
    upper = np.char.upper(vals.astype(str)).astype(object)
    present = upper != ""
    probs = np.full(len(upper), None, dtype=object)
    if present.any():
        probs[present] = id_number_problems(upper[present].astype(str))
    c.flag(present & (probs != None), col,  # noqa: E711 (elementwise)
           lambda i: f"ID number {vals[i]!r} fails GB 11643: {probs[i]}")
    return np.where(present & (probs == None), upper, "").astype(object)  # noqa: E711


def _not_loaded(raw: np.ndarray) -> Callable[[int], str]:
    return lambda i: f"house {raw[i]!r} is not loaded (give a house code or a house source id)"


def _hash(parts: list[np.ndarray]) -> np.ndarray:
    cols = [np.asarray(p).astype(str).tolist() for p in parts]
    joined = ["|".join(t) for t in zip(*cols, strict=True)]
    return np.array([hashlib.sha256(s.encode()).hexdigest() for s in joined], dtype=object)


class _EventChecker(_Checker):
    """The loaders' checker, with each text column read once (events read some thrice)."""

    def __init__(self, df: pd.DataFrame, kind: str) -> None:
        super().__init__(df, kind)
        self._texts: dict[str, np.ndarray] = {}

    def text(self, col: str) -> np.ndarray:
        if col not in self._texts:
            if len(self.df) <= SMALL and col in self.df.columns:
                # a clerk's single event: plain Python beats pandas' per-call overhead
                vals = self.df[col].tolist()
                self._texts[col] = np.array(
                    ["" if v is None or (isinstance(v, float) and v != v) else str(v).strip()
                     for v in vals], dtype=object)
            else:
                self._texts[col] = super().text(col)
        return self._texts[col]


class _Rows:
    """A checked event frame with problem bookkeeping that tells conflicts from bad input."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.c = _EventChecker(df, "events")
        self.conflict = np.zeros(len(df), dtype=bool)
        self.skip = np.zeros(len(df), dtype=bool)  # replays: not bad, just not applied
        self.f = pd.DataFrame(index=pd.RangeIndex(len(df)))

    def flag(self, mask: np.ndarray, col: str, reason: Any, conflict: bool = False) -> None:
        mask = np.asarray(mask, dtype=bool)
        self.c.flag(mask, col, reason)
        if conflict:
            self.conflict |= mask

    @property
    def bad(self) -> np.ndarray:
        return self.c.bad


def _check(conn: Connection, df: pd.DataFrame, now: np.datetime64) -> _Rows:
    """Everything that can be checked without replaying the events: types, formats, refs."""
    rows = _Rows(df)
    c = rows.c
    today = now.astype("datetime64[D]")
    event = c.choice("event", EVENT_TYPES, required=True)
    idn = _id_numbers(c, "id_number", required=True)
    occurred, has_time = _stamps(c, "occurred_on", required=True)
    day = occurred.astype("datetime64[D]")
    c.flag(~np.isnat(occurred) & ((day > today) | (occurred > now + FUTURE_SLACK)),
           "occurred_on", lambda i: f"{occurred[i]} is in the future")
    entered, _ = _stamps(c, "entered_at", required=False)
    given = ~np.isnat(entered)
    c.flag(given & (entered > now + FUTURE_SLACK), "entered_at",
           lambda i: f"{entered[i]} is in the future")
    start = np.where(has_time, occurred, day.astype("datetime64[s]"))
    c.flag(given & ~np.isnat(occurred) & (entered < start), "entered_at",
           lambda i: f"entered {entered[i]} before the event itself ({occurred[i]})")
    entered = np.where(given, entered, now)
    moves_in = np.isin(event, ["arrive", "move"])
    house_raw, house_col = _col(c, HOUSE_REFS["house"])
    from_raw, from_col = _col(c, HOUSE_REFS["from_house"])
    reg_raw, reg_col = _col(c, HOUSE_REFS["registered_house"])
    leaving = (event == "leave") & (from_raw == "")
    from_raw = np.where(leaving, house_raw, from_raw).astype(object)
    house_raw = np.where(leaving, "", house_raw).astype(object)
    n = len(df)
    both = resolve_houses(conn, np.concatenate([house_raw, from_raw, reg_raw]))
    house, from_house, reg_house = both[:n], both[n:2 * n], both[2 * n:]
    c.flag(moves_in & (house_raw == ""), house_col,
           lambda i: f"missing value: a{'n' if event[i] == 'arrive' else ''} {event[i]} "
                     "needs the house (house_code or house_source_id)")
    for raw, ids, col in ((house_raw, house, house_col), (from_raw, from_house, from_col),
                          (reg_raw, reg_house, reg_col)):
        c.flag((raw != "") & (ids < 0), col, _not_loaded(raw))
    intended = c.number("intended_stay_days", required=False, integer=True, minimum=0)
    name = c.text("name")
    phone = c.text("phone")
    bad_phone = (phone != "") & ~pd.Series(phone).str.fullmatch(r"\+?[0-9\- ]{5,20}").to_numpy()
    c.flag(bad_phone, "phone", lambda i: f"{phone[i]!r} is not a phone number")
    birth = c.date("birth_date", required=False)
    sex_raw = c.text("sex")
    sex = pd.Series(sex_raw).map(SEX).fillna("").to_numpy(dtype=object)
    c.flag((sex_raw != "") & (sex == ""), "sex", lambda i: f"{sex_raw[i]!r} is not M or F")
    hukou = c.text("hukou_code")
    c.flag((hukou != "") & ~pd.Series(hukou).str.fullmatch(r"\d{6}").to_numpy(), "hukou_code",
           lambda i: f"{hukou[i]!r} is not a 6-digit adcode")
    pclass = c.choice("person_class", CLASSES, required=False)
    registered_on = c.date("registered_on", required=False)
    c.flag(~np.isnat(registered_on) & (registered_on > today), "registered_on",
           lambda i: f"{registered_on[i]} is in the future")
    new_id = _id_numbers(c, "new_id_number", required=False)
    clear_raw = c.text("clear")
    clear = pd.Series(clear_raw).str.lower().str.split(r"[,;\s]+")
    clear = clear.map(lambda xs: tuple(sorted({x for x in xs if x})))
    unknown_clear = clear.map(lambda xs: any(x not in CLEARABLE for x in xs)).to_numpy()
    c.flag(unknown_clear, "clear", lambda i: f"{clear_raw[i]!r}: only "
           f"{', '.join(CLEARABLE)} can be cleared")
    is_correct = event == "correct"
    changes = ((name != "") | (phone != "") | ~np.isnat(birth) | (sex != "") | (hukou != "")
               | (pclass != "") | ~np.isnat(registered_on) | (reg_raw != "") | (new_id != "")
               | (clear_raw != ""))
    c.flag(is_correct & ~changes, "event",
           "a correction changes nothing: give the corrected values (name, phone, birth_date, "
           "sex, hukou_code, person_class, registered_on, registered_house_code, "
           "new_id_number) or clear=…")
    # The ID number is authoritative for birth date and sex.
    ref_id = np.where(new_id != "", new_id, idn).astype(object)
    known = ref_id != ""
    id_birth = np.full(len(df), np.datetime64("NaT"), dtype="datetime64[D]")
    id_sex = np.full(len(df), "", dtype=object)
    if known.any():
        id_birth[known] = birth_dates_of(ref_id[known].astype(str))
        id_sex[known] = sexes_of(ref_id[known].astype(str)).astype(object)
    c.flag(known & ~np.isnat(birth) & (birth != id_birth), "birth_date",
           lambda i: f"{birth[i]} differs from the ID number's birth date {id_birth[i]}")
    c.flag(known & (sex != "") & (sex != id_sex), "sex",
           lambda i: f"sex {sex[i]} differs from the ID number's (odd 17th digit = M)")
    follows = is_correct & (new_id != "")
    birth = np.where(follows & np.isnat(birth), id_birth, birth)
    sex = np.where(follows & (sex == ""), id_sex, sex)
    c.flag(~moves_in & ~np.isnan(intended), "intended_stay_days",
           lambda i: f"an intended stay belongs to an arrival or a move, not a {event[i]}")
    event_id = c.text("event_id")
    c.flag(pd.Series(event_id).str.len().to_numpy() > 64, "event_id",
           "event_id is longer than 64 characters")
    # What identifies the event: not entered_at, clerk or note (a replay may differ there).
    stamp = np.where(has_time, np.datetime_as_string(occurred, unit="m"),
                     np.datetime_as_string(day, unit="D"))
    content = _hash([event, idn, stamp, house, from_house, reg_house,
                     np.nan_to_num(intended, nan=-1).astype(np.int64), name, phone,
                     np.datetime_as_string(birth, unit="D"), sex, hukou, pclass,
                     np.datetime_as_string(registered_on, unit="D"), new_id,
                     clear.map(",".join).to_numpy(dtype=object)])
    key = np.where(event_id != "", np.char.add("id:", event_id.astype(str)).astype(object),
                   np.char.add("h:", content.astype(str)).astype(object))
    rows.f = pd.DataFrame({
        "event": event, "id_number": idn, "occurred": occurred, "day": day,
        "has_time": has_time, "entered_at": entered, "house_id": house,
        "from_house_id": from_house, "reg_house_id": reg_house, "intended": intended,
        "name": name, "phone": phone, "birth_date": birth, "sex": sex, "hukou_code": hukou,
        "person_class": pclass, "registered_on": registered_on, "new_id_number": new_id,
        "clear": clear.to_numpy(dtype=object), "source_id": c.text("source_id"),
        "clerk": c.text("clerk"), "note": c.text("note"), "key": key, "content": content,
        "label_house": house_raw, "label_from": from_raw, "_row": np.arange(1, len(df) + 1),
    })
    return rows


def _replays(conn: Connection, rows: _Rows) -> tuple[np.ndarray, np.ndarray, int]:
    """Mark rows already recorded (store) or repeated (file); return their event ids."""
    f = rows.f
    ok = ~rows.bad
    key = f["key"].to_numpy(dtype=object)
    content = f["content"].to_numpy(dtype=object)
    existing_id = np.full(len(f), -1, dtype=np.int64)
    s = pd.Series(key)
    first = ~(s.where(ok).duplicated(keep="first").to_numpy() & ok)
    first_row = pd.Series(np.arange(len(f))[ok] + 1, index=s[ok]).groupby(level=0).first()
    first_content = pd.Series(content[ok], index=s[ok]).groupby(level=0).first()
    repeat = ok & ~first
    mapped = s.map(first_content)
    same = mapped.notna().to_numpy() & (mapped.astype(object).to_numpy() == content)
    rows.flag(repeat & ~same, "event_id", lambda i: f"event_id {key[i][3:]!r} is used by row "
              f"{int(first_row[key[i]])} for a different event")
    dup = repeat & same
    c = rows.c
    c.flag(dup, "event", lambda i: f"the same event as row {int(first_row[key[i]])}; "
           "recorded once", warn=True)
    rows.skip |= dup
    found = read_in(conn, "SELECT id, event_key, content_hash FROM person_event "
                           "WHERE event_key IN :k", "k", np.unique(key[ok & first]))
    already = np.zeros(len(f), dtype=bool)
    if len(found):
        by_key = found.set_index("event_key")
        hit = ok & first & s.isin(by_key.index).to_numpy()
        stored = s.map(by_key["content_hash"]).to_numpy(dtype=object)
        rows.flag(hit & (stored != content), "event_id",
                  lambda i: f"event_id {key[i][3:]!r} was already used for a different event",
                  conflict=True)
        already = hit & (stored == content)
        existing_id[already] = s[already].map(by_key["id"]).to_numpy(dtype=np.int64)
    rows.skip |= already
    return already, existing_id, int(dup.sum())


# --- replaying rounds ------------------------------------------------------------------------

STATE_SQL = (
    "SELECT p.id AS person_id, p.id_number, p.source_id AS p_source_id, p.name AS p_name, "
    "p.phone AS p_phone, p.birth_date AS p_birth_date, p.sex AS p_sex, "
    "p.hukou_code AS p_hukou_code, p.person_class AS p_person_class, "
    "CASE WHEN p.floating THEN 1 ELSE 0 END AS p_floating, p.registered_on AS p_registered_on, "
    "p.registered_house_id AS p_registered_house_id, r.id AS cur_residence_id, "
    "r.house_id AS cur_house_id, r.arrived_on AS cur_arrived_on, "
    "coalesce(h.house_code, h.source_id) AS cur_house_label, "
    "(SELECT max(x.left_on) FROM residence x WHERE x.person_id = p.id) AS last_left_on "
    "FROM person p LEFT JOIN residence r ON r.person_id = p.id AND r.left_on IS NULL "
    "LEFT JOIN house h ON h.id = r.house_id WHERE p.id_number IN :ids"
)


def _state(conn: Connection, id_numbers: np.ndarray) -> pd.DataFrame:
    if is_pg(conn):
        # Lock in id order: two transactions locking the same persons cannot deadlock.
        read_in(conn, "SELECT id FROM person WHERE id_number IN :ids ORDER BY id FOR UPDATE",
                 "ids", id_numbers)
    st = read_in(conn, STATE_SQL, "ids", id_numbers)
    for col in ("cur_arrived_on", "last_left_on", "p_registered_on", "p_birth_date"):
        st[col] = _days(st[col].to_numpy(dtype=object))
    return st


def _apply_round(conn: Connection, rows: _Rows, idx: np.ndarray, prefixes: list[str],
                 settings: permits.RegistrationSettings, source: str,
                 now: np.datetime64, out: dict[str, np.ndarray]) -> None:
    """Check one round (at most one event per person) against the store and apply it."""
    f = rows.f
    r = f.iloc[idx].reset_index(drop=True)
    r["_i"] = idx
    st = _state(conn, r["id_number"].to_numpy(dtype=object))
    r = r.merge(st, on="id_number", how="left")
    n = len(r)

    pos = np.full(len(f), -1, dtype=np.int64)  # file row → row of this round
    pos[r["_i"].to_numpy()] = np.arange(n)

    def flag(mask: np.ndarray, col: str, reason: Any, conflict: bool = False) -> None:
        full = np.zeros(len(f), dtype=bool)
        full[r["_i"].to_numpy()[mask]] = True
        rows.flag(full, col, (lambda i: reason(int(pos[i]))) if callable(reason) else reason,
                  conflict)

    ev = r["event"].to_numpy(dtype=object)
    exists = r["person_id"].notna().to_numpy()
    current = r["cur_residence_id"].notna().to_numpy()
    day = r["day"].to_numpy(dtype="datetime64[D]")
    cur_arr = r["cur_arrived_on"].to_numpy(dtype="datetime64[D]")
    last_left = r["last_left_on"].to_numpy(dtype="datetime64[D]")
    house = r["house_id"].to_numpy(dtype=np.int64)
    from_h = r["from_house_id"].to_numpy(dtype=np.int64)
    cur_house = r["cur_house_id"].fillna(-1).to_numpy(dtype=np.int64)
    label = r["cur_house_label"].fillna("").to_numpy(dtype=object)
    idn = r["id_number"].to_numpy(dtype=object)
    arrive, move, leave, correct = (ev == e for e in EVENT_TYPES)
    bad = np.zeros(n, dtype=bool)

    def check(mask: np.ndarray, col: str, reason: Any, conflict: bool = False) -> None:
        nonlocal bad
        mask = mask & ~bad
        flag(mask, col, reason, conflict)
        bad |= mask

    check(arrive & current, "event", lambda j: (
        f"{idn[j]} already lives at house {label[j]} since {cur_arr[j]}; register a move "
        "or a leave instead"), conflict=True)
    check(~arrive & ~exists, "id_number", lambda j: (
        f"no person with ID number {idn[j]}; register their arrival first"))
    check((move | leave) & ~current, "event", lambda j: (
        f"{idn[j]} has no current residence (left on {last_left[j]}); register an arrival"),
        conflict=True)
    check((move | leave) & (from_h >= 0) & (from_h != cur_house), "from_house_code", lambda j: (
        f"{idn[j]} now lives at house {label[j]}, not at {r['label_from'][j]}: another clerk "
        "may have registered a move; reload and retry"), conflict=True)
    check(move & (house == cur_house), "house_code", lambda j: (
        f"{idn[j]} already lives at house {label[j]}"))
    check((move | leave) & (day < cur_arr), "occurred_on", lambda j: (
        f"{ev[j]} on {day[j]} is before the arrival at the current house on {cur_arr[j]}"))
    check(arrive & exists & ~np.isnat(last_left) & (day < last_left), "occurred_on", lambda j: (
        f"arrival on {day[j]} is before the departure from the last house on {last_left[j]}"))
    new = arrive & ~exists
    check(new & (r["name"].to_numpy(dtype=object) == ""), "name", lambda j: (
        f"{idn[j]} is not in the store yet: give name (and hukou_code) to register them"))
    src = np.where(r["source_id"].to_numpy(dtype=object) == "", idn,
                   r["source_id"].to_numpy(dtype=object)).astype(object)
    if new.any():
        taken = read_in(conn, "SELECT source_id FROM person WHERE source_id IN :s", "s",
                         src[new])
        clash = new & np.isin(src, taken["source_id"].astype(str).to_numpy())
        check(clash, "source_id", lambda j: f"source_id {src[j]!r} is held by another person")
    new_id = r["new_id_number"].to_numpy(dtype=object)
    if (correct & (new_id != "")).any():
        held = read_in(conn, "SELECT id_number FROM person WHERE id_number IN :s", "s",
                        new_id[correct & (new_id != "")])
        check(correct & np.isin(new_id, held["id_number"].astype(str).to_numpy()),
              "new_id_number", lambda j: f"ID number {new_id[j]} is held by another person")
    # An arriving person already on file keeps their identity; a different name is a hint.
    same_name = (r["name"].to_numpy(dtype=object) == "") | (
        r["name"].to_numpy(dtype=object) == r["p_name"].fillna("").to_numpy(dtype=object))
    differs = arrive & exists & ~same_name & ~bad
    rows.c.flag(np.isin(np.arange(len(f)), r["_i"].to_numpy()[differs]), "name",
                lambda i: "the name differs from the one on file; the file's name was not "
                          "used (register a correction to change it)", warn=True)
    good = ~bad
    if not good.any():
        return
    r = r[good].reset_index(drop=True)
    _write_round(conn, r, prefixes, settings, source, now, out)


def _write_round(conn: Connection, r: pd.DataFrame, prefixes: list[str],
                 settings: permits.RegistrationSettings, source: str, now: np.datetime64,
                 out: dict[str, np.ndarray]) -> None:
    ev = r["event"].to_numpy(dtype=object)
    arrive, move, leave, correct = (ev == e for e in EVENT_TYPES)
    exists = r["person_id"].notna().to_numpy()
    old_ids = r.loc[exists, "person_id"].to_numpy(dtype=np.int64)
    before = _people_rows(conn, old_ids)
    idn = r["id_number"].to_numpy(dtype=object)
    entered = r["entered_at"].to_numpy(dtype="datetime64[s]")
    entered_day = entered.astype("datetime64[D]")
    house = r["house_id"].to_numpy(dtype=np.int64)
    reg_house = r["reg_house_id"].to_numpy(dtype=np.int64)
    # 1. people new to the store
    person_id = r["person_id"].fillna(-1).to_numpy(dtype=np.int64)
    new = arrive & ~exists
    if new.any():
        nr = r[new]
        hukou = np.where(nr["hukou_code"].to_numpy(dtype=object) == "",
                         pd.Series(idn[new]).str.slice(0, 6).to_numpy(dtype=object),
                         nr["hukou_code"].to_numpy(dtype=object))
        birth = np.where(np.isnat(nr["birth_date"].to_numpy(dtype="datetime64[D]")),
                         birth_dates_of(idn[new].astype(str)),
                         nr["birth_date"].to_numpy(dtype="datetime64[D]"))
        sex = np.where(nr["sex"].to_numpy(dtype=object) == "",
                       sexes_of(idn[new].astype(str)).astype(object),
                       nr["sex"].to_numpy(dtype=object))
        src = np.where(nr["source_id"].to_numpy(dtype=object) == "", idn[new],
                       nr["source_id"].to_numpy(dtype=object))
        people = pd.DataFrame({
            "source_id": src, "id_number": idn[new], "name": nr["name"].to_numpy(dtype=object),
            "phone": _blank_none(nr["phone"]),
            "birth_date": pd.Series(birth).astype("datetime64[s]"), "sex": sex,
            "hukou_code": hukou,
            "floating": ~pd.Series(hukou).str.slice(0, 4).isin(prefixes).to_numpy(),
            "person_class": np.where(nr["person_class"].to_numpy(dtype=object) == "",
                                     "trusted", nr["person_class"].to_numpy(dtype=object)),
            "registered_on": pd.Series(entered_day[new]).astype("datetime64[s]"),
            "registered_house_id": np.where(reg_house[new] >= 0, reg_house[new], house[new]),
        })
        person_id[new] = _insert_rows(conn, "person", people)
    # 2. close the residences left
    closes = move | leave
    closed = np.where(closes, r["cur_residence_id"].fillna(-1).to_numpy(dtype=np.int64), -1)
    _update_rows(conn, "residence", pd.DataFrame({
        "id": closed[closes],
        "left_on": pd.Series(r["day"].to_numpy()[closes]).astype("datetime64[s]")}))
    # 3. open the new residences
    opens = arrive | move
    residence = np.full(len(r), -1, dtype=np.int64)
    residence[opens] = _insert_rows(conn, "residence", pd.DataFrame({
        "person_id": person_id[opens], "house_id": house[opens],
        "arrived_on": pd.Series(r["day"].to_numpy()[opens]).astype("datetime64[s]"),
        "entered_on": pd.Series(entered_day[opens]).astype("datetime64[s]")}))
    # 4. registration follows a floating person (暂住登记); a local's stays with the hukou
    floating = r["p_floating"].fillna(0).to_numpy(dtype=np.int64) == 1
    reg_on = r["p_registered_on"].to_numpy(dtype="datetime64[D]")
    reg_h = r["p_registered_house_id"].fillna(-1).to_numpy(dtype=np.int64)
    upd = exists & (arrive | move | leave)
    new_reg_on = reg_on.copy()
    new_reg_h = reg_h.copy()
    fa = upd & floating & arrive
    new_reg_on[fa] = entered_day[fa]
    new_reg_h[fa] = np.where(reg_house[fa] >= 0, reg_house[fa], house[fa])
    la = upd & ~floating & arrive
    new_reg_on[la] = np.where(np.isnat(reg_on[la]), entered_day[la], reg_on[la])
    new_reg_h[la] = np.where(reg_house[la] >= 0, reg_house[la],
                             np.where(reg_h[la] >= 0, reg_h[la], house[la]))
    fm = upd & floating & move
    new_reg_h[fm] = house[fm]
    new_reg_on[fm] = np.where(np.isnat(reg_on[fm]), entered_day[fm], reg_on[fm])
    fl = upd & floating & leave
    new_reg_on[fl] = np.datetime64("NaT")
    new_reg_h[fl] = -1
    changed = upd & ((new_reg_h != reg_h) | ~((new_reg_on == reg_on)
                                              | (np.isnat(new_reg_on) & np.isnat(reg_on))))
    reg_col = pd.array(np.maximum(new_reg_h[changed], 0), dtype="Int64")
    reg_col[new_reg_h[changed] < 0] = pd.NA
    _update_rows(conn, "person", pd.DataFrame({
        "id": person_id[changed],
        "registered_on": pd.Series(new_reg_on[changed]).astype("datetime64[s]"),
        "registered_house_id": reg_col}))
    # 5. corrections
    changes = np.full(len(r), None, dtype=object)
    if correct.any():
        changes[correct] = _correct(conn, r[correct], prefixes)
    # 6. the history rows
    occurred = r["occurred"].to_numpy(dtype="datetime64[s]")
    has_time = r["has_time"].to_numpy(dtype=bool)
    late = opens & permits.late_entries(occurred, entered, has_time=has_time,
                                        settings=settings)
    intended = r["intended"].to_numpy(dtype=float)
    history = pd.DataFrame({
        "event_key": r["key"].to_numpy(dtype=object),
        "content_hash": r["content"].to_numpy(dtype=object),
        "person_id": person_id, "event_type": ev,
        "occurred_on": pd.Series(r["day"].to_numpy()).astype("datetime64[s]"),
        "arrived_at": pd.Series(np.where(opens & has_time, occurred,
                                         np.datetime64("NaT"))).astype("datetime64[s]"),
        "entered_at": pd.Series(entered).astype("datetime64[s]"),
        "late": late,
        "house_id": pd.array(np.where(opens, house, 0), dtype="Int64"),
        "from_house_id": pd.array(np.where(closes, r["cur_house_id"].fillna(0)
                                           .to_numpy(dtype=np.int64), 0), dtype="Int64"),
        "residence_id": pd.array(np.where(opens, residence, 0), dtype="Int64"),
        "closed_residence_id": pd.array(np.where(closes, closed, 0), dtype="Int64"),
        "intended_stay_days": pd.array(np.where(np.isnan(intended), 0, intended)
                                       .astype(np.int64), dtype="Int64"),
        "changes": changes,
        "clerk": _blank_none(r["clerk"]),
        "note": _blank_none(r["note"]),
        "source": source,
        "recorded_at": pd.Series(np.full(len(r), now)).astype("datetime64[s]"),
    })
    history.loc[~opens, ["house_id", "residence_id"]] = pd.NA
    history.loc[~closes, ["from_house_id", "closed_residence_id"]] = pd.NA
    history.loc[np.isnan(intended), "intended_stay_days"] = pd.NA
    event_ids = _insert_rows(conn, "person_event", history)
    # 7. the counts, by delta
    after = _people_rows(conn, person_id)
    _people_delta(conn, before, after)
    i = r["_i"].to_numpy()
    out["event_id"][i] = event_ids
    out["person_id"][i] = person_id
    out["residence_id"][i] = residence
    out["late"][i] = late
    out["applied"][i] = True


def _correct(conn: Connection, r: pd.DataFrame, prefixes: list[str]) -> np.ndarray:
    """Apply corrections of personal data; return each row's changes as JSON {field: [old, new]}."""
    cur = pd.DataFrame({
        "id_number": r["id_number"].to_numpy(dtype=object),
        "name": r["p_name"].to_numpy(dtype=object),
        "phone": r["p_phone"].to_numpy(dtype=object),
        "birth_date": _iso(r["p_birth_date"].to_numpy(dtype="datetime64[D]")),
        "sex": r["p_sex"].to_numpy(dtype=object),
        "hukou_code": r["p_hukou_code"].to_numpy(dtype=object),
        "person_class": r["p_person_class"].to_numpy(dtype=object),
        "registered_on": _iso(r["p_registered_on"].to_numpy(dtype="datetime64[D]")),
        "registered_house_id": [None if pd.isna(v) else int(v)
                                for v in r["p_registered_house_id"].tolist()],
    }).astype(object)
    new = cur.copy()
    given = {
        "id_number": r["new_id_number"].to_numpy(dtype=object),
        "name": r["name"].to_numpy(dtype=object), "phone": r["phone"].to_numpy(dtype=object),
        "birth_date": np.array(_iso(r["birth_date"].to_numpy(dtype="datetime64[D]")),
                               dtype=object),
        "sex": r["sex"].to_numpy(dtype=object),
        "hukou_code": r["hukou_code"].to_numpy(dtype=object),
        "person_class": r["person_class"].to_numpy(dtype=object),
        "registered_on": np.array(_iso(r["registered_on"].to_numpy(dtype="datetime64[D]")),
                                  dtype=object),
        "registered_house_id": np.where(r["reg_house_id"].to_numpy(dtype=np.int64) >= 0,
                                        r["reg_house_id"].to_numpy(dtype=np.int64), None),
    }
    for col, vals in given.items():
        has = pd.notna(vals) & (vals != "")
        new.loc[has, col] = vals[has]
    clear = r["clear"].to_numpy(dtype=object)
    for col, key in (("phone", "phone"), ("registered_on", "registered_on"),
                     ("registered_house_id", "registered_house")):
        gone = np.array([key in xs for xs in clear], dtype=bool)
        new.loc[gone, col] = None
    new["floating"] = ~new["hukou_code"].astype(str).str.slice(0, 4).isin(prefixes)
    new["id"] = r["person_id"].to_numpy(dtype=np.int64)
    _update_rows(conn, "person", new)
    fields = [c for c in cur.columns]
    old_rec = cur[fields].astype(object).where(cur[fields].notna(), None).to_dict("records")
    new_rec = new[fields].astype(object).where(new[fields].notna(), None).to_dict("records")
    return np.array([json.dumps({k: [o[k], w[k]] for k in fields if o[k] != w[k]},
                                ensure_ascii=False, default=str)
                     for o, w in zip(old_rec, new_rec, strict=True)], dtype=object)


def _run(conn: Connection, df: pd.DataFrame, *, skip_bad: bool, source: str,
         settings: permits.RegistrationSettings, now: np.datetime64,
         reporter: Reporter) -> tuple[_Rows, dict[str, np.ndarray], int, int]:
    """Validate and replay a frame of events on `conn`; problems are collected, not raised."""
    rows = _check(conn, df, now)
    already, existing_id, dups = _replays(conn, rows)
    n = len(df)
    out: dict[str, np.ndarray] = {
        "event_id": existing_id.copy(), "person_id": np.full(n, -1, dtype=np.int64),
        "residence_id": np.full(n, -1, dtype=np.int64), "late": np.zeros(n, dtype=bool),
        "applied": np.zeros(n, dtype=bool)}
    # Rows are replayed even when some are bad, so the report names every problem; the
    # caller rolls the transaction back unless skip_bad.
    todo = np.flatnonzero(~rows.bad & ~rows.skip)
    f = rows.f
    order = f.iloc[todo].assign(_i=todo).sort_values(["id_number", "occurred", "_row"],
                                                      kind="stable")
    rnd = order.groupby("id_number", sort=False).cumcount().to_numpy()
    prefixes = city_prefixes(conn)
    with reporter.step("recording events", len(todo)) as bar:
        for k in range(int(rnd.max()) + 1 if len(rnd) else 0):
            idx = order["_i"].to_numpy()[rnd == k]
            # rows whose earlier event failed in this file are still tried: they may be fine
            _apply_round(conn, rows, idx, prefixes, settings, source, now, out)
            bar.advance(len(idx))
    return rows, out, int(already.sum()), dups


# --- single events -------------------------------------------------------------------------------


def _now(now: dt.datetime | None) -> np.datetime64:
    return np.datetime64((now or dt.datetime.now()).replace(microsecond=0), "s")


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, (list, tuple, set, frozenset)):
        return ",".join(str(x) for x in v)
    return str(v)


def record_event(conn: Connection, values: Mapping[str, Any], *, source: str = "api",
                 settings: permits.RegistrationSettings | None = None,
                 now: dt.datetime | None = None) -> EventResult:
    """Record one event given as import-file columns; atomic, idempotent, raises on rejection.

    Bad input raises `BadInput`; a clash with the current state (the person already
    lives elsewhere, was moved by someone else, an event id reused) raises `Conflict`.
    Either way the store is unchanged.
    """
    settings = settings or permits.RegistrationSettings()
    df = pd.DataFrame({k: [_text(v)] for k, v in values.items() if v is not None})
    try:
        with conn.begin_nested():
            rows, out, _, _ = _run(conn, df, skip_bad=False, source=source, settings=settings,
                                   now=_now(now), reporter=Quiet())
            if rows.bad.any():
                reason = "; ".join(f"{p.column}: {p.reason}" for p in rows.c.report.problems)
                raise (Conflict if rows.conflict.any() else BadInput)(reason)
    except IntegrityError as exc:
        # A concurrent writer got there first; a replay of the same event is not an error.
        key = rows_key(conn, df, now)
        hit = conn.execute(text("SELECT id, person_id, event_type, late, residence_id FROM "
                                "person_event WHERE event_key = :k"), {"k": key}).first()
        if hit is None:
            raise Conflict("another clerk changed this person or house at the same time "
                           f"({_constraint(exc)}); reload and retry") from exc
        return EventResult(int(hit[0]), key, int(hit[1]), str(hit[2]), False, bool(hit[3]),
                           None if hit[4] is None else int(hit[4]))
    except DBAPIError as exc:
        if getattr(exc.orig, "pgcode", None) in ("40P01", "40001"):
            raise Conflict("the store was busy with a conflicting change (deadlock or "
                           "serialisation failure); retry") from exc
        raise
    key = str(rows.f["key"].iloc[0])
    warnings = tuple(p.reason for p in rows.c.report.warnings)
    if not out["applied"][0]:
        hit = conn.execute(text("SELECT id, person_id, event_type, late, residence_id FROM "
                                "person_event WHERE event_key = :k"), {"k": key}).one()
        return EventResult(int(hit[0]), key, int(hit[1]), str(hit[2]), False, bool(hit[3]),
                           None if hit[4] is None else int(hit[4]), warnings)
    res = int(out["residence_id"][0])
    return EventResult(int(out["event_id"][0]), key, int(out["person_id"][0]),
                       str(rows.f["event"].iloc[0]), True, bool(out["late"][0]),
                       None if res < 0 else res, warnings)


def rows_key(conn: Connection, df: pd.DataFrame, now: dt.datetime | None) -> str:
    """The event key a one-row frame gets (after the transaction that failed to use it)."""
    return str(_check(conn, df, _now(now)).f["key"].iloc[0])


def _constraint(exc: IntegrityError) -> str:
    msg = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return msg[:160]


def arrive(conn: Connection, *, id_number: str, house: str, on: dt.date | dt.datetime,
           entered_at: dt.datetime | None = None, intended_stay_days: int | None = None,
           name: str | None = None, birth_date: dt.date | None = None, sex: str | None = None,
           hukou_code: str | None = None, phone: str | None = None,
           person_class: str | None = None, source_id: str | None = None,
           registered_house: str | None = None, event_id: str | None = None,
           clerk: str | None = None, note: str | None = None, source: str = "api",
           settings: permits.RegistrationSettings | None = None,
           now: dt.datetime | None = None) -> EventResult:
    """Register an arrival at a house (来有登记); a person new to the store is created.

    ``on`` is the arrival date, or date and time; ``entered_at`` (default now) is when the
    data were entered: more than 24 h after arrival is flagged late. A new person needs a
    name; birth date, sex and hukou default to what the ID number encodes.
    """
    return record_event(conn, {
        "event": "arrive", "id_number": id_number, "house": house, "occurred_on": on,
        "entered_at": entered_at, "intended_stay_days": intended_stay_days, "name": name,
        "birth_date": birth_date, "sex": sex, "hukou_code": hukou_code, "phone": phone,
        "person_class": person_class, "source_id": source_id,
        "registered_house": registered_house, "event_id": event_id, "clerk": clerk,
        "note": note}, source=source, settings=settings, now=now)


def move(conn: Connection, *, id_number: str, house: str, on: dt.date | dt.datetime,
         from_house: str | None = None, entered_at: dt.datetime | None = None,
         intended_stay_days: int | None = None, event_id: str | None = None,
         clerk: str | None = None, note: str | None = None, source: str = "api",
         settings: permits.RegistrationSettings | None = None,
         now: dt.datetime | None = None) -> EventResult:
    """Register a move to another house: the current residence ends, a new one begins.

    Give ``from_house`` (the house the clerk saw the person at) and a concurrent move by
    another clerk becomes a `Conflict` instead of a second move.
    """
    return record_event(conn, {
        "event": "move", "id_number": id_number, "house": house, "occurred_on": on,
        "from_house": from_house, "entered_at": entered_at,
        "intended_stay_days": intended_stay_days, "event_id": event_id, "clerk": clerk,
        "note": note}, source=source, settings=settings, now=now)


def leave(conn: Connection, *, id_number: str, on: dt.date | dt.datetime,
          from_house: str | None = None, entered_at: dt.datetime | None = None,
          event_id: str | None = None, clerk: str | None = None, note: str | None = None,
          source: str = "api", settings: permits.RegistrationSettings | None = None,
          now: dt.datetime | None = None) -> EventResult:
    """Register a departure (去有注销): the current residence ends.

    A floating person's stay registration is cancelled with it; a local's hukou stays.
    """
    return record_event(conn, {
        "event": "leave", "id_number": id_number, "occurred_on": on, "from_house": from_house,
        "entered_at": entered_at, "event_id": event_id, "clerk": clerk, "note": note},
        source=source, settings=settings, now=now)


def correct(conn: Connection, *, id_number: str, changes: Mapping[str, Any],
            clear: Iterable[str] = (), on: dt.date | None = None, event_id: str | None = None,
            clerk: str | None = None, note: str | None = None, source: str = "api",
            now: dt.datetime | None = None) -> EventResult:
    """Correct personal data, or clear phone and registration; the change is kept in history.

    ``changes`` maps any of name, phone, birth_date, sex, hukou_code, person_class,
    registered_on, registered_house and new_id_number to the corrected value; ``clear``
    names fields to empty (phone, registered_on, registered_house).
    """
    unknown = sorted(set(changes) - set(CORRECTABLE))
    if unknown:
        raise BadInput(f"cannot correct {', '.join(unknown)}; correctable: "
                       f"{', '.join(CORRECTABLE)}")
    day = on or (now or dt.datetime.now()).date()
    return record_event(conn, {
        "event": "correct", "id_number": id_number, "occurred_on": day, **dict(changes),
        "clear": tuple(clear) or None, "event_id": event_id, "clerk": clerk, "note": note},
        source=source, now=now)


# --- bulk import -------------------------------------------------------------------------------


def read_events(path: str | Path) -> pd.DataFrame:
    """Read an event file (CSV or Parquet) with every column as text."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".csv":
            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        elif path.suffix.lower() in (".parquet", ".geoparquet"):
            df = pd.read_parquet(path)
            for col in df.columns:
                s = df[col]
                if pd.api.types.is_datetime64_any_dtype(s):
                    # a date column must not turn into arrivals at midnight
                    dated = bool((s.dropna() == s.dropna().dt.normalize()).all())
                    df[col] = s.dt.strftime("%Y-%m-%d" if dated else "%Y-%m-%d %H:%M:%S")
                elif pd.api.types.is_float_dtype(s) and bool((s.dropna() % 1 == 0).all()):
                    df[col] = s.astype("Int64")
            df = df.astype(object)
            df = df.where(df.notna(), "").astype(str)
        else:
            raise BadInput(f"{path}: unsupported file type {path.suffix!r}; use .csv or .parquet")
    except BadInput:
        raise
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text ({exc.reason}); save the file as UTF-8") from exc
    except Exception as exc:
        raise BadInput(f"{path}: cannot be read ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in ("event", "id_number", "occurred_on") if c not in df.columns]
    if missing:
        raise BadInput(f"{path}: lacks column(s) {', '.join(missing)}; it has "
                       f"{', '.join(df.columns)}")
    return df


def import_events(engine: Engine, path: str | Path, *, skip_bad: bool = False,
                  report_path: Path | None = None, source: str = "import",
                  settings: permits.RegistrationSettings | None = None,
                  now: dt.datetime | None = None,
                  reporter: Reporter | None = None) -> ImportResult:
    """Validate a whole event file and replay it in one transaction; idempotent.

    A bad row rejects the file (nothing written, a report names each row, column and
    reason) unless `skip_bad`. Rows already recorded are skipped, so the same file twice
    changes nothing the second time.
    """
    frame = read_events(path)
    if report_path is None:
        report_path = Path(f"{Path(path).name}.report.csv")
    return import_event_frame(engine, frame, skip_bad=skip_bad, report_path=report_path,
                              source=source, settings=settings, now=now, reporter=reporter)


def import_event_frame(engine: Engine, frame: pd.DataFrame, *, skip_bad: bool = False,
                       report_path: Path | None = None, source: str = "import",
                       settings: permits.RegistrationSettings | None = None,
                       now: dt.datetime | None = None,
                       reporter: Reporter | None = None) -> ImportResult:
    """Validate a frame of events (text columns) and replay it in one transaction."""
    from gridmgr.store.schema import upgrade

    known = set(EVENT_FILE_COLUMNS) | {c for refs in HOUSE_REFS.values() for c in refs}
    unknown = [str(c) for c in frame.columns if str(c) not in known]
    if unknown:
        raise BadInput(f"event file has unknown column(s) {', '.join(unknown)}; use "
                       f"{', '.join(EVENT_FILE_COLUMNS)}")
    upgrade(engine)
    settings = settings or permits.RegistrationSettings()
    with write_transaction(engine) as conn:
        rows, out, already, dups = _run(conn, frame.astype(object), skip_bad=skip_bad,
                                        source=source, settings=settings, now=_now(now),
                                        reporter=reporter or Quiet())
        report = rows.c.report
        report.kind = "events"
        result = ImportResult(rows=len(frame), applied=int(out["applied"].sum()),
                              already=already, duplicates=dups, late=int(out["late"].sum()),
                              report=report, rejected_rows=report.bad_rows)
        if report.problems and not skip_bad:
            if report_path is not None:
                result.report_path = write_report(report, report_path)
            raise ValidationFailed(report, (
                f"nothing was written; full report in {result.report_path}; fix the rows or "
                "rerun with --skip-bad to record the good ones"))
    if report_path is not None and (report.problems or report.warnings):
        result.report_path = write_report(report, report_path)
    return result


# --- reading history ---------------------------------------------------------------------------


def residence_history(conn: Connection, *, person_id: int) -> pd.DataFrame:
    """Every house a person lives or has lived at, newest first (current: left_on empty)."""
    df = read_frame(conn, (
        "SELECT r.id AS residence_id, h.house_code, h.source_id AS house_source_id, h.address, "
        "r.arrived_on, r.left_on, r.entered_on, CASE WHEN r.left_on IS NULL THEN 1 ELSE 0 END "
        "AS current FROM residence r JOIN house h ON h.id = r.house_id "
        "WHERE r.person_id = :p ORDER BY r.arrived_on DESC, r.id DESC"), {"p": int(person_id)})
    df["current"] = df["current"].astype(int) == 1
    return df


def event_history(conn: Connection, *, person_id: int) -> pd.DataFrame:
    """A person's registration events in the order they were recorded."""
    return read_frame(conn, (
        "SELECT e.id AS event_id, e.event_type, e.occurred_on, e.arrived_at, e.entered_at, "
        "e.late, h.house_code, fh.house_code AS from_house_code, e.intended_stay_days, "
        "e.changes, e.clerk, e.source, e.recorded_at FROM person_event e "
        "LEFT JOIN house h ON h.id = e.house_id LEFT JOIN house fh ON fh.id = e.from_house_id "
        "WHERE e.person_id = :p ORDER BY e.id"), {"p": int(person_id)})


def late_registrations(conn: Connection, *, since: dt.date | None = None) -> pd.DataFrame:
    """Arrivals and moves entered after the deadline, newest first."""
    return read_frame(conn, (
        "SELECT e.id AS event_id, p.id_number, p.name, e.event_type, e.occurred_on, "
        "e.arrived_at, e.entered_at, h.house_code FROM person_event e "
        "JOIN person p ON p.id = e.person_id LEFT JOIN house h ON h.id = e.house_id "
        "WHERE e.late AND e.occurred_on >= :s ORDER BY e.occurred_on DESC, e.id DESC"),
        {"s": (since or dt.date(1900, 1, 1)).isoformat()})


# --- rental registration -----------------------------------------------------------------------


def _rental_rows(conn: Connection, house_id: int) -> pd.DataFrame:
    return read_frame(conn, "SELECT id, house_id, rental_class, CASE WHEN registered_on IS NULL "
                            "THEN 0 ELSE 1 END AS reg FROM rental_record WHERE house_id = :h",
                      {"h": int(house_id)})


def _tally_rentals(rows: pd.DataFrame, links: pd.DataFrame) -> pd.DataFrame:
    m = rows.merge(links, on="house_id", how="inner")
    return counts.tally(m["grid_pk"].to_numpy(dtype=np.int64), counts.rental_columns(
        m["rental_class"].to_numpy(dtype=object), m["reg"].to_numpy(dtype=np.int64) == 1))


def register_rental(conn: Connection, *, house: str, landlord_id_number: str, tenants: int,
                    rental_class: str, registered_on: dt.date | None = None,
                    rooms: pd.DataFrame | None = None, accept_violations: bool = False,
                    settings: rentals.RentalSettings | None = None,
                    today: dt.date | None = None) -> RentalResult:
    """Register (or re-register) a let: landlord, tenants, class and the rooms let (出租登记).

    The let is checked against the rental rules first. With violations nothing is stored
    and `BadInput` lists them, unless `accept_violations`: then the let is stored with its
    violations recorded beside it, never as valid. ``rooms`` has columns room_type and
    optionally area_m2, tenants and label. Counts move by delta in the same transaction.
    """
    from gridmgr.idnumber import normalize_id_number

    today = today or dt.date.today()
    day = registered_on or today
    if day > today:
        raise BadInput(f"registered_on {day} is in the future")
    if rental_class not in CLASSES:
        raise BadInput(f"class {rental_class!r} is not one of {', '.join(CLASSES)}")
    if int(tenants) != tenants or tenants < 0:
        raise BadInput(f"tenants {tenants!r} must be a whole number ≥ 0")
    landlord = normalize_id_number(landlord_id_number)
    ids = resolve_houses(conn, [house])
    if ids[0] < 0:
        raise NotFound(f"house {house!r} is not loaded (give a house code or source id)")
    house_id = int(ids[0])
    rooms = rooms if rooms is not None else pd.DataFrame({"room_type": []})
    if len(rooms) and "room_type" not in rooms.columns:
        raise BadInput("rooms need a room_type column (and optionally area_m2, tenants, label)")
    area = conn.execute(text("SELECT area_m2 FROM house WHERE id = :h"),
                        {"h": house_id}).scalar_one()
    findings = rentals.check_lets(
        tenants=[int(tenants)], house_area_m2=[np.nan if area is None else float(area)],
        room_let=np.zeros(len(rooms), dtype=np.int64), room_type=rooms.get("room_type", []),
        room_area_m2=rooms.get("area_m2"), room_tenants=rooms.get("tenants"),
        room_label=rooms.get("label"), settings=settings)
    broken = rentals.violations_only(findings)
    if len(broken) and not accept_violations:
        raise BadInput(f"house {house}: the let breaks the rental rules: "
                       f"{'; '.join(broken['reason'])}; nothing was stored (fix the let, or "
                       "store it flagged with --accept-violations)")
    try:
        return _write_rental(conn, house_id=house_id, landlord=landlord, tenants=int(tenants),
                             rental_class=rental_class, day=day, today=today, rooms=rooms,
                             findings=findings)
    except IntegrityError as exc:
        raise Conflict(f"house {house}: another clerk registered this let at the same time "
                       f"({_constraint(exc)}); reload and retry") from exc


def _write_rental(conn: Connection, *, house_id: int, landlord: str, tenants: int,
                  rental_class: str, day: dt.date, today: dt.date, rooms: pd.DataFrame,
                  findings: pd.DataFrame) -> RentalResult:
    from gridmgr.inspections import due_dates
    from gridmgr.settings import WorkloadSettings

    with conn.begin_nested():
        if is_pg(conn):  # two clerks registering one let: the second re-registers it
            conn.execute(text("SELECT id FROM house WHERE id = :h FOR UPDATE"), {"h": house_id})
        before = _rental_rows(conn, house_id)
        created = before.empty
        due = due_dates(np.array([rental_class], dtype=object),
                        np.array([np.datetime64("NaT")], dtype="datetime64[D]"),
                        np.array([np.datetime64(day, "D")]), WorkloadSettings())[0]
        values = {"h": house_id, "l": landlord, "t": int(tenants), "c": rental_class,
                  "r": day.isoformat(),
                  "d": None if np.isnat(due) else str(due)}
        if created:
            rental_id = int(conn.execute(text(
                "INSERT INTO rental_record (house_id, landlord_id_number, tenants, rental_class, "
                "registered_on, next_due_on) VALUES (:h, :l, :t, :c, :r, :d) RETURNING id"),
                values).scalar_one())
        else:
            rental_id = int(before["id"].iloc[0])
            same_class = str(before["rental_class"].iloc[0]) == rental_class
            conn.execute(text(
                "UPDATE rental_record SET landlord_id_number = :l, tenants = :t, "
                "rental_class = :c, registered_on = :r"
                + ("" if same_class else ", class_changed_on = :r, next_due_on = :d")
                + " WHERE id = :i"), {**values, "i": rental_id})
            conn.execute(text("DELETE FROM rental_violation WHERE rental_id = :i"),
                         {"i": rental_id})
            conn.execute(text("DELETE FROM rental_room WHERE rental_id = :i"), {"i": rental_id})
        room_ids = np.empty(0, dtype=np.int64)
        if len(rooms):
            room_ids = _insert_rows(conn, "rental_room", pd.DataFrame({
                "rental_id": rental_id,
                "label": _blank_none(rooms["label"].fillna("").astype(str))
                if "label" in rooms else None,
                "room_type": rentals.room_types(rooms["room_type"]),
                "area_m2": pd.to_numeric(rooms["area_m2"], errors="coerce")
                if "area_m2" in rooms else np.nan,
                "tenants": pd.array(pd.to_numeric(rooms["tenants"], errors="coerce"),
                                    dtype="Int64") if "tenants" in rooms else pd.NA}))
        if len(findings):
            room_idx = findings["room"].to_numpy(dtype=np.int64)
            has = room_idx >= 0
            room_pk = np.zeros(len(findings), dtype=np.int64)
            room_pk[has] = room_ids[room_idx[has]]
            room_col = pd.array(room_pk, dtype="Int64")
            room_col[~has] = pd.NA
            _insert_rows(conn, "rental_violation", pd.DataFrame({
                "rental_id": rental_id, "room_id": room_col,
                "rule": findings["rule"].to_numpy(dtype=object),
                "severity": findings["severity"].to_numpy(dtype=object),
                "reason": findings["reason"].to_numpy(dtype=object),
                "found_on": pd.Series([np.datetime64(today, "s")] * len(findings))}))
        after = _rental_rows(conn, house_id)
        links = _house_links(conn, np.array([house_id]))
        apply_count_change(conn, _tally_rentals(before, links), _tally_rentals(after, links))
    return RentalResult(rental_id=rental_id, created=created, findings=findings)


def rental_findings(conn: Connection, *, house: str) -> pd.DataFrame:
    """The rule findings stored with a house's let (empty when it complies)."""
    ids = resolve_houses(conn, [house])
    if ids[0] < 0:
        raise NotFound(f"house {house!r} is not loaded")
    return read_frame(conn, (
        "SELECT v.rule, v.severity, v.reason, rr.room_type, rr.label, v.found_on "
        "FROM rental_violation v JOIN rental_record r ON r.id = v.rental_id "
        "LEFT JOIN rental_room rr ON rr.id = v.room_id WHERE r.house_id = :h ORDER BY v.id"),
        {"h": int(ids[0])})
