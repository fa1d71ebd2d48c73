"""Coordinates: GCJ-02 (火星坐标) ⇄ WGS84, the metric CRS for a place, and areas in km².

Chinese web maps (AMap/高德, Tencent) publish coordinates in GCJ-02, WGS84 shifted by a
deliberately obscured, smoothly varying offset of a few hundred metres inside China.  The
forward transform (WGS84 → GCJ-02) is public; the inverse has no closed form, so
:func:`gcj02_to_wgs84` solves it by fixed-point iteration to well under 1e-6°.  Both follow
the usual convention that points outside the coarse China box are left unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import overload

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

FloatArray = npt.NDArray[np.float64]

_A = 6378245.0
"""Semi-major axis (m) of the Krasovsky 1940 ellipsoid, which GCJ-02's offset uses."""

_EE = 0.00669342162296594323
"""Eccentricity squared of the Krasovsky 1940 ellipsoid."""

CHINA_BOX = (72.004, 0.8293, 137.8347, 55.8271)
"""(min lon, min lat, max lon, max lat) inside which GCJ-02 applies an offset."""

INVERSE_TOLERANCE_DEG = 1e-10
"""The iterative inverse stops when a step moves every point by less than this."""


def in_china_box(lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Return True where a point lies in the box where GCJ-02 shifts coordinates."""
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    return (x >= CHINA_BOX[0]) & (x <= CHINA_BOX[2]) & (y >= CHINA_BOX[1]) & (y <= CHINA_BOX[3])


def _offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 minus WGS84, in degrees, at WGS84 points (the published forward formula)."""
    x = lon - 105.0
    y = lat - 35.0
    sx = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad = np.radians(lat)
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = dlon * 180.0 / (_A / sqrt_magic * np.cos(rad) * np.pi)
    return dlon, dlat


def _as_float_arrays(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return x.copy(), y.copy()


@overload
def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]: ...
def wgs84_to_gcj02(
    lon: npt.ArrayLike, lat: npt.ArrayLike
) -> tuple[FloatArray, FloatArray] | tuple[float, float]:
    """Shift WGS84 lon/lat to GCJ-02 (vectorised); points outside China are unchanged."""
    x, y = _as_float_arrays(lon, lat)
    inside = in_china_box(x, y)
    dlon, dlat = _offset(x, y)
    gx = np.where(inside, x + dlon, x)
    gy = np.where(inside, y + dlat, y)
    if gx.ndim == 0:
        return float(gx), float(gy)
    return gx, gy


@overload
def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]: ...
def gcj02_to_wgs84(
    lon: npt.ArrayLike, lat: npt.ArrayLike
) -> tuple[FloatArray, FloatArray] | tuple[float, float]:
    """Recover WGS84 lon/lat from GCJ-02 by iterating the forward shift (vectorised).

    Each step moves the estimate by the residual ``gcj02(estimate) - input``; the shift
    changes slowly with position, so a handful of steps reach 1e-10°.  Points outside the
    China box (judged on the input) are returned unchanged, as the forward shift leaves them.
    """
    gx, gy = _as_float_arrays(lon, lat)
    inside = in_china_box(gx, gy)
    dlon, dlat = _offset(gx, gy)
    wx = gx - dlon
    wy = gy - dlat
    for _ in range(30):
        dlon, dlat = _offset(wx, wy)
        ex = wx + dlon - gx
        ey = wy + dlat - gy
        wx -= ex
        wy -= ey
        if not np.any(inside & ((np.abs(ex) > INVERSE_TOLERANCE_DEG)
                                | (np.abs(ey) > INVERSE_TOLERANCE_DEG))):
            break
    wx = np.where(inside, wx, gx)
    wy = np.where(inside, wy, gy)
    if wx.ndim == 0:
        return float(wx), float(wy)
    return wx, wy


def _transform_geometries(
    geoms: npt.ArrayLike, func: Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]
) -> npt.NDArray[np.object_]:
    def on_xy(xy: FloatArray) -> FloatArray:
        x, y = func(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return np.asarray(shapely.transform(np.asarray(geoms, dtype=object), on_xy), dtype=object)


def gcj02_geometries_to_wgs84(geoms: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """Convert every vertex of GCJ-02 geometries to WGS84; shared vertices stay shared."""
    return _transform_geometries(geoms, gcj02_to_wgs84)


def wgs84_geometries_to_gcj02(geoms: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """Convert every vertex of WGS84 geometries to GCJ-02 (e.g. to overlay on AMap tiles)."""
    return _transform_geometries(geoms, wgs84_to_gcj02)


def utm_epsg(lon: float, lat: float) -> int:
    """Return the EPSG code of the WGS84 UTM zone of a lon/lat (326zz north, 327zz south)."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValueError(f"cannot choose a UTM zone for lon={lon}, lat={lat}")
    zone = int(math.floor((((lon + 180.0) % 360.0)) / 6.0)) + 1
    zone = min(max(zone, 1), 60)
    return (32600 if lat >= 0 else 32700) + zone


@overload
def metric_crs_for(lon: BaseGeometry, lat: None = None) -> str: ...
@overload
def metric_crs_for(lon: npt.ArrayLike, lat: npt.ArrayLike) -> str: ...
def metric_crs_for(lon: BaseGeometry | npt.ArrayLike, lat: npt.ArrayLike | None = None) -> str:
    """Return the UTM zone CRS (e.g. ``'EPSG:32648'`` for Chengdu) for a place in lon/lat.

    Give a lon and a lat (scalars, or arrays: the middle of their extent decides), or one
    lon/lat geometry (the middle of its bounds decides).
    """
    if isinstance(lon, BaseGeometry):
        if lon.is_empty:
            raise ValueError("cannot choose a metric CRS for an empty geometry")
        minx, miny, maxx, maxy = lon.bounds
        return f"EPSG:{utm_epsg((minx + maxx) / 2.0, (miny + maxy) / 2.0)}"
    if lat is None:
        raise TypeError("metric_crs_for needs a lat, or a single geometry")
    x = np.asarray(lon, dtype=np.float64).ravel()
    y = np.asarray(lat, dtype=np.float64).ravel()
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if not len(x) or not len(y):
        raise ValueError("cannot choose a metric CRS without a finite lon and lat")
    return f"EPSG:{utm_epsg((x.min() + x.max()) / 2.0, (y.min() + y.max()) / 2.0)}"


def to_metric(
    geoms: npt.ArrayLike, crs: str, *, inverse: bool = False
) -> npt.NDArray[np.object_]:
    """Project lon/lat geometries to the metric ``crs`` (or back, with ``inverse=True``)."""
    src, dst = ("EPSG:4326", crs) if not inverse else (crs, "EPSG:4326")
    tr = Transformer.from_crs(src, dst, always_xy=True)

    def project(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        px, py = tr.transform(x, y)
        return np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64)

    return _transform_geometries(geoms, project)


def transform_xy(
    x: npt.ArrayLike, y: npt.ArrayLike, src: str, dst: str
) -> tuple[FloatArray, FloatArray]:
    """Transform coordinate arrays from CRS ``src`` to ``dst`` (x = lon, y = lat)."""
    tr = Transformer.from_crs(src, dst, always_xy=True)
    px, py = tr.transform(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64)


def area_km2(geoms: npt.ArrayLike, crs: object | None = None) -> FloatArray:
    """Return the area in km² of each lon/lat geometry, measured in its UTM zone.

    ``geoms`` is an array or GeoSeries of shapely geometries in lon/lat (EPSG:4326 or
    CGCS2000, EPSG:4490; they differ by centimetres).  A GeoSeries in a projected CRS is
    measured in that CRS instead.  Missing geometries give NaN.
    """
    series_crs = getattr(geoms, "crs", None) if crs is None else crs
    arr = np.asarray(getattr(geoms, "values", geoms), dtype=object).ravel()
    if series_crs is not None and CRS.from_user_input(series_crs).is_projected:
        unit = CRS.from_user_input(series_crs).axis_info[0].unit_conversion_factor
        return np.asarray(shapely.area(arr), dtype=np.float64) * unit**2 / 1e6
    out = np.full(len(arr), np.nan)
    present = ~(shapely.is_missing(arr) | shapely.is_empty(arr))
    if not present.any():
        return out
    bounds = shapely.bounds(arr[present])
    mid_x = (bounds[:, 0] + bounds[:, 2]) / 2.0
    mid_y = (bounds[:, 1] + bounds[:, 3]) / 2.0
    zones = _zones(mid_x, mid_y)
    idx = np.flatnonzero(present)
    for zone in np.unique(zones):
        sel = zones == zone
        projected = to_metric(arr[idx[sel]], f"EPSG:{zone}")
        out[idx[sel]] = shapely.area(projected) / 1e6
    return out


def _zones(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.int64]:
    """UTM EPSG codes for many lon/lat points at once."""
    zone = np.clip(np.floor(((lon + 180.0) % 360.0) / 6.0).astype(np.int64) + 1, 1, 60)
    return np.where(lat >= 0, 32600, 32700) + zone


__all__ = [
    "CHINA_BOX",
    "area_km2",
    "gcj02_geometries_to_wgs84",
    "gcj02_to_wgs84",
    "in_china_box",
    "metric_crs_for",
    "to_metric",
    "transform_xy",
    "utm_epsg",
    "wgs84_geometries_to_gcj02",
    "wgs84_to_gcj02",
]
