"""Whole-file validation of interchange frames: every bad row, column and reason, vectorised."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from gridmgr.errors import BadInput, RowProblem, ValidationReport

# Per check, at most this many rows get their own message; the rest are counted.
MAX_MESSAGES_PER_CHECK = 2000

REQUIRED: dict[str, tuple[str, ...]] = {
    "areas": ("code", "name", "level", "geometry"),
    "grids": ("grid_id", "community_code", "geometry"),
    "houses": ("source_id", "lon", "lat", "address"),
    "people": ("source_id", "id_number", "name", "birth_date", "sex", "hukou_code", "arrived_on"),
    "businesses": ("source_id", "name", "lon", "lat", "workers"),
    "rentals": ("landlord_id_number", "tenants", "class"),
}
LEVELS = ("district", "street", "community")
PARENT_LEVEL = {"street": "district", "community": "street"}
TIERS = ("strengthened", "key", "routine")
CLASSES = ("key", "uneasy", "trusted")
SEX = {"M": "M", "F": "F", "男": "M", "女": "F", "m": "M", "f": "F", "1": "M", "2": "F"}


def masked(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """An object array of `values` with None where `mask` holds."""
    out = np.asarray(values, dtype=object).copy()
    out[np.asarray(mask, dtype=bool)] = None
    return out


def blank_to_none(values: np.ndarray) -> np.ndarray:
    """An object array with None for empty strings."""
    return masked(values, np.asarray(values, dtype=object) == "")


def lookup(keys: np.ndarray, table: dict[str, str]) -> np.ndarray:
    """Map each key through `table` (hashing, not a Python loop); "" where absent."""
    # Number the keys first: a file repeats a few thousand community codes millions of
    # times, and mapping the distinct ones is five times faster than mapping every row.
    codes_, uniques = pd.factorize(np.asarray(keys, dtype=object), use_na_sentinel=False)
    mapped = pd.Series(uniques, dtype=object).map(table).to_numpy(dtype=object)
    mapped[pd.isna(mapped)] = ""
    return mapped[codes_]


def _blank_to_null(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """Arrow text with "" as null."""
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)


def _series(kind: str) -> pd.Series:
    return pd.Series(dtype=kind)


@dataclass
class StoreKeys:
    """What the store already holds, for reference and duplicate checks.

    Lookups are pandas Series (key → id) so millions of keys resolve by hashing, not loops.
    """

    source_ids: pd.Index = field(default_factory=lambda: pd.Index([], dtype=object))
    house_ids_by_source: pd.Series = field(default_factory=lambda: _series("int64"))
    house_ids_by_code: pd.Series = field(default_factory=lambda: _series("int64"))
    business_ids_by_source: pd.Series = field(default_factory=lambda: _series("int64"))
    id_numbers: pd.Index = field(default_factory=lambda: pd.Index([], dtype=object))
    rented_house_ids: pd.Index = field(default_factory=lambda: pd.Index([], dtype="int64"))
    area_levels: dict[str, str] = field(default_factory=dict)
    grid_ids: pd.Index = field(default_factory=lambda: pd.Index([], dtype=object))
    extent: tuple[float, float, float, float] | None = None  # minx, miny, maxx, maxy of areas


@dataclass
class FlagSite:
    """What one check found in one chunk: its first flagged rows (file rows) and the total.

    Chunks of a file run the same checks in the same order, so the n-th site of every
    chunk is the same check; `merge_sites` joins them into the whole file's messages.
    """

    warn: bool
    column: str
    rows: np.ndarray  # file row numbers of the first MAX_MESSAGES_PER_CHECK + 1 flagged rows
    reasons: list[str]
    total: int


@dataclass
class Checked:
    """A validated frame: typed columns, `_row` (file data row, from 1) and the good-row mask."""

    frame: pd.DataFrame
    good: np.ndarray
    report: ValidationReport
    sites: list[FlagSite] = field(default_factory=list)


def _hashes(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of each value (integers are their own first hash)."""
    if vals.dtype.kind in "iu":
        return vals.astype(np.int64).view(np.uint64), np.zeros(len(vals), dtype=np.uint64)
    obj = np.asarray(vals, dtype=object)
    return (pd.util.hash_array(obj, hash_key="gridmgr:filekey1", categorize=False),
            pd.util.hash_array(obj, hash_key="gridmgr:filekey2", categorize=False))


class FileKeys:
    """The distinct keys of a file's earlier chunks and the row each first appeared on.

    Held as sorted 64-bit hashes plus a second, independent hash that confirms a match
    (a false match needs both to collide: about 1 in 10^25 for a 10 M-row file), so a
    file's millions of keys cost 24 bytes each instead of a Python string.
    """

    def __init__(self) -> None:
        self.h1 = np.empty(0, dtype=np.uint64)
        self.h2 = np.empty(0, dtype=np.uint64)
        self.row = np.empty(0, dtype=np.int64)

    def first_rows(self, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
        """The first row of each key seen before, -1 for keys not seen."""
        out = np.full(len(h1), -1, dtype=np.int64)
        if not len(self.h1) or not len(h1):
            return out
        # Sorted needles walk the sorted keys once instead of jumping around them.
        order = np.argsort(h1)
        pos = np.empty(len(h1), dtype=np.int64)
        pos[order] = np.searchsorted(self.h1, h1[order])
        inside = pos < len(self.h1)
        hit = np.zeros(len(h1), dtype=bool)
        hit[inside] = self.h1[pos[inside]] == h1[inside]
        same = hit.copy()
        same[hit] = self.h2[pos[hit]] == h2[hit]
        out[same] = self.row[pos[same]]
        for i in np.flatnonzero(hit & ~same):  # first hashes collide: look along the run
            j = int(pos[i]) + 1
            while j < len(self.h1) and self.h1[j] == h1[i]:
                if self.h2[j] == h2[i]:
                    out[i] = self.row[j]
                    break
                j += 1
        return out

    def add(self, h1: np.ndarray, h2: np.ndarray, rows: np.ndarray) -> None:
        """Remember new keys (not seen before) and their first rows."""
        if not len(h1):
            return
        order = np.argsort(h1, kind="stable")
        h1, h2, rows = h1[order], h2[order], np.asarray(rows, dtype=np.int64)[order]
        at = np.searchsorted(self.h1, h1)
        self.h1 = np.insert(self.h1, at, h1)
        self.h2 = np.insert(self.h2, at, h2)
        self.row = np.insert(self.row, at, rows)


def _firsts(codes_: np.ndarray) -> np.ndarray:
    """Positions of each code's first appearance (pandas.factorize numbers in that order)."""
    top = np.maximum.accumulate(np.concatenate([[-1], codes_]))
    return np.flatnonzero(top[1:] > top[:-1])


def first_rows(vals: np.ndarray, valid: np.ndarray, rows: np.ndarray,
               earlier: FileKeys | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The file row where each value first appears (-1 for a missing value).

    `rows` are the file rows of `vals`; keys of the file's earlier chunks are looked up in
    `earlier`, and the new `valid` keys of this chunk are added to it. Returns (first row
    per value, pandas.factorize codes, uniques).
    """
    h1 = h2 = None
    if earlier is not None:
        h1, h2 = _hashes(np.asarray(vals))
        # Numbering the hashes is several times faster than numbering the strings; a
        # collision of the first hash inside the chunk (never seen in practice) is caught
        # by the second, and the strings are numbered instead.
        codes_, _ = pd.factorize(h1)
        first_of = _firsts(codes_)
        if not (h2[first_of][codes_] == h2).all():
            codes_, _ = pd.factorize(vals)
            first_of = _firsts(codes_)
        uniques = np.asarray(vals)[first_of]
    else:
        codes_, uniques = pd.factorize(vals)
        first_of = _firsts(codes_)
    first_file = np.asarray(rows, dtype=np.int64)[first_of]
    if earlier is not None and h1 is not None and h2 is not None:
        ok = np.asarray(valid, dtype=bool)[first_of]
        at = first_of[ok]
        before = earlier.first_rows(h1[at], h2[at])
        known = before >= 0
        sub = first_file[ok]
        sub[known] = before[known]
        first_file[ok] = sub
        earlier.add(h1[at][~known], h2[at][~known], sub[~known])
    if not len(first_file):
        return np.full(len(codes_), -1, dtype=np.int64), codes_, np.asarray(uniques)
    first = np.where(codes_ >= 0, first_file[np.maximum(codes_, 0)], -1)
    return first, np.asarray(codes_), np.asarray(uniques)


def merge_sites(parts: list[list[FlagSite]]) -> list[FlagSite]:
    """Join the sites of a file's chunks (in file order) into the whole file's sites."""
    if len(parts) == 1:
        return parts[0]
    out: list[FlagSite] = []
    for k in range(max((len(p) for p in parts), default=0)):
        same = [p[k] for p in parts if k < len(p)]
        keep = MAX_MESSAGES_PER_CHECK + 1
        rows = np.concatenate([s.rows for s in same])[:keep]
        reasons = [r for s in same for r in s.reasons][:keep]
        column = next((s.column for s in same if s.total), same[0].column)
        out.append(FlagSite(same[0].warn, column, rows, reasons, sum(s.total for s in same)))
    return out


def site_messages(sites: list[FlagSite], warn: bool) -> list[RowProblem]:
    """The problems (or warnings) of a file's sites, as whole-file validation words them."""
    out: list[RowProblem] = []
    for s in sites:
        if s.warn != warn or not s.total:
            continue
        n = min(s.total, MAX_MESSAGES_PER_CHECK)
        out += [RowProblem(int(r), s.column, t) for r, t in zip(s.rows[:n], s.reasons[:n],
                                                                 strict=True)]
        if s.total > MAX_MESSAGES_PER_CHECK:
            out.append(RowProblem(int(s.rows[MAX_MESSAGES_PER_CHECK]), s.column,
                                  f"and {s.total - MAX_MESSAGES_PER_CHECK} more rows with "
                                  "this problem"))
    return out


class _Checker:
    def __init__(self, df: pd.DataFrame, kind: str, *, first_row: int = 1,
                 seen: dict[str, FileKeys] | None = None, duplicates: bool = True) -> None:
        self.df = df
        self.kind = kind
        self.first_row = first_row
        self.seen = seen
        self.duplicates = duplicates
        self.bad = np.zeros(len(df), dtype=bool)
        self.report = ValidationReport(kind=kind, rows=len(df))
        self.sites: list[FlagSite] = []
        self._arrow_cache: dict[str, pa.ChunkedArray] = {}

    def flag(
        self,
        mask: np.ndarray,
        column: str,
        reason: str | Callable[[int], str],
        warn: bool = False,
    ) -> None:
        mask = np.asarray(mask, dtype=bool)
        idx = np.flatnonzero(mask)
        # Every call makes a site, even one that flags nothing: chunks stay aligned.
        first = idx[:MAX_MESSAGES_PER_CHECK + 1]
        reasons = [reason(int(i)) if callable(reason) else reason for i in first]
        site = FlagSite(warn, column, first + self.first_row, reasons, int(idx.size))
        self.sites.append(site)
        if idx.size == 0:
            return
        if not warn:
            self.bad |= mask
        target = self.report.warnings if warn else self.report.problems
        target += site_messages([site], warn)

    def _arrow(self, col: str) -> pa.ChunkedArray:
        """A column as trimmed Arrow text, "" for missing (computed once per column)."""
        if col not in self._arrow_cache:
            if col not in self.df.columns:
                arr = pa.chunked_array([pa.repeat(pa.scalar("", pa.string()), len(self.df))])
            else:
                s = self.df[col]
                if s.dtype == object or not pd.api.types.is_string_dtype(s.dtype):
                    s = s.fillna("").astype(str)
                arr = pa.chunked_array(pa.array(s, from_pandas=True))
                arr = pc.utf8_trim_whitespace(pc.fill_null(arr, ""))
            self._arrow_cache[col] = arr
        return self._arrow_cache[col]

    def _empty(self, col: str) -> np.ndarray:
        """Mask of the rows where a column is blank."""
        return np.asarray(pc.equal(self._arrow(col), "").to_numpy(zero_copy_only=False),
                          dtype=bool)

    def text(self, col: str) -> np.ndarray:
        return np.asarray(self._arrow(col).to_numpy(zero_copy_only=False), dtype=object)

    def column(self, col: str, blank_none: bool = False) -> pd.api.extensions.ExtensionArray:
        """A column as a pandas string array on Arrow memory (no Python objects)."""
        arr = self._arrow(col)
        if blank_none:
            arr = _blank_to_null(arr)
        return pd.array(arr, dtype=pd.StringDtype("pyarrow", na_value=np.nan))

    def require(self, col: str) -> None:
        """Flag rows where a required text column is empty (no Python strings made)."""
        self.flag(self._empty(col), col, "missing value")

    def required_text(self, col: str) -> np.ndarray:
        vals = self.text(col)
        self.flag(vals == "", col, "missing value")
        return vals

    def number(self, col: str, required: bool, integer: bool = False,
               minimum: float | None = None) -> np.ndarray:
        arr = self._arrow(col)
        empty = self._empty(col)
        try:
            # Arrow parses a clean column in C++; any unparsable value sends the whole
            # column down pandas' per-value path, which names each bad row.
            parsed = pc.cast(_blank_to_null(arr), pa.float64())
            num = np.asarray(parsed.to_numpy(zero_copy_only=False), dtype=float)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            num = pd.to_numeric(pd.Series(self.text(col), dtype=object),
                                errors="coerce").to_numpy(dtype=float)

        def raw(i: int) -> str:
            return str(arr[i].as_py())

        if required:
            self.flag(empty, col, "missing value")
        self.flag(~empty & np.isnan(num), col, lambda i: f"{raw(i)!r} is not a number")
        if integer:
            frac = ~np.isnan(num) & (num != np.floor(num))
            self.flag(frac, col, lambda i: f"{raw(i)!r} is not a whole number")
        if minimum is not None:
            low = ~np.isnan(num) & (num < minimum)
            self.flag(low, col, lambda i: f"{raw(i)} is below the minimum {minimum:g}")
        return num

    def date(self, col: str, required: bool) -> np.ndarray:
        arr = self._arrow(col)
        empty = self._empty(col)
        iso = pc.strptime(arr, format="%Y-%m-%d", unit="s", error_is_null=True)
        vals = np.asarray(pc.cast(iso, pa.date32()).to_numpy(zero_copy_only=False),
                          dtype="datetime64[D]")
        retry = ~empty & np.isnat(vals)
        if retry.any():
            # Other spellings (2024/1/2, 20240102 …) through pandas, only for those rows.
            raw_rows = self.text(col)[retry]
            parsed = pd.to_datetime(pd.Series(raw_rows), errors="coerce", format="mixed")
            vals[retry] = parsed.to_numpy(dtype="datetime64[D]")
        if required:
            self.flag(empty, col, "missing value")
        self.flag(~empty & np.isnat(vals), col,
                  lambda i: f"{arr[i].as_py()!r} is not a date (use YYYY-MM-DD)")
        return vals

    def choice(self, col: str, allowed: tuple[str, ...], required: bool,
               default: str | None = None) -> np.ndarray:
        arr = self._arrow(col)
        vals = np.asarray(pc.utf8_lower(arr).to_numpy(zero_copy_only=False), dtype=object)
        empty = vals == ""
        if required:
            self.flag(empty, col, "missing value")
        elif default is not None:
            vals[empty] = default
            empty = np.zeros(len(vals), dtype=bool)
        wrong = ~empty & ~pd.Series(vals).isin(allowed).to_numpy()
        self.flag(wrong, col, lambda i: f"{arr[i].as_py()!r} is not one of {', '.join(allowed)}")
        return vals

    def first_rows(self, vals: np.ndarray, valid: np.ndarray, key: str
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """File row where each value first appears, in this chunk or an earlier one.

        Without duplicate checks every value counts as first where it stands.
        """
        rows = np.arange(len(vals)) + self.first_row
        if not self.duplicates:
            return rows, np.arange(len(vals)), np.asarray(vals)
        keys = None if self.seen is None else self.seen.setdefault(key, FileKeys())
        return first_rows(vals, valid, rows, keys)

    def unique(self, vals: np.ndarray, col: str, existing: pd.Index | None = None,
               what: str = "") -> None:
        nonempty = vals != ""
        first, codes_, uniques = self.first_rows(vals, nonempty, col)
        dup = nonempty & (first != np.arange(len(vals)) + self.first_row)
        self.flag(dup, col, lambda i: f"duplicate {col} {vals[i]!r} (first on row "
                                       f"{int(first[i])})")
        if existing is not None and len(existing):
            if self.duplicates:
                there = nonempty & pd.Index(uniques).isin(existing)[codes_]
            else:
                there = nonempty & pd.Index(vals, dtype=object).isin(existing)
            self.flag(there, col, lambda i: f"{col} {vals[i]!r} is already {what or 'loaded'}")

    def unique_text(self, col: str, existing: pd.Index | None = None, what: str = ""
                    ) -> np.ndarray | None:
        """A required text column's values, after flagging blank, repeated and known ones.

        When nothing needs the values as Python strings (no duplicate checks, no keys in
        the store) the blanks are found on Arrow memory and None is returned.
        """
        if self.duplicates or (existing is not None and len(existing)):
            vals = self.required_text(col)
            self.unique(vals, col, existing, what)
            return vals
        self.require(col)
        self.flag(np.zeros(len(self.df), dtype=bool), col, "")  # unique()'s site, empty
        return None

    def known(self, col: str, allowed: list[str]) -> np.ndarray:
        """Mask of the rows whose (trimmed) value is blank or one of `allowed`."""
        arr = self._arrow(col)
        hit = pc.is_in(arr, value_set=pa.array(allowed, type=arr.type))
        return self._empty(col) | np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)

    def finish(self, frame: pd.DataFrame) -> Checked:
        frame = frame.copy()
        frame["_row"] = np.arange(self.first_row, self.first_row + len(frame))
        return Checked(frame=frame, good=~self.bad, report=self.report, sites=self.sites)


def _missing_columns(df: pd.DataFrame, kind: str) -> None:
    cols = set(df.columns)
    missing = [c for c in REQUIRED[kind] if c not in cols]
    if kind in ("rentals",) and not ({"house_source_id", "house_code"} & cols):
        missing.append("house_source_id or house_code")
    if kind == "people" and not ({"house_source_id", "house_code"} & cols):
        missing.append("house_source_id or house_code")
    if missing:
        raise BadInput(
            f"{kind} file lacks column(s) {', '.join(missing)}; "
            f"it has {', '.join(map(str, df.columns))}"
        )


def _check_lonlat(c: _Checker, keys: StoreKeys) -> tuple[np.ndarray, np.ndarray]:
    lon = c.number("lon", required=True)
    lat = c.number("lat", required=True)
    ok = ~np.isnan(lon) & ~np.isnan(lat)
    lat_bad = ok & (np.abs(lat) > 90)
    lon_bad = ok & (np.abs(lon) > 180)
    swapped_range = lat_bad & (np.abs(lon) <= 90) & (np.abs(lat) <= 180)
    c.flag(swapped_range, "lat", lambda i: f"latitude {lat[i]} is out of range and lon {lon[i]} "
                                             "would be a valid latitude: lon and lat look swapped")
    c.flag(lat_bad & ~swapped_range, "lat", lambda i: f"latitude {lat[i]} is out of range "
                                                         "-90..90")
    c.flag(lon_bad, "lon", lambda i: f"longitude {lon[i]} is out of range -180..180")
    if keys.extent is not None:
        minx, miny, maxx, maxy = keys.extent
        pad = 0.5
        def within(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return (x >= minx - pad) & (x <= maxx + pad) & (y >= miny - pad) & (y <= maxy + pad)

        inside = within(lon, lat)
        swapped_in = within(lat, lon)
        swapped = ok & ~lat_bad & ~lon_bad & ~inside & swapped_in
        c.flag(swapped, "lon", lambda i: f"({lon[i]}, {lat[i]}) is far outside the loaded areas "
                                           "but inside them with lon and lat swapped")
    zero = ok & (lon == 0) & (lat == 0)
    c.flag(zero, "lon", "coordinates are 0,0 (a missing location?)")
    return lon, lat


def _check_polygons(c: _Checker, geoms: np.ndarray) -> np.ndarray:
    geoms = np.asarray(geoms, dtype=object)
    missing = np.array([g is None for g in geoms], dtype=bool) | shapely.is_missing(geoms)
    c.flag(missing, "geometry", "missing or unreadable geometry")
    present = ~missing
    types = np.full(len(geoms), -1)
    types[present] = shapely.get_type_id(geoms[present])
    not_poly = present & ~np.isin(types, [3, 6])
    c.flag(not_poly, "geometry", lambda i: f"a {shapely.get_type_id(geoms[i])} geometry type "
           f"({geoms[i].geom_type}) where a Polygon or MultiPolygon is needed")
    poly = present & ~not_poly
    valid = np.ones(len(geoms), dtype=bool)
    valid[poly] = shapely.is_valid(geoms[poly])
    invalid = poly & ~valid
    c.flag(invalid, "geometry", lambda i: "invalid polygon: "
           f"{shapely.is_valid_reason(geoms[i])} (fix it, e.g. with ST_MakeValid or "
           "QGIS 'Fix geometries')")
    empty = poly & valid & shapely.is_empty(masked(geoms, ~poly))
    c.flag(empty, "geometry", "empty polygon")
    out = masked(geoms, ~(poly & valid))
    single = poly & valid & (types == 3)
    out[single] = shapely.multipolygons(out[single].reshape(-1, 1).tolist()) if single.any() else []
    return out


def check_areas(df: pd.DataFrame, keys: StoreKeys, *, first_row: int = 1,
                seen: dict[str, FileKeys] | None = None, duplicates: bool = True) -> Checked:
    """Validate an admin-areas file: codes, levels, parents and polygons."""
    _missing_columns(df, "areas")
    c = _Checker(df, "areas", first_row=first_row, seen=seen,
                 duplicates=duplicates)
    code = c.required_text("code")
    c.unique(code, "code", pd.Index(list(keys.area_levels)), "loaded")
    name = c.required_text("name")
    level = c.choice("level", LEVELS, required=True)
    parent = c.text("parent_code")
    known = dict(keys.area_levels)
    known.update({str(k): str(v) for k, v in zip(code, level, strict=True) if k})
    needs_parent = np.isin(level, ["street", "community"])
    c.flag(needs_parent & (parent == ""), "parent_code", lambda i: f"a {level[i]} needs a parent")
    has_parent = needs_parent & (parent != "")
    parent_level = lookup(parent, known)
    expected = lookup(level, PARENT_LEVEL)
    c.flag(has_parent & (parent_level == ""), "parent_code",
           lambda i: f"parent {parent[i]!r} is neither in this file nor loaded")
    c.flag(has_parent & (parent_level != "") & (parent_level != expected), "parent_code",
           lambda i: f"parent {parent[i]!r} is a {parent_level[i]}, a {level[i]} needs a "
                     f"{expected[i]}")
    geom = _check_polygons(c, df["geometry"].to_numpy())
    frame = pd.DataFrame({"code": code, "name": name, "level": level, "parent_code": parent,
                          "geometry": geom})
    return c.finish(frame)


def check_grids(df: pd.DataFrame, keys: StoreKeys, *, first_row: int = 1,
                seen: dict[str, FileKeys] | None = None, duplicates: bool = True) -> Checked:
    """Validate a grids file: ids, communities, tiers, co-managers and polygons."""
    _missing_columns(df, "grids")
    c = _Checker(df, "grids", first_row=first_row, seen=seen,
                 duplicates=duplicates)
    grid_id = c.required_text("grid_id")
    c.unique(grid_id, "grid_id", keys.grid_ids, "a grid of the adopted plan")
    community = c.required_text("community_code")
    lv = lookup(community, keys.area_levels)
    c.flag((community != "") & (lv == ""), "community_code",
           lambda i: f"community {community[i]!r} is not loaded (load areas first)")
    c.flag((community != "") & (lv != "") & (lv != "community"), "community_code",
           lambda i: f"{community[i]!r} is a {lv[i]}, not a community")
    tier = c.text("tier")
    tier_l = np.char.lower(tier.astype(str)).astype(object)
    c.flag((tier_l != "") & ~np.isin(tier_l, TIERS), "tier",
           lambda i: f"{tier[i]!r} is not one of {', '.join(TIERS)}")
    co = c.number("co_managers", required=False, integer=True, minimum=0)
    geom = _check_polygons(c, df["geometry"].to_numpy())
    frame = pd.DataFrame({
        "grid_id": grid_id, "community_code": community,
        "tier": blank_to_none(tier_l),
        "police_area": blank_to_none(c.text("police_area")),
        "co_managers_assigned": np.nan_to_num(co, nan=0).astype(np.int64),
        "geometry": geom,
    })
    return c.finish(frame)


def check_houses(df: pd.DataFrame, keys: StoreKeys, *, first_row: int = 1,
                 seen: dict[str, FileKeys] | None = None, duplicates: bool = True) -> Checked:
    """Validate a houses file: ids, coordinates, addresses, codes and address parts."""
    from gridmgr import codes

    _missing_columns(df, "houses")
    c = _Checker(df, "houses", first_row=first_row, seen=seen,
                 duplicates=duplicates)
    c.unique_text("source_id", keys.source_ids)
    lon, lat = _check_lonlat(c, keys)
    c.require("address")
    has_code = ~c._empty("house_code")
    code_raw = c.text("house_code") if has_code.any() else np.full(len(df), "", dtype=object)
    reasons = np.full(len(df), None, dtype=object)
    if has_code.any():
        reasons[has_code] = codes.code_problems(code_raw[has_code].astype(str))
    c.flag(has_code & (reasons != None), "house_code",  # noqa: E711 (elementwise)
           lambda i: f"house code {code_raw[i]!r} is invalid: {reasons[i]}")
    canon = np.full(len(df), "", dtype=object)
    if has_code.any():
        canon[has_code] = np.char.replace(np.char.replace(
            np.char.upper(code_raw[has_code].astype(str)), "-", ""), " ", "")
    c.unique(canon, "house_code", keys.house_ids_by_code.index, "used by another house")
    building = c.number("building", required=False, integer=True, minimum=0)
    unit = c.number("unit", required=False, integer=True, minimum=0)
    room = c.number("room", required=False, integer=True, minimum=0)
    c.flag(building > 9999, "building", "building number above 9999 cannot be coded")
    c.flag(unit > 99, "unit", "unit number above 99 cannot be coded")
    c.flag(room > 9999, "room", "room number above 9999 cannot be coded")
    area_m2 = c.number("area_m2", required=False, minimum=0)
    community = c._arrow("community_code")
    loaded = [code for code, level in keys.area_levels.items() if level == "community"]
    c.flag(~c.known("community_code", loaded), "community_code",
           lambda i: f"{community[i].as_py()!r} is not a loaded community")
    frame = pd.DataFrame({
        "source_id": c.column("source_id"), "lon": lon, "lat": lat,
        "address": c.column("address"),
        "community_code": c.column("community_code", blank_none=True),
        "house_code": blank_to_none(canon),
        "building": building, "unit": unit, "room": room, "area_m2": area_m2,
        "use": c.column("use", blank_none=True),
    })
    return c.finish(frame)


def _house_refs(c: _Checker, keys: StoreKeys) -> np.ndarray:
    """Resolve house_source_id / house_code columns to store house ids (-1 unknown)."""
    src = c.text("house_source_id")
    code = np.char.replace(np.char.upper(c.text("house_code").astype(str)), "-", "").astype(object)
    ids = pd.Series(src).map(keys.house_ids_by_source)
    ids = ids.fillna(pd.Series(code).map(keys.house_ids_by_code)).fillna(-1)
    ids = ids.to_numpy(dtype=np.int64)
    none = (src == "") & (code == "")
    c.flag(none, "house_source_id", "missing value (give house_source_id or house_code)")
    unknown = ~none & (ids < 0)
    c.flag(unknown, "house_source_id" if (src != "").any() else "house_code",
           lambda i: f"house {src[i] or code[i]!r} is not loaded (load houses first)")
    return ids


def _check_id_numbers(c: _Checker, col: str, required: bool) -> np.ndarray:
    from gridmgr.idnumber import id_number_problems

    vals = c.required_text(col) if required else c.text(col)
    upper = np.char.upper(vals.astype(str)).astype(object)
    present = upper != ""
    probs = np.full(len(upper), None, dtype=object)
    if present.any():
        probs[present] = id_number_problems(upper[present].astype(str))
    c.flag(present & (probs != None), col,  # noqa: E711 (elementwise)
           lambda i: f"ID number {vals[i]!r} fails GB 11643: {probs[i]}")
    return upper


def check_people(df: pd.DataFrame, keys: StoreKeys, *, first_row: int = 1,
                 seen: dict[str, FileKeys] | None = None, duplicates: bool = True) -> Checked:
    """Validate a people file: identities, dates, classes and house references."""
    _missing_columns(df, "people")
    c = _Checker(df, "people", first_row=first_row, seen=seen,
                 duplicates=duplicates)
    source_id = c.required_text("source_id")
    c.unique(source_id, "source_id", keys.source_ids)
    id_number = _check_id_numbers(c, "id_number", required=True)
    c.unique(id_number, "id_number", keys.id_numbers, "held by another person")
    name = c.required_text("name")
    phone = c.text("phone")
    bad_phone = (phone != "") & ~pd.Series(phone).str.fullmatch(r"\+?[0-9\- ]{5,20}").to_numpy()
    c.flag(bad_phone, "phone", lambda i: f"{phone[i]!r} is not a phone number")
    birth = c.date("birth_date", required=True)
    sex_raw = c.required_text("sex")
    sex = pd.Series(sex_raw).map(SEX).to_numpy(dtype=object)
    c.flag((sex_raw != "") & pd.isna(sex), "sex", lambda i: f"{sex_raw[i]!r} is not M or F")
    hukou = c.required_text("hukou_code")
    c.flag((hukou != "") & ~pd.Series(hukou).str.fullmatch(r"\d{6}").to_numpy(), "hukou_code",
           lambda i: f"{hukou[i]!r} is not a 6-digit adcode")
    house_id = _house_refs(c, keys)
    arrived = c.date("arrived_on", required=True)
    today = np.datetime64("today", "D")
    c.flag(~np.isnat(arrived) & (arrived > today), "arrived_on",
           lambda i: f"{arrived[i]} is in the future")
    c.flag(~np.isnat(arrived) & ~np.isnat(birth) & (arrived < birth), "arrived_on",
           lambda i: f"arrived {arrived[i]} before birth {birth[i]}")
    pclass = c.choice("person_class", CLASSES, required=False, default="trusted")
    registered_on = c.date("registered_on", required=False)
    reg_src = c.text("registered_house_source_id")
    reg_house = pd.Series(reg_src).map(keys.house_ids_by_source)
    reg_house_id = reg_house.fillna(-1).to_numpy(dtype=np.int64)
    c.flag((reg_src != "") & (reg_house_id < 0), "registered_house_source_id",
           lambda i: f"house {reg_src[i]!r} is not loaded")
    biz_src = c.text("business_source_id")
    biz = pd.Series(biz_src).map(keys.business_ids_by_source)
    biz_id = biz.fillna(-1).to_numpy(dtype=np.int64)
    c.flag((biz_src != "") & (biz_id < 0), "business_source_id",
           lambda i: f"business {biz_src[i]!r} is not loaded (load businesses first)")
    # The ID number's birth date must agree with birth_date.
    id_birth = pd.to_datetime(pd.Series(id_number).str.slice(6, 14), format="%Y%m%d",
                              errors="coerce").to_numpy(dtype="datetime64[D]")
    mismatch = ~np.isnat(id_birth) & ~np.isnat(birth) & (id_birth != birth)
    c.flag(mismatch, "birth_date",
           lambda i: f"{birth[i]} differs from the ID number's birth date {id_birth[i]}")
    frame = pd.DataFrame({
        "source_id": source_id, "id_number": id_number, "name": name,
        "phone": blank_to_none(phone), "birth_date": birth, "sex": sex,
        "hukou_code": hukou, "house_id": house_id, "arrived_on": arrived,
        "person_class": pclass, "registered_on": registered_on,
        "registered_house_id": np.where(reg_src == "", house_id, reg_house_id),
        "business_id": biz_id,
    })
    return c.finish(frame)


def check_businesses(df: pd.DataFrame, keys: StoreKeys, *, first_row: int = 1,
                     seen: dict[str, FileKeys] | None = None, duplicates: bool = True) -> Checked:
    """Validate a businesses file: ids, names, coordinates and worker counts."""
    _missing_columns(df, "businesses")
    c = _Checker(df, "businesses", first_row=first_row, seen=seen,
                 duplicates=duplicates)
    source_id = c.required_text("source_id")
    c.unique(source_id, "source_id", keys.business_ids_by_source.index)
    name = c.required_text("name")
    lon, lat = _check_lonlat(c, keys)
    workers = c.number("workers", required=True, integer=True, minimum=0)
    frame = pd.DataFrame({"source_id": source_id, "name": name, "lon": lon, "lat": lat,
                          "workers": np.nan_to_num(workers).astype(np.int64)})
    return c.finish(frame)


def check_rentals(df: pd.DataFrame, keys: StoreKeys, *, first_row: int = 1,
                  seen: dict[str, FileKeys] | None = None, duplicates: bool = True) -> Checked:
    """Validate a rentals file: houses, landlords, tenants, class and registration date."""
    _missing_columns(df, "rentals")
    c = _Checker(df, "rentals", first_row=first_row, seen=seen,
                 duplicates=duplicates)
    house_id = _house_refs(c, keys)
    known = house_id >= 0
    first, _, _ = c.first_rows(house_id, known, "house_id")
    dup = known & (first != np.arange(len(house_id)) + first_row)
    c.flag(dup, "house_source_id", "the same house is let twice in this file")
    already = known & pd.Series(house_id).isin(keys.rented_house_ids).to_numpy()
    c.flag(already, "house_source_id", "this house already has a rental record")
    landlord = _check_id_numbers(c, "landlord_id_number", required=True)
    tenants = c.number("tenants", required=True, integer=True, minimum=0)
    klass = c.choice("class", CLASSES, required=True)
    registered_on = c.date("registered_on", required=False)
    frame = pd.DataFrame({"house_id": house_id, "landlord_id_number": landlord,
                          "tenants": np.nan_to_num(tenants).astype(np.int64),
                          "rental_class": klass, "registered_on": registered_on})
    return c.finish(frame)


CHECKS: dict[str, Callable[..., Checked]] = {
    "areas": check_areas,
    "grids": check_grids,
    "houses": check_houses,
    "people": check_people,
    "businesses": check_businesses,
    "rentals": check_rentals,
}


def check(kind: str, df: pd.DataFrame, keys: StoreKeys, *, first_row: int = 1,
          seen: dict[str, FileKeys] | None = None, duplicates: bool = True) -> Checked:
    """Validate a frame of the given kind against what the store already holds.

    For one chunk of a longer file, `first_row` is the file row of the frame's first row
    (every message and `_row` use file rows) and `seen` carries the keys of the file's
    earlier chunks, so a duplicate across chunks is named like one within a chunk.
    Without `duplicates` keys repeated in the file are not looked for at all (keys already
    in the store still are): a caller that relies on the store's UNIQUE constraints
    instead, and checks again with `duplicates` when they object, saves the hashing.
    """
    return CHECKS[kind](df, keys, first_row=first_row, seen=seen, duplicates=duplicates)
