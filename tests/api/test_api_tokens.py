"""Tokens: the pure helpers, the store functions, and `gridmgr token create|list|revoke`."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from cityfiles import ORDER, write_city
from typer.testing import CliRunner

from gridmgr.cli_serve import serve, token_app
from gridmgr.errors import BadInput, NotFound
from gridmgr.store.engine import make_engine
from gridmgr.store.load import load_file
from gridmgr.store.tokens import area_subtree, create_token, find_token, list_tokens, revoke_token
from gridmgr.tokens import (
    bearer_token,
    check_role,
    hash_token,
    looks_like_token,
    new_token,
    sees_unmasked,
    verify_token,
)


def test_new_tokens_are_random_and_hash_to_64_hex() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for t in list(tokens)[:5]:
        assert looks_like_token(t) and len(t) == 46
        h = hash_token(t)
        assert len(h) == 64 and int(h, 16) >= 0
        assert verify_token(t, h) and not verify_token(t + "x", h)


def test_bearer_header_parsing() -> None:
    assert bearer_token("Bearer gm_abc") == "gm_abc"
    assert bearer_token("bearer   gm_abc ") == "gm_abc"
    for bad in (None, "", "Bearer", "Basic gm_abc", "gm_abc"):
        assert bearer_token(bad) is None
    assert not looks_like_token("gm_" + "é")
    assert not looks_like_token("gm_a b")
    assert not looks_like_token("xx_abc")


def test_roles_and_areas() -> None:
    assert check_role("Police", " 510104 ") == ("police", "510104")
    assert check_role("admin", None) == ("admin", None)
    for role, area in (("police", None), ("planner", "510104"), ("root", None),
                       ("police", "51-01"), ("police", "1" * 21)):
        with pytest.raises(BadInput):
            check_role(role, area)
    assert sees_unmasked("admin") and sees_unmasked("police")
    assert not sees_unmasked("planner") and not sees_unmasked("supervisor")


@pytest.fixture
def loaded_url(store_url: str, tmp_path: Path) -> str:
    paths = write_city(tmp_path / "city")
    engine = make_engine(store_url)
    for kind in ORDER[:2]:  # areas and grids are enough for tokens
        load_file(engine, kind, paths[kind], report_path=tmp_path / f"{kind}.csv")
    engine.dispose()
    return store_url


def test_store_tokens(loaded_url: str) -> None:
    engine = make_engine(loaded_url)
    with engine.begin() as conn:
        rec, token = create_token(conn, role="police", area_code="510104001")
        assert rec.name == "police-510104001" and rec.actor == f"police-510104001#{rec.id}"
        with pytest.raises(BadInput, match="not loaded"):
            create_token(conn, role="police", area_code="510199")
        admin, admin_token = create_token(conn, role="admin", name="chief")
    with engine.connect() as conn:
        found = find_token(conn, token)
        assert found is not None and found.id == rec.id and found.role == "police"
        assert find_token(conn, "gm_unknown") is None
        assert [t.id for t in list_tokens(conn)] == [rec.id, admin.id]
        assert {c for c, _ in area_subtree(conn, "510104001")} == {
            "510104001", "510104001001", "510104001002"}
        assert area_subtree(conn, "999") == []
    with engine.begin() as conn:
        assert [t.id for t in revoke_token(conn, name="chief")] == [admin.id]
        with pytest.raises(NotFound):
            revoke_token(conn, token_id=admin.id)
        with pytest.raises(BadInput):
            revoke_token(conn)
    with engine.connect() as conn:
        assert find_token(conn, admin_token) is None
        assert [t.id for t in list_tokens(conn)] == [rec.id]
        assert [t.revoked for t in list_tokens(conn, include_revoked=True)] == [False, True]
    engine.dispose()


def _cli() -> typer.Typer:
    # The same two lines gridmgr.cli uses to register these commands.
    app = typer.Typer()
    app.command()(serve)
    app.add_typer(token_app, name="token")
    return app


def test_token_cli(loaded_url: str) -> None:
    runner, app = CliRunner(), _cli()
    r = runner.invoke(app, ["token", "create", "--role", "police", "--area", "510104001001",
                            "--name", "officer wang", "--db", loaded_url])
    assert r.exit_code == 0, r.output
    token = r.output.strip().splitlines()[-1]
    assert looks_like_token(token)
    engine = make_engine(loaded_url)
    with engine.connect() as conn:
        rec = find_token(conn, token)
        assert rec is not None and (rec.name, rec.area_code) == ("officer wang", "510104001001")
    engine.dispose()
    r = runner.invoke(app, ["token", "create", "--role", "police", "--db", loaded_url])
    assert r.exit_code == 2 and "needs --area" in r.output
    r = runner.invoke(app, ["token", "list", "--db", loaded_url])
    assert r.exit_code == 0 and "officer wang" in r.output and token not in r.output
    r = runner.invoke(app, ["token", "revoke", str(rec.id), "--db", loaded_url])
    assert r.exit_code == 0 and f"revoked token {rec.id}" in r.output
    r = runner.invoke(app, ["token", "revoke", str(rec.id), "--db", loaded_url])
    assert r.exit_code == 2
    r = runner.invoke(app, ["serve", "--port", "70000", "--db", loaded_url])
    assert r.exit_code == 2 and "--port" in r.output
