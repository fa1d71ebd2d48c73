"""Grids over HTTP on both stores: at a point, detail with workload, houses by cursor."""

from __future__ import annotations

import base64

import orjson
from apicity import City, settings_for
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.models import GridHousesOut, GridOut, StaffingOut, WorkloadOut
from gridmgr.store.engine import make_engine
from gridmgr.store.queries import grid_workload


def test_grid_at_point(client: TestClient, city: City) -> None:
    cases = {(104.02, 30.62): "510104001001-01", (104.03, 30.68): "510104001001-02",
             (104.05, 30.65): "510104001001-01",  # shared edge: smallest grid_id
             (104.15, 30.65): "510104001002-01", (104.305, 30.6012): "510104001002-01"}
    for (lon, lat), grid_id in cases.items():
        r = client.get("/grids/at", params={"lon": lon, "lat": lat}, headers=city.auth("admin"))
        assert r.status_code == 200, (lon, lat)
        assert r.json()["grid_id"] == grid_id, (lon, lat)
    r = client.get("/grids/at", params={"lon": 104.5, "lat": 30.9}, headers=city.auth("admin"))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.get("/grids/at", params={"lon": 181, "lat": 30.9}, headers=city.auth("admin"))
    assert r.status_code == 400 and r.json()["error"] == "bad_coordinates"


def test_grid_detail_matches_store_workload(client: TestClient, city: City) -> None:
    engine = make_engine(city.url)
    with engine.connect() as conn:
        expected = grid_workload(conn).set_index("grid_id")
    engine.dispose()
    for grid_id, row in expected.iterrows():
        r = client.get(f"/grids/{grid_id}", headers=city.auth("supervisor"))
        assert r.status_code == 200
        grid = GridOut.model_validate(r.json())
        assert grid.boundary.type == "MultiPolygon"
        assert grid.tier == row["tier"] == grid.workload.tier
        for col in ("houses", "residents", "floating_residents", "rental_key", "businesses",
                    "co_managers_needed", "co_managers_gap"):
            assert getattr(grid.workload, col) == int(row[col]), col
        assert abs(grid.workload.inspections_per_month - row["inspections_per_month"]) < 1e-9
    island = GridOut.model_validate(client.get("/grids/510104001002-01",
                                               headers=city.auth("admin")).json())
    assert len(island.boundary.coordinates) == 2  # the grid's two parts
    assert client.get("/grids/nope", headers=city.auth("admin")).status_code == 404


def test_grid_workload_follows_count_changes(city: City) -> None:
    """The workload cache is keyed by the counts row, so a changed count shows at once."""
    with TestClient(create_app(settings_for(city.url))) as c:
        before = c.get("/grids/510104001001-02", headers=city.auth("admin")).json()
        engine = make_engine(city.url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE grid_count SET floating_residents = floating_residents + 600"
                              " WHERE grid_pk = (SELECT id FROM grid WHERE grid_id = :g)"),
                         {"g": "510104001001-02"})
        try:
            after = c.get("/grids/510104001001-02", headers=city.auth("admin")).json()
        finally:
            with engine.begin() as conn:
                conn.execute(text(
                    "UPDATE grid_count SET floating_residents = floating_residents - 600"
                    " WHERE grid_pk = (SELECT id FROM grid WHERE grid_id = :g)"),
                    {"g": "510104001001-02"})
            engine.dispose()
    assert after["workload"]["floating_residents"] == before["workload"]["floating_residents"] + 600
    assert after["workload"]["co_managers_needed"] > before["workload"]["co_managers_needed"]


def test_grid_houses_pages_through_everything(client: TestClient, city: City) -> None:
    grid_id = "510104001001-01"
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = client.get(f"/grids/{grid_id}/houses", params=params, headers=city.auth("admin"))
        assert r.status_code == 200
        page = GridHousesOut.model_validate(r.json())
        assert page.count == len(page.houses) <= 2
        seen += [h.house_code or "" for h in page.houses]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    expected = [city.codes[s] for s in ("H001", "H002", "H003", "H004", "H007")]
    assert seen == expected  # stable order, no repeats, nothing missed
    assert pages == 3
    one = client.get(f"/grids/{grid_id}/houses", params={"limit": 1000},
                     headers=city.auth("admin")).json()
    assert [h["house_code"] for h in one["houses"]] == expected and one["next_cursor"] is None


def test_grid_houses_bad_cursors_and_limits(client: TestClient, city: City) -> None:
    grid_id = "510104001001-01"
    first = client.get(f"/grids/{grid_id}/houses", params={"limit": 1},
                       headers=city.auth("admin")).json()
    good = first["next_cursor"]
    other = base64.urlsafe_b64encode(orjson.dumps({"v": 1, "p": 1, "g": "510104001002-01",
                                                    "a": 1})).decode().rstrip("=")
    forged_type = base64.urlsafe_b64encode(orjson.dumps({"v": 1, "p": 1, "g": grid_id,
                                                          "a": "1 OR 1=1"})).decode()
    for bad in ("garbage!", "e30", good[:-3], other, forged_type, "x" * 600,
                base64.urlsafe_b64encode(b"\xff\xfe").decode()):
        r = client.get(f"/grids/{grid_id}/houses", params={"cursor": bad},
                       headers=city.auth("admin"))
        assert r.status_code == 400, bad
        assert r.json()["error"] == "bad_cursor", (bad, r.json())
    r = client.get(f"/grids/{grid_id}/houses", params={"limit": 1001}, headers=city.auth("admin"))
    assert r.status_code == 400 and r.json()["error"] == "limit_too_large"
    r = client.get(f"/grids/{grid_id}/houses", params={"limit": -1}, headers=city.auth("admin"))
    assert r.status_code == 400 and r.json()["error"] == "bad_input"


def test_grids_scoped_for_police(client: TestClient, city: City) -> None:
    a = city.auth("police_a")
    assert client.get("/grids/510104001001-01", headers=a).status_code == 200
    assert client.get("/grids/510104001002-01", headers=a).status_code == 404
    assert client.get("/grids/510104001002-01/houses", headers=a).status_code == 404
    r = client.get("/grids/at", params={"lon": 104.15, "lat": 30.65}, headers=a)
    assert r.status_code == 404
    b = city.auth("police_b")
    assert client.get("/grids/at", params={"lon": 104.15, "lat": 30.65}, headers=b).json()[
        "grid_id"] == "510104001002-01"


def test_workload_and_staffing_levels(client: TestClient, city: City) -> None:
    admin = city.auth("admin")
    grids = WorkloadOut.model_validate(client.get("/workload", headers=admin).json())
    assert {r.grid_id for r in grids.rows} == {"510104001001-01", "510104001001-02",
                                               "510104001002-01"}
    community = client.get("/workload", params={"level": "community"}, headers=admin).json()
    WorkloadOut.model_validate(community)
    by_area = {r["area_code"]: r for r in community["rows"]}
    assert by_area["510104001001"]["houses"] == sum(
        r.houses for r in grids.rows if r.community_code == "510104001001")
    city_row = client.get("/workload", params={"level": "city"}, headers=admin).json()["rows"]
    assert sum(r["residents"] for r in city_row) == sum(r.residents for r in grids.rows)
    under = client.get("/workload", params={"parent": "510104001002"}, headers=admin).json()
    assert [r["grid_id"] for r in under["rows"]] == ["510104001002-01"]
    staffing = StaffingOut.model_validate(client.get(
        "/staffing", params={"level": "community", "ratio": 1}, headers=admin).json())
    assert {r.area_code: r.co_managers_needed for r in staffing.rows} == {
        r["area_code"]: r["floating_residents"] for r in community["rows"]}
    for params in ({"level": "planet"}, {"ratio": 0}, {"parent": "51x"}):
        r = client.get("/staffing", params=params, headers=admin)
        assert r.status_code == 400 and r.json()["error"] == "bad_input", params
    assert client.get("/workload", params={"parent": "999"}, headers=admin).status_code == 404


def test_workload_scoped_for_police(client: TestClient, city: City) -> None:
    a = client.get("/workload", headers=city.auth("police_a")).json()
    assert a["parent"] == "510104001001"
    assert {r["grid_id"] for r in a["rows"]} == {"510104001001-01", "510104001001-02"}
    r = client.get("/workload", params={"parent": "510104001002"}, headers=city.auth("police_a"))
    assert r.status_code == 404
    s = client.get("/staffing", params={"level": "community"},
                   headers=city.auth("police_b")).json()
    assert [row["area_code"] for row in s["rows"]] == ["510104001002"]
