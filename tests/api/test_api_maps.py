"""Maps over HTTP on both stores: offline pages for the caller's area, assets from /static."""

from __future__ import annotations

import re

import pytest
from apicity import City
from fastapi.testclient import TestClient

pytest.importorskip("layers", reason="layers.build_map serves the maps")


@pytest.mark.parametrize("kind", ["inspection", "tier", "staffing"])
def test_map_pages_are_offline_html(client: TestClient, city: City, kind: str) -> None:
    r = client.get(f"/maps/{kind}.html", headers=city.auth("planner"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assets = set(re.findall(r'(?:src|href)="([^"]+)"', r.text))
    assert assets and all(a.startswith("/static/") for a in assets), assets
    assert "https://" not in r.text  # no CDN, no online tiles: police intranets are offline
    for asset in assets:  # and every asset it needs is served here
        assert client.get(asset).status_code == 200, asset


def test_maps_scoped_for_police(client: TestClient, city: City) -> None:
    own = client.get("/maps/tier.html", headers=city.auth("police_a"))
    assert own.status_code == 200
    assert "510104001001-01" in own.text and "510104001002-01" not in own.text
    r = client.get("/maps/tier.html", params={"area": "510104001002"},
                   headers=city.auth("police_a"))
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_map_bad_input(client: TestClient, city: City) -> None:
    for path, status in (("/maps/roads.html", 404), ("/maps/tier.html?area=999999", 404),
                         ("/maps/tier.html?area=abc", 400)):
        r = client.get(path, headers=city.auth("admin"))
        assert r.status_code == status, path
        assert r.json()["error"] in ("not_found", "bad_input")
    assert client.get("/maps/tier.html").status_code == 401
