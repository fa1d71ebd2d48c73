"""OGC API Features over HTTP on both stores: collections, items by bbox, paging, scope."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from apicity import City
from fastapi.testclient import TestClient

from api.models import (
    AreaCollection,
    CollectionOut,
    CollectionsOut,
    ConformanceOut,
    GridCollection,
    HouseCollection,
    HouseFeature,
)


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
