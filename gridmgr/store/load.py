"""Load interchange files into a store: validate the whole file, then write in one transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from gridmgr import codes
from gridmgr.assign import assign_points
from gridmgr.errors import BadInput, RowProblem, ValidationFailed, ValidationReport
from gridmgr.geo import area_km2
from gridmgr.interchange import read_table
from gridmgr.progress import Quiet, Reporter
from gridmgr.store import counts
from gridmgr.store.bulk import (
    Points,
    allocate_ids,
    bulk_insert,
    geometries,
    read_frame,
    read_ints,
)
from gridmgr.store.models import GRID_COUNT_COLUMNS
from gridmgr.store.plans import adopted_plan_id, ensure_adopted_plan, plan_grids
from gridmgr.store.schema import upgrade
from gridmgr.validate import StoreKeys, check, masked

ORDER_HINT = "load areas, then grids, houses, businesses, people and rentals"


@dataclass
class LoadResult:
    """What a load did: rows read, written and rejected, warnings, unassigned houses."""

    kind: str
    rows: int
    loaded: int
    report: ValidationReport
    rejected_rows: list[int] = field(default_factory=list)
    outside_areas: list[str] = field(default_factory=list)
    unassigned: list[str] = field(default_factory=list)
    report_path: Path | None = None

    def summary(self) -> str:
        """One line for the terminal."""
        parts = [f"{self.kind}: loaded {self.loaded} of {self.rows} rows"]
        if self.rejected_rows:
            parts.append(f"skipped {len(self.rejected_rows)} bad rows")
        if self.outside_areas:
            parts.append(f"{len(self.outside_areas)} outside every area (kept, flagged)")
        if self.unassigned:
            parts.append(f"{len(self.unassigned)} in no grid (kept, unassigned)")
        if self.report_path:
            parts.append(f"report: {self.report_path}")
        return "; ".join(parts)


def write_report(report: ValidationReport, path: Path) -> Path:
    """Write every problem and warning as CSV rows (row, column, severity, reason)."""
    rows = [(p.row, p.column, "error", p.reason) for p in report.problems]
    rows += [(p.row, p.column, "warning", p.reason) for p in report.warnings]
    pd.DataFrame(rows, columns=["row", "column", "severity", "reason"]).sort_values(
        ["row", "severity"]).to_csv(path, index=False)
    return path


def store_keys(conn: Connection, kind: str) -> StoreKeys:
    """Read from the store what validating a file of `kind` needs to know."""
    keys = StoreKeys()
    areas = read_frame(conn, "SELECT code, level FROM admin_area")
    keys.area_levels = dict(zip(areas["code"].astype(str), areas["level"].astype(str),
                                strict=True))
    if kind in ("houses", "businesses"):
        fn = ("ST_XMin", "ST_YMin", "ST_XMax", "ST_YMax") if conn.dialect.name == "postgresql" \
            else ("MbrMinX", "MbrMinY", "MbrMaxX", "MbrMaxY")
        ext = conn.execute(text(
            f"SELECT min({fn[0]}(geom)), min({fn[1]}(geom)), max({fn[2]}(geom)), "
            f"max({fn[3]}(geom)) FROM admin_area")).first()
        if ext is not None and ext[0] is not None:
            keys.extent = (float(ext[0]), float(ext[1]), float(ext[2]), float(ext[3]))
    if kind == "grids":
        plan = adopted_plan_id(conn)
        if plan is not None:
            g = read_frame(conn, "SELECT grid_id FROM grid WHERE plan_id = :p", {"p": plan})
            keys.grid_ids = pd.Index(g["grid_id"].astype(str))
    if kind in ("houses", "people", "rentals"):
        h = read_frame(conn, "SELECT id, source_id, house_code FROM house", fast=True,
                       text_columns=("source_id", "house_code"))
        ids = h["id"].to_numpy(dtype=np.int64)
        keys.house_ids_by_source = pd.Series(ids, index=h["source_id"].astype(str))
        has = h["house_code"].notna().to_numpy()
        keys.house_ids_by_code = pd.Series(ids[has], index=h["house_code"][has].astype(str))
        if kind == "houses":
            keys.source_ids = pd.Index(h["source_id"].astype(str))
    if kind in ("people", "businesses"):
        b = read_frame(conn, "SELECT id, source_id FROM business", fast=True,
                       text_columns=("source_id",))
        keys.business_ids_by_source = pd.Series(b["id"].to_numpy(dtype=np.int64),
                                                index=b["source_id"].astype(str))
    if kind == "people":
        p = read_frame(conn, "SELECT source_id, id_number FROM person", fast=True,
                       text_columns=("source_id", "id_number"))
        keys.source_ids = pd.Index(p["source_id"].astype(str))
        keys.id_numbers = pd.Index(p["id_number"].astype(str))
    if kind == "rentals":
        keys.rented_house_ids = pd.Index(read_ints(conn, "SELECT house_id FROM rental_record"))
    return keys


def load_file(engine: Engine, kind: str, path: str | Path, *, crs: int | None = None,
              skip_bad: bool = False, report_path: Path | None = None,
              reporter: Reporter | None = None) -> LoadResult:
    """Read, validate and load one interchange file; all or nothing unless `skip_bad`."""
    frame = read_table(path, kind, crs)
    if report_path is None:
        report_path = Path(f"{Path(path).name}.report.csv")
    return load_frame(engine, kind, frame, skip_bad=skip_bad, report_path=report_path,
                      reporter=reporter)


def load_frame(engine: Engine, kind: str, frame: pd.DataFrame, *, skip_bad: bool = False,
               report_path: Path | None = None, reporter: Reporter | None = None) -> LoadResult:
    """Validate a frame against the store and write its rows in one transaction."""
    rep: Reporter = reporter or Quiet()
    upgrade(engine)
    with engine.begin() as conn:
        keys = store_keys(conn, kind)
        checked = check(kind, frame, keys)
        report = checked.report
        good = checked.frame[checked.good].reset_index(drop=True)
        writer = WRITERS[kind]
        result = LoadResult(kind=kind, rows=len(frame), loaded=0, report=report,
                            rejected_rows=report.bad_rows)
        extra = writer(conn, good, report, rep, result, dry=True)
        if report.problems and not skip_bad:
            if report_path is not None:
                result.report_path = write_report(report, report_path)
            hint = (f"nothing was written; full report in {result.report_path}; "
                    "fix the rows or rerun with --skip-bad to load the good ones")
            raise ValidationFailed(report, hint)
        if extra is not None:
            good = good[extra].reset_index(drop=True)
        result.rejected_rows = report.bad_rows
        writer(conn, good, report, rep, result, dry=False)
        result.loaded = len(good)
    if report_path is not None and (report.problems or report.warnings):
        result.report_path = write_report(report, report_path)
    return result


# --- writers: each is called twice, first dry (late checks that need the store), then for real


def _write_areas(conn: Connection, good: pd.DataFrame, report: ValidationReport,
                 reporter: Reporter, result: LoadResult, dry: bool) -> np.ndarray | None:
    if dry:
        return None
    frame = good[["code", "name", "level", "parent_code"]].copy()
    frame["parent_code"] = frame["parent_code"].replace("", None)
    frame.insert(0, "id", allocate_ids(conn, "admin_area", len(frame)))
    bulk_insert(conn, "admin_area", frame, geometry=good["geometry"].to_numpy(),
                reporter=reporter, label="writing areas")
    return None


def _write_grids(conn: Connection, good: pd.DataFrame, report: ValidationReport,
                 reporter: Reporter, result: LoadResult, dry: bool) -> np.ndarray | None:
    if dry:
        return None
    plan = ensure_adopted_plan(conn)
    frame = good[["grid_id", "community_code", "tier", "police_area",
                  "co_managers_assigned"]].copy()
    frame.insert(0, "plan_id", plan)
    frame.insert(0, "id", allocate_ids(conn, "grid", len(frame)))
    frame["locked"] = False
    frame["area_km2"] = area_km2(good["geometry"].to_numpy())
    bulk_insert(conn, "grid", frame, geometry=good["geometry"].to_numpy(), reporter=reporter,
                label="writing grids")
    zeros = pd.DataFrame(0, index=pd.Index(frame["id"].to_numpy(), name="grid_pk"),
                         columns=list(GRID_COUNT_COLUMNS))
    zeros = zeros.reset_index()
    zeros.insert(1, "plan_id", plan)
    bulk_insert(conn, "grid_count", zeros)
    stats = assign_plan(conn, plan, reporter=reporter)
    result.unassigned = stats.unassigned_source_ids
    return None


def _communities(conn: Connection) -> tuple[np.ndarray, np.ndarray]:
    df = read_frame(conn, "SELECT code, ST_AsBinary(geom) AS wkb FROM admin_area "
                          "WHERE level = 'community' ORDER BY code")
    geoms = geometries(df["wkb"])
    return df["code"].astype(str).to_numpy(dtype=object), geoms


def community_of_points(conn: Connection, lon: np.ndarray, lat: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:  # (codes, outside flags)
    """Community code covering each point, and a flag for points outside every community.

    A point outside every community (coarse boundary files) gets the nearest community, so
    it can still be coded; the flag keeps it visible.
    """
    names, geoms = _communities(conn)
    n = len(lon)
    if len(names) == 0:
        return np.full(n, None, dtype=object), np.ones(n, dtype=bool)
    idx = assign_points(lon, lat, geoms)
    outside = idx < 0
    if outside.any():
        tree = shapely.STRtree(geoms)
        pts = shapely.points(lon[outside], lat[outside])
        nearest = tree.query_nearest(pts, return_distance=False, all_matches=False)
        fill = np.full(outside.sum(), -1, dtype=np.int64)
        fill[nearest[0]] = nearest[1]
        idx = idx.copy()
        idx[outside] = fill
    codes_out = masked(names[np.maximum(idx, 0)], idx < 0)
    return codes_out, np.asarray(outside, dtype=bool)


def _issue_codes(conn: Connection, good: pd.DataFrame, community: np.ndarray) -> np.ndarray:
    """Codes for houses without one; address parts missing → building 0, unit 0, next room."""
    code = good["house_code"].to_numpy(dtype=object).copy()
    need = pd.isna(code) & pd.notna(community)
    if not need.any():
        return code
    b = good["building"].to_numpy(dtype=float)
    u = good["unit"].to_numpy(dtype=float)
    r = good["room"].to_numpy(dtype=float)
    partial = need & (np.isnan(b) | np.isnan(u) | np.isnan(r))
    b = np.where(partial, 0, np.nan_to_num(b)).astype(np.int64)
    u = np.where(partial, 0, np.nan_to_num(u)).astype(np.int64)
    r = np.where(partial, 0, np.nan_to_num(r)).astype(np.int64)
    if partial.any():
        top = read_frame(conn, "SELECT community_code, max(room) AS top FROM house "
                               "WHERE building = 0 AND unit = 0 GROUP BY community_code")
        base = pd.Series(community[partial]).map(
            pd.Series(top["top"].to_numpy(dtype=np.int64), index=top["community_code"])
        ).fillna(0).to_numpy(dtype=np.int64)
        seq = pd.Series(community[partial]).groupby(community[partial]).cumcount().to_numpy()
        r[partial] = base + seq + 1
    code[need] = codes.encode_many(community[need].astype(str), b[need], u[need], r[need])
    return code


def _write_houses(conn: Connection, good: pd.DataFrame, report: ValidationReport,
                  reporter: Reporter, result: LoadResult, dry: bool) -> np.ndarray | None:
    lon = good["lon"].to_numpy(dtype=float)
    lat = good["lat"].to_numpy(dtype=float)
    if dry:
        community, outside = community_of_points(conn, lon, lat)
        given = good["community_code"].to_numpy(dtype=object)
        community = np.where(pd.notna(given), given, community)
        code = _issue_codes(conn, good, community)
        rows = good["_row"].to_numpy()
        s = pd.Series(code)
        dup = (s.duplicated(keep=False) & s.notna()).to_numpy()
        taken = read_frame(conn, "SELECT house_code FROM house WHERE house_code IS NOT NULL",
                           fast=True, text_columns=("house_code",))
        used = s.isin(pd.Index(taken["house_code"].astype(str))).to_numpy()
        for i in np.flatnonzero(dup | used)[:2000]:
            report.problems.append(RowProblem(int(rows[i]), "room", (
                f"house code {code[i]} (community + building + unit + room) is "
                f"{'already used in the store' if used[i] else 'shared with another row'}; "
                "each dwelling needs its own building/unit/room")))
        for i in np.flatnonzero(outside)[:2000]:
            report.warnings.append(RowProblem(int(rows[i]), "lon", (
                "outside every community: loaded and flagged"
                + (f", coded under the nearest community {community[i]}"
                   if community[i] else ""))))
        good["_community"] = community
        good["_outside"] = outside
        good["_code"] = code
        return ~(dup | used)
    frame = pd.DataFrame({
        "id": allocate_ids(conn, "house", len(good)),
        "source_id": good["source_id"], "house_code": good["_code"],
        "lon": lon, "lat": lat, "address": good["address"],
        "building": good["building"], "unit": good["unit"], "room": good["room"],
        "area_m2": good["area_m2"], "use": good["use"],
        "community_code": good["_community"], "outside_areas": good["_outside"].astype(bool),
    })
    for c in ("building", "unit", "room"):
        frame[c] = frame[c].astype("Int64")
    bulk_insert(conn, "house", frame, geometry=Points(lon, lat), reporter=reporter,
                label="writing houses")
    result.outside_areas = frame.loc[frame["outside_areas"], "source_id"].tolist()
    unassigned = np.zeros(len(frame), dtype=bool)
    for plan in counts.live_plans(conn):
        idx_to_pk, geoms, _ = plan_grids(conn, plan)
        gi = assign_points(lon, lat, geoms)
        pk = np.where(gi >= 0, idx_to_pk[np.maximum(gi, 0)], -1)
        ok = pk >= 0
        link = pd.DataFrame({"plan_id": plan, "house_id": frame["id"].to_numpy()[ok],
                             "grid_pk": pk[ok]})
        bulk_insert(conn, "house_grid", link, reporter=reporter, label="linking houses")
        counts.apply_deltas(conn, counts.tally(pk, counts.house_columns(len(pk))))
        if plan == adopted_plan_id(conn):
            unassigned = ~ok
    result.unassigned = frame.loc[unassigned, "source_id"].tolist() if len(
        counts.live_plans(conn)) else []
    return None


def _write_businesses(conn: Connection, good: pd.DataFrame, report: ValidationReport,
                      reporter: Reporter, result: LoadResult, dry: bool) -> np.ndarray | None:
    if dry:
        return None
    lon = good["lon"].to_numpy(dtype=float)
    lat = good["lat"].to_numpy(dtype=float)
    community, _ = community_of_points(conn, lon, lat)
    frame = pd.DataFrame({
        "id": allocate_ids(conn, "business", len(good)), "source_id": good["source_id"],
        "name": good["name"], "lon": lon, "lat": lat, "workers": good["workers"],
        "community_code": community,
    })
    bulk_insert(conn, "business", frame, geometry=Points(lon, lat), reporter=reporter,
                label="writing businesses")
    for plan in counts.live_plans(conn):
        idx_to_pk, geoms, _ = plan_grids(conn, plan)
        gi = assign_points(lon, lat, geoms)
        pk = np.where(gi >= 0, idx_to_pk[np.maximum(gi, 0)], -1)
        ok = pk >= 0
        bulk_insert(conn, "business_grid", pd.DataFrame({
            "plan_id": plan, "business_id": frame["id"].to_numpy()[ok], "grid_pk": pk[ok]}))
        counts.apply_deltas(conn, counts.tally(pk, counts.business_columns(
            frame["workers"].to_numpy())))
    return None


def city_prefixes(conn: Connection) -> list[str]:
    """Four-digit prefixes of the loaded districts' adcodes: hukou elsewhere means floating."""
    rows = conn.execute(text("SELECT DISTINCT substr(code, 1, 4) FROM admin_area "
                             "WHERE level = 'district'")).scalars().all()
    return [str(r) for r in rows]


def _write_people(conn: Connection, good: pd.DataFrame, report: ValidationReport,
                  reporter: Reporter, result: LoadResult, dry: bool) -> np.ndarray | None:
    if dry:
        return None
    prefixes = city_prefixes(conn)
    hukou = good["hukou_code"].astype(str)
    floating = ~hukou.str.slice(0, 4).isin(prefixes).to_numpy()
    registered_on = good["registered_on"].to_numpy(dtype="datetime64[D]")
    reg_house = good["registered_house_id"].to_numpy(dtype=np.int64)
    house_id = good["house_id"].to_numpy(dtype=np.int64)
    ids = allocate_ids(conn, "person", len(good))
    person = pd.DataFrame({
        "id": ids, "source_id": good["source_id"], "id_number": good["id_number"],
        "name": good["name"], "phone": good["phone"], "birth_date": good["birth_date"],
        "sex": good["sex"], "hukou_code": hukou, "floating": floating,
        "person_class": good["person_class"], "registered_on": registered_on,
        "registered_house_id": pd.array(np.where(reg_house >= 0, reg_house, 0),
                                        dtype="Int64"),
    })
    person.loc[reg_house < 0, "registered_house_id"] = pd.NA
    bulk_insert(conn, "person", person, reporter=reporter, label="writing people")
    residence = pd.DataFrame({
        "id": allocate_ids(conn, "residence", len(good)), "person_id": ids,
        "house_id": house_id, "arrived_on": good["arrived_on"], "left_on": pd.NaT,
        "entered_on": registered_on,
    })
    bulk_insert(conn, "residence", residence, reporter=reporter, label="writing residences")
    biz = good["business_id"].to_numpy(dtype=np.int64)
    works = biz >= 0
    if works.any():
        bulk_insert(conn, "employment", pd.DataFrame({
            "id": allocate_ids(conn, "employment", int(works.sum())),
            "person_id": ids[works], "business_id": biz[works],
            "started_on": good["arrived_on"].to_numpy()[works], "ended_on": pd.NaT,
        }))
    rows = pd.DataFrame({
        "house_id": house_id, "floating": floating.astype(int),
        "reg": (~np.isnat(registered_on)).astype(int),
        "consistent": (reg_house == house_id).astype(int),
        "person_class": good["person_class"].to_numpy(dtype=object),
    })
    for plan in counts.live_plans(conn):
        counts.apply_deltas(conn, counts.people_tally(counts.house_grid_map(conn, plan), rows))
    return None


def _write_rentals(conn: Connection, good: pd.DataFrame, report: ValidationReport,
                   reporter: Reporter, result: LoadResult, dry: bool) -> np.ndarray | None:
    if dry:
        return None
    from gridmgr.inspections import due_dates
    from gridmgr.settings import WorkloadSettings

    registered_on = good["registered_on"].to_numpy(dtype="datetime64[D]")
    start = np.where(np.isnat(registered_on), np.datetime64(dt.date.today(), "D"),
                     registered_on)
    klass = good["rental_class"].to_numpy(dtype=object)
    due = due_dates(klass, np.full(len(good), np.datetime64("NaT"), dtype="datetime64[D]"),
                    start, WorkloadSettings())
    frame = pd.DataFrame({
        "id": allocate_ids(conn, "rental_record", len(good)), "house_id": good["house_id"],
        "landlord_id_number": good["landlord_id_number"], "tenants": good["tenants"],
        "rental_class": klass, "registered_on": registered_on, "class_changed_on": pd.NaT,
        "last_inspected_on": pd.NaT, "next_due_on": due,
    })
    bulk_insert(conn, "rental_record", frame, reporter=reporter, label="writing rentals")
    for plan in counts.live_plans(conn):
        hg = counts.house_grid_map(conn, plan)
        pk = counts._lookup(hg, frame["house_id"].to_numpy(dtype=np.int64))
        counts.apply_deltas(conn, counts.tally(pk, counts.rental_columns(
            klass, ~np.isnat(registered_on))))
    return None


WRITERS = {
    "areas": _write_areas,
    "grids": _write_grids,
    "houses": _write_houses,
    "businesses": _write_businesses,
    "people": _write_people,
    "rentals": _write_rentals,
}


@dataclass
class AssignStats:
    """Outcome of assigning every house of a plan."""

    houses: int
    assigned: int
    unassigned_source_ids: list[str]
    seconds: float


def assign_plan(conn: Connection, plan_id: int, reporter: Reporter | None = None
                ) -> AssignStats:
    """(Re)assign every house and business to a plan's grids and rebuild its counts."""
    import time

    t0 = time.perf_counter()
    rep: Reporter = reporter or Quiet()
    idx_to_pk, geoms, _ = plan_grids(conn, plan_id)
    houses = read_frame(conn, "SELECT id, source_id, lon, lat FROM house ORDER BY id")
    with rep.step("assigning houses to grids", len(houses)) as bar:
        gi = assign_points(houses["lon"].to_numpy(dtype=float),
                           houses["lat"].to_numpy(dtype=float), geoms)
        bar.advance(len(houses))
    pk = np.where(gi >= 0, idx_to_pk[np.maximum(gi, 0)], -1) if len(geoms) else np.full(
        len(houses), -1)
    ok = pk >= 0
    conn.execute(text("DELETE FROM house_grid WHERE plan_id = :p"), {"p": plan_id})
    bulk_insert(conn, "house_grid", pd.DataFrame({
        "plan_id": plan_id, "house_id": houses["id"].to_numpy(dtype=np.int64)[ok],
        "grid_pk": pk[ok]}), reporter=rep, label="linking houses to grids")
    biz = read_frame(conn, "SELECT id, lon, lat FROM business ORDER BY id")
    bgi = assign_points(biz["lon"].to_numpy(dtype=float), biz["lat"].to_numpy(dtype=float),
                        geoms) if len(geoms) else np.full(len(biz), -1)
    bpk = np.where(bgi >= 0, idx_to_pk[np.maximum(bgi, 0)], -1)
    conn.execute(text("DELETE FROM business_grid WHERE plan_id = :p"), {"p": plan_id})
    bulk_insert(conn, "business_grid", pd.DataFrame({
        "plan_id": plan_id, "business_id": biz["id"].to_numpy(dtype=np.int64)[bpk >= 0],
        "grid_pk": bpk[bpk >= 0]}))
    counts.write_counts(conn, plan_id, counts.recompute(conn, plan_id))
    return AssignStats(houses=len(houses), assigned=int(ok.sum()),
                       unassigned_source_ids=houses.loc[~ok, "source_id"].astype(str).tolist(),
                       seconds=time.perf_counter() - t0)


def require_loaded(conn: Connection, what: str) -> None:
    """Raise BadInput when a table the command needs is empty."""
    table = {"areas": "admin_area", "grids": "grid", "houses": "house"}[what]
    if conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0:
        raise BadInput(f"no {what} are loaded yet; {ORDER_HINT}")
