"""Houses near a point are exactly the nearest on the WGS84 ellipsoid, on both stores.

The tiny city gets a cluster of houses laid out against the PostGIS plan (a KNN pass in
degrees bounds the search, an exact geodesic pass decides): a building due north that is
nearer in degrees but farther in metres than one due east, units stacked on one point (ties
broken by house id), and radii a centimetre either side of a building. Every answer is
compared with distances computed independently (pyproj's geodesic on WGS84).
"""

from __future__ import annotations

import pandas as pd
import pytest
from apicity import City
from fastapi.testclient import TestClient
from pyproj import Geod
from sqlalchemy import text

from api.models import HousesNearOut
from gridmgr.store.engine import make_engine
from gridmgr.store.load import load_file

Q = (104.05, 30.625)
"""The query point, inside grid 510104001001-01."""

CLUSTER = {  # prefix: (lon, lat, units)
    "N": (104.05, 30.6259, 30),     # ~99.8 m north: 0.0009° away, nearer than E in degrees
    "E": (104.051, 30.625, 25),     # ~95.8 m east: 0.0010° away, nearer than N in metres
    "W": (104.04903, 30.62505, 1),  # ~93.1 m west
    "S": (104.05, 30.6242, 4),      # ~88.7 m south
    "C": (104.0503, 30.6252, 3),    # ~37.2 m
    "F": (104.053, 30.6275, 2),     # ~406 m
}
GEOD = Geod(ellps="WGS84")
TOLERANCE_M = 0.005


@pytest.fixture(scope="module")
def houses(city: City, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Load the cluster into the module's city; every house with its exact distance to Q."""
    rows = [{"source_id": f"{p}{i:03d}", "lon": lon, "lat": lat, "address": f"测试{p}{i}号",
             "building": 10 + k, "unit": 1, "room": 101 + i, "area_m2": 50.0,
             "use": "residential"}
            for k, (p, (lon, lat, n)) in enumerate(CLUSTER.items()) for i in range(n)]
    path = tmp_path_factory.mktemp("near") / "cluster.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    engine = make_engine(city.url)
    load_file(engine, "houses", path, report_path=path.with_suffix(".report.csv"))
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(text(
            "SELECT id, house_code, source_id, lon, lat FROM house")).mappings().all())
    engine.dispose()
    n = len(frame)
    frame["d"] = GEOD.inv([Q[0]] * n, [Q[1]] * n, frame["lon"].to_list(),
                          frame["lat"].to_list())[2]
    return frame


def _expected(houses: pd.DataFrame, radius_m: float, limit: int) -> pd.DataFrame:
    inside = houses[houses["d"] <= radius_m]
    return inside.sort_values(["d", "id"]).head(limit)


def _near(client: TestClient, city: City, radius_m: float, limit: int) -> HousesNearOut:
    r = client.get("/houses", params={"lon": Q[0], "lat": Q[1], "radius_m": radius_m,
                                      "limit": limit}, headers=city.auth("admin"))
    assert r.status_code == 200, r.text
    return HousesNearOut.model_validate(r.json())


def test_cluster_is_laid_out_as_intended(houses: pd.DataFrame) -> None:
    d = houses.groupby(houses["source_id"].str[0])["d"].first()
    assert d["C"] < d["S"] < d["W"] < d["E"] < d["N"] < 300 < d["F"]
    # N is nearer than E in degrees, farther in metres: a degree-ordered scan is not enough.
    assert abs(CLUSTER["N"][1] - Q[1]) < abs(CLUSTER["E"][0] - Q[0])


@pytest.mark.parametrize("limit", [1, 3, 4, 8, 9, 20, 33, 34, 60, 1000])
@pytest.mark.parametrize("radius_m", [30.0, 95.0, 150.0, 300.0, 5000.0])
def test_nearest_first_exactly(client: TestClient, city: City, houses: pd.DataFrame,
                               radius_m: float, limit: int) -> None:
    want = _expected(houses, radius_m, limit)
    got = _near(client, city, radius_m, limit)
    assert got.count == len(want)
    assert [h.house_code for h in got.houses] == want["house_code"].to_list()
    for h, d in zip(got.houses, want["d"], strict=True):
        assert abs(h.distance_m - d) < TOLERANCE_M
        assert h.distance_m <= radius_m


@pytest.mark.parametrize("prefix", ["C", "W", "E", "N"])
def test_radius_is_a_hard_edge(client: TestClient, city: City, houses: pd.DataFrame,
                               prefix: str) -> None:
    """A building a centimetre inside the radius is in; a centimetre outside, it is not."""
    edge = float(houses.loc[houses["source_id"].str[0] == prefix, "d"].iloc[0])
    codes = set(houses.loc[houses["source_id"].str[0] == prefix, "house_code"])
    inside = {h.house_code for h in _near(client, city, edge + 0.01, 1000).houses}
    outside = {h.house_code for h in _near(client, city, edge - 0.01, 1000).houses}
    assert codes <= inside
    assert not codes & outside
    assert inside - outside == codes
