"""Adopting a plan over HTTP: the same worker answers for the new grids at once, on both stores.

The worker is warmed first (grid detail, grid at a point, workload, staffing, pages of a
grid's houses, features), so anything it kept per worker would show up stale afterwards.
The draft reshapes one grid (taking house H005 from its neighbour) and splits the
neighbour, so grids change shape, change counts, disappear and appear.
"""

from __future__ import annotations

from typing import Any

from apicity import City, settings_for
from cityfiles import C1
from fastapi.testclient import TestClient

from api.app import create_app
from api.models import GridHousesOut, GridOut, StaffingOut, WorkloadOut
from gridmgr.store.engine import make_engine
from gridmgr.store.queries import grid_workload

G1, G2 = f"{C1}-01", f"{C1}-02"
NEW_G1 = "POLYGON ((104 30.6, 104.1 30.6, 104.1 30.675, 104 30.675, 104 30.6))"
"""G1 grows north from lat 30.65 to 30.675, taking H005 (104.02, 30.67) from G2."""
SPLIT_G2 = "LINESTRING (104.05 30.6, 104.05 30.8)"
"""What is left of G2 (lat 30.675..30.7) is cut in two at lon 104.05."""
H005_POINT = {"lon": 104.02, "lat": 30.67}
WEST_OF_CUT = {"lon": 104.03, "lat": 30.68}  # H006, in G2 until the split


def _rows(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["grid_id"]: r for r in body["rows"]}


def _codes_in(client: TestClient, grid_id: str, auth: dict[str, str]) -> set[str | None]:
    r = client.get(f"/grids/{grid_id}/houses", params={"limit": 1000}, headers=auth)
    assert r.status_code == 200, r.text
    page = GridHousesOut.model_validate(r.json())
    assert page.next_cursor is None
    return {h.house_code for h in page.houses}


def test_adopted_plan_answers_at_once_in_the_same_worker(client: TestClient, city: City) -> None:
    admin = city.auth("admin")
    h005 = city.codes["H005"]

    # ---- warm the worker on the plan in force
    before = {g: GridOut.model_validate(client.get(f"/grids/{g}", headers=admin).json())
              for g in (G1, G2)}
    assert client.get("/grids/at", params=H005_POINT, headers=admin).json()["grid_id"] == G2
    assert client.get("/grids/at", params=WEST_OF_CUT, headers=admin).json()["grid_id"] == G2
    assert client.get(f"/houses/{h005}", headers=admin).json()["grid"]["grid_id"] == G2
    workload_before = _rows(client.get("/workload", headers=admin).json())
    client.get("/staffing", headers=admin)
    assert h005 in _codes_in(client, G2, admin)
    first_page = client.get(f"/grids/{G1}/houses", params={"limit": 1}, headers=admin).json()
    assert first_page["next_cursor"] is not None
    client.get("/collections/grids/items", headers=admin)

    # ---- a draft: G1 reshaped, what is left of G2 split
    planner, supervisor = city.auth("planner"), city.auth("supervisor")
    assert client.post("/plans", json={"name": "north"}, headers=planner).status_code == 201
    r = client.post("/plans/north/reshape", json={"grid_id": G1, "geometry": NEW_G1},
                    headers=planner)
    assert r.status_code == 200, r.text
    assert {(m["house_code"], m["from"], m["to"]) for m in r.json()["moved"]} == {(h005, G2, G1)}
    r = client.post("/plans/north/split", json={"grid_id": G2, "line": SPLIT_G2},
                    headers=planner)
    assert r.status_code == 200, r.text
    west, east = sorted(r.json()["added"])
    assert r.json()["removed"] == [G2]

    # A draft is not in force: the worker still answers for the adopted plan.
    assert client.get("/grids/at", params=H005_POINT, headers=admin).json()["grid_id"] == G2
    assert client.get(f"/grids/{west}", headers=admin).status_code == 404

    r = client.post("/plans/north/adopt", headers=supervisor)
    assert r.status_code == 200, r.text
    assert r.json()["plan"] == "north" and r.json()["houses_moved"] >= 1

    # ---- the same worker, no restart: every route answers for the new grids
    assert client.get("/grids/at", params=H005_POINT, headers=admin).json()["grid_id"] == G1
    at_cut = client.get("/grids/at", params=WEST_OF_CUT, headers=admin).json()["grid_id"]
    assert at_cut == west
    assert client.get(f"/houses/{h005}", headers=admin).json()["grid"]["grid_id"] == G1
    assert client.get(f"/grids/{G2}", headers=admin).status_code == 404

    g1 = GridOut.model_validate(client.get(f"/grids/{G1}", headers=admin).json())
    assert max(p[1] for ring in g1.boundary.coordinates for p in ring[0]) == 30.675
    assert g1.area_km2 > before[G1].area_km2 * 1.4
    assert g1.workload.houses == before[G1].workload.houses + 1
    assert g1.workload.floating_residents == before[G1].workload.floating_residents + 1
    new_grids = {g: GridOut.model_validate(client.get(f"/grids/{g}", headers=admin).json())
                 for g in (west, east)}
    assert (sum(g.workload.houses for g in new_grids.values())
            == before[G2].workload.houses - 1)

    # What the worker answers is what the store holds now.
    engine = make_engine(city.url)
    with engine.connect() as conn:
        truth = grid_workload(conn).set_index("grid_id")
    engine.dispose()
    assert set(truth.index) == {G1, west, east, f"{city.communities['H008']}-01"}
    for grid_id, row in truth.iterrows():
        grid = GridOut.model_validate(client.get(f"/grids/{grid_id}", headers=admin).json())
        for col in ("houses", "residents", "floating_residents", "rental_houses",
                    "businesses", "co_managers_needed", "co_managers_assigned"):
            assert getattr(grid.workload, col) == int(row[col]), (grid_id, col)
        assert grid.tier == row["tier"]
        assert abs(grid.area_km2 - float(row["area_km2"])) < 1e-6

    workload = WorkloadOut.model_validate(client.get("/workload", headers=admin).json())
    rows = {r.grid_id: r for r in workload.rows}
    assert set(rows) == set(truth.index)
    assert rows[G1].houses == workload_before[G1]["houses"] + 1
    community = WorkloadOut.model_validate(client.get(
        "/workload", params={"level": "community"}, headers=admin).json())
    c1 = next(r for r in community.rows if r.area_code == C1)
    assert c1.houses == workload_before[G1]["houses"] + workload_before[G2]["houses"]
    staffing = StaffingOut.model_validate(client.get("/staffing", headers=admin).json())
    assert {r.area_code for r in staffing.rows} == set(truth.index)

    assert h005 in _codes_in(client, G1, admin)
    assert client.get(f"/grids/{G2}/houses", headers=admin).status_code == 404
    # A cursor handed out under the retired plan is refused, not silently wrong.
    r = client.get(f"/grids/{G1}/houses", params={"cursor": first_page["next_cursor"]},
                   headers=admin)
    assert r.status_code == 409 and r.json()["error"] == "conflict"

    feature = client.get(f"/collections/grids/items/{G1}", headers=admin).json()
    assert feature["properties"]["area_km2"] == g1.area_km2
    assert client.get(f"/collections/grids/items/{G2}", headers=admin).status_code == 404
    items = client.get("/collections/grids/items", params={"limit": 100}, headers=admin).json()
    assert {f["id"] for f in items["features"]} == set(truth.index)
    house = client.get(f"/collections/houses/items/{h005}", headers=admin).json()
    assert house["properties"]["grid_id"] == G1

    assert client.get(f"/grids/{west}/inspections", headers=admin).status_code == 200
    assert client.get(f"/grids/{G2}/inspections", headers=admin).status_code == 404

    # Police of C1 see the new grids of their community too.
    police = city.auth("police_a")
    assert client.get("/grids/at", params=H005_POINT, headers=police).json()["grid_id"] == G1
    assert client.get(f"/grids/{west}", headers=police).status_code == 200

    # A worker started now answers exactly as the warm one does.
    paths = [f"/grids/{G1}", f"/grids/{west}", f"/grids/{east}", "/workload", "/staffing",
             "/workload?level=community", f"/houses/{h005}", f"/grids/{G1}/houses",
             f"/collections/grids/items/{G1}"]
    with TestClient(create_app(settings_for(city.url))) as fresh:
        for path in paths:
            assert client.get(path, headers=admin).json() == fresh.get(path,
                                                                       headers=admin).json(), path
