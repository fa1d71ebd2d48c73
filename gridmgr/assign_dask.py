"""Assign houses to grids beyond one machine: dask-geopandas partitions, file to file.

A province holds 100 M+ houses; this runs :func:`gridmgr.assign.assign_points`, the
same function and the same tie rule (lowest index after sorting grids by ``grid_id``,
so the smallest ``grid_id`` wins on a shared edge), on every partition of a dask
dataframe.  Houses are read lazily (GeoParquet, or Parquet/CSV with ``lon``/``lat``),
spatially partitioned along a Hilbert curve so that each partition covers a compact
area, and each partition is tested only against the grids whose boxes meet it.  The
grids themselves are small (tens of thousands of polygons at most) and are sent once
to every worker.  See docs/dask.md for running it on a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gridmgr.assign import UNASSIGNED, assign_points
from gridmgr.errors import BadInput

__all__ = ["AssignSummary", "assign_files", "hilbert_key"]

LONLAT = "EPSG:4326"


@dataclass(frozen=True)
class AssignSummary:
    """What an ``assign_files`` run wrote: counts and where."""

    houses: int
    assigned: int
    unassigned: int
    partitions: int
    out_path: str


@dataclass(frozen=True)
class _Grids:
    """The grids as shipped to workers: WKB, boxes and ids, sorted by id."""

    wkb: np.ndarray
    bounds: np.ndarray
    ids: pd.api.extensions.ExtensionArray
    crs: Any


def _is_url(path: str | Path) -> bool:
    return "://" in str(path)


def _check_exists(path: str | Path, what: str) -> None:
    if not _is_url(path) and not Path(path).exists():
        raise BadInput(f"{what} file {path} does not exist")


def _load_grids(path: str | Path, id_col: str) -> _Grids:
    import geopandas as gpd

    _check_exists(path, "grids")
    p = str(path)
    parquet = p.rstrip("/").endswith((".parquet", ".geoparquet"))
    grids = gpd.read_parquet(p) if parquet else gpd.read_file(p)
    if id_col not in grids.columns:
        raise BadInput(f"grids file {p} has no {id_col!r} column")
    if grids[id_col].isna().any() or grids[id_col].duplicated().any():
        raise BadInput(f"{id_col} in {p} must be unique and non-empty")
    grids = grids.sort_values(id_col, kind="stable")
    geoms = grids.geometry.to_numpy()
    ids = grids[id_col]
    as_int = pd.api.types.is_integer_dtype(ids)
    ids_array = ids.astype("Int64").array if as_int else ids.astype("string").array
    return _Grids(
        wkb=shapely.to_wkb(geoms), bounds=shapely.bounds(geoms), ids=ids_array, crs=grids.crs
    )


def _is_geoparquet(path: str) -> bool:
    import pyarrow.dataset as pads

    meta = pads.dataset(path, format="parquet").schema.metadata or {}
    return b"geo" in meta


def _read_houses(path: str | Path, source_col: str) -> tuple[Any, bool]:
    """Return a lazy (Geo)DataFrame of houses and whether it carries a geometry column."""
    import dask.dataframe as dd
    import dask_geopandas

    _check_exists(path, "houses")
    p = str(path)
    if p.endswith(".csv"):
        ddf, geo = dd.read_csv(p, dtype={source_col: "string"}), False
    elif _is_geoparquet(p):
        ddf, geo = dask_geopandas.read_parquet(p), True
    else:
        ddf, geo = dd.read_parquet(p), False
    missing = {source_col} | (set() if geo else {"lon", "lat"})
    missing -= set(ddf.columns)
    if missing:
        want = f"{source_col} and a geometry" if geo else f"{source_col}, lon and lat"
        raise BadInput(f"houses file {p} lacks {', '.join(sorted(missing))}; it needs {want}")
    return ddf, geo


def _xy_partition(df: pd.DataFrame, source_col: str, geo: bool, to_grid_crs: Any) -> pd.DataFrame:
    """Reduce a partition to source id and x/y in the grids' CRS (NaN when missing)."""
    if geo:
        pts = df.geometry.to_numpy()
        present = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
        x = np.full(len(df), np.nan)
        y = np.full(len(df), np.nan)
        x[present], y[present] = shapely.get_x(pts[present]), shapely.get_y(pts[present])
    else:
        x = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        y = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if to_grid_crs is not None:
            from pyproj import Transformer

            x, y = Transformer.from_crs(LONLAT, to_grid_crs, always_xy=True).transform(x, y)
    return pd.DataFrame({"source_id": df[source_col].to_numpy(), "x": x, "y": y}, index=df.index)


def hilbert_key(x: np.ndarray, y: np.ndarray, bounds: np.ndarray, order: int = 16) -> np.ndarray:
    """Distance along a Hilbert curve of order ``order`` over ``bounds``; NaN points get 0."""
    side = (1 << order) - 1
    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    sx = side / (xmax - xmin) if xmax > xmin else 0.0
    sy = side / (ymax - ymin) if ymax > ymin else 0.0
    fx = np.nan_to_num((x - xmin) * sx, nan=0.0, posinf=side, neginf=0.0)
    fy = np.nan_to_num((y - ymin) * sy, nan=0.0, posinf=side, neginf=0.0)
    xi = np.clip(fx, 0, side).astype(np.int64)
    yi = np.clip(fy, 0, side).astype(np.int64)
    d = np.zeros(xi.size, dtype=np.int64)
    s = 1 << (order - 1)
    while s > 0:
        rx = (xi & s) > 0
        ry = (yi & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        flip = ~ry & rx
        xi = np.where(flip, side - xi, xi)
        yi = np.where(flip, side - yi, yi)
        swap = ~ry
        xi, yi = np.where(swap, yi, xi), np.where(swap, xi, yi)
        s >>= 1
    return d


def _key_partition(df: pd.DataFrame, bounds: np.ndarray) -> pd.Series:
    key = hilbert_key(df["x"].to_numpy(), df["y"].to_numpy(), bounds)
    return pd.Series(key, index=df.index, name="hilbert")


def _assign_partition(df: pd.DataFrame, grids: _Grids) -> pd.DataFrame:
    """Assign one partition: only the grids whose boxes meet its points are decoded."""
    x = df["x"].to_numpy(dtype=np.float64)
    y = df["y"].to_numpy(dtype=np.float64)
    found = np.full(len(df), UNASSIGNED, dtype=np.int64)
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if ok.size:
        xs, ys, b = x[ok], y[ok], grids.bounds
        near = np.flatnonzero(
            (b[:, 0] <= xs.max()) & (b[:, 2] >= xs.min())
            & (b[:, 1] <= ys.max()) & (b[:, 3] >= ys.min())
        )
        # Decoding gives this task its own geometries (GEOS prepared geometries must not
        # be shared between threads while they are being prepared).
        sub = assign_points(xs, ys, shapely.from_wkb(grids.wkb[near]), workers=1)
        hit = sub >= 0
        sub[hit] = near[sub[hit]]
        found[ok] = sub
    grid_id = grids.ids.take(found, allow_fill=True)
    return pd.DataFrame({"source_id": df["source_id"].to_numpy(), "grid_id": grid_id})


def assign_files(
    houses_path: str | Path,
    grids_path: str | Path,
    out_path: str | Path,
    *,
    npartitions: int | None = None,
    client: Any = None,
    id_col: str = "grid_id",
    source_col: str = "source_id",
    spatial_partition: bool = True,
) -> AssignSummary:
    """Assign every house in a file to a grid on dask, writing Parquet (source_id, grid_id).

    Parameters
    ----------
    houses_path
        GeoParquet of points, or Parquet/CSV with ``lon``/``lat`` (EPSG:4326); a single
        file or a directory of Parquet parts, local or a URL every worker can read
        (``s3://``, ``gs://``, ``hdfs://``).  Must have ``source_col``.
    grids_path
        Grids (GeoParquet, GeoPackage, GeoJSON, Shapefile) with ``id_col`` and polygons.
    out_path
        Directory for the Parquet parts; ``grid_id`` is null for houses outside every grid.
    npartitions
        Partitions after spatial partitioning (default: as many as the input has).
        Aim for 0.5-2 M houses per partition.
    client
        A ``dask.distributed.Client`` to run on; default: the current dask scheduler.
    id_col, source_col
        Names of the grid id column in the grids file and of the house id in the houses
        file; the output always calls them ``grid_id`` and ``source_id``.
    spatial_partition
        Sort the houses along a Hilbert curve first, so each partition is a compact
        area tested against few grids; turn off when the input is already spatially
        partitioned (the sort reads the input twice and shuffles id + x + y).
    """
    import dask

    grids = _load_grids(grids_path, id_col)
    ddf, geo = _read_houses(houses_path, source_col)
    to_grid_crs = None
    if geo:
        if ddf.crs is not None and grids.crs is not None and ddf.crs != grids.crs:
            ddf = ddf.to_crs(grids.crs)
    elif grids.crs is not None and not grids.crs.is_geographic:
        to_grid_crs = grids.crs
    if npartitions is not None and npartitions < 1:
        raise BadInput(f"npartitions must be at least 1, not {npartitions}")
    parts = npartitions or ddf.npartitions
    xy_meta = pd.DataFrame({
        "source_id": pd.Series(dtype=ddf._meta[source_col].dtype),
        "x": pd.Series(dtype="float64"), "y": pd.Series(dtype="float64"),
    })
    # Only id and coordinates travel through the shuffle; geometry and attributes stay.
    xy = ddf.map_partitions(_xy_partition, source_col, geo, to_grid_crs, meta=xy_meta)
    if spatial_partition:
        # Our own Hilbert key over the grids' extent rather than spatial_shuffle: that one
        # rejects missing geometries, and houses without coordinates must be kept.
        b = grids.bounds[np.isfinite(grids.bounds).all(axis=1)]
        extent = np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()]) \
            if b.size else np.zeros(4)
        key = xy.map_partitions(_key_partition, extent, meta=("hilbert", "int64"))
        xy = xy.assign(hilbert=key).set_index("hilbert", npartitions=parts)
    elif npartitions is not None:
        xy = xy.repartition(npartitions=parts)

    meta = pd.DataFrame({
        "source_id": pd.Series(dtype=xy_meta["source_id"].dtype),
        "grid_id": pd.Series(grids.ids[:0]),
    })
    shipped = dask.delayed(grids, pure=True)
    result = xy.map_partitions(_assign_partition, shipped, meta=meta, align_dataframes=False)
    write = result.to_parquet(str(out_path), write_index=False, compute=False)
    total = result["grid_id"].size
    unassigned = result["grid_id"].isna().sum()
    _, n_total, n_unassigned = dask.compute(write, total, unassigned, scheduler=client)
    return AssignSummary(
        houses=int(n_total),
        assigned=int(n_total - n_unassigned),
        unassigned=int(n_unassigned),
        partitions=int(result.npartitions),
        out_path=str(out_path),
    )
