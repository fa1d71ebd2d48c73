"""`gridmgr serve` and `gridmgr token create|list|revoke`: the API server and its tokens.

Registered in ``gridmgr.cli`` (``app.command()(serve)`` and
``app.add_typer(token_app, name="token")``); ``gridmgr.cli`` is imported only inside the
commands so the two modules can import each other in either order.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])

DbOpt = Annotated[str | None, typer.Option(
    "--db", help="store URL (default $GRIDMGR_DATABASE_URL or sqlite:///gridmgr.db)")]

token_app = typer.Typer(add_completion=False, no_args_is_help=True,
                        help="API bearer tokens: create, list, revoke.")


def _handled(fn: F) -> F:
    """Apply gridmgr.cli's error handling (exit 2 on bad input, 1 on internal errors)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from gridmgr.cli import handled

        return handled(fn)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _engine(db: str | None) -> Any:
    from gridmgr.cli import engine_for

    return engine_for(db)


@_handled
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes (one per core)")] = 1,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log",
                                             help="log every request line")] = True,
    db: DbOpt = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) with uvicorn."""
    import uvicorn

    from gridmgr.errors import BadInput

    if not 0 < port < 65536:
        raise BadInput(f"--port {port} must be 1 to 65535")
    if not 1 <= workers <= 64:
        raise BadInput(f"--workers {workers} must be 1 to 64")
    engine = _engine(db)  # creates or upgrades the schema once, before any worker starts
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    # Worker processes build their settings from the environment (api.settings.ApiSettings).
    os.environ["GRIDMGR_API_DATABASE_URL"] = url
    typer.echo(f"serving {engine.url.render_as_string()} on http://{host}:{port} "
               f"({workers} worker{'s' if workers != 1 else ''}); docs at /docs")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers,
                access_log=access_log, log_level="info")


@token_app.command("create")
@_handled
def token_create(
    role: Annotated[str, typer.Option(help="police | planner | supervisor | admin")],
    area: Annotated[str | None, typer.Option(
        help="area code a police token is scoped to (district, street or community)")] = None,
    name: Annotated[str | None, typer.Option(help="who holds it (shown in the audit log)")
                    ] = None,
    db: DbOpt = None,
) -> None:
    """Create a bearer token; the token itself is the last line of output (shown once)."""
    from gridmgr.store.tokens import create_token

    engine = _engine(db)
    with engine.begin() as conn:
        record, token = create_token(conn, role=role, area_code=area, name=name)
    scope = f" for area {record.area_code}" if record.area_code else ""
    typer.echo(f"created token {record.id} ({record.name}, {record.role}{scope}); "
               "store it now, it is not shown again:")
    typer.echo(token)


@token_app.command("list")
@_handled
def token_list(
    show_all: Annotated[bool, typer.Option("--all", help="include revoked tokens")] = False,
    db: DbOpt = None,
) -> None:
    """List tokens (never their secrets): id, name, role, area, created, revoked."""
    from gridmgr.store.tokens import list_tokens

    engine = _engine(db)
    with engine.connect() as conn:
        records = list_tokens(conn, include_revoked=show_all)
    typer.echo(f"{'id':>5}  {'name':<30} {'role':<10} {'area':<13} {'created (UTC)':<19}  revoked")
    for r in records:
        typer.echo(f"{r.id:>5}  {r.name[:30]:<30} {r.role:<10} {r.area_code or '-':<13} "
                   f"{r.created_at:%Y-%m-%d %H:%M:%S}  {'yes' if r.revoked else 'no'}")


@token_app.command("revoke")
@_handled
def token_revoke(
    token_id: Annotated[int | None, typer.Argument(help="id from gridmgr token list")] = None,
    name: Annotated[str | None, typer.Option(help="revoke every live token with this name")
                    ] = None,
    db: DbOpt = None,
) -> None:
    """Revoke a token by id (or all live tokens of a name); servers drop it within 30 s."""
    from gridmgr.store.tokens import revoke_token

    engine = _engine(db)
    with engine.begin() as conn:
        done = revoke_token(conn, token_id=token_id, name=name)
    for r in done:
        typer.echo(f"revoked token {r.id} ({r.name}, {r.role})")
