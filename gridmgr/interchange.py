"""Read and write the interchange files a city hands us (DESIGN.md §4)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from gridmgr.errors import BadInput

Kind = Literal["areas", "grids", "houses", "people", "businesses", "rentals"]
KINDS: tuple[str, ...] = ("areas", "grids", "houses", "people", "businesses", "rentals")
POLYGON_KINDS = ("areas", "grids")
POINT_KINDS = ("houses", "businesses")
# CGCS2000 (EPSG:4490) and WGS84 differ by centimetres; both are stored as EPSG:4326.
ACCEPTED_CRS = (4326, 4490)
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb")
TABLE_SUFFIXES = (".csv", ".parquet", ".geoparquet")


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def read_table(path: str | Path, kind: str, crs: int | None = None) -> pd.DataFrame:
    """Read an interchange file into a frame: polygons as a `geometry` column, points as lon/lat.

    Every column is read as text first (except geometry) so validation sees what the file
    says, not what a parser guessed.
    """
    path = Path(path)
    if kind not in KINDS:
        raise BadInput(f"unknown file kind {kind!r}; use one of {', '.join(KINDS)}")
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    suffix = _suffix(path)
    try:
        if suffix == ".csv":
            df = _read_csv(path)
        elif suffix in (".parquet", ".geoparquet"):
            try:
                df = gpd.read_parquet(path)
            except (ValueError, KeyError):
                df = pd.read_parquet(path)
        elif suffix in VECTOR_SUFFIXES:
            df = gpd.read_file(path, engine="pyogrio")
        else:
            raise BadInput(
                f"{path}: unsupported file type {suffix!r}; use .csv, .geojson, .gpkg, "
                ".parquet or .shp"
            )
    except BadInput:
        raise
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text ({exc.reason}); save the file as UTF-8") from exc
    except Exception as exc:
        raise BadInput(f"{path}: cannot be read as {suffix} ({exc})") from exc
    return _normalise(df, path, kind, crs)


def _read_csv(path: Path) -> pd.DataFrame:
    """Every column as text: Arrow's multithreaded reader, pandas' for irregular files.

    Arrow rejects a row with a missing field outright; pandas reads it with blanks, so
    validation can name the row instead of failing the file.
    """
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                           engine="pyarrow")
    except (ValueError, pa.ArrowInvalid):
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def streamable(path: str | Path, kind: str) -> bool:
    """Whether `read_table_chunks` can stream this file: a lon/lat or key table in CSV."""
    path = Path(path)
    return kind in KINDS and kind not in POLYGON_KINDS and _suffix(path) == ".csv" \
        and path.exists()


def read_table_chunks(path: str | Path, kind: str, rows: int,
                      crs: int | None = None) -> Iterator[pd.DataFrame]:
    """Read a CSV interchange file in frames of `rows` rows, every column as text.

    The frames are what `read_table` would give, cut into pieces (text on Arrow memory),
    so a file of millions of rows never sits in memory whole. Arrow's reader refuses
    irregular rows (a missing field) and bad UTF-8 with `pyarrow.ArrowInvalid`, possibly
    after some frames were yielded; the caller then falls back to `read_table`.
    """
    import pyarrow.csv as pacsv

    path = Path(path)
    if not streamable(path, kind):
        raise BadInput(f"{path}: only CSV files of {', '.join(POINT_KINDS)}, people or "
                       "rentals can be read in chunks")
    if crs is not None and crs not in ACCEPTED_CRS:
        raise BadInput(
            f"{path}: --crs {crs} for a lon/lat table is not supported; give lon/lat in "
            "EPSG:4326 (WGS84) or EPSG:4490 (CGCS2000)"
        )
    rows = max(1, int(rows))
    with pacsv.open_csv(path) as probe:
        names = probe.schema.names
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.large_string()),
                                   strings_can_be_null=False)
    text = pd.StringDtype("pyarrow", na_value=np.nan)
    # Small blocks, joined into chunks here: Arrow reads a couple of dozen blocks ahead.
    read = pacsv.ReadOptions(block_size=1 << 20)
    pending: list[pa.RecordBatch] = []
    held = yielded = 0

    def frame(table: pa.Table) -> pd.DataFrame:
        df = table.to_pandas(types_mapper={pa.large_string(): text}.get)
        df.columns = [str(c).strip() for c in df.columns]
        return df

    with pacsv.open_csv(path, read_options=read, convert_options=convert) as reader:
        for batch in reader:
            pending.append(batch)
            held += batch.num_rows
            while held >= rows:
                table = pa.Table.from_batches(pending)
                yield frame(table.slice(0, rows))
                yielded += 1
                rest = table.slice(rows)
                pending, held = rest.to_batches(), rest.num_rows
    if held or not yielded:  # a header-only file still gives one (empty) frame
        yield frame(pa.Table.from_batches(pending, schema=reader.schema))


def _normalise(df: pd.DataFrame, path: Path, kind: str, crs: int | None) -> pd.DataFrame:
    df.columns = [str(c).strip() for c in df.columns]
    if isinstance(df, gpd.GeoDataFrame) and df.geometry.name in df.columns:
        src = df.crs.to_epsg() if df.crs is not None else None
        epsg = crs or src or 4326
        if epsg not in ACCEPTED_CRS:
            df = df.set_crs(epsg, allow_override=True).to_crs(4326)
        geom = df.geometry.values
        data = pd.DataFrame(df.drop(columns=df.geometry.name))
        for col in data.columns:
            if data[col].dtype == object or pd.api.types.is_string_dtype(data[col]):
                data[col] = data[col].fillna("").astype(str)
        if kind in POINT_KINDS and "lon" not in data.columns:
            pts = np.asarray(geom)
            is_point = shapely.get_type_id(pts) == 0
            data["lon"] = np.where(is_point, shapely.get_x(pts), np.nan)
            data["lat"] = np.where(is_point, shapely.get_y(pts), np.nan)
        else:
            data["geometry"] = np.asarray(geom)
        return data.reset_index(drop=True)
    if crs is not None and crs not in ACCEPTED_CRS:
        raise BadInput(
            f"{path}: --crs {crs} for a lon/lat table is not supported; give lon/lat in "
            "EPSG:4326 (WGS84) or EPSG:4490 (CGCS2000)"
        )
    if kind in POLYGON_KINDS:
        wkt_col = next((c for c in ("geometry", "wkt", "geom") if c in df.columns), None)
        if wkt_col is None:
            raise BadInput(
                f"{path}: {kind} need polygons: use GeoJSON/GeoPackage, or a CSV with a "
                "'geometry' column of WKT"
            )
        texts = df[wkt_col].astype(str).to_numpy()
        geoms = shapely.from_wkt(texts, on_invalid="ignore")
        df = df.drop(columns=[wkt_col])
        df["geometry"] = geoms
    return df.reset_index(drop=True)


def write_table(df: pd.DataFrame, out: str | Path) -> Path:
    """Write a frame (GeoDataFrame or lon/lat table) in the format its suffix names."""
    out = Path(out)
    if not out.parent.exists():
        raise BadInput(f"{out}: directory {out.parent} does not exist")
    suffix = _suffix(out)
    if suffix == ".csv":
        frame = pd.DataFrame(df)
        if isinstance(df, gpd.GeoDataFrame):
            frame = frame.drop(columns=df.geometry.name)
            frame["geometry"] = shapely.to_wkt(np.asarray(df.geometry.values), rounding_precision=7)
        frame.to_csv(out, index=False)
    elif suffix in (".parquet", ".geoparquet"):
        df.to_parquet(out, index=False)
    elif suffix in (".geojson", ".gpkg"):
        gdf = df
        if not isinstance(gdf, gpd.GeoDataFrame):
            gdf = gpd.GeoDataFrame(
                df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs=4326
            )
        gdf.to_file(out, driver="GeoJSON" if suffix == ".geojson" else "GPKG", engine="pyogrio")
    else:
        raise BadInput(f"{out}: unsupported output type {suffix!r}; use .csv .parquet "
                       ".geojson or .gpkg")
    return out
