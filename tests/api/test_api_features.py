"""OGC API Features over HTTP on both stores: collections, items by bbox, paging, scope."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from apicity import City, settings_for
from fastapi.testclient import TestClient

from api.app import create_app
from api.models import (
    AreaCollection,
    CollectionOut,
    CollectionsOut,
    ConformanceOut,
    GridCollection,
    HouseCollection,
    HouseFeature,
)
from api.routes import features


def _inside(coords: list[float], bbox: tuple[float, float, float, float]) -> bool:
    return bbox[0] <= coords[0] <= bbox[2] and bbox[1] <= coords[1] <= bbox[3]


def test_collections_and_conformance(client: TestClient, city: City) -> None:
    r = client.get("/collections", headers=city.auth("planner"))
    body = CollectionsOut.model_validate(r.json())
    assert [c.id for c in body.collections] == ["grids", "houses", "areas"]
    assert body.collections[0].extent is not None
    assert body.collections[0].extent.spatial.bbox == [[104.0, 30.6, 104.2, 30.7]]
    one = CollectionOut.model_validate(client.get("/collections/houses",
                                                  headers=city.auth("planner")).json())
    assert any(link.rel == "items" and link.href.endswith("/collections/houses/items")
               for link in one.links)
    r = client.get("/collections/people", headers=city.auth("planner"))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert client.get("/collections/people/items",
                      headers=city.auth("planner")).status_code == 404
    conf = ConformanceOut.model_validate(client.get("/conformance",
                                                    headers=city.auth("planner")).json())
    assert any(c.endswith("/conf/geojson") for c in conf.conformsTo)


def test_house_items_in_bbox_page_by_page(client: TestClient, city: City) -> None:
    bbox = (104.0, 30.6, 104.1, 30.7)
    everything = client.get("/collections/houses/items", params={"limit": 1000},
                            headers=city.auth("admin")).json()
    assert everything["numberMatched"] == len(city.codes) == everything["numberReturned"]
    expected = [f["id"] for f in everything["features"]
                if _inside(f["geometry"]["coordinates"], bbox)]
    assert len(expected) == 7  # the C1 houses
    url = "/collections/houses/items"
    params: dict[str, object] | None = {"bbox": ",".join(map(str, bbox)), "limit": 3}
    got: list[str] = []
    while True:
        r = client.get(url, params=params, headers=city.auth("admin"))
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/geo+json")
        page = HouseCollection.model_validate(r.json())
        assert page.numberMatched == 7
        assert page.numberReturned == len(page.features) <= 3
        got += [f.id for f in page.features]
        nxt = [link.href for link in page.links if link.rel == "next"]
        if not nxt:
            break
        parts = urlsplit(nxt[0])
        url, params = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert got == expected


def test_grid_and_area_items(client: TestClient, city: City) -> None:
    grids = GridCollection.model_validate(client.get(
        "/collections/grids/items", params={"bbox": "104.26,30.59,104.32,30.62"},
        headers=city.auth("admin")).json())
    assert [f.id for f in grids.features] == ["510104001002-01"]  # by its island only
    areas = AreaCollection.model_validate(client.get(
        "/collections/areas/items", params={"bbox": "104.01,30.61,104.02,30.62"},
        headers=city.auth("admin")).json())
    assert {f.id for f in areas.features} == {"510104", "510104001", "510104001001"}
    r = client.get("/collections/areas/items/510104001002", headers=city.auth("admin"))
    assert r.status_code == 200 and r.json()["properties"]["name"] == "二社区"
    h = client.get(f"/collections/houses/items/{city.codes['H003']}", headers=city.auth("admin"))
    assert HouseFeature.model_validate(h.json()).properties.grid_id == "510104001001-01"
    assert client.get("/collections/houses/items/nope",
                      headers=city.auth("admin")).status_code == 404


def test_items_scoped_for_police(client: TestClient, city: City) -> None:
    for who, mine in (("police_a", "510104001001"), ("police_b", "510104001002")):
        auth = city.auth(who)
        houses = client.get("/collections/houses/items", params={"limit": 1000},
                            headers=auth).json()
        assert houses["numberMatched"] == sum(c == mine for c in city.communities.values())
        assert {f["properties"]["community_code"] for f in houses["features"]} == {mine}
        grids = client.get("/collections/grids/items", headers=auth).json()
        assert {f["properties"]["community_code"] for f in grids["features"]} == {mine}
        areas = client.get("/collections/areas/items", headers=auth).json()
        assert [f["id"] for f in areas["features"]] == [mine]
        other = next(code for src, code in city.codes.items() if city.communities[src] != mine)
        assert client.get(f"/collections/houses/items/{other}", headers=auth).status_code == 404
    street = client.get("/collections/areas/items", headers=city.auth("police_street")).json()
    assert [f["id"] for f in street["features"]] == ["510104001", "510104001001", "510104001002"]


def test_bad_bbox_limit_offset(client: TestClient, city: City) -> None:
    bad_boxes = ["104,30.6,104.1", "104,30.6,104.1,30.7,0,1", "a,b,c,d", "104.1,30.6,104.0,30.7",
                 "104,30.7,104.1,30.6", "104,30.6,104.1,91", "-181,30,104,31", "nan,30,104,31",
                 "104,30.6,inf,30.7", ""]
    for bbox in bad_boxes:
        r = client.get("/collections/houses/items", params={"bbox": bbox},
                       headers=city.auth("admin"))
        assert r.status_code == 400, bbox
        assert r.json()["error"] == "bad_bbox", (bbox, r.json())
    for params, code in (({"limit": 1001}, "limit_too_large"), ({"limit": 0}, "bad_input"),
                         ({"offset": -1}, "bad_input"), ({"offset": 100_001}, "bad_input"),
                         ({"bbx": "104,30,105,31"}, "unknown_parameter")):
        r = client.get("/collections/grids/items", params=params, headers=city.auth("admin"))
        assert r.status_code == 400, params
        assert r.json()["error"] == code, (params, r.json())


# Boxes of at most 0.0004 square degrees: on PostGIS their page comes from
# sql.house_box_page (one pass for page and count); on SpatiaLite from the page query.
H1_H2 = "104.015,30.615,104.035,30.635"  # H001 (104.02, 30.62) and H002 (104.03, 30.62)


def _houses(client: TestClient, city: City, who: str, **params: Any) -> dict[str, Any]:
    r = client.get("/collections/houses/items", params=params, headers=city.auth(who))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = HouseCollection.model_validate(r.json()).model_dump(
        exclude_unset=True)
    return body


def test_small_box_pages_and_number_matched(client: TestClient, city: City) -> None:
    ids = [city.codes["H001"], city.codes["H002"]]
    for limit, offset, page in ((10, 0, ids), (2, 0, ids), (1, 0, ids[:1]), (1, 1, ids[1:]),
                                (5, 1, ids[1:]), (1, 2, []), (10, 7, [])):
        body = _houses(client, city, "admin", bbox=H1_H2, limit=limit, offset=offset)
        assert [f["id"] for f in body["features"]] == page, (limit, offset)
        # exact whether the page is full, partial, or past the end
        assert body["numberMatched"] == 2, (limit, offset)
        assert body["numberReturned"] == len(page)
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        assert bool(nxt) == (offset + len(page) < 2), (limit, offset)
    feature = _houses(client, city, "admin", bbox=H1_H2)["features"][0]
    assert feature == {"type": "Feature", "id": ids[0],
                       "geometry": {"type": "Point", "coordinates": [104.02, 30.62]},
                       "properties": {"house_code": ids[0], "address": "成都市锦江区测试路1号",
                                      "community_code": "510104001001",
                                      "grid_id": "510104001001-01", "building": 1, "unit": 1,
                                      "room": 101, "area_m2": 60.0, "use": "residential"}}


def test_small_box_edges_are_exact(client: TestClient, city: City) -> None:
    # H001 lies on lon 104.02: a box edge on it includes it; 1e-7 degrees (1 cm) past it,
    # well inside the spatial index's float4 rounding, leaves it out.
    for bbox, n in (("104.02,30.61,104.025,30.63", 1), ("104.0200001,30.61,104.025,30.63", 0),
                    ("104.015,30.62,104.035,30.63", 2), ("104.015,30.6200001,104.035,30.63", 0),
                    ("104.5,30.9,104.5,30.9", 1), ("104.6,30.9,104.61,30.91", 0)):
        body = _houses(client, city, "admin", bbox=bbox)
        assert body["numberMatched"] == n == body["numberReturned"], bbox
    outside = _houses(client, city, "admin", bbox="104.5,30.9,104.5,30.9")
    assert outside["features"][0]["properties"]["grid_id"] is None


def test_small_box_scoped_for_police(client: TestClient, city: City) -> None:
    mine = _houses(client, city, "police_a", bbox=H1_H2, limit=1, offset=1)
    assert mine["numberMatched"] == 2
    assert [f["id"] for f in mine["features"]] == [city.codes["H002"]]
    other = _houses(client, city, "police_b", bbox=H1_H2)
    assert other["numberMatched"] == 0 and other["features"] == []
    assert _houses(client, city, "police_b", bbox=H1_H2, offset=3)["numberMatched"] == 0
    street = _houses(client, city, "police_street", bbox=H1_H2, limit=1)
    assert street["numberMatched"] == 2 and street["numberReturned"] == 1


def test_number_matched_left_out_above_the_cap(city: City) -> None:
    with TestClient(create_app(settings_for(city.url, count_cap=1))) as capped:
        for params in ({"bbox": H1_H2}, {"bbox": H1_H2, "limit": 1}, {"bbox": H1_H2, "offset": 5},
                       {"bbox": "104.0,30.6,104.1,30.7", "limit": 3}):
            body = _houses(capped, city, "admin", **params)
            assert "numberMatched" not in body, params
        one = _houses(capped, city, "admin", bbox="104.02,30.61,104.025,30.63")
        assert one["numberMatched"] == 1


# The fast path (api.routes.features.fast_house_items) against the ordinary route: a
# worker without a token cache always takes the ordinary one.
FAST_QUERIES = [
    f"bbox={H1_H2}", f"bbox={H1_H2}&limit=1", f"limit=1&offset=1&bbox={H1_H2}",
    "bbox=104.015%2C30.615%2C104.035%2C30.635&limit=1", "", "limit=1000", "offset=3",
    "bbox=104.0,30.6,104.1,30.7&limit=2&offset=2", "limit=2&offset=100000",
]
SLOW_QUERIES = [
    "limit=0", "limit=05", "limit=%2B5", "limit=1001", "limit=1e2", "limit=%205", "offset=-1",
    "offset=100001", "offset=00", "bbox=a,b,c,d", "bbox=", "bbox=104.1,30.6,104.0,30.7",
    "bbx=1", "limit=1&limit=2", "bbox=" + "1" * 201, f"bbox={H1_H2}&f=json", "offset=" + "9" * 30,
    "limit=%C3%A9", "limit",
]


def _answer(r: Any) -> tuple[int, str, Any]:
    return r.status_code, r.headers.get("content-type"), r.json()


def test_fast_path_answers_as_the_route(client: TestClient, city: City,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[bool] = []
    real = features.fast_house_items

    async def counting(*args: Any) -> bool:
        served.append(await real(*args))
        return served[-1]

    monkeypatch.setattr(features, "fast_house_items", counting)
    url = "/collections/houses/items"
    auth = city.auth("police_a")
    client.get(url, headers=auth)  # the token is checked once, then cached
    with TestClient(create_app(settings_for(city.url, token_cache_seconds=0))) as plain:
        for query in FAST_QUERIES + SLOW_QUERIES:
            served.clear()
            fast, slow = (c.get(f"{url}?{query}", headers=auth) for c in (client, plain))
            assert _answer(fast) == _answer(slow), query
            assert served == [query in FAST_QUERIES, False], query
        headers: list[dict[str, str]] = [
            {}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer gm_unknown"},
            {"Authorization": "bearer " + city.tokens["police_a"]},
            {"Authorization": "Bearer  " + city.tokens["police_a"] + " "}]
        for header in headers:
            fast, slow = (c.get(f"{url}?bbox={H1_H2}", headers=header) for c in (client, plain))
            assert _answer(fast) == _answer(slow), header
        assert client.head(url, headers=auth).status_code == plain.head(
            url, headers=auth).status_code


def test_fast_path_stands_aside_for_middleware(city: City) -> None:
    app = create_app(settings_for(city.url))

    @app.middleware("http")
    async def stamp(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["x-stamp"] = "1"
        return response

    with TestClient(app) as c:
        for _ in range(2):  # the second with the token cached
            r = c.get("/collections/houses/items", params={"bbox": H1_H2},
                      headers=city.auth("admin"))
            assert r.status_code == 200 and r.headers.get("x-stamp") == "1"
