"""Tokens, roles and the audit log over HTTP on both stores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from apicity import City, load_city, settings_for
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.models import AuditOut, MeOut
from gridmgr.store.engine import make_engine
from gridmgr.store.tokens import revoke_token


def _audit_rows(url: str) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT actor, role, action, target, client_addr, detail "
                                 "FROM audit_log ORDER BY id")).fetchall()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_tokens_required_and_checked(client: TestClient, city: City) -> None:
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    code = city.codes["H001"]
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwdw=="},
                    {"Authorization": "Bearer gm_notarealtoken"},
                    {"Authorization": "Bearer " + "x" * 300}):
        r = client.get(f"/houses/{code}", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
    # a missing token is answered before any parameter is looked at
    assert client.get("/houses/not-a-code").status_code == 401
    me = MeOut.model_validate(client.get("/me", headers=city.auth("police_a")).json())
    assert (me.role, me.area_code, me.masked) == ("police", "510104001001", False)
    assert client.get("/me", headers=city.auth("planner")).json()["masked"] is True


def test_only_admins_read_the_audit_log(client: TestClient, city: City) -> None:
    for who in ("planner", "supervisor", "police_a"):
        r = client.get("/audit", headers=city.auth(who))
        assert r.status_code == 403 and r.json()["error"] == "forbidden", who
    assert client.get("/audit", headers=city.auth("admin")).status_code == 200


def test_revoked_token_is_refused(city: City) -> None:
    engine = make_engine(city.url)
    with engine.begin() as conn:
        from gridmgr.store.tokens import create_token

        record, token = create_token(conn, role="planner", name="soon-revoked")
    with TestClient(create_app(settings_for(city.url, token_cache_seconds=0))) as c:
        headers = {"Authorization": f"Bearer {token}"}
        assert c.get("/me", headers=headers).status_code == 200
        with engine.begin() as conn:
            revoke_token(conn, token_id=record.id)
        r = c.get("/me", headers=headers)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    engine.dispose()


def test_every_person_lookup_is_audited(store_url: str, tmp_path: Path) -> None:
    city = load_city(store_url, tmp_path)
    code, p1 = city.codes["H001"], city.people["P1"]
    with TestClient(create_app(settings_for(store_url))) as c:
        assert _audit_rows(store_url) == []
        c.get(f"/houses/{code}", headers=city.auth("admin"))  # a house alone is not audited
        assert c.get(f"/houses/{code}/residents", headers=city.auth("planner")).status_code == 200
        assert c.get(f"/people/{p1}/houses", headers=city.auth("police_a")).status_code == 200
        assert c.get(f"/houses/{code}/residents", headers=city.auth("police_b")).status_code == 404
        assert c.get("/people/424242/houses", headers=city.auth("admin")).status_code == 404
        rows = _audit_rows(store_url)
        assert [r[:5] for r in rows] == [
            ("planner#2", "planner", "house_residents", code, "testclient"),
            ("police_a#4", "police", "person_houses", str(p1), "testclient"),
            ("police_b#5", "police", "house_residents", code, "testclient"),
            ("admin#1", "admin", "person_houses", "424242", "testclient"),
        ]
        assert [r[5] for r in rows] == ['{"outcome":"found","rows":2}',
                                        '{"outcome":"found","rows":1}',
                                        '{"outcome":"outside_area","rows":0}',
                                        '{"outcome":"not_found","rows":0}']
        # invalid input is refused before any lookup: nothing to audit
        assert c.get("/houses/123/residents", headers=city.auth("admin")).status_code == 400
        assert len(_audit_rows(store_url)) == 4

        log = AuditOut.model_validate(c.get("/audit", headers=city.auth("admin")).json())
        assert [e.action for e in log.entries] == ["person_houses", "house_residents",
                                                   "person_houses", "house_residents"]
        assert log.entries[-1].detail == {"outcome": "found", "rows": 2}
        only = c.get("/audit", params={"action": "house_residents", "actor": "police_b#5"},
                     headers=city.auth("admin")).json()
        assert [e["target"] for e in only["entries"]] == [code]
        page1 = c.get("/audit", params={"limit": 3}, headers=city.auth("admin")).json()
        page2 = c.get("/audit", params={"limit": 3, "cursor": page1["next_cursor"]},
                      headers=city.auth("admin")).json()
        assert [e["id"] for e in page1["entries"] + page2["entries"]] == [
            e.id for e in log.entries]
        soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
        assert c.get("/audit", params={"since": soon},
                     headers=city.auth("admin")).json()["count"] == 0
        assert c.get("/audit", params={"since": "2024-13-45"},
                     headers=city.auth("admin")).status_code == 400


def _break_audit(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("CREATE FUNCTION no_audit() RETURNS trigger AS $$ BEGIN "
                              "RAISE EXCEPTION 'audit log unavailable'; END $$ LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER no_audit BEFORE INSERT ON audit_log "
                              "FOR EACH ROW EXECUTE FUNCTION no_audit()"))
        else:
            conn.execute(text("CREATE TRIGGER no_audit BEFORE INSERT ON audit_log "
                              "BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END"))
    engine.dispose()


def test_no_residents_without_an_audit_row(store_url: str, tmp_path: Path) -> None:
    """The audit row is written in the read's transaction: if it cannot be, nothing is shown."""
    city = load_city(store_url, tmp_path)
    _break_audit(store_url)
    with TestClient(create_app(settings_for(store_url)), raise_server_exceptions=False) as c:
        r = c.get(f"/houses/{city.codes['H001']}/residents", headers=city.auth("admin"))
        assert r.status_code == 500
        assert r.json()["error"] == "internal"
        assert "张三" not in r.text and "138" not in r.text
        r = c.get(f"/people/{city.people['P1']}/houses", headers=city.auth("admin"))
        assert r.status_code == 500 and "张三" not in r.text
        # reads that are not audited are unaffected
        assert c.get(f"/houses/{city.codes['H001']}", headers=city.auth("admin")).status_code == 200
    assert _audit_rows(store_url) == []


@pytest.mark.parametrize("path", ["/houses/{code}/residents", "/people/{person}/houses"])
def test_audit_names_caller_and_client(client: TestClient, city: City, path: str) -> None:
    url = path.format(code=city.codes["H009"], person=city.people["P5"])
    before = client.get("/audit", params={"limit": 1}, headers=city.auth("admin")).json()
    assert client.get(url, headers=city.auth("supervisor")).status_code == 200
    after = client.get("/audit", params={"limit": 1}, headers=city.auth("admin")).json()
    newest = after["entries"][0]
    assert not before["entries"] or newest["id"] > before["entries"][0]["id"]
    assert newest["actor"].startswith("supervisor#") and newest["client_addr"] == "testclient"
