"""A tiny hand-made city written as interchange files, for store and CLI tests."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely.geometry import MultiPolygon, Polygon, box
from sqlalchemy import Engine

from gridmgr.idnumber import generate_id_numbers

DISTRICT = "510104"
STREET = "510104001"
C1, C2 = "510104001001", "510104001002"


def areas() -> gpd.GeoDataFrame:
    """One district, one street, two communities side by side."""
    return gpd.GeoDataFrame({
        "code": [DISTRICT, STREET, C1, C2],
        "name": ["锦江区", "春熙路街道", "一社区", "二社区"],
        "level": ["district", "street", "community", "community"],
        "parent_code": ["510100", DISTRICT, STREET, STREET],
    }, geometry=[box(104.0, 30.6, 104.2, 30.7), box(104.0, 30.6, 104.2, 30.7),
                 box(104.0, 30.6, 104.1, 30.7), box(104.1, 30.6, 104.2, 30.7)], crs=4326)


def grids() -> gpd.GeoDataFrame:
    """Three grids: C1 split in two along lat 30.65, C2 one grid with an island part."""
    island = MultiPolygon([box(104.1, 30.6, 104.2, 30.7).buffer(0),
                           Polygon([(104.3, 30.6), (104.31, 30.6), (104.31, 30.61)])])
    return gpd.GeoDataFrame({
        "grid_id": [f"{C1}-01", f"{C1}-02", f"{C2}-01"],
        "community_code": [C1, C1, C2],
        "police_area": ["P1", "P1", "P2"],
        "co_managers": [1, 0, 2],
    }, geometry=[box(104.0, 30.6, 104.1, 30.65), box(104.0, 30.65, 104.1, 30.7), island],
        crs=4326)


def houses() -> pd.DataFrame:
    """Twelve houses: four per grid, one on the shared edge, one in the island, one outside."""
    rows = []
    pts = [(104.02, 30.62), (104.03, 30.62), (104.04, 30.63), (104.05, 30.64),
           (104.02, 30.67), (104.03, 30.68), (104.05, 30.65),  # on the C1 grids' shared edge
           (104.12, 30.62), (104.15, 30.65), (104.18, 30.69),
           (104.305, 30.601),  # the island part of C2's grid
           (104.5, 30.9)]  # outside every area and grid
    for i, (lon, lat) in enumerate(pts):
        rows.append({"source_id": f"H{i + 1:03d}", "lon": lon, "lat": lat,
                     "address": f"成都市锦江区测试路{i + 1}号", "building": 1 + i // 4,
                     "unit": 1, "room": 101 + i, "area_m2": 60.0, "use": "residential"})
    return pd.DataFrame(rows)


def businesses() -> pd.DataFrame:
    """Two employers, one of them big (≥ 10 workers)."""
    return pd.DataFrame({"source_id": ["B1", "B2"], "name": ["火锅店", "电子厂"],
                         "lon": [104.02, 104.15], "lat": [30.62, 30.65], "workers": [4, 120]})


def people() -> pd.DataFrame:
    """Six people: floating and registered, classes, one unregistered, one inconsistent."""
    import numpy as np

    rng = np.random.default_rng(1)
    births = np.array(["1990-01-01", "1985-06-15", "2001-03-03", "1970-12-31", "1999-09-09",
                       "2005-05-05"], dtype="datetime64[D]")
    hukou = np.array(["500101", "510104", "520102", "411302", "510104", "530102"])
    sexes = np.array(["M", "F", "M", "F", "M", "F"])
    ids = generate_id_numbers(rng, hukou, births, sexes)
    return pd.DataFrame({
        "source_id": [f"P{i}" for i in range(1, 7)], "id_number": ids,
        "name": ["张三", "李四", "王五", "赵六", "钱七", "孙八"],
        "phone": ["13800000001", "13800000002", "", "13800000004", "13800000005", ""],
        "birth_date": births.astype(str), "sex": sexes, "hukou_code": hukou,
        "house_source_id": ["H001", "H001", "H005", "H008", "H009", "H012"],
        "arrived_on": ["2024-01-01"] * 6,
        "person_class": ["key", "trusted", "uneasy", "trusted", "trusted", "trusted"],
        "registered_on": ["2024-01-01", "2024-01-01", "", "2024-01-02", "2024-01-01",
                          "2024-01-01"],
        "registered_house_source_id": ["", "", "", "H009", "", ""],
        "business_source_id": ["B1", "", "", "B2", "", ""],
    })


def rentals() -> pd.DataFrame:
    """Three rentals, one per class, one unregistered."""
    import numpy as np

    rng = np.random.default_rng(2)
    landlords = generate_id_numbers(rng, np.array(["510104"] * 3),
                                    np.array(["1960-01-01"] * 3, dtype="datetime64[D]"),
                                    np.array(["M", "F", "M"]))
    return pd.DataFrame({"house_source_id": ["H001", "H005", "H008"],
                         "landlord_id_number": landlords, "tenants": [2, 1, 1],
                         "class": ["key", "uneasy", "trusted"],
                         "registered_on": ["2024-01-01", "2024-01-01", ""]})


def write_city(d: Path) -> dict[str, Path]:
    """Write all six files into `d`; return their paths by kind."""
    d.mkdir(parents=True, exist_ok=True)
    paths = {"areas": d / "areas.geojson", "grids": d / "grids.geojson",
             "houses": d / "houses.csv", "businesses": d / "businesses.csv",
             "people": d / "people.csv", "rentals": d / "rentals.csv"}
    areas().to_file(paths["areas"], driver="GeoJSON")
    grids().to_file(paths["grids"], driver="GeoJSON")
    houses().to_csv(paths["houses"], index=False)
    businesses().to_csv(paths["businesses"], index=False)
    people().to_csv(paths["people"], index=False)
    rentals().to_csv(paths["rentals"], index=False)
    return paths


ORDER = ("areas", "grids", "houses", "businesses", "people", "rentals")


def load_city(url: str, workdir: Path) -> Engine:
    """A store at `url` holding the whole small city, loaded file by file as `gridmgr load` does."""
    from gridmgr.store.engine import make_engine
    from gridmgr.store.load import load_file
    from gridmgr.store.schema import upgrade

    paths = write_city(workdir / "city")
    engine = make_engine(url)
    upgrade(engine)
    for kind in ORDER:
        load_file(engine, kind, paths[kind], report_path=workdir / f"{kind}.report.csv")
    return engine
