"""The web app's routes over HTTP on the live server: shell, static files, inspections, search."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from gridmgr.store.inspections_store import monday_of

if TYPE_CHECKING:
    from webapp import WebCity

pytest_plugins = ["webapp"]


@pytest.fixture(scope="module")
def http(web_city: WebCity) -> Iterator[httpx.Client]:
    """A client of the module's server."""
    with httpx.Client(base_url=web_city.url, timeout=30) as client:
        yield client


def auth(city: WebCity, role: str) -> dict[str, str]:
    """The Authorization header of a role's token."""
    return {"Authorization": f"Bearer {city.tokens[role]}"}


def test_shell_for_browsers_landing_json_for_the_rest(http: httpx.Client) -> None:
    page = http.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/web/app.js">' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    landing = http.get("/")  # httpx sends Accept: */*
    assert landing.status_code == 200 and landing.json()["title"] == "gridmgr"
    assert http.get("/", params={"f": "html"}).headers["content-type"].startswith("text/html")
    assert http.get("/", headers={"Accept": "text/html"}, params={"f": "json"}).json()["links"]
    assert http.get("/", params={"x": "1"}).status_code == 400


def test_static_files_and_their_limits(http: httpx.Client) -> None:
    js = http.get("/web/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    again = http.get("/web/app.js", headers={"If-None-Match": js.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert http.get("/web/i18n/zh.json").json()["app.title"] == "网格化服务管理"
    assert http.get("/web/vendor/leaflet-geoman/leaflet-geoman.min.js").status_code == 200
    for path in ("/web/nope.js", "/web/../web_router.py", "/web/%2e%2e/web_router.py",
                 "/web/..%2fweb_router.py"):
        response = http.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"


def test_week_list_roles_and_scope(http: httpx.Client, web_city: WebCity) -> None:
    grid = f"{web_city.police_area}001-01"  # the police street's one community and grid
    url = f"/grids/{grid}/inspections"
    today = dt.date.today()
    police = http.get(url, headers=auth(web_city, "police"), params={"week": today.isoformat()})
    assert police.status_code == 200
    body = police.json()
    assert body["week_start"] == monday_of(today).isoformat()
    assert body["week_end"] == (monday_of(today) + dt.timedelta(days=6)).isoformat()
    flags = [r["overdue"] for r in body["rows"]]
    assert body["count"] == len(flags) > 0 and body["overdue"] == sum(flags)
    assert flags == sorted(flags, reverse=True)
    dues = [r["due_on"] for r in body["rows"] if r["overdue"]]
    assert dues == sorted(dues)  # most overdue first
    assert all(r["rental_class"] in ("key", "uneasy") for r in body["rows"])
    assert http.get(url, headers=auth(web_city, "supervisor")).json() == body  # default: this week
    assert http.get(url, headers=auth(web_city, "planner")).status_code == 403
    assert http.get(url).status_code == 401
    bad = http.get(url, headers=auth(web_city, "police"), params={"week": "next week"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json()["detail"]
    other = http.get("/collections/grids/items", headers=auth(web_city, "admin"),
                     params={"limit": 1000}).json()["features"]
    foreign = next(f["id"] for f in other if not f["id"].startswith(web_city.police_area))
    outside = http.get(f"/grids/{foreign}/inspections", headers=auth(web_city, "police"))
    assert outside.status_code == 404  # outside the officer's area reads as missing
    assert http.get(f"/grids/{foreign}/inspections",
                    headers=auth(web_city, "admin")).status_code == 200


def test_recording_an_inspection(http: httpx.Client, web_city: WebCity) -> None:
    grid = f"{web_city.police_area}001-01"
    rows = http.get(f"/grids/{grid}/inspections", headers=auth(web_city, "police")).json()["rows"]
    target = next(r for r in rows if r["rental_class"] == "uneasy")
    today = dt.date.today()
    body = {"house_code": target["house_code"], "inspected_on": today.isoformat(),
            "inspector": "社区网格员", "outcome": "正常"}
    assert http.post("/inspections", json=body,
                     headers=auth(web_city, "planner")).status_code == 403
    assert http.post("/inspections", json=body,
                     headers=auth(web_city, "supervisor")).status_code == 403
    future = {**body, "inspected_on": (today + dt.timedelta(days=1)).isoformat()}
    response = http.post("/inspections", json=future, headers=auth(web_city, "police"))
    assert response.status_code == 400 and "future" in response.json()["detail"]
    elsewhere = {**body, "house_code": web_city.foreign_house}
    assert http.post("/inspections", json=elsewhere,
                     headers=auth(web_city, "police")).status_code == 404
    bad_code = {**body, "house_code": target["house_code"][:-1] + "0"}
    response = http.post("/inspections", json=bad_code, headers=auth(web_city, "police"))
    if target["house_code"][-1] != "0":
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_house_code"

    done = http.post("/inspections", json=body, headers=auth(web_city, "police"))
    assert done.status_code == 201, done.text
    out = done.json()
    assert out["next_due_on"] == (today + dt.timedelta(days=15)).isoformat()
    assert out["previous_due_on"] == target["due_on"] and out["rental_class"] == "uneasy"
    after = http.get(f"/grids/{grid}/inspections", headers=auth(web_city, "police")).json()
    assert target["house_code"] not in {r["house_code"] for r in after["rows"]}
    rental = http.get(f"/houses/{target['house_code']}/rental",
                      headers=auth(web_city, "police")).json()
    assert rental["rental"]["next_due_on"] == out["next_due_on"]
    assert rental["rental"]["inspections"][0] == {"inspected_on": today.isoformat(),
                                                  "inspector": "社区网格员", "outcome": "正常"}


def test_rental_is_masked_by_role(http: httpx.Client, web_city: WebCity) -> None:
    url = f"/houses/{web_city.house_code}/rental"
    police = http.get(url, headers=auth(web_city, "police")).json()
    supervisor = http.get(url, headers=auth(web_city, "supervisor")).json()
    landlord = police["rental"]["landlord_id_number"]
    assert not police["masked"] and len(landlord) == 18 and "*" not in landlord
    assert supervisor["masked"] and supervisor["rental"]["landlord_id_number"] != landlord
    assert "*" in supervisor["rental"]["landlord_id_number"]
    assert police["rental"]["rental_class"] == web_city.rental_class
    assert http.get(f"/houses/{web_city.foreign_house}/rental",
                    headers=auth(web_city, "police")).status_code == 404
    # Each lookup is in the audit log, the one outside the officer's area too.
    log = http.get("/audit", headers=auth(web_city, "admin"),
                   params={"target": web_city.foreign_house}).json()["entries"]
    assert [(e["action"], e["detail"]["outcome"]) for e in log] == [("house_rental", "not_found")]
    log = http.get("/audit", headers=auth(web_city, "admin"),
                   params={"target": web_city.house_code}).json()["entries"]
    rentals = [e for e in log if e["action"] == "house_rental"]
    assert {e["role"] for e in rentals} == {"police", "supervisor"}


def test_search_by_address_and_code_prefix(http: httpx.Client, web_city: WebCity) -> None:
    police = http.get("/search/houses", headers=auth(web_city, "police"),
                      params={"q": "街道", "limit": 100}).json()
    assert police["count"] > 0
    assert all(h["community_code"].startswith(web_city.police_area) for h in police["houses"])
    address = http.get(f"/houses/{web_city.foreign_house}",
                       headers=auth(web_city, "admin")).json()["address"]
    admin = http.get("/search/houses", headers=auth(web_city, "admin"),
                     params={"q": address}).json()
    assert web_city.foreign_house in {h["house_code"] for h in admin["houses"]}
    hidden = http.get("/search/houses", headers=auth(web_city, "police"),
                      params={"q": address}).json()
    assert hidden["count"] == 0  # outside the officer's area
    prefix = web_city.house_code[:16]
    by_code = http.get("/search/houses", headers=auth(web_city, "police"),
                       params={"q": f"{prefix[:12]}-{prefix[12:]}"}).json()
    assert by_code["count"] > 0
    assert all(h["house_code"].startswith(prefix) for h in by_code["houses"])
    assert web_city.house_code in {h["house_code"] for h in by_code["houses"]}
    wild = http.get("/search/houses", headers=auth(web_city, "admin"), params={"q": "%%"}).json()
    assert wild["count"] == 0  # LIKE wildcards are matched literally
    assert http.get("/search/houses", headers=auth(web_city, "admin"),
                    params={"q": "a"}).status_code == 400


def test_plan_grids_geojson(http: httpx.Client, web_city: WebCity) -> None:
    fc = http.get("/plans/base/grids", headers=auth(web_city, "planner")).json()
    assert fc["type"] == "FeatureCollection" and fc["count"] == 20 == len(fc["features"])
    props = fc["features"][0]["properties"]
    assert props["tier"] in ("strengthened", "key", "routine")
    assert {"floating_residents", "co_managers_needed", "locked"} <= set(props)
    assert fc["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    one = http.get("/plans/base/grids", headers=auth(web_city, "supervisor"),
                   params={"area": web_city.police_area}).json()
    assert [f["id"] for f in one["features"]] == [f"{web_city.police_area}001-01"]
    assert http.get("/plans/base/grids", headers=auth(web_city, "police")).status_code == 403
    assert http.get("/plans/nope/grids", headers=auth(web_city, "planner")).status_code == 404
    assert http.get("/plans/base/grids", headers=auth(web_city, "planner"),
                    params={"area": "999"}).status_code == 404
