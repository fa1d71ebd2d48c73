"""The /plans routes over HTTP on both stores: every answer checked against the OpenAPI document.

Schemathesis (tests/api/test_api_schema.py) fuzzes these routes too, but random plan names
rarely name a plan; here a draft lives its whole life (create, every kind of edit, undo,
diff, history, grids, adopt), and each response — success or error — is validated against
the operation's declared response schema: timezone-aware UTC datetimes, declared models,
errors as JSON 4xx.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
import schemathesis
from apicity import City
from cityfiles import C1, C2
from fastapi.testclient import TestClient

G1, G2, G3 = f"{C1}-01", f"{C1}-02", f"{C2}-01"
NEW_G1 = "POLYGON ((104 30.6, 104.1 30.6, 104.1 30.675, 104 30.675, 104 30.6))"


@pytest.fixture(scope="module")
def openapi(client: TestClient) -> schemathesis.BaseSchema:
    """The app's own OpenAPI document, for validating responses."""
    return schemathesis.openapi.from_dict(client.app.openapi())  # type: ignore[attr-defined]


class Api:
    """Calls that validate each response against the operation it went to."""

    def __init__(self, client: TestClient, openapi: schemathesis.BaseSchema, city: City) -> None:
        self.client, self.openapi, self.city = client, openapi, city

    def call(self, method: str, path: str, template: str, *, who: str = "admin",
             status: int = 200, **kwargs: Any) -> Any:
        """Send, check the status, validate against ``template``'s schema; return the JSON."""
        r: httpx.Response = self.client.request(method, path, headers=self.city.auth(who),
                                                **kwargs)
        assert r.status_code == status, r.text
        self.openapi[template][method.upper()].validate_response(r)
        if status >= 400:
            assert r.headers["content-type"] == "application/json"
            assert set(r.json()) >= {"error", "detail"}
        return r.json()


def _utc(value: str) -> dt.datetime:
    at = dt.datetime.fromisoformat(value)
    assert at.tzinfo is not None and at.utcoffset() == dt.timedelta(0), value
    return at


@pytest.fixture(scope="module")
def api(client: TestClient, openapi: schemathesis.BaseSchema, city: City) -> Api:
    return Api(client, openapi, city)


def test_plan_lifecycle_conforms(api: Api, city: City) -> None:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    plan = api.call("POST", "/plans", "/plans", who="planner", status=201,
                    json={"name": "life", "note": "first line\nsecond line"})
    assert plan["status"] == "draft" and plan["base"] == "base" and plan["edits"] == 0
    assert _utc(plan["created_at"]) > start
    api.call("POST", "/plans", "/plans", status=409, json={"name": "life"})

    plans = {p["name"]: p for p in api.call("GET", "/plans", "/plans", who="supervisor")}
    assert set(plans) == {"base", "life"}
    base = api.call("GET", "/plans/base", "/plans/{name}")
    assert base["status"] == "adopted"
    assert [_utc(a["adopted_at"]) for a in base["adoptions"]]
    assert base["adoptions"][0]["retired_at"] is None

    one = "/plans/{name}/"
    reshaped = api.call("POST", "/plans/life/reshape", one + "reshape", who="planner",
                        json={"grid_id": G1, "geometry": NEW_G1})
    assert reshaped["houses_moved"] == 1 and reshaped["moved"][0]["from"] == G2
    split = api.call("POST", "/plans/life/split", one + "split",
                     json={"grid_id": G2, "line": {"type": "LineString", "coordinates": [
                         [104.05, 30.6], [104.05, 30.8]]}})
    assert split["removed"] == [G2] and len(split["added"]) == 2
    merged = api.call("POST", "/plans/life/merge", one + "merge",
                      json={"grid_ids": sorted(split["added"])})
    assert merged["removed"] == [max(split["added"])]
    locked = api.call("POST", "/plans/life/lock", one + "lock", json={"grid_ids": [G3]})
    assert locked["op"] == "lock" and locked["retouched"] == [G3]
    api.call("POST", "/plans/life/lock", one + "lock", json={"grid_ids": [G3], "locked": False})
    moved = api.call("POST", "/plans/life/move", one + "move",
                     json={"to_grid": G1, "polygon": "POLYGON ((104.02 30.675, 104.04 30.675, "
                           "104.04 30.685, 104.02 30.685, 104.02 30.675))"})
    assert [(m["house_code"], m["to"]) for m in moved["moved"]] == [(city.codes["H006"], G1)]
    undone = api.call("POST", "/plans/life/undo", one + "undo")
    assert undone["op"] == "undo move"
    rebalanced = api.call("POST", "/plans/life/rebalance", one + "rebalance",
                          json={"area": C2, "grids": 1, "seed": 3})
    assert rebalanced["area"] == C2 and rebalanced["op"]["op"] == "rebalance"
    api.call("POST", "/plans/life/undo", one + "undo")

    history = api.call("GET", "/plans/life/history", one + "history", who="supervisor")
    assert [h["op"] for h in history] == ["reshape", "split", "merge", "lock", "unlock",
                                          "move", "rebalance"]
    assert all(_utc(h["at"]) > start for h in history)
    assert [h["seq"] for h in history if h["undone_at"] is not None] == [6, 7]
    assert all(_utc(h["undone_at"]) > start for h in history if h["undone_at"])

    diff = api.call("GET", "/plans/life/diff", one + "diff", who="supervisor")
    assert diff["other"] == "base" and diff["houses_moved"] >= 1
    assert G2 in diff["grids"]["removed"]
    same = api.call("GET", "/plans/life/diff", one + "diff", params={"other": "life"})
    assert same["houses_moved"] == 0

    r = api.client.get("/plans/life/grids", headers=city.auth("planner"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    api.openapi["/plans/{name}/grids"]["GET"].validate_response(r)
    assert {f["id"] for f in r.json()["features"]} == {G1, G3, min(split["added"])}

    api.call("POST", "/plans/life/adopt", one + "adopt", who="planner", status=403)
    adopted = api.call("POST", "/plans/life/adopt", one + "adopt", who="supervisor",
                       json={"force": False})
    assert adopted["plan"] == "life" and adopted["previous"] == "base"
    assert _utc(adopted["adopted_at"]) > start
    api.call("POST", "/plans/life/adopt", one + "adopt", status=400)
    base = api.call("GET", "/plans/base", "/plans/{name}")
    assert base["status"] == "retired" and _utc(base["adoptions"][0]["retired_at"]) > start
    api.call("POST", "/plans/base/reshape", one + "reshape", status=400,
             json={"grid_id": G1, "geometry": NEW_G1})


BAD: list[tuple[str, str, str, dict[str, Any] | None, int, str]] = [
    # (method, path, template, JSON body, status, error code)
    ("GET", "/plans/%00", "/plans/{name}", None, 404, "not_found"),
    ("GET", "/plans/a%20b", "/plans/{name}", None, 404, "not_found"),
    ("GET", "/plans/nope/history", "/plans/{name}/history", None, 404, "not_found"),
    ("GET", "/plans/base/diff?other=%00x", "/plans/{name}/diff", None, 404, "not_found"),
    ("GET", "/plans/base/diff?other=nope", "/plans/{name}/diff", None, 404, "not_found"),
    ("GET", "/plans/%01/grids", "/plans/{name}/grids", None, 404, "not_found"),
    ("POST", "/plans", "/plans", {"name": "bad name"}, 400, "bad_input"),
    ("POST", "/plans", "/plans", {"name": "n1", "note": "a\x00b"}, 400, "bad_input"),
    ("POST", "/plans", "/plans", {"name": "n2", "source": "\x00"}, 400, "bad_input"),
    ("POST", "/plans", "/plans", {"name": "n3", "source": "nope"}, 404, "not_found"),
    ("POST", "/plans", "/plans", {"name": 5}, 400, "bad_input"),
    ("POST", "/plans/%00/undo", "/plans/{name}/undo", None, 404, "not_found"),
    ("POST", "/plans/draft/reshape", "/plans/{name}/reshape",
     {"grid_id": "\x00", "geometry": NEW_G1}, 400, "bad_input"),
    ("POST", "/plans/draft/reshape", "/plans/{name}/reshape",
     {"grid_id": G1, "geometry": {"type": "Point", "coordinates": [104.0, 30.6]}}, 400,
     "bad_input"),
    ("POST", "/plans/draft/reshape", "/plans/{name}/reshape",
     {"grid_id": G1, "geometry": {"type": "Polygon", "coordinates": [[[1, 2]]]}}, 400,
     "bad_input"),
    ("POST", "/plans/draft/reshape", "/plans/{name}/reshape",
     {"grid_id": G1, "geometry": "POLYGON ((0 0, 400 0, 400 1, 0 0))"}, 400, "bad_input"),
    ("POST", "/plans/draft/reshape", "/plans/{name}/reshape",
     {"grid_id": G1, "geometry": "POLYGON EMPTY"}, 400, "bad_input"),
    ("POST", "/plans/draft/reshape", "/plans/{name}/reshape",
     {"grid_id": G1, "geometry": "not wkt"}, 400, "bad_input"),
    ("POST", "/plans/draft/reshape", "/plans/{name}/reshape",
     {"grid_id": "nope", "geometry": NEW_G1}, 404, "not_found"),
    ("POST", "/plans/draft/split", "/plans/{name}/split",
     {"grid_id": G1, "line": NEW_G1}, 400, "bad_input"),
    ("POST", "/plans/draft/merge", "/plans/{name}/merge", {"grid_ids": [G1, G3]}, 400,
     "bad_input"),
    ("POST", "/plans/draft/lock", "/plans/{name}/lock", {"grid_ids": [G1], "locked": 0}, 400,
     "bad_input"),
    ("POST", "/plans/draft/move", "/plans/{name}/move", {"to_grid": G1, "cells": ["zz"]}, 400,
     "bad_input"),
    ("POST", "/plans/draft/move", "/plans/{name}/move",
     {"to_grid": G1, "cells": ["804bfffffffffff"]}, 400, "bad_input"),
    ("POST", "/plans/draft/move", "/plans/{name}/move",
     {"to_grid": G1, "house_codes": ["bad"]}, 400, "invalid_house_code"),
    ("POST", "/plans/draft/move", "/plans/{name}/move", {"to_grid": G1}, 400, "bad_input"),
    ("POST", "/plans/draft/undo", "/plans/{name}/undo", None, 400, "bad_input"),
    ("POST", "/plans/draft/rebalance", "/plans/{name}/rebalance",
     {"area": C1, "grids": 2, "seed": -1}, 400, "bad_input"),
    ("POST", "/plans/draft/rebalance", "/plans/{name}/rebalance",
     {"area": "x'; --", "grids": 2}, 400, "bad_input"),
    ("POST", "/plans/draft/rebalance", "/plans/{name}/rebalance",
     {"area": "999999", "grids": 2}, 404, "not_found"),
    ("POST", "/plans/draft/adopt", "/plans/{name}/adopt", {"force": "yes"}, 400, "bad_input"),
]


@pytest.mark.parametrize(("method", "path", "template", "body", "status", "code"), BAD,
                         ids=[f"{b[0]} {b[1][:40]} {str(b[3])[:30]}" for b in BAD])
def test_bad_plan_requests_are_json_4xx(api: Api, method: str, path: str, template: str,
                                        body: dict[str, Any] | None, status: int,
                                        code: str) -> None:
    if api.client.get("/plans/draft", headers=api.city.auth("admin")).status_code == 404:
        api.call("POST", "/plans", "/plans", status=201, json={"name": "draft"})
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    out = api.call(method, path, template, status=status, **kwargs)
    assert out["error"] == code, out


def test_plans_refuse_police_and_strangers(api: Api) -> None:
    api.call("GET", "/plans", "/plans", who="police_a", status=403)
    api.call("POST", "/plans/base/adopt", "/plans/{name}/adopt", who="police_a", status=403)
    r = api.client.get("/plans")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"

