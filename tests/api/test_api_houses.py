"""Houses and people over HTTP on both stores: by code, residents, a person's houses, near."""

from __future__ import annotations

import math

from apicity import City
from fastapi.testclient import TestClient

from api.models import HouseOut, HousesNearOut, PersonHousesOut, ResidentsOut
from gridmgr import codes


def _haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    r = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * r * math.asin(math.sqrt(a))


def test_house_by_code_and_display_forms(client: TestClient, city: City) -> None:
    code = city.codes["H001"]
    r = client.get(f"/houses/{code}", headers=city.auth("planner"))
    assert r.status_code == 200
    house = HouseOut.model_validate(r.json())
    assert house.house_code == code
    assert house.community_code == "510104001001"
    assert house.grid is not None and house.grid.grid_id == "510104001001-01"
    assert house.location.coordinates == [104.02, 30.62]
    assert house.display_code == codes.format_code(code)
    assert (house.district_code, house.street_code) == ("510104", "510104001")
    # the display form, spaces, and a lowercase x (H001 ends in X) all find the same house
    for form in (codes.format_code(code), codes.format_code(code).replace("-", " "),
                 code.lower()):
        again = client.get(f"/houses/{form}", headers=city.auth("planner"))
        assert again.status_code == 200, form
        assert again.json()["house_code"] == code


def test_house_outside_every_grid_has_no_grid(client: TestClient, city: City) -> None:
    r = client.get(f"/houses/{city.codes['H012']}", headers=city.auth("admin"))
    assert r.status_code == 200
    assert r.json()["grid"] is None
    assert r.json()["outside_areas"] is True


def test_bad_and_unknown_house_codes(client: TestClient, city: City) -> None:
    code = city.codes["H002"]
    wrong_check = code[:22] + ("0" if code[22] != "0" else "1")
    swapped = code[:12] + code[13] + code[12] + code[14:]
    for bad in (wrong_check, code[:-1], code + "1", "5101A40010010001010102"):
        r = client.get(f"/houses/{bad}", headers=city.auth("admin"))
        assert r.status_code == 400, bad
        assert r.json()["error"] == "invalid_house_code"
        assert bad[:5] in r.json()["detail"] or "characters" in r.json()["detail"]
    if swapped != code:
        assert client.get(f"/houses/{swapped}", headers=city.auth("admin")).status_code == 400
    unknown = codes.encode("510104001001", 9999, 99, 9999)
    r = client.get(f"/houses/{unknown}", headers=city.auth("admin"))
    assert r.status_code == 404
    assert r.json() == {"error": "not_found", "detail": f"no house with code {unknown}"}


def test_residents_masked_by_role(client: TestClient, city: City) -> None:
    code = city.codes["H001"]  # P1 and P2 live here, in community C1
    full = client.get(f"/houses/{code}/residents", headers=city.auth("admin")).json()
    ResidentsOut.model_validate(full)
    assert full["masked"] is False and full["count"] == 2
    by_name = {p["name"]: p for p in full["residents"]}
    assert set(by_name) == {"张三", "李四"}
    id_number = by_name["张三"]["id_number"]
    assert len(id_number) == 18 and "*" not in id_number
    assert by_name["张三"]["phone"] == "13800000001"
    assert by_name["张三"]["birth_date"] == "1990-01-01"

    for role in ("planner", "supervisor"):
        masked = client.get(f"/houses/{code}/residents", headers=city.auth(role)).json()
        ResidentsOut.model_validate(masked)
        assert masked["masked"] is True
        p = {x["name"]: x for x in masked["residents"]}["张三"]
        assert p["id_number"] == id_number[:4] + "*" * 10 + id_number[-4:]
        assert p["phone"] == "138****0001"
        assert p["birth_date"] is None
        assert p["person_id"] == by_name["张三"]["person_id"]

    for role in ("police_a", "police_street"):  # in-area police see identifiers in full
        police = client.get(f"/houses/{code}/residents", headers=city.auth(role)).json()
        assert police["masked"] is False
        assert {x["name"]: x for x in police["residents"]}["张三"]["id_number"] == id_number


def test_police_of_another_area_sees_nothing(client: TestClient, city: City) -> None:
    code = city.codes["H001"]  # in C1
    missing = codes.encode("510104001001", 9999, 99, 9998)
    for path in (f"/houses/{code}", f"/houses/{code}/residents"):
        r = client.get(path, headers=city.auth("police_b"))
        assert r.status_code == 404
        # exactly what a house that does not exist answers: no existence oracle
        other = client.get(path.replace(code, missing), headers=city.auth("police_b"))
        assert r.json()["error"] == other.json()["error"] == "not_found"
        assert r.json()["detail"].replace(code, "X") == other.json()["detail"].replace(missing, "X")
        assert "张三" not in r.text
    assert client.get(f"/houses/{code}", headers=city.auth("police_a")).status_code == 200


def test_person_houses_history_and_scope(client: TestClient, city: City) -> None:
    p1 = city.people["P1"]  # lives in H001 (C1) now; lived in H008 (C2) before
    r = client.get(f"/people/{p1}/houses", headers=city.auth("admin"))
    assert r.status_code == 200
    body = PersonHousesOut.model_validate(r.json())
    assert [h.house_code for h in body.houses] == [city.codes["H001"], city.codes["H008"]]
    assert [h.current for h in body.houses] == [True, False]
    assert body.houses[1].left_on is not None

    a = client.get(f"/people/{p1}/houses", headers=city.auth("police_a")).json()
    assert [h["house_code"] for h in a["houses"]] == [city.codes["H001"]]
    b = client.get(f"/people/{p1}/houses", headers=city.auth("police_b")).json()
    assert [h["house_code"] for h in b["houses"]] == [city.codes["H008"]]
    assert b["person"]["id_number"] == body.person.id_number  # police see in full

    p3 = city.people["P3"]  # lives in C1 only
    r = client.get(f"/people/{p3}/houses", headers=city.auth("police_b"))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert client.get("/people/999999/houses", headers=city.auth("admin")).status_code == 404
    masked = client.get(f"/people/{p1}/houses", headers=city.auth("planner")).json()
    assert masked["masked"] is True and "*" in masked["person"]["id_number"]
    for bad in ("0", "-3", "abc", str(2**63)):
        r = client.get(f"/people/{bad}/houses", headers=city.auth("admin"))
        assert r.status_code == 400, bad


def test_houses_near_nearest_first_within_radius(client: TestClient, city: City) -> None:
    lon, lat = 104.021, 30.621
    r = client.get("/houses", params={"lon": lon, "lat": lat, "radius_m": 3000},
                   headers=city.auth("admin"))
    assert r.status_code == 200
    body = HousesNearOut.model_validate(r.json())
    got = [h.house_code for h in body.houses]
    # every house within 3 km, by great-circle distance (the store uses the ellipsoid)
    expected = {}
    for code in city.codes.values():
        row = client.get(f"/houses/{code}", headers=city.auth("admin")).json()
        d = _haversine_m(lon, lat, *row["location"]["coordinates"])
        if d <= 3000:
            expected[code] = d
    assert set(got) == set(expected)
    assert got == sorted(expected, key=expected.get)  # type: ignore[arg-type]
    distances = [h.distance_m for h in body.houses]
    assert distances == sorted(distances)
    for h in body.houses:
        assert abs(h.distance_m - expected[h.house_code]) < 0.01 * expected[h.house_code] + 1

    two = client.get("/houses", params={"lon": lon, "lat": lat, "radius_m": 3000, "limit": 2},
                     headers=city.auth("admin")).json()
    assert [h["house_code"] for h in two["houses"]] == got[:2]
    none = client.get("/houses", params={"lon": 110.0, "lat": 35.0, "radius_m": 1000},
                      headers=city.auth("admin")).json()
    assert none["count"] == 0 and none["houses"] == []


def test_houses_near_scoped_for_police(client: TestClient, city: City) -> None:
    # a point on the C1/C2 border reaches houses of both communities
    params = {"lon": 104.1, "lat": 30.64, "radius_m": 5000, "limit": 1000}
    everything = client.get("/houses", params=params, headers=city.auth("admin")).json()
    communities = {h["community_code"] for h in everything["houses"]}
    assert communities == {"510104001001", "510104001002"}
    for who, mine in (("police_a", "510104001001"), ("police_b", "510104001002")):
        got = client.get("/houses", params=params, headers=city.auth(who)).json()
        assert got["count"] > 0
        assert {h["community_code"] for h in got["houses"]} == {mine}
        assert got["houses"] == [h for h in everything["houses"] if h["community_code"] == mine]


def test_houses_near_bad_input(client: TestClient, city: City) -> None:
    cases = [({"lon": 200, "lat": 30.6}, "bad_coordinates"),
             ({"lon": 104, "lat": -91}, "bad_coordinates"),
             ({"lon": "nan", "lat": 30.6}, "bad_coordinates"),
             ({"lon": 104, "lat": "inf"}, "bad_coordinates"),
             ({"lon": 104}, "bad_coordinates"),
             ({"lon": 104, "lat": 30.6, "radius_m": 0}, "bad_input"),
             ({"lon": 104, "lat": 30.6, "radius_m": 6000}, "bad_input"),
             ({"lon": 104, "lat": 30.6, "limit": 1001}, "limit_too_large"),
             ({"lon": 104, "lat": 30.6, "limit": 0}, "bad_input"),
             ({"lon": 104, "lat": 30.6, "radius": 10}, "unknown_parameter")]
    for params, code in cases:
        r = client.get("/houses", params=params, headers=city.auth("admin"))
        assert r.status_code == 400, params
        assert r.json()["error"] == code, (params, r.json())
        assert r.json()["detail"]
