from __future__ import annotations

import numpy as np
import pytest
import shapely

from gridmgr.geo import (
    area_km2,
    gcj02_geometries_to_wgs84,
    gcj02_to_wgs84,
    in_china_box,
    metric_crs_for,
    to_metric,
    wgs84_geometries_to_gcj02,
    wgs84_to_gcj02,
)


def test_known_forward_offset() -> None:
    # The reference vector every GCJ-02 implementation checks (coordtransform, eviltransform,
    # Hutool): WGS84 (116.404, 39.915) in Beijing.
    lon, lat = wgs84_to_gcj02(116.404, 39.915)
    assert lon == pytest.approx(116.41024449916938, abs=1e-12)
    assert lat == pytest.approx(39.91640428150164, abs=1e-12)
    assert isinstance(lon, float)


def test_inverse_of_the_known_vector_is_exact() -> None:
    lon, lat = gcj02_to_wgs84(116.41024449916938, 39.91640428150164)
    assert abs(lon - 116.404) < 1e-9
    assert abs(lat - 39.915) < 1e-9


def test_round_trip_across_china_below_a_microdegree() -> None:
    rng = np.random.default_rng(1)
    lon = rng.uniform(73.7, 134.7, 50_000)
    lat = rng.uniform(18.2, 53.4, 50_000)
    glon, glat = wgs84_to_gcj02(lon, lat)
    shift = np.hypot(glon - lon, glat - lat)
    assert shift.min() > 1e-4  # a real offset everywhere inside the box ...
    wlon, wlat = gcj02_to_wgs84(glon, glat)
    assert np.abs(wlon - lon).max() < 1e-6  # ... undone to well under a micro-degree
    assert np.abs(wlat - lat).max() < 1e-6
    assert np.abs(wlon - lon).max() < 1e-9


def test_chengdu_offset_is_hundreds_of_metres() -> None:
    glon, glat = wgs84_to_gcj02(104.0657, 30.6595)
    east_m = (glon - 104.0657) * 111_320 * np.cos(np.radians(30.6595))
    north_m = (glat - 30.6595) * 110_574
    assert 150 < east_m < 350
    assert -330 < north_m < -150


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(-0.1276, 51.5072), (139.6917, 35.6895), (151.21, -33.87), (60.0, 40.0), (100.0, 60.0)],
)
def test_outside_china_is_unchanged(lon: float, lat: float) -> None:
    assert not in_china_box(lon, lat)
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_mixed_arrays_keep_outside_points() -> None:
    lon = np.array([104.0, -3.7, 116.4])
    lat = np.array([30.6, 40.4, 39.9])
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert glon[1] == -3.7 and glat[1] == 40.4
    assert glon[0] != 104.0 and glon[2] != 116.4


def test_geometry_conversion_keeps_shared_vertices_shared() -> None:
    a = shapely.box(104.0, 30.6, 104.1, 30.7)
    b = shapely.box(104.1, 30.6, 104.2, 30.7)
    wa, wb = gcj02_geometries_to_wgs84([a, b])
    assert shapely.coverage_is_valid(np.array([wa, wb]))
    back = wgs84_geometries_to_gcj02([wa])[0]
    assert shapely.equals_exact(back, a, tolerance=1e-9)
    assert shapely.get_coordinates(wa)[:, 0].min() < 104.0  # moved west, GCJ is east of WGS


def test_metric_crs_for_points_and_geometries() -> None:
    assert metric_crs_for(104.07, 30.66) == "EPSG:32648"
    assert metric_crs_for(116.4, 39.9) == "EPSG:32650"
    assert metric_crs_for(151.2, -33.9) == "EPSG:32756"
    assert metric_crs_for(np.array([103.0, 105.0]), np.array([30.0, 31.0])) == "EPSG:32648"
    assert metric_crs_for(shapely.box(103.0, 30.0, 104.5, 31.0)) == "EPSG:32648"
    with pytest.raises(TypeError):
        metric_crs_for(104.0)  # type: ignore[call-overload]


def test_area_km2_in_the_utm_zone() -> None:
    # A 10 km x 10 km square built in UTM 48N, handed over in lon/lat.
    square = to_metric([shapely.box(400_000, 3_390_000, 410_000, 3_400_000)], "EPSG:32648",
                       inverse=True)
    areas = area_km2(np.array([square[0], None, shapely.box(116.0, 39.0, 116.1, 39.1)],
                              dtype=object))
    assert areas[0] == pytest.approx(100.0, rel=1e-6)
    assert np.isnan(areas[1])
    # 0.1 degree squares shrink with latitude: about 9.5 km x 11.1 km at 39 degrees north.
    assert areas[2] == pytest.approx(8.66 * 11.1, rel=0.02)
