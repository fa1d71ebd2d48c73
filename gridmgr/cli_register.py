"""`gridmgr register …` (来有登记、去有注销) and `gridmgr permits …` (居住证) commands.

Thin wrappers over gridmgr.store.events and gridmgr.store.permits_store. Every value is
parsed here so bad input ends with exit code 2 and one line on stderr.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from gridmgr.errors import BadInput, NotFound

F = TypeVar("F", bound=Callable[..., Any])

register_app = typer.Typer(no_args_is_help=True, help=(
    "Registration events: arrive, move, leave, correct, import, rental "
    "(registered on arrival, cancelled on leaving: 来有登记、去有注销)."))
permits_app = typer.Typer(no_args_is_help=True, help=(
    "Residence permits (居住证): due, expiring, eligible, issue, renew, show."))

DbOpt = Annotated[str | None, typer.Option(
    "--db", help="store URL (default $GRIDMGR_DATABASE_URL or sqlite:///gridmgr.db)")]
FmtOpt = Annotated[str, typer.Option("--format", help="table|csv|json")]
GridOpt = Annotated[str | None, typer.Option("--grid", help="only this grid (grid_id)")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="date to judge on (default today)")]
ClerkOpt = Annotated[str | None, typer.Option(help="who records it")]
EventIdOpt = Annotated[str | None, typer.Option(
    "--event-id", help="your id for this event; the same id twice is recorded once")]
EnteredOpt = Annotated[str | None, typer.Option(
    "--entered-at", help="when the data were entered (default now)")]


def handled(fn: F) -> F:
    """Exit 2 with one line on gridmgr errors, 1 on anything else (as gridmgr.cli does)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from gridmgr.cli import handled as outer  # late: gridmgr.cli imports this module

        return outer(fn)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _engine(db: str | None) -> Any:
    from gridmgr.cli import engine_for

    return engine_for(db)


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(f"{option} {value!r} is not a date (use YYYY-MM-DD)") from None


def _when(value: str, option: str) -> dt.date | dt.datetime:
    text = value.strip()
    try:
        if ":" in text:
            return dt.datetime.fromisoformat(text.replace("T", " "))
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{option} {value!r} is not a date or date-time (use YYYY-MM-DD or "
                       "'YYYY-MM-DD HH:MM')") from None


def _stamp(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    when = _when(value, option)
    return when if isinstance(when, dt.datetime) else dt.datetime.combine(when, dt.time())


def _int(value: str | None, option: str, minimum: int = 0) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        raise BadInput(f"{option} {value!r} is not a whole number") from None
    if n < minimum:
        raise BadInput(f"{option} {n} is below the minimum {minimum}")
    return n


def _show(df: Any, fmt: str) -> None:
    import pandas as pd

    from gridmgr.cli import _emit

    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%d").where(out[col].notna(), None)
    _emit(out, fmt)


def _person(conn: Any, ref: str) -> str:
    """The ID number of a person named by ID number, source id or #id."""
    from gridmgr.store.events import find_person

    return find_person(conn, ref)[1]


def _echo_event(what: str, result: Any) -> None:
    if not result.applied:
        typer.echo(f"{what}: already recorded as event {result.event_id}; nothing changed")
        return
    late = "; entered LATE (more than the deadline after arrival)" if result.late else ""
    typer.echo(f"{what}: recorded as event {result.event_id} (person {result.person_id}){late}")
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)


@register_app.command("arrive")
@handled
def arrive_cmd(
    person: Annotated[str, typer.Argument(help="ID number (a new person) or source id")],
    house: Annotated[str, typer.Argument(help="house code or house source id")],
    on: Annotated[str, typer.Option("--on", help="arrival date or 'date time'")],
    entered_at: EnteredOpt = None,
    stay_days: Annotated[str | None, typer.Option(
        "--stay-days", help="intended stay in days (拟居住天数)")] = None,
    name: Annotated[str | None, typer.Option(help="name (needed for a new person)")] = None,
    birth_date: Annotated[str | None, typer.Option(help="default: from the ID number")] = None,
    sex: Annotated[str | None, typer.Option(help="M|F; default: from the ID number")] = None,
    hukou: Annotated[str | None, typer.Option(help="hukou adcode; default: ID prefix")] = None,
    phone: Annotated[str | None, typer.Option()] = None,
    person_class: Annotated[str | None, typer.Option(
        "--class", help="key|uneasy|trusted")] = None,
    source_id: Annotated[str | None, typer.Option(help="your id for a new person")] = None,
    registered_house: Annotated[str | None, typer.Option(
        help="house the stay is registered at (default: this one)")] = None,
    event_id: EventIdOpt = None,
    clerk: ClerkOpt = None,
    note: Annotated[str | None, typer.Option()] = None,
    db: DbOpt = None,
) -> None:
    """Register an arrival at a house; data entered over 24 h after arrival are flagged."""
    from gridmgr.permits import RegistrationSettings
    from gridmgr.store.events import arrive, write_transaction

    when = _when(on, "--on")
    with write_transaction(_engine(db)) as conn:
        try:
            idn = _person(conn, person)
        except NotFound:
            idn = person
        result = arrive(conn, id_number=idn, house=house, on=when,
                        entered_at=_stamp(entered_at, "--entered-at"),
                        intended_stay_days=_int(stay_days, "--stay-days"), name=name,
                        birth_date=_date(birth_date, "--birth-date"), sex=sex,
                        hukou_code=hukou, phone=phone, person_class=person_class,
                        source_id=source_id, registered_house=registered_house,
                        event_id=event_id, clerk=clerk, note=note, source="cli",
                        settings=RegistrationSettings())
    _echo_event(f"arrival of {idn} at {house}", result)


@register_app.command("move")
@handled
def move_cmd(
    person: Annotated[str, typer.Argument(help="ID number, source id or #person_id")],
    house: Annotated[str, typer.Argument(help="the new house: code or source id")],
    on: Annotated[str, typer.Option("--on", help="move date or 'date time'")],
    from_house: Annotated[str | None, typer.Option(
        "--from", help="the house they leave; a concurrent move then conflicts")] = None,
    entered_at: EnteredOpt = None,
    stay_days: Annotated[str | None, typer.Option("--stay-days")] = None,
    event_id: EventIdOpt = None,
    clerk: ClerkOpt = None,
    note: Annotated[str | None, typer.Option()] = None,
    db: DbOpt = None,
) -> None:
    """Register a move: the current residence ends and one at HOUSE begins."""
    from gridmgr.permits import RegistrationSettings
    from gridmgr.store.events import move, write_transaction

    when = _when(on, "--on")
    with write_transaction(_engine(db)) as conn:
        idn = _person(conn, person)
        result = move(conn, id_number=idn, house=house, on=when, from_house=from_house,
                      entered_at=_stamp(entered_at, "--entered-at"),
                      intended_stay_days=_int(stay_days, "--stay-days"), event_id=event_id,
                      clerk=clerk, note=note, source="cli", settings=RegistrationSettings())
    _echo_event(f"move of {idn} to {house}", result)


@register_app.command("leave")
@handled
def leave_cmd(
    person: Annotated[str, typer.Argument(help="ID number, source id or #person_id")],
    on: Annotated[str, typer.Option("--on", help="departure date")],
    from_house: Annotated[str | None, typer.Option(
        "--from", help="the house they leave; checked against the current one")] = None,
    entered_at: EnteredOpt = None,
    event_id: EventIdOpt = None,
    clerk: ClerkOpt = None,
    note: Annotated[str | None, typer.Option()] = None,
    db: DbOpt = None,
) -> None:
    """Register a departure: the current residence is cancelled (去有注销)."""
    from gridmgr.store.events import leave, write_transaction

    when = _when(on, "--on")
    with write_transaction(_engine(db)) as conn:
        idn = _person(conn, person)
        result = leave(conn, id_number=idn, on=when, from_house=from_house,
                       entered_at=_stamp(entered_at, "--entered-at"), event_id=event_id,
                       clerk=clerk, note=note, source="cli")
    _echo_event(f"departure of {idn}", result)


@register_app.command("correct")
@handled
def correct_cmd(
    person: Annotated[str, typer.Argument(help="ID number, source id or #person_id")],
    name: Annotated[str | None, typer.Option()] = None,
    phone: Annotated[str | None, typer.Option()] = None,
    birth_date: Annotated[str | None, typer.Option()] = None,
    sex: Annotated[str | None, typer.Option()] = None,
    hukou: Annotated[str | None, typer.Option(help="hukou adcode")] = None,
    person_class: Annotated[str | None, typer.Option("--class")] = None,
    registered_on: Annotated[str | None, typer.Option(help="stay registered on")] = None,
    registered_house: Annotated[str | None, typer.Option()] = None,
    new_id_number: Annotated[str | None, typer.Option(help="the corrected ID number")] = None,
    clear: Annotated[list[str] | None, typer.Option(
        help="empty a field: phone, registered_on, registered_house")] = None,
    on: Annotated[str | None, typer.Option("--on", help="date of the correction")] = None,
    event_id: EventIdOpt = None,
    clerk: ClerkOpt = None,
    note: Annotated[str | None, typer.Option()] = None,
    db: DbOpt = None,
) -> None:
    """Correct a person's data; the old and new values stay in the history."""
    from gridmgr.store.events import correct, write_transaction

    changes = {k: v for k, v in {
        "name": name, "phone": phone, "birth_date": _date(birth_date, "--birth-date"),
        "sex": sex, "hukou_code": hukou, "person_class": person_class,
        "registered_on": _date(registered_on, "--registered-on"),
        "registered_house": registered_house, "new_id_number": new_id_number}.items()
        if v is not None}
    with write_transaction(_engine(db)) as conn:
        idn = _person(conn, person)
        result = correct(conn, id_number=idn, changes=changes, clear=clear or (),
                         on=_date(on, "--on"), event_id=event_id, clerk=clerk, note=note,
                         source="cli")
    _echo_event(f"correction of {idn}", result)


@register_app.command("import")
@handled
def import_cmd(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet of events")],
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="record the good rows")] = False,
    report: Annotated[Path | None, typer.Option(help="where to write the row report")] = None,
    db: DbOpt = None,
) -> None:
    """Validate a whole event file and replay it; the same file twice changes nothing."""
    from gridmgr.permits import RegistrationSettings
    from gridmgr.progress import default_reporter
    from gridmgr.store.events import import_events

    result = import_events(_engine(db), file, skip_bad=skip_bad, report_path=report,
                           settings=RegistrationSettings(), reporter=default_reporter())
    typer.echo(result.summary())


def _parse_room(spec: str) -> dict[str, Any]:
    parts = spec.split(":")
    if not 1 <= len(parts) <= 4 or not parts[0]:
        raise BadInput(f"--room {spec!r}: use TYPE[:AREA_M2[:TENANTS[:LABEL]]], e.g. "
                       "bedroom:12.5:2:B1")
    area = parts[1] if len(parts) > 1 and parts[1] else None
    tenants = parts[2] if len(parts) > 2 and parts[2] else None
    try:
        return {"room_type": parts[0], "area_m2": None if area is None else float(area),
                "tenants": None if tenants is None else int(tenants),
                "label": parts[3] if len(parts) > 3 else ""}
    except ValueError:
        raise BadInput(f"--room {spec!r}: area must be a number and tenants a whole "
                       "number") from None


@register_app.command("rental")
@handled
def rental_cmd(
    house: Annotated[str, typer.Argument(help="house code or source id")],
    landlord: Annotated[str, typer.Option(help="landlord's ID number")],
    tenants: Annotated[str, typer.Option(help="number of tenants")],
    rental_class: Annotated[str, typer.Option("--class", help="key|uneasy|trusted")],
    on: Annotated[str | None, typer.Option("--on", help="registered on (default today)")
                  ] = None,
    room: Annotated[list[str] | None, typer.Option(
        help="a room let: TYPE[:AREA_M2[:TENANTS[:LABEL]]] (repeat)")] = None,
    rooms: Annotated[Path | None, typer.Option(
        help="CSV of rooms: room_type, area_m2, tenants, label")] = None,
    accept_violations: Annotated[bool, typer.Option(
        "--accept-violations", help="store a let that breaks the rules, flagged")] = False,
    db: DbOpt = None,
) -> None:
    """Register a let; kitchens, bathrooms, balconies, basements and crowding are refused."""
    import pandas as pd

    from gridmgr.rentals import RentalSettings
    from gridmgr.store.events import register_rental, write_transaction

    frame = pd.DataFrame([_parse_room(s) for s in room or []])
    if rooms is not None:
        if not rooms.exists():
            raise BadInput(f"--rooms {rooms}: no such file")
        frame = pd.concat([frame, pd.read_csv(rooms, dtype=str, keep_default_na=False)],
                          ignore_index=True)
    n = _int(tenants, "--tenants")
    assert n is not None
    with write_transaction(_engine(db)) as conn:
        result = register_rental(conn, house=house, landlord_id_number=landlord, tenants=n,
                                 rental_class=rental_class.lower(),
                                 registered_on=_date(on, "--on"),
                                 rooms=frame if len(frame) else None,
                                 accept_violations=accept_violations,
                                 settings=RentalSettings())
    verb = "registered" if result.created else "re-registered"
    state = "complies" if result.compliant else "STORED WITH VIOLATIONS"
    typer.echo(f"let of {house} {verb} (rental {result.rental_id}); {state}")
    for _, row in result.findings.iterrows():
        typer.echo(f"{row['severity']}: {row['reason']}", err=True)


@register_app.command("history")
@handled
def history_cmd(
    person: Annotated[str, typer.Argument(help="ID number, source id or #person_id")],
    fmt: FmtOpt = "table",
    events_too: Annotated[bool, typer.Option("--events", help="the event log instead")
                          ] = False,
    db: DbOpt = None,
) -> None:
    """Where a person lives and has lived (or, with --events, every registration event)."""
    from gridmgr.store.events import event_history, find_person, residence_history

    with _engine(db).connect() as conn:
        pid, _ = find_person(conn, person)
        rows = (event_history(conn, person_id=pid) if events_too
                else residence_history(conn, person_id=pid))
    _show(rows, fmt)


@permits_app.command("eligible")
@handled
def eligible_cmd(grid: GridOpt = None, as_of: AsOfOpt = None, fmt: FmtOpt = "table",
                 db: DbOpt = None) -> None:
    """Eligible people without a valid permit, per grid, with the issue deadline."""
    from gridmgr.permits import PermitSettings
    from gridmgr.store.permits_store import eligible_without_permit

    with _engine(db).connect() as conn:
        rows = eligible_without_permit(conn, as_of=_date(as_of, "--as-of"), grid_id=grid,
                                       settings=PermitSettings())
    _show(rows, fmt)


@permits_app.command("due")
@handled
def due_cmd(grid: GridOpt = None, as_of: AsOfOpt = None,
            within: Annotated[str, typer.Option(help="also those due within N days")] = "0",
            fmt: FmtOpt = "table", db: DbOpt = None) -> None:
    """First permits overdue (not issued within 7 days of registration), per grid."""
    from gridmgr.permits import PermitSettings
    from gridmgr.store.permits_store import overdue_permits

    days = _int(within, "--within")
    assert days is not None
    with _engine(db).connect() as conn:
        rows = overdue_permits(conn, as_of=_date(as_of, "--as-of"), grid_id=grid,
                               within_days=days, settings=PermitSettings())
    _show(rows, fmt)


@permits_app.command("expiring")
@handled
def expiring_cmd(days: Annotated[str, typer.Option(help="within this many days")] = "30",
                 grid: GridOpt = None, as_of: AsOfOpt = None, fmt: FmtOpt = "table",
                 db: DbOpt = None) -> None:
    """Permits ending within N days and not yet renewed, per grid."""
    from gridmgr.store.permits_store import expiring_permits

    n = _int(days, "--days")
    assert n is not None
    with _engine(db).connect() as conn:
        rows = expiring_permits(conn, days=n, as_of=_date(as_of, "--as-of"), grid_id=grid)
    _show(rows, fmt)


def _echo_permit(rec: Any) -> None:
    late = "; issued after the deadline" if rec.issued_late else ""
    typer.echo(f"{rec.kind} permit {rec.permit_id} for {rec.id_number}: {rec.years} year(s), "
               f"valid {rec.valid_from} to {rec.valid_until}{late}")


@permits_app.command("issue")
@handled
def issue_cmd(
    person: Annotated[str, typer.Argument(help="ID number, source id or #person_id")],
    on: Annotated[str | None, typer.Option("--on", help="issue date (default today)")] = None,
    permit_no: Annotated[str | None, typer.Option(help="the printed permit number")] = None,
    clerk: ClerkOpt = None,
    db: DbOpt = None,
) -> None:
    """Issue a first residence permit (valid 1 year) to an eligible person."""
    from gridmgr.permits import PermitSettings
    from gridmgr.store.events import write_transaction
    from gridmgr.store.permits_store import issue_permit

    with write_transaction(_engine(db)) as conn:
        rec = issue_permit(conn, person=person, on=_date(on, "--on"), permit_no=permit_no,
                           clerk=clerk, settings=PermitSettings())
    _echo_permit(rec)


@permits_app.command("renew")
@handled
def renew_cmd(
    person: Annotated[str, typer.Argument(help="ID number, source id or #person_id")],
    on: Annotated[str | None, typer.Option("--on", help="date (default today)")] = None,
    years: Annotated[str | None, typer.Option(help="1, or 3 or 5 after 2 years' residence")
                     ] = None,
    basis: Annotated[str | None, typer.Option(
        help="for 3 or 5 years: labour_contract|lease|own_home")] = None,
    permit_no: Annotated[str | None, typer.Option(help="the printed permit number")] = None,
    clerk: ClerkOpt = None,
    db: DbOpt = None,
) -> None:
    """Renew a permit: 1 year, or 3 or 5 years on request after 2 years' residence."""
    from gridmgr.permits import PermitSettings
    from gridmgr.store.events import write_transaction
    from gridmgr.store.permits_store import renew_permit

    with write_transaction(_engine(db)) as conn:
        rec = renew_permit(conn, person=person, on=_date(on, "--on"),
                           years=_int(years, "--years", minimum=1), basis=basis,
                           permit_no=permit_no, clerk=clerk, settings=PermitSettings())
    _echo_permit(rec)


@permits_app.command("show")
@handled
def show_cmd(person: Annotated[str, typer.Argument(help="ID number, source id or #id")],
             fmt: FmtOpt = "table", db: DbOpt = None) -> None:
    """Every permit a person has held."""
    from gridmgr.store.permits_store import permits_of

    with _engine(db).connect() as conn:
        rows = permits_of(conn, person=person)
    _show(rows, fmt)
