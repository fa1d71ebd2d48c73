"""Every bad request is a 4xx JSON error {"error", "detail"}; never a 5xx."""

from __future__ import annotations

import pytest
from apicity import City
from cityfiles import C1
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import errors
from api.models import ErrorOut
from gridmgr.errors import RowProblem, ValidationFailed, ValidationReport

CODE = "5101040010010001010101X"  # H001 of the tiny city

BAD = [
    ("/houses/5101040010010001010101", 400, "invalid_house_code"),  # 22 characters
    ("/houses/51010400100100010101011", 400, "invalid_house_code"),  # check character
    ("/houses/5101040010010001010101X/residents?x=1", 400, "unknown_parameter"),
    ("/houses/%00%01", 400, "invalid_house_code"),
    ("/houses/" + "9" * 80, 400, "invalid_house_code"),
    ("/houses?lon=104&lat=95", 400, "bad_coordinates"),
    ("/houses?lon=abc&lat=30", 400, "bad_coordinates"),
    ("/houses?lon=104&lat=30&limit=5000", 400, "limit_too_large"),
    ("/houses?lon=104&lat=30&radius_m=-5", 400, "bad_input"),
    ("/grids/at?lon=104", 400, "bad_coordinates"),
    ("/grids/at?lon=1e999&lat=30", 400, "bad_coordinates"),
    ("/grids/%00", 404, "not_found"),
    ("/grids/" + "g" * 41, 404, "not_found"),
    ("/grids/510104001001-01/houses?cursor=%%%", 400, "bad_cursor"),
    ("/grids/510104001001-01/houses?cursor=", 400, "bad_cursor"),
    ("/grids/510104001001-01/houses?limit=1001", 400, "limit_too_large"),
    ("/people/0/houses", 400, "bad_input"),
    ("/people/99999999999999999999999/houses", 400, "bad_input"),
    ("/workload?level=galaxy", 400, "bad_input"),
    ("/workload?parent=%27%3B%20DROP%20TABLE%20house", 400, "bad_input"),
    ("/staffing?ratio=0", 400, "bad_input"),
    ("/collections/houses/items?bbox=1,2,3", 400, "bad_bbox"),
    ("/collections/houses/items?bbox=104,30.7,104.1,30.6", 400, "bad_bbox"),
    ("/collections/areas/items?limit=100000", 400, "limit_too_large"),
    ("/collections/grids/items?offset=-1", 400, "bad_input"),
    ("/collections/nowhere", 404, "not_found"),
    ("/collections/nowhere/items", 404, "not_found"),
    ("/no/such/route", 404, "not_found"),
    ("/audit?since=yesterday", 400, "bad_input"),
    ("/audit?cursor=abc", 400, "bad_cursor"),
]


@pytest.mark.parametrize(("path", "status", "code"), BAD, ids=[b[0][:60] for b in BAD])
def test_bad_requests_are_json_4xx(client: TestClient, city: City, path: str, status: int,
                                   code: str) -> None:
    r = client.get(path, headers=city.auth("admin"))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = ErrorOut.model_validate(r.json())
    assert body.error == code, r.json()
    assert body.detail.strip()
    assert set(r.json()) <= {"error", "detail", "problems", "problems_total"}


def test_method_not_allowed_keeps_allow(client: TestClient, city: City) -> None:
    r = client.post(f"/houses/{CODE}", headers=city.auth("admin"))
    assert r.status_code == 405
    assert r.json()["error"] == "method_not_allowed"
    assert "GET" in r.headers["allow"]
    assert client.delete("/collections", headers=city.auth("admin")).status_code == 405


def test_sql_looking_input_is_only_data(client: TestClient, city: City) -> None:
    """Values are bound, so quotes and SQL keywords are just strings that match nothing."""
    for path in ("/grids/x'%20OR%20'1'='1", "/collections/grids/items/x'%20OR%20'1'='1",
                 "/collections/areas/items/1%20OR%201=1"):
        r = client.get(path, headers=city.auth("admin"))
        assert r.status_code == 404, path
    r = client.get("/audit", params={"target": "x' OR '1'='1"}, headers=city.auth("admin"))
    assert r.status_code == 200 and r.json()["count"] == 0


def test_rule_violations_are_listed_in_the_body(client: TestClient, city: City) -> None:
    """A rejected plan edit answers 400 with every rule it would break in ``problems``."""
    r = client.post("/plans", json={"name": "errors-draft"}, headers=city.auth("planner"))
    assert r.status_code == 201, r.text
    # G1 stretched over the whole street: it leaves its community and swallows G2.
    r = client.post("/plans/errors-draft/reshape", headers=city.auth("planner"), json={
        "grid_id": f"{C1}-01",
        "geometry": "POLYGON ((104.0 30.6, 104.2 30.6, 104.2 30.7, 104.0 30.7, 104.0 30.6))"})
    assert r.status_code == 400, r.text
    body = r.json()
    ErrorOut.model_validate(body)
    assert body["error"] == "plan_rule_violation"
    assert body["problems_total"] == len(body["problems"]) == 2
    by_rule = {p["rule"]: p for p in body["problems"]}
    assert by_rule["invalid"]["grids"] == [f"{C1}-02"]
    assert by_rule["invalid"]["detail"] == "has no geometry"
    outside = by_rule["outside_community"]
    assert outside["grids"] == [f"{C1}-01"] and outside["community"] == C1
    assert outside["area_m2"] > 100e6 and outside["where"] == pytest.approx([104.15, 30.65])
    assert all(p["detail"] in body["detail"] for p in body["problems"])
    # Nothing changed: the draft still has no edit.
    plan = client.get("/plans/errors-draft", headers=city.auth("planner")).json()
    assert plan["edits"] == 0

def test_file_problems_are_listed_and_capped() -> None:
    """A rejected file's bad rows go in ``problems`` (the first 100) with their total."""
    report = ValidationReport("houses", rows=300, problems=[
        RowProblem(i, "lat", f"latitude {90 + i} out of range") for i in range(1, 251)])
    app = FastAPI()
    errors.install(app)

    @app.post("/load")
    def load() -> None:
        raise ValidationFailed(report, "nothing was written; fix the rows and load again")

    with TestClient(app) as c:
        r = c.post("/load")
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    ErrorOut.model_validate(body)
    assert body["error"] == "validation_failed"
    assert body["problems_total"] == 250
    assert len(body["problems"]) == errors.MAX_PROBLEMS == 100
    assert body["problems"][0] == {"row": 1, "column": "lat", "reason": "latitude 91 out of range"}
    assert body["problems"][-1]["row"] == 100
    assert "250 bad row(s) of 300" in body["detail"]
