"""Residence permits (居住证) in the store: issue, renew, and the per-grid lists.

The rules live in `gridmgr.permits` (pure); this module reads the facts they need —
current residence, registration, declared stay, residence history, permits held — and
writes permits in one transaction with the person row locked, so two clerks cannot
issue two first permits to the same person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from gridmgr import permits
from gridmgr.errors import BadInput, Conflict, NotFound
from gridmgr.store.bulk import is_pg, read_frame
from gridmgr.store.events import find_person, read_in
from gridmgr.store.plans import adopted_plan_id

LIST_COLUMNS = ["grid_id", "person_id", "id_number", "name", "house_code", "registered_on",
                "eligible_from", "due_by", "overdue", "days_overdue", "last_valid_until"]


@dataclass(frozen=True)
class PermitRecord:
    """A permit as written: who, which kind, how long, from when to when (inclusive)."""

    permit_id: int
    person_id: int
    id_number: str
    kind: str
    years: int
    basis: str | None
    issued_on: dt.date
    valid_from: dt.date
    valid_until: dt.date
    permit_no: str | None
    issued_late: bool  # issued after the deadline (7 days from eligibility)


def _plan(conn: Connection, plan_id: int | None) -> int:
    plan = plan_id if plan_id is not None else adopted_plan_id(conn)
    if plan is None:
        raise BadInput("no grids are loaded yet: load areas and grids first")
    return int(plan)


def _grid_filter(conn: Connection, plan: int, grid_id: str | None) -> None:
    if grid_id is None:
        return
    hit = conn.execute(text("SELECT 1 FROM grid WHERE plan_id = :p AND grid_id = :g"),
                       {"p": plan, "g": grid_id}).first()
    if hit is None:
        raise NotFound(f"grid {grid_id!r} is not in plan {plan}; `gridmgr workload` lists "
                       "the grids")


FACTS_SQL = (
    "SELECT p.id AS person_id, p.id_number, p.name, "
    "CASE WHEN p.floating THEN 1 ELSE 0 END AS floating, p.birth_date, p.registered_on, "
    "r.id AS residence_id, r.arrived_on, h.house_code, g.grid_id, "
    "(SELECT max(e.intended_stay_days) FROM person_event e WHERE e.residence_id = r.id "
    " AND e.event_type IN ('arrive', 'move')) AS intended_stay_days, "
    "(SELECT e.intended_stay_days FROM person_event e WHERE e.person_id = p.id "
    " AND e.intended_stay_days IS NOT NULL ORDER BY e.id DESC LIMIT 1) AS declared_days, "
    "(SELECT e.occurred_on FROM person_event e WHERE e.person_id = p.id "
    " AND e.intended_stay_days IS NOT NULL ORDER BY e.id DESC LIMIT 1) AS declared_on, "
    "(SELECT max(rp.valid_until) FROM residence_permit rp WHERE rp.person_id = p.id) "
    " AS last_valid_until, "
    "(SELECT count(*) FROM residence_permit rp WHERE rp.person_id = p.id "
    " AND rp.valid_from <= :as_of AND rp.valid_until >= :as_of) AS valid_permits "
    "FROM person p JOIN residence r ON r.person_id = p.id AND r.left_on IS NULL "
    "JOIN house h ON h.id = r.house_id "
    "{grid_join} JOIN house_grid hg ON hg.house_id = r.house_id AND hg.plan_id = :plan "
    "{grid_join} JOIN grid g ON g.id = hg.grid_pk "
    "WHERE {where}"
)


def _facts(conn: Connection, *, as_of: dt.date, plan: int, grid_id: str | None = None,
           person_id: int | None = None, floating_only: bool = True,
           adults_by: dt.date | None = None) -> pd.DataFrame:
    """One row per current resident with what the permit rules need."""
    where = ["1 = 1"]
    params: dict[str, Any] = {"as_of": as_of.isoformat(), "plan": plan}
    if floating_only:
        where.append("p.floating")
    if grid_id is not None:
        where.append("g.grid_id = :grid")
        params["grid"] = grid_id
    if person_id is not None:
        where.append("p.id = :pid")
        params["pid"] = int(person_id)
    if adults_by is not None:
        where.append("p.birth_date <= :born_by")
        params["born_by"] = adults_by.isoformat()
    sql = FACTS_SQL.format(grid_join="" if grid_id is not None else "LEFT",
                           where=" AND ".join(where))
    df = read_frame(conn, sql, params)
    for col in ("birth_date", "registered_on", "arrived_on", "last_valid_until", "declared_on"):
        df[col] = permits.as_days(df[col].to_numpy(dtype=object)) if len(df) else pd.Series(
            [], dtype="datetime64[s]")
    return df


def _since(conn: Connection, facts: pd.DataFrame, settings: permits.PermitSettings,
           everyone: bool = False) -> np.ndarray:
    """First day of each person's continuous residence (the current stay's chain).

    Only people whose current stay alone does not already settle the question need
    their history read: recent movers without a declared stay (or `everyone`).
    """
    since = facts["arrived_on"].to_numpy(dtype="datetime64[D]").copy()
    if facts.empty:
        return since
    intended = pd.to_numeric(facts["intended_stay_days"], errors="coerce").to_numpy(float)
    as_short = since + np.timedelta64(settings.min_stay_days, "D")
    need = np.ones(len(facts), dtype=bool) if everyone else (
        (np.isnan(intended) | (intended < settings.min_stay_days)) & ~np.isnat(as_short))
    if not need.any():
        return since
    ids = facts["person_id"].to_numpy(dtype=np.int64)[need]
    hist = read_in(conn, "SELECT person_id, arrived_on, left_on FROM residence "
                          "WHERE person_id IN :ids", "ids", np.unique(ids))
    chain = permits.continuous_since(hist["person_id"].to_numpy(dtype=np.int64),
                                     hist["arrived_on"].to_numpy(dtype=object),
                                     hist["left_on"].to_numpy(dtype=object),
                                     settings.continuity_gap_days)
    got = pd.Series(ids).map(chain).to_numpy(dtype="datetime64[D]")
    since[need] = np.where(np.isnat(got), since[need], got)
    return since


def _eligibility(conn: Connection, facts: pd.DataFrame, as_of: dt.date,
                 settings: permits.PermitSettings) -> permits.Eligibility:
    since = _since(conn, facts, settings)
    intended = pd.to_numeric(facts["intended_stay_days"], errors="coerce").to_numpy(float)
    # A move without a new declaration keeps the stay declared earlier in the same residence.
    declared = pd.to_numeric(facts["declared_days"], errors="coerce").to_numpy(float)
    declared_on = facts["declared_on"].to_numpy(dtype="datetime64[D]")
    same_stay = ~np.isnat(declared_on) & ~np.isnat(since) & (declared_on >= since)
    intended = np.where(np.isnan(intended) & same_stay, declared, intended)
    return permits.permit_eligibility(
        floating=facts["floating"].to_numpy(dtype=np.int64) == 1,
        birth_date=facts["birth_date"].to_numpy(dtype="datetime64[D]"),
        registered_on=facts["registered_on"].to_numpy(dtype="datetime64[D]"),
        stay_since=since, intended_stay_days=intended, as_of=as_of, settings=settings)


def eligible_without_permit(conn: Connection, *, as_of: dt.date | None = None,
                            grid_id: str | None = None, plan_id: int | None = None,
                            settings: permits.PermitSettings | None = None) -> pd.DataFrame:
    """Eligible people without a permit valid on `as_of`, per grid, with their deadline.

    ``overdue`` marks those never issued one whose deadline (eligibility + 7 days) has
    passed; ``last_valid_until`` shows a lapsed permit (a renewal is then what is due).
    """
    s = settings or permits.PermitSettings()
    as_of = as_of or dt.date.today()
    plan = _plan(conn, plan_id)
    _grid_filter(conn, plan, grid_id)
    born_by = permits.add_years(np.datetime64(as_of, "D"), -s.min_age_years)[0] + np.timedelta64(
        2, "D")
    facts = _facts(conn, as_of=as_of, plan=plan, grid_id=grid_id,
                   adults_by=pd.Timestamp(born_by).date())
    facts = facts[facts["valid_permits"].astype(int) == 0].reset_index(drop=True)
    el = _eligibility(conn, facts, as_of, s)
    out = facts[el.eligible].copy()
    due = el.due_by[el.eligible]
    never = np.isnat(out["last_valid_until"].to_numpy(dtype="datetime64[D]"))
    late = permits.overdue(due, ~never, as_of)
    out["eligible_from"] = el.eligible_from[el.eligible]
    out["due_by"] = due
    out["overdue"] = late
    out["days_overdue"] = np.where(late, (np.datetime64(as_of, "D") - due).astype(np.int64), 0)
    return out[LIST_COLUMNS].sort_values(["grid_id", "due_by", "person_id"],
                                         na_position="last").reset_index(drop=True)


def overdue_permits(conn: Connection, *, as_of: dt.date | None = None,
                    grid_id: str | None = None, within_days: int = 0,
                    plan_id: int | None = None,
                    settings: permits.PermitSettings | None = None) -> pd.DataFrame:
    """First permits not issued by their deadline (or due within `within_days`), per grid."""
    if within_days < 0:
        raise BadInput(f"--within {within_days} must be ≥ 0 days")
    as_of = as_of or dt.date.today()
    rows = eligible_without_permit(conn, as_of=as_of, grid_id=grid_id, plan_id=plan_id,
                                   settings=settings)
    never = rows["last_valid_until"].isna()
    due = rows["due_by"].to_numpy(dtype="datetime64[D]")
    soon = due <= np.datetime64(as_of, "D") + np.timedelta64(int(within_days), "D")
    keep = never & (rows["overdue"] | (soon if within_days else False))
    return rows[keep].reset_index(drop=True)


def expiring_permits(conn: Connection, *, days: int, as_of: dt.date | None = None,
                     grid_id: str | None = None,
                     plan_id: int | None = None) -> pd.DataFrame:
    """Permits of current residents that end within `days` days and are not yet renewed."""
    if days < 0:
        raise BadInput(f"--days {days} must be ≥ 0")
    as_of = as_of or dt.date.today()
    plan = _plan(conn, plan_id)
    _grid_filter(conn, plan, grid_id)
    until = as_of + dt.timedelta(days=int(days))
    join = "" if grid_id is not None else "LEFT"
    df = read_frame(conn, (
        "SELECT g.grid_id, p.id AS person_id, p.id_number, p.name, h.house_code, "
        "rp.id AS permit_id, rp.permit_no, rp.kind, rp.years, rp.valid_from, rp.valid_until "
        "FROM residence_permit rp JOIN person p ON p.id = rp.person_id "
        "JOIN residence r ON r.person_id = p.id AND r.left_on IS NULL "
        "JOIN house h ON h.id = r.house_id "
        f"{join} JOIN house_grid hg ON hg.house_id = r.house_id AND hg.plan_id = :plan "
        f"{join} JOIN grid g ON g.id = hg.grid_pk "
        "WHERE rp.valid_until >= :as_of AND rp.valid_until <= :until "
        "AND NOT EXISTS (SELECT 1 FROM residence_permit n WHERE n.person_id = rp.person_id "
        "AND n.valid_from > rp.valid_from) "
        + ("AND g.grid_id = :grid " if grid_id is not None else "")
        + "ORDER BY rp.valid_until, p.id"),
        {"plan": plan, "as_of": as_of.isoformat(), "until": until.isoformat(),
         "grid": grid_id})
    ends = permits.as_days(df["valid_until"].to_numpy(dtype=object)) if len(df) else np.empty(
        0, dtype="datetime64[D]")
    keep = permits.expiring(ends, as_of, days)
    df = df[keep].reset_index(drop=True)
    df["days_left"] = (ends[keep] - np.datetime64(as_of, "D")).astype(np.int64)
    return df


def permits_of(conn: Connection, *, person: str) -> pd.DataFrame:
    """Every permit a person has held, oldest first."""
    pid, _ = find_person(conn, person)
    return read_frame(conn, "SELECT id AS permit_id, permit_no, kind, years, basis, issued_on, "
                            "valid_from, valid_until, previous_id FROM residence_permit "
                            "WHERE person_id = :p ORDER BY valid_from", {"p": pid})


def _lock_person(conn: Connection, person_id: int) -> None:
    if is_pg(conn):
        conn.execute(text("SELECT id FROM person WHERE id = :p FOR UPDATE"), {"p": person_id})


def _write(conn: Connection, *, kind: Literal["first", "renewal"], person: str,
           on: dt.date | None, years: int | None, basis: str | None, permit_no: str | None,
           clerk: str | None, settings: permits.PermitSettings | None,
           today: dt.date | None, plan_id: int | None) -> PermitRecord:
    s = settings or permits.PermitSettings()
    today = today or dt.date.today()
    on = on or today
    if on > today:
        raise BadInput(f"{on} is in the future; a permit is recorded on or after the day "
                       "it is issued")
    with conn.begin_nested():
        pid, idn = find_person(conn, person)
        _lock_person(conn, pid)
        plan = adopted_plan_id(conn) if plan_id is None else plan_id
        facts = _facts(conn, as_of=on, plan=-1 if plan is None else int(plan), person_id=pid,
                       floating_only=False)
        if facts.empty:
            raise BadInput(f"{idn} has no current residence; register an arrival first")
        el = _eligibility(conn, facts, on, s)
        if not el.eligible[0]:
            raise BadInput(f"{idn} is not eligible for a residence permit on {on}: "
                           f"{el.reason[0]}")
        held = read_frame(conn, "SELECT id, valid_from, valid_until FROM residence_permit "
                                "WHERE person_id = :p ORDER BY valid_from DESC", {"p": pid})
        last_until = (pd.Timestamp(permits.as_days(held["valid_until"].iloc[0])[0]).date()
                      if len(held) else None)
        if kind == "first" and last_until is not None:
            if last_until >= on:
                raise Conflict(f"{idn} already holds a residence permit valid until "
                               f"{last_until}; renew it instead")
            raise BadInput(f"{idn} held a residence permit until {last_until}; renew it "
                           "instead of issuing a first one")
        since = None
        if kind == "renewal":
            chain = _since(conn, facts, s, everyone=True)[0]
            since = None if np.isnat(chain) else pd.Timestamp(chain).date()
        terms = permits.permit_terms(kind=kind, on=on, years=years, basis=basis,
                                     previous_valid_until=last_until, since=since, settings=s)
        if permit_no is not None:
            taken = conn.execute(text("SELECT 1 FROM residence_permit WHERE permit_no = :n"),
                                 {"n": permit_no}).first()
            if taken is not None:
                raise Conflict(f"permit number {permit_no!r} is already used")
        due = el.due_by[0]
        issued_late = kind == "first" and not np.isnat(due) and np.datetime64(on, "D") > due
        new_id = conn.execute(text(
            "INSERT INTO residence_permit (person_id, permit_no, kind, years, basis, issued_on, "
            "valid_from, valid_until, previous_id, clerk, recorded_at) VALUES (:p, :n, :k, :y, "
            ":b, :i, :f, :u, :prev, :c, :t) RETURNING id"), {
                "p": pid, "n": permit_no, "k": terms.kind, "y": terms.years, "b": terms.basis,
                "i": on.isoformat(), "f": terms.valid_from.isoformat(),
                "u": terms.valid_until.isoformat(),
                "prev": int(held["id"].iloc[0]) if len(held) else None, "c": clerk,
                "t": dt.datetime.now().replace(microsecond=0).isoformat(sep=" ")}).scalar_one()
    return PermitRecord(int(new_id), pid, idn, terms.kind, terms.years, terms.basis, on,
                        terms.valid_from, terms.valid_until, permit_no, bool(issued_late))


def issue_permit(conn: Connection, *, person: str, on: dt.date | None = None,
                 years: int | None = None, permit_no: str | None = None,
                 clerk: str | None = None, settings: permits.PermitSettings | None = None,
                 today: dt.date | None = None, plan_id: int | None = None) -> PermitRecord:
    """Issue a first residence permit (1 year) to an eligible person; atomic.

    `BadInput` says why a person is not eligible; `Conflict` when they already hold one.
    ``issued_late`` on the result tells whether the 7-day deadline was missed.
    """
    return _write(conn, kind="first", person=person, on=on, years=years, basis=None,
                  permit_no=permit_no, clerk=clerk, settings=settings, today=today,
                  plan_id=plan_id)


def renew_permit(conn: Connection, *, person: str, on: dt.date | None = None,
                 years: int | None = None, basis: str | None = None,
                 permit_no: str | None = None, clerk: str | None = None,
                 settings: permits.PermitSettings | None = None, today: dt.date | None = None,
                 plan_id: int | None = None) -> PermitRecord:
    """Renew a person's permit: 1 year, or 3 or 5 on request after 2 years' residence.

    The renewal continues the last permit without a gap or overlap (or starts on `on`
    after a lapse); a long one needs a basis: labour contract, lease or own home.
    """
    return _write(conn, kind="renewal", person=person, on=on, years=years, basis=basis,
                  permit_no=permit_no, clerk=clerk, settings=settings, today=today,
                  plan_id=plan_id)
