"""The dask path gives exactly the single-machine assignment on a small city."""

from __future__ import annotations

from pathlib import Path

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import MultiPolygon, box

from gridmgr.assign import assign_frame
from gridmgr.assign_dask import assign_files
from gridmgr.errors import BadInput

STEP = 1 / 1024


@pytest.fixture(scope="module")
def small_city(tmp_path_factory: pytest.TempPathFactory):
    """60 snapped Voronoi grids (one with an island), 12k houses incl. edges and outsiders."""
    rng = np.random.default_rng(5)
    frame = box(104.0, 30.6, 104.25, 30.85)
    seeds = shapely.multipoints(rng.uniform([104.0, 30.6], [104.25, 30.85], (60, 2)))
    cells = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame.buffer(1))), frame
    )
    cells = shapely.set_precision(cells, STEP)
    cells[7] = MultiPolygon([*shapely.get_parts(cells[7]), box(104.3, 30.7, 104.32, 30.72)])
    # Ids deliberately not in geometric order, so the tie rule follows grid_id.
    grid_ids = [f"G{(i * 37) % 101:03d}" for i in range(cells.size)]
    grids = gpd.GeoDataFrame({"grid_id": grid_ids, "community_code": "510104001001"},
                             geometry=cells, crs="EPSG:4326")
    coords = shapely.get_coordinates(cells)
    mids = (coords[:-1] + coords[1:]) / 2
    pts = np.concatenate([
        rng.uniform([103.98, 30.58], [104.34, 30.87], (12_000, 2)), coords[:600], mids[:600]
    ])
    houses = pd.DataFrame({
        "source_id": [f"H{i:06d}" for i in range(len(pts))],
        "lon": pts[:, 0], "lat": pts[:, 1],
    })
    houses.loc[3, ["lon", "lat"]] = np.nan
    d = tmp_path_factory.mktemp("city")
    grids.to_parquet(d / "grids.parquet")
    grids.to_file(d / "grids.geojson", driver="GeoJSON")
    houses.to_parquet(d / "houses.parquet")
    houses.to_csv(d / "houses.csv", index=False)
    geo = gpd.GeoDataFrame(houses[["source_id"]], geometry=gpd.points_from_xy(
        houses.lon, houses.lat), crs="EPSG:4326")
    geo.to_parquet(d / "houses_geo.parquet")
    expected = assign_frame(houses, grids)
    expected.index = houses["source_id"]
    return d, houses, grids, expected


def _read(out: Path) -> pd.Series:
    got = pd.read_parquet(out)
    assert got["source_id"].is_unique
    s = got.set_index("source_id")["grid_id"]
    return s.astype(object).where(s.notna(), None)


@pytest.mark.parametrize(
    "houses_file,grids_file,parts",
    [
        ("houses.parquet", "grids.parquet", 4),
        ("houses_geo.parquet", "grids.geojson", 3),
        ("houses.csv", "grids.parquet", None),
    ],
)
def test_dask_equals_single_machine(small_city, tmp_path: Path, houses_file: str,
                                    grids_file: str, parts: int | None) -> None:
    d, houses, grids, expected = small_city
    out = tmp_path / "assigned"
    with dask.config.set(scheduler="synchronous"):
        summary = assign_files(d / houses_file, d / grids_file, out, npartitions=parts)
    got = _read(out)
    assert summary.houses == len(houses)
    assert summary.unassigned == int(expected.isna().sum()) > 0
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False,
                                   check_index_type=False)
    if parts:
        assert summary.partitions == parts


def test_dask_threads_and_no_spatial_partition(small_city, tmp_path: Path) -> None:
    d, houses, grids, expected = small_city
    out = tmp_path / "assigned"
    with dask.config.set(scheduler="threads", num_workers=3):
        assign_files(d / "houses.parquet", d / "grids.parquet", out, npartitions=5,
                     spatial_partition=False)
    pd.testing.assert_series_equal(_read(out).sort_index(), expected.sort_index(),
                                   check_names=False, check_index_type=False)


def test_dask_on_a_local_cluster(small_city, tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    d, houses, grids, expected = small_city
    out = tmp_path / "assigned"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        summary = assign_files(d / "houses_geo.parquet", d / "grids.parquet", out,
                               npartitions=4, client=client)
    assert summary.houses == len(houses)
    pd.testing.assert_series_equal(_read(out).sort_index(), expected.sort_index(),
                                   check_names=False, check_index_type=False)


def test_dask_rejects_missing_columns(small_city, tmp_path: Path) -> None:
    d, houses, grids, _ = small_city
    houses.drop(columns="lat").to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(BadInput, match="lat"):
        assign_files(tmp_path / "bad.parquet", d / "grids.parquet", tmp_path / "out")
    with pytest.raises(BadInput, match="code"):
        assign_files(d / "houses.parquet", d / "grids.parquet", tmp_path / "out", id_col="code")
    with pytest.raises(BadInput, match="does not exist"):
        assign_files(tmp_path / "nope.parquet", d / "grids.parquet", tmp_path / "out")


@pytest.mark.parametrize("order", [1, 3, 5])
def test_hilbert_key_is_a_continuous_curve(order: int) -> None:
    from gridmgr.assign_dask import hilbert_key

    n = 1 << order
    xi, yi = (a.ravel().astype(float) for a in np.meshgrid(np.arange(n), np.arange(n)))
    d = hilbert_key(xi, yi, np.array([0, 0, n - 1, n - 1]), order=order)
    assert sorted(d.tolist()) == list(range(n * n))
    walk = np.argsort(d)
    assert np.all(np.abs(np.diff(xi[walk])) + np.abs(np.diff(yi[walk])) == 1)
    # Missing coordinates get a key too (they are kept, and end up unassigned).
    assert hilbert_key(np.array([np.nan]), np.array([1.0]), np.array([0, 0, 1, 1])).size == 1
