"""A realistic synthetic city (演示城市) on real district boundaries, in the interchange columns.

:func:`make_city` takes the districts of a city (by default the 20 districts and counties of
Chengdu, bundled in ``gridmgr/data``) and synthesises, deterministically from a seed:

- streets (街道/镇/乡) partitioning each district, communities (社区/村) partitioning each
  street and management grids partitioning each community, denser toward the city centre:
  each level is a clipped Voronoi diagram of seeds placed with a density falling off with
  the distance from the centre, and at the end all boundaries are noded together, so every
  level is a clean coverage (no gaps, no overlaps, matching vertices) nested in the one above;
- houses clustered in compounds and buildings (栋/单元/室) with standard addresses, a few
  of them just outside the city edge, where a real boundary file would miss them;
- floating and registered residents with GB 11643-valid ID numbers, registered-residence
  (户籍) adcodes drawn from the provinces migrants come from, classes, registration dates
  whose rates vary by grid, and registered addresses that sometimes differ from where they live;
- employers with heavy-tailed worker counts, and rental houses with landlords, tenants and
  key / uneasy / trusted classes.

The counts follow the published Chengdu figures times ``scale`` (:class:`DemoSettings`).
Everything is vectorised per house and person; loops run per area only.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import shapely
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridmgr.errors import BadInput
from gridmgr.geo import metric_crs_for, to_metric, transform_xy
from gridmgr.idnumber import generate_id_numbers

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
GeomArray = npt.NDArray[np.object_]

TIANFU_SQUARE = (104.0657, 30.6595)
"""Centre of Chengdu (天府广场), lon/lat; the default centre of the bundled city."""

BUNDLED_DISTRICTS = "chengdu_districts.geojson"
"""The bundled district boundaries (WGS84), in ``gridmgr/data``; see SOURCES.md there."""

NODING_GRID_M = 0.001
"""Boundaries are snap-rounded to this grid (metres) when noded into one coverage."""

HOUSE_MARGIN_M = 0.5
"""Houses are placed at least this far inside their grid, so no reprojection moves them out."""


class DemoSettings(BaseSettings):
    """Figures the demo city is calibrated on: Chengdu's totals at scale 1 and the shares.

    Totals come from the field reports (DESIGN.md §1); shares are plausible values chosen to
    make per-grid rates vary around the targets.  Environment: ``GRIDMGR_DEMO_*``.
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMGR_DEMO_", extra="ignore")

    streets: int = Field(default=319, gt=0, description="streets/towns (街道/乡镇) at scale 1")
    communities: int = Field(default=3_182, gt=0, description="communities/villages at scale 1")
    grids: int = Field(default=5_155, gt=0, description="management grids at scale 1")
    houses: int = Field(default=6_730_000, gt=0, description="houses at scale 1")
    rented_houses: int = Field(default=915_000, ge=0, description="rented houses at scale 1")
    floating_residents: int = Field(default=4_360_000, ge=0, description="at scale 1")
    registered_per_floating: float = Field(default=0.3, ge=0, description="registered residents")
    businesses: int = Field(default=38_700, ge=0, description="employers (用工单位) at scale 1")
    outside_share: float = Field(default=0.003, ge=0, lt=0.5,
                                 description="houses just outside the city edge")
    tenant_share: float = Field(default=0.85, ge=0, le=1,
                                description="floating residents who live in rented houses")
    key_person_share: float = Field(default=0.005, ge=0, le=1)
    uneasy_person_share: float = Field(default=0.03, ge=0, le=1)
    key_rental_share: float = Field(default=0.05, ge=0, le=1)
    uneasy_rental_share: float = Field(default=0.20, ge=0, le=1)
    floating_per_co_manager: int = Field(default=500, gt=0, description="staffing ratio")
    island_grid_share: float = Field(default=0.01, ge=0, le=0.2,
                                     description="grids given a detached part (飞地)")
    core_km: float = Field(default=6.0, gt=0, description="e-folding distance of the core")
    metro_km: float = Field(default=15.0, gt=0, description="e-folding distance of the suburbs")
    as_of: dt.date = Field(default=dt.date(2025, 12, 31), description="the data's 'today'")


# ----------------------------------------------------------------------------- name material

_PLACE_1 = ("东西南北中新兴安福永宁康泰和平顺德仁长青金银玉锦华龙凤桂柳桃梅荷兰竹松柏石"
            "泉河湖江溪塘山岭岗坪坝堰桥湾洲园林花云霞光明红星文武春秋沙驷九万双三清")
_PLACE_2 = ("安宁康泰和平顺德兴隆盛昌福寿祥瑞丰源泉林山河湖桥坝堰湾园苑庄院坊门楼台亭阁"
            "城场井田溪塘岭坡江滩洲口埝营铺")
_ROAD_SUFFIXES = ("路", "街", "大道", "巷", "东路", "西路", "南路", "北路", "中路", "大街")
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜"
    "叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎"
)
_MALE_CHARS = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林洋峰建国志海宏亮成东"
_FEMALE_CHARS = "芳娜敏静丽艳娟霞燕玲婷雪琳晶颖慧梅琴萍红倩洁欣怡佳月秀英兰凤丹蓉萍瑶璐琪"
_SHARED_CHARS = "文晓春小子思雨嘉天一乐安心诗梓睿轩宇晨"
_MOBILE_PREFIXES = (130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 150, 151, 152, 153,
                    155, 156, 157, 158, 159, 166, 173, 175, 176, 177, 178, 180, 181, 182,
                    183, 184, 185, 186, 187, 188, 189, 191, 198, 199)
_SMALL_TRADES = ("便利店", "餐馆", "火锅店", "美发店", "汽车维修服务部", "超市", "茶楼",
                 "药房", "快递服务站", "干洗店")
_FIRMS = ("商贸有限公司", "餐饮管理有限公司", "建筑劳务有限公司", "物业管理有限公司",
          "电子科技有限公司", "食品有限公司", "物流有限公司", "酒店管理有限公司",
          "家政服务有限公司", "装饰工程有限公司", "机械制造有限公司", "服装有限公司")

# Where migrants are registered: province, its capital (lon, lat), a weight for its
# share of inter-provincial out-migrants (2020 census, rounded), then county-level adcodes
# (GB/T 2260) spread over its prefectures.  Codes of the demo city itself are skipped.
_HUKOU_SOURCES = """
11 116.4 39.9 0.3 110101 110102 110105 110106 110107 110108 110109 110111 110112 110113
12 117.2 39.1 0.3 120101 120102 120103 120104 120105 120106 120110 120111 120112 120113
13 114.5 38.0 4 130102 130111 130129 130202 130224 130302 130402 130425 130434 130522 130531
 130602 130627 130634 130683 130709 130728 130822 130902 130926 130983 131026 131122 131182
14 112.5 37.9 2 140105 140110 140212 140222 140302 140403 140425 140430 140524 140621 140703
 140725 140821 140826 140881 140923 140928 140981 141024 141029 141034 141122 141127 141182
15 111.7 40.8 1.5 150102 150121 150202 150206 150302 150403 150424 150429 150522 150581
 150622 150627 150722 150727 150784 150823 150902 150924 150929 152221 152502 152525 152923
21 123.4 41.8 1.5 210102 210106 210115 210202 210212 210283 210311 210402 210421 210504
 210602 210681 210726 210802 210881 210905 211002 211011 211103 211221 211282 211322 211481
22 125.3 43.9 2 220102 220105 220112 220182 220184 220204 220221 220283 220303 220323 220403
 220422 220521 220524 220602 220621 220681 220722 220781 220822 220882 222403 222405 222426
23 126.6 45.8 3 230102 230110 230125 230183 230205 230223 230231 230305 230382 230406 230505
 230524 230606 230717 230725 230804 230828 230903 231005 231085 231181 231222 231282 232722
31 121.5 31.2 0.3 310101 310104 310105 310106 310107 310109 310110 310112 310113 310114
32 118.8 32.1 2 320102 320111 320116 320206 320281 320305 320324 320404 320481 320508 320583
 320614 320685 320722 320804 320830 320904 320924 321012 321102 321182 321204 321302 321324
33 120.2 30.3 1.5 330102 330109 330113 330182 330206 330225 330302 330324 330329 330402
 330481 330503 330523 330624 330703 330781 330802 330825 330921 331004 331024 331102 331181
34 117.3 31.8 9 340102 340121 340202 340212 340304 340323 340406 340504 340602 340705 340803
 340826 341002 341022 341122 341181 341221 341282 341324 341522 341621 341721 341823 341882
35 119.3 26.1 1.5 350102 350111 350122 350128 350205 350213 350305 350405 350425 350429
 350503 350524 350527 350602 350622 350626 350702 350722 350781 350803 350824 350921 350982
36 115.9 28.7 5 360102 360112 360202 360302 360323 360424 360429 360483 360603 360722 360726
 360731 360781 360821 360825 360830 360922 360926 361002 361024 361028 361104 361127 361181
37 117.0 36.7 3 370102 370114 370202 370215 370303 370323 370481 370602 370682 370703 370782
 370812 370830 370911 371003 371122 371323 371329 371425 371502 371525 371622 371721 371728
41 113.6 34.7 10 410102 410181 410204 410225 410311 410329 410423 410505 410602 410704 410781
 410821 410902 411003 411104 411281 411324 411330 411424 411522 411602 411625 411723 419001
42 114.3 30.6 5 420102 420106 420114 420202 420281 420322 420502 420506 420528 420602 420625
 420702 420804 420921 420982 421024 421088 421123 421181 421222 421321 422822 422828 429021
43 112.9 28.2 7 430102 430112 430204 430225 430381 430408 430426 430511 430527 430602 430626
 430721 430726 430822 430981 431023 431028 431122 431128 431223 431228 431321 433123 433130
44 113.3 23.1 1 440103 440112 440203 440229 440303 440309 440404 440514 440607 440781 440803
 440882 440982 441224 441303 441403 441481 441602 441625 441803 441881 445103 445281 445381
45 108.3 22.8 5 450102 450109 450126 450204 450224 450304 450323 450327 450381 450422 450512
 450681 450722 450881 450923 451022 451029 451082 451123 451223 451228 451322 451421 451481
46 110.3 20.0 0.5 460105 460106 460107 460108 460202 460203 460205 469001 469002 469005
50 106.5 29.6 4 500101 500103 500104 500106 500107 500109 500111 500112 500114 500115 500117
 500119 500120 500152 500154 500155 500229 500230 500233 500236 500237 500240 500241 500243
51 104.1 30.7 8 510302 510303 510411 510421 510503 510521 510623 510681 510722 510781 510812
 510824 510903 510923 511011 511025 511111 511133 511302 511324 511381 511425 511502 511528
 511623 511681 511702 511781 511802 511902 511921 512002 512022 513201 513401 513433
52 106.6 26.6 6 520102 520113 520123 520203 520303 520324 520328 520381 520422 520502 520525
 520602 520622 520626 522302 522326 522622 522625 522629 522633 522701 522723 522728 522732
53 102.7 25.0 3 530102 530115 530128 530322 530381 530426 530521 530622 530628 530722 530823
 530828 530924 532322 532328 532503 532528 532622 532627 532922 532927 533102 533301 533423
54 91.1 29.7 0.3 540102 540121 540124 540222 540225 540228 540231 540234 540237 540323
61 108.9 34.3 2.5 610102 610113 610117 610203 610303 610326 610331 610422 610428 610481
 610523 610528 610603 610627 610632 610722 610727 610802 610826 610831 610922 610927 611026
62 103.8 36.1 3 620102 620111 620123 620402 620423 620522 620525 620623 620723 620821 620825
 620921 620981 621022 621025 621121 621125 621222 621225 622901 622924 623001 623023 623027
63 101.8 36.6 0.5 630102 630104 630106 630123 630203 630223 630224 632221 632223 632301
64 106.2 38.5 0.5 640104 640105 640106 640121 640122 640181 640202 640205 640221 640302
65 87.6 43.8 0.5 650102 650107 650203 650422 652301 652327 652722 652824 652829 652924
"""

SAME_PROVINCE_SHARE = 0.6
"""Share of floating residents registered elsewhere in the city's own province."""

MIGRATION_DECAY_KM = 400.0
"""Distance over which another province's pull on migrants falls by a factor e."""


# ----------------------------------------------------------------------------- the result


@dataclass
class DemoCity:
    """A synthetic city as frames in the interchange columns of DESIGN.md §4.

    ``areas`` and ``grids`` are GeoDataFrames in EPSG:4326; the rest are DataFrames.  People
    carry three extension columns: ``registered_on`` (stay registered; empty when not),
    ``registered_house_source_id`` (the registered address) and ``business_source_id``.
    """

    areas: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    houses: pd.DataFrame
    people: pd.DataFrame
    businesses: pd.DataFrame
    rentals: pd.DataFrame

    def counts(self) -> dict[str, int]:
        """Rows per frame, and areas per level."""
        out = {f.name: len(getattr(self, f.name)) for f in fields(self)}
        for level, n in self.areas["level"].value_counts().items():
            out[f"{level}s" if level != "community" else "communities"] = int(n)
        return out

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write areas.geojson, grids.geojson and four CSVs into ``directory``; return paths."""
        out_dir = Path(directory)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for kind in ("areas", "grids"):
            path = out_dir / f"{kind}.geojson"
            path.unlink(missing_ok=True)
            frame: gpd.GeoDataFrame = getattr(self, kind)
            plain = frame.astype({c: str for c in frame.columns
                                  if isinstance(frame[c].dtype, pd.CategoricalDtype)})
            plain.to_file(path, driver="GeoJSON", engine="pyogrio")
            paths[kind] = path
        for kind in ("houses", "people", "businesses", "rentals"):
            path = out_dir / f"{kind}.csv"
            _write_csv(getattr(self, kind), path)
            paths[kind] = path
        return paths


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame as UTF-8 CSV fast: dates as YYYY-MM-DD, missing values empty."""
    columns: dict[str, pa.Array] = {}
    for name in frame.columns:
        s = frame[name]
        if isinstance(s.dtype, pd.CategoricalDtype):
            columns[name] = pa.Array.from_pandas(s).dictionary_decode()
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            columns[name] = pa.array(s.to_numpy(dtype="datetime64[D]"), pa.date32(),
                                     from_pandas=True)
        else:
            columns[name] = pa.Array.from_pandas(s)
    pacsv.write_csv(pa.table(columns), path)


# ----------------------------------------------------------------------------- entry point


def make_city(
    scale: float = 0.05,
    seed: int = 0,
    *,
    districts: gpd.GeoDataFrame | None = None,
    centre: tuple[float, float] | None = None,
    settings: DemoSettings | None = None,
) -> DemoCity:
    """Synthesise a city of ``scale`` × Chengdu's counts on real or given district boundaries.

    Parameters
    ----------
    scale
        Multiplies every count in ``settings`` (0.05 gives about 258 grids and 336 k houses).
    seed
        The same seed gives identical frames.
    districts
        Any city's districts (columns ``code``: 6-digit adcode, ``name``; polygons in lon/lat).
        Default: Chengdu's 20 districts and counties, bundled with gridmgr.
    centre
        lon/lat the density falls off from.  Default: Tianfu Square for the bundled city,
        else the middle of the smallest districts (the old urban core).
    settings
        Calibration figures; default ``DemoSettings()`` (reads ``GRIDMGR_DEMO_*``).
    """
    cfg = settings or DemoSettings()
    if not (isinstance(scale, int | float) and math.isfinite(scale) and 0 < scale <= 5):
        raise BadInput(f"scale must be a number above 0 and at most 5, got {scale!r}")
    if districts is None:
        frame = load_bundled_districts()
        centre = centre or TIANFU_SQUARE
    else:
        frame = _check_districts(districts)
    if centre is None:
        centre = _core_centre(frame)
    ss = np.random.SeedSequence([int(seed), 20_240_611])
    streams = [np.random.default_rng(s) for s in ss.spawn(6)]
    crs = metric_crs_for(float(centre[0]), float(centre[1]))
    density = _Density.build(frame, centre, crs, cfg)
    city = _Geography.build(frame, density, scale, cfg, streams[0])
    houses = _Houses.build(city, density, scale, cfg, streams[1])
    people = _People.build(city, houses, density, scale, cfg, streams[2])
    businesses, business_building = _make_businesses(city, houses, density, scale, cfg,
                                                     streams[3])
    _assign_employers(city, houses, people, business_building,
                      businesses["workers"].to_numpy(), cfg.as_of, streams[4])
    rentals = _make_rentals(city, houses, people, cfg, streams[5])
    return DemoCity(
        areas=city.areas_frame(),
        grids=city.grids_frame(people.floating_per_grid(len(city.grids)), cfg, streams[0]),
        houses=houses.frame(city),
        people=people.frame(houses),
        businesses=businesses,
        rentals=rentals,
    )


def load_bundled_districts() -> gpd.GeoDataFrame:
    """Chengdu's 20 districts and counties (WGS84, columns code, name), bundled with gridmgr."""
    ref = resources.files("gridmgr") / "data" / BUNDLED_DISTRICTS
    with resources.as_file(ref) as path:
        frame = gpd.read_file(path, engine="pyogrio")
    return _check_districts(frame)


def _check_districts(districts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Validate a districts frame and return it sorted by code, in EPSG:4326."""
    missing = {"code", "name", "geometry"} - set(districts.columns)
    if missing:
        raise BadInput(f"districts need the columns code, name and geometry; missing "
                       f"{', '.join(sorted(missing))}")
    frame = districts[["code", "name", "geometry"]].copy()
    frame["code"] = frame["code"].astype(str)
    frame["name"] = frame["name"].astype(str)
    bad = ~frame["code"].str.fullmatch(r"\d{6}")
    if bad.any():
        raise BadInput(f"district code {frame['code'][bad].iloc[0]!r} is not a 6-digit adcode")
    if frame["code"].duplicated().any():
        raise BadInput(f"district code {frame['code'][frame['code'].duplicated()].iloc[0]!r} "
                       "appears twice")
    if frame["code"].str.slice(0, 4).nunique() != 1:
        raise BadInput("districts must belong to one city: their codes must share the first "
                       "4 digits")
    geoms = frame.geometry.to_numpy()
    kinds = shapely.get_type_id(geoms)
    if not np.isin(kinds, (3, 6)).all() or not shapely.is_valid(geoms).all():
        raise BadInput("every district needs a valid Polygon or MultiPolygon geometry")
    if frame.crs is not None and not frame.crs.is_geographic:
        frame = frame.to_crs(4326)
    frame = frame.set_crs(4326, allow_override=True)
    return frame.sort_values("code", kind="stable").reset_index(drop=True)


def _core_centre(frame: gpd.GeoDataFrame) -> tuple[float, float]:
    """Middle of the smallest districts that together hold at most 5 % of the city's area."""
    crs = metric_crs_for(shapely.union_all(frame.geometry.to_numpy()))
    metric = to_metric(frame.geometry.to_numpy(), crs)
    area = shapely.area(metric)
    order = np.argsort(area, kind="stable")
    keep = order[: max(1, int(np.searchsorted(np.cumsum(area[order]), 0.05 * area.sum(),
                                              side="right")))]
    c = shapely.centroid(metric[keep])
    x = float(np.average(shapely.get_x(c), weights=area[keep]))
    y = float(np.average(shapely.get_y(c), weights=area[keep]))
    lon_lat = to_metric(np.array([shapely.Point(x, y)]), crs, inverse=True)[0]
    return float(lon_lat.x), float(lon_lat.y)


# ----------------------------------------------------------------------------- density


@dataclass
class _Density:
    """Relative population density on the metric plane: a core, suburbs, county towns."""

    crs: str
    cx: float
    cy: float
    core_m: float
    metro_m: float
    towns: FloatArray  # (n, 2) town centres in metres
    peak: float

    @classmethod
    def build(cls, frame: gpd.GeoDataFrame, centre: tuple[float, float], crs: str,
              cfg: DemoSettings) -> _Density:
        metric = to_metric(frame.geometry.to_numpy(), crs)
        c = to_metric(np.array([shapely.Point(*centre)]), crs)[0]
        area = shapely.area(metric)
        # The larger (rural) districts get a county town at a point inside them.
        towns = shapely.point_on_surface(metric[area >= np.median(area)])
        xy = shapely.get_coordinates(towns)
        d = cls(crs, float(c.x), float(c.y), cfg.core_km * 1e3, cfg.metro_km * 1e3, xy, 1.0)
        d.peak = float(d(np.array([d.cx]), np.array([d.cy]))[0])
        return d

    def __call__(self, x: FloatArray, y: FloatArray) -> FloatArray:
        r = np.hypot(x - self.cx, y - self.cy)
        f = np.exp(-r / self.core_m) + 0.1 * np.exp(-r / self.metro_m) + 0.005
        for tx, ty in self.towns:
            f += 0.05 * np.exp(-np.hypot(x - tx, y - ty) / 3_000.0)
        return np.asarray(f / self.peak, dtype=np.float64)

    def distance_km(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Distance from the centre in km."""
        return np.asarray(np.hypot(x - self.cx, y - self.cy) / 1e3, dtype=np.float64)


# ----------------------------------------------------------------------------- helpers


def _apportion(total: int, weights: FloatArray, minimum: int = 1) -> IntArray:
    """Split ``total`` in proportion to ``weights`` (largest remainder), at least ``minimum``."""
    n = len(weights)
    if total < minimum * n:
        raise ValueError(f"cannot give {n} parts at least {minimum} of {total}")
    w = np.clip(np.asarray(weights, dtype=np.float64), 0, None)
    w = w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / n)
    rest = total - minimum * n
    quota = rest * w
    base = np.floor(quota).astype(np.int64)
    short = rest - int(base.sum())
    if short:
        order = np.lexsort((np.arange(n), -(quota - base)))
        base[order[:short]] += 1
    return base + minimum


def _rank_within(keys: IntArray) -> IntArray:
    """0-based position of each element within its run of equal, sorted keys."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.ones(n, dtype=bool)
    start[1:] = keys[1:] != keys[:-1]
    idx = np.arange(n)
    first = np.maximum.accumulate(np.where(start, idx, 0))
    return idx - first


def _group_starts(counts: IntArray) -> IntArray:
    """Offsets of consecutive groups of the given sizes."""
    out = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=out[1:])
    return out


def _sample_in(geoms: GeomArray, counts: IntArray, rng: np.random.Generator
               ) -> tuple[FloatArray, FloatArray, IntArray]:
    """Uniform random points inside polygons, ``counts[i]`` in ``geoms[i]``, grouped by owner."""
    geoms = np.asarray(geoms, dtype=object)
    need = np.asarray(counts, dtype=np.int64).copy()
    shapely.prepare(geoms)
    b = shapely.bounds(geoms)
    box = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
    fill = np.clip(shapely.area(geoms) / box, 0.02, 1.0)
    xs: list[FloatArray] = [np.zeros(0)]
    ys: list[FloatArray] = [np.zeros(0)]
    owners: list[IntArray] = [np.zeros(0, dtype=np.int64)]
    for _ in range(60):
        todo = np.flatnonzero(need > 0)
        if not len(todo):
            break
        tries = np.ceil(need[todo] / fill[todo] * 1.3).astype(np.int64) + 2
        owner = np.repeat(todo, tries)
        x = rng.uniform(b[owner, 0], b[owner, 2])
        y = rng.uniform(b[owner, 1], b[owner, 3])
        ok = shapely.contains_xy(geoms[owner], x, y)
        owner, x, y = owner[ok], x[ok], y[ok]
        keep = _rank_within(owner) < need[owner]
        owner, x, y = owner[keep], x[keep], y[keep]
        need -= np.bincount(owner, minlength=len(need))
        xs.append(x)
        ys.append(y)
        owners.append(owner)
    if (need > 0).any():  # slivers too thin to hit: use a point on their surface
        todo = np.flatnonzero(need > 0)
        pts = shapely.get_coordinates(shapely.point_on_surface(geoms[todo]))
        owner = np.repeat(todo, need[todo])
        xs.append(np.repeat(pts[:, 0], need[todo]))
        ys.append(np.repeat(pts[:, 1], need[todo]))
        owners.append(owner)
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    owner = np.concatenate(owners)
    order = np.argsort(owner, kind="stable")
    return x[order], y[order], owner[order]


def _polygonal(g: shapely.Geometry) -> shapely.Geometry:
    """The polygonal part of an overlay result (drops stray lines and points)."""
    if g is None or g.is_empty:
        return shapely.Polygon()
    if isinstance(g, shapely.Polygon | shapely.MultiPolygon):
        return g
    polys = [q for p in shapely.get_parts(g)
             if isinstance(p, shapely.Polygon | shapely.MultiPolygon)
             for q in shapely.get_parts(p)]
    if not polys:
        return shapely.Polygon()
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def _choose_weighted(rng: np.random.Generator, weights: FloatArray, k: int) -> IntArray:
    """Draw k distinct indices with probability proportional to weights (Efraimidis–Spirakis)."""
    n = len(weights)
    if k >= n:
        return np.arange(n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    keys = np.log(rng.random(n)) / np.where(w > 0, w, 1e-300)
    top = np.argpartition(-keys, k - 1)[:k]
    return np.sort(top)


def _join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate string arrays (and literals) element-wise."""
    return pc.binary_join_element_wise(*parts, "")


def _as_text(values: npt.ArrayLike | pa.Array, width: int = 0) -> pa.Array:
    """Integers as decimal strings, zero-padded to ``width``; nulls stay null."""
    arr = values if isinstance(values, pa.Array) else pa.array(np.asarray(values, np.int64))
    s = pc.cast(arr, pa.string())
    return pc.utf8_lpad(s, width=width, padding="0") if width else s


def _ids(prefix: str, n: int, width: int = 8) -> pa.Array:
    """Source ids like H00000001."""
    return _join(prefix, _as_text(np.arange(1, n + 1), width))


def _to_str_series(arr: pa.Array) -> pd.Series:
    return pd.Series(arr.to_pandas())


def _unique_names(rng: np.random.Generator, n: int) -> list[str]:
    """Return n distinct, plausible two- (then three-) character place names, shuffled."""
    first, second = list(dict.fromkeys(_PLACE_1)), list(dict.fromkeys(_PLACE_2))
    pool = [a + b for a in first for b in second if a != b]
    if n > len(pool):
        pool += [a + b + c for a in first[:20] for b in second for c in second if b != c]
    if n > len(pool):
        raise BadInput(f"cannot name {n} places; use a smaller scale")
    pick = rng.choice(len(pool), size=n, replace=False)
    return [pool[i] for i in pick]


# ----------------------------------------------------------------------------- geography


@dataclass
class _Level:
    """One level of the hierarchy in metric coordinates."""

    geoms: GeomArray
    parent: IntArray  # index into the level above (-1 for districts)
    codes: list[str]
    names: list[str]


@dataclass
class _Geography:
    """Districts, streets, communities and grids (metric), plus their WGS84 forms."""

    crs: str
    city_code: str
    districts: _Level
    streets: _Level
    communities: _Level
    grids: GeomArray
    grid_community: IntArray
    grid_ids: list[str]
    wgs: dict[str, GeomArray]

    @classmethod
    def build(cls, frame: gpd.GeoDataFrame, density: _Density, scale: float, cfg: DemoSettings,
              rng: np.random.Generator) -> _Geography:
        crs = density.crs
        dist_geoms = to_metric(frame.geometry.to_numpy(), crs)
        n_d = len(dist_geoms)
        n_streets = max(n_d, round(cfg.streets * scale))
        n_comms = max(n_streets, round(cfg.communities * scale))
        n_grids = max(n_comms, round(cfg.grids * scale))
        street_g, street_p = _partition(dist_geoms, n_streets, 0.5, density, rng)
        comm_g, comm_p = _partition(street_g, n_comms, 0.7, density, rng)
        grid_g, grid_p = _partition(comm_g, n_grids, 0.9, density, rng)
        grid_g = _add_islands(grid_g, grid_p, cfg.island_grid_share, rng)
        grid_g = _node_coverage(grid_g)
        comm_g = _union_groups(grid_g, grid_p, len(comm_g))
        street_g = _union_groups(comm_g, comm_p, len(street_g))
        dist_union = _union_groups(street_g, street_p, n_d)

        names = _unique_names(rng, n_streets + n_comms)
        d_codes = frame["code"].tolist()
        s_codes, s_names, s_order = _child_codes(street_g, street_p, d_codes, names[:n_streets],
                                                 density, urban_f=0.05,
                                                 kinds=(("街道", 1), ("镇", 101), ("乡", 201)))
        street_g, street_p = street_g[s_order], street_p[s_order]
        comm_p = np.argsort(s_order)[comm_p]  # re-point communities at the reordered streets
        c_codes, c_names, c_order = _child_codes(comm_g, comm_p, s_codes, names[n_streets:],
                                                 density, urban_f=0.03,
                                                 kinds=(("社区", 1), ("村", 201)))
        comm_g, comm_p = comm_g[c_order], comm_p[c_order]
        grid_p = np.argsort(c_order)[grid_p]
        g_order = np.lexsort((_spatial_key(grid_g), grid_p))
        grid_g, grid_p = grid_g[g_order], grid_p[g_order]
        seq = _rank_within(grid_p) + 1
        width = max(2, len(str(int(seq.max()))))
        grid_ids = [f"{c_codes[p]}-{s:0{width}d}" for p, s in zip(grid_p, seq, strict=True)]

        geo = cls(
            crs=crs,
            city_code=d_codes[0][:4] + "00",
            districts=_Level(dist_union, np.full(n_d, -1), d_codes, frame["name"].tolist()),
            streets=_Level(street_g, street_p, s_codes, s_names),
            communities=_Level(comm_g, comm_p, c_codes, c_names),
            grids=grid_g,
            grid_community=grid_p,
            grid_ids=grid_ids,
            wgs={},
        )
        for key, geoms in (("district", dist_union), ("street", street_g),
                           ("community", comm_g), ("grid", grid_g)):
            geo.wgs[key] = to_metric(geoms, crs, inverse=True)
        return geo

    def areas_frame(self) -> gpd.GeoDataFrame:
        """Districts, streets and communities in the areas interchange columns."""
        rows: dict[str, list[object]] = {"code": [], "name": [], "level": [], "parent_code": []}
        geoms: list[GeomArray] = []
        levels = (("district", self.districts, None), ("street", self.streets, self.districts),
                  ("community", self.communities, self.streets))
        for level, lv, up in levels:
            rows["code"] += lv.codes
            rows["name"] += lv.names
            rows["level"] += [level] * len(lv.codes)
            if up is None:
                rows["parent_code"] += [self.city_code] * len(lv.codes)
            else:
                rows["parent_code"] += [up.codes[p] for p in lv.parent]
            geoms.append(self.wgs[level])
        frame = pd.DataFrame(rows)
        frame["level"] = pd.Categorical(frame["level"], categories=["district", "street",
                                                                    "community"])
        return gpd.GeoDataFrame(frame, geometry=np.concatenate(geoms), crs=4326)

    def grids_frame(self, floating: IntArray, cfg: DemoSettings, rng: np.random.Generator
                    ) -> gpd.GeoDataFrame:
        """Grids in the interchange columns, with co-managers roughly matching the need."""
        seq = _rank_within(self.grid_community)
        community = [self.communities.codes[c] for c in self.grid_community]
        police = [f"{c}P{1 + s // 3}" for c, s in zip(community, seq, strict=True)]
        need = floating / cfg.floating_per_co_manager
        gap = np.clip(rng.normal(0.85, 0.2, len(need)), 0.3, 1.3)
        assigned = np.floor(need * gap + rng.random(len(need))).astype(np.int64)
        frame = pd.DataFrame({"grid_id": self.grid_ids, "community_code": community,
                              "police_area": police, "co_managers": assigned})
        return gpd.GeoDataFrame(frame, geometry=self.wgs["grid"], crs=4326)


def _spatial_key(geoms: GeomArray) -> FloatArray:
    """North-west first ordering key for numbering areas (rows of ~2 km, west to east)."""
    c = shapely.get_coordinates(shapely.point_on_surface(geoms))
    return np.asarray(-np.floor(c[:, 1] / 2_000.0) * 1e7 + c[:, 0] / 10.0, dtype=np.float64)


def _child_codes(
    geoms: GeomArray, parent: IntArray, parent_codes: list[str], names: list[str],
    density: _Density, urban_f: float, kinds: tuple[tuple[str, int], ...],
) -> tuple[list[str], list[str], IntArray]:
    """Codes (parent + 3 digits) and names for children; also the order they are listed in.

    Urban children (density ≥ ``urban_f``) take the first kind (街道 / 社区, numbered from
    001); rural ones the second (镇 / 村, from 101 / 201), a tenth of them the third if given
    (乡, from 201).
    Where a range would overflow, numbering simply continues from 001.
    """
    pts = shapely.get_coordinates(shapely.point_on_surface(geoms))
    f = density(pts[:, 0], pts[:, 1])
    kind = np.where(f >= urban_f, 0, 1)
    if len(kinds) > 2:
        kind[(kind == 1) & (np.arange(len(kind)) % 10 == 9)] = 2
    order = np.lexsort((_spatial_key(geoms), kind, parent))
    codes: list[str] = [""] * len(order)
    out_names: list[str] = [""] * len(order)
    p_sorted = parent[order]
    k_sorted = kind[order]
    by_kind = _rank_within(p_sorted * 4 + k_sorted)
    overall = _rank_within(p_sorted)
    per_parent_kind = np.bincount(p_sorted * 4 + k_sorted, minlength=4 * (parent.max() + 1))
    overflow = np.asarray((per_parent_kind.reshape(-1, 4)[:, :3] > 99).any(axis=1))
    for i, (p, k, r, o) in enumerate(zip(p_sorted, k_sorted, by_kind, overall, strict=True)):
        number = int(o) + 1 if overflow[p] else kinds[k][1] + int(r)
        if number > 999:
            raise BadInput("more than 999 areas under one parent; use a smaller scale")
        codes[i] = f"{parent_codes[p]}{number:03d}"
        out_names[i] = names[i] + kinds[k][0]
    return codes, out_names, order


def _partition(parents: GeomArray, total: int, exponent: float, density: _Density,
               rng: np.random.Generator) -> tuple[GeomArray, IntArray]:
    """Split ``total`` children over ``parents`` by clipped Voronoi diagrams of seeds.

    Children per parent follow ∫ f^a over the parent; inside it seeds are drawn with density
    ∝ f^a, relaxed by three weighted Lloyd steps (weights f^2a, which makes the relaxed
    density ∝ f^a again in 2-D) and snapped to distinct points of the parent.
    """
    n = len(parents)
    base = np.full(n, 64, dtype=np.int64)
    x, y, owner = _sample_in(parents, base, rng)
    fa = density(x, y) ** exponent
    weight = shapely.area(parents) * np.bincount(owner, fa, minlength=n) / base
    k = _apportion(total, weight)
    extra = np.maximum(0, 30 * k - base)
    ex, ey, eo = _sample_in(parents, extra, rng)
    x = np.concatenate([x, ex])
    y = np.concatenate([y, ey])
    owner = np.concatenate([owner, eo])
    order = np.argsort(owner, kind="stable")
    x, y, owner = x[order], y[order], owner[order]
    starts = _group_starts(base + extra)
    children: list[GeomArray] = []
    parent_of: list[IntArray] = []
    for i in range(n):
        if k[i] == 1:
            children.append(np.array([parents[i]], dtype=object))
            parent_of.append(np.array([i]))
            continue
        sl = slice(starts[i], starts[i] + base[i] + extra[i])
        pts = np.column_stack([x[sl], y[sl]])
        seeds = _seeds(pts, density(pts[:, 0], pts[:, 1]) ** exponent, int(k[i]), rng)
        cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=parents[i],
                                         ordered=True)
        pieces = shapely.intersection(shapely.get_parts(cells), parents[i])
        children.append(_absorb_fragments(np.array([_polygonal(g) for g in pieces],
                                                   dtype=object)))
        parent_of.append(np.full(len(pieces), i))
    return np.concatenate(children), np.concatenate(parent_of)


def _absorb_fragments(cells: GeomArray) -> GeomArray:
    """Hand detached bits of clipped cells to the sibling they share most boundary with.

    Clipping a Voronoi cell to a ragged parent can leave slivers cut off from the cell's
    main part; real areas are mostly contiguous, so each such bit joins its neighbour.
    Bits touching no sibling (a parent's own exclave) stay where they are.
    """
    cells = cells.copy()
    for i in np.flatnonzero(shapely.get_num_geometries(cells) > 1):
        parts = shapely.get_parts(cells[i])
        keep = [int(np.argmax(shapely.area(parts)))]
        for j in np.argsort(-shapely.area(parts), kind="stable")[1:]:
            shared = shapely.length(shapely.intersection(shapely.boundary(parts[j]),
                                                         shapely.boundary(cells)))
            shared[i] = 0.0
            to = int(np.argmax(shared))
            if shared[to] > 0:
                cells[to] = _polygonal(shapely.union(cells[to], parts[j]))
            else:
                keep.append(int(j))
        cells[i] = parts[keep[0]] if len(keep) == 1 else shapely.MultiPolygon(list(parts[keep]))
    return cells


def _seeds(pts: FloatArray, fa: FloatArray, k: int, rng: np.random.Generator) -> FloatArray:
    """Pick k distinct seed points among ``pts``, spread with density ∝ fa."""
    init = rng.choice(len(pts), size=k, replace=False, p=fa / fa.sum())
    centres = pts[init].copy()
    w = fa * fa
    for _ in range(3):
        d2 = ((pts[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        label = np.argmin(d2, axis=1)
        mass = np.bincount(label, w, minlength=k)
        moved = mass > 0
        cx = np.bincount(label, w * pts[:, 0], minlength=k)
        cy = np.bincount(label, w * pts[:, 1], minlength=k)
        centres[moved, 0] = cx[moved] / mass[moved]
        centres[moved, 1] = cy[moved] / mass[moved]
    # Snap to distinct pool points, which lie inside the parent.
    d2 = ((centres[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2)
    ranked = np.argsort(d2, axis=1, kind="stable")
    used = np.zeros(len(pts), dtype=bool)
    chosen = np.empty(k, dtype=np.int64)
    for i in range(k):
        j = next(int(c) for c in ranked[i] if not used[c])
        used[j] = True
        chosen[i] = j
    return pts[chosen]


def _add_islands(grids: GeomArray, community: IntArray, share: float,
                 rng: np.random.Generator) -> GeomArray:
    """Give a few grids a detached part (飞地) cut out of a larger neighbour in their community."""
    grids = grids.copy()
    counts = np.bincount(community)
    candidates = np.flatnonzero(counts[community] >= 2)
    if share <= 0 or not len(candidates):
        return grids
    multi_comms = np.unique(community[candidates])
    n_islands = min(len(multi_comms), max(1, round(share * len(grids))))
    for c in np.sort(rng.choice(multi_comms, size=n_islands, replace=False)):
        members = np.flatnonzero(community == c)
        host = members[np.argmax(shapely.area(grids[members]))]
        others = members[members != host]
        owner = others[rng.integers(len(others))]
        side = math.sqrt(shapely.area(grids[host])) * 0.08
        inner = shapely.buffer(grids[host], -2.0 * side)
        if inner.is_empty:
            continue
        p = shapely.point_on_surface(inner)
        square = shapely.box(p.x - side / 2, p.y - side / 2, p.x + side / 2, p.y + side / 2)
        grids[host] = _polygonal(shapely.difference(grids[host], square))
        grids[owner] = _polygonal(shapely.union(grids[owner], square))
    return grids


def _node_coverage(grids: GeomArray) -> GeomArray:
    """Node all grid boundaries together and rebuild each grid from the faces it holds.

    Voronoi cells clipped level by level agree only to floating-point noise, and a grid edge
    ending on a community boundary adds a vertex on one side only.  Snap-rounding every
    boundary at ``NODING_GRID_M`` and polygonizing gives faces that share exact vertices.
    """
    lines = shapely.union_all(shapely.boundary(grids), grid_size=NODING_GRID_M)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    probe = shapely.point_on_surface(faces)
    tree = shapely.STRtree(grids)
    face_idx, grid_idx = tree.query(probe, predicate="within")
    owner = np.full(len(faces), -1, dtype=np.int64)
    first = np.unique(face_idx, return_index=True)[1]
    owner[face_idx[first]] = grid_idx[first]
    lost = np.flatnonzero(owner < 0)
    if len(lost):  # slivers from noise get their nearest grid; holes in the city stay out
        small = lost[shapely.area(faces[lost]) < 1.0]
        if len(small):
            owner[small] = tree.query_nearest(probe[small], all_matches=False)[1]
    out = np.empty(len(grids), dtype=object)
    order = np.argsort(owner, kind="stable")
    owner_sorted = owner[order]
    bounds = np.searchsorted(owner_sorted, np.arange(len(grids) + 1))
    for g in range(len(grids)):
        part = faces[order[bounds[g]:bounds[g + 1]]]
        if not len(part):
            raise RuntimeError(f"grid {g} lost every face while noding")
        out[g] = part[0] if len(part) == 1 else shapely.coverage_union_all(part)
    return out


def _union_groups(geoms: GeomArray, group: IntArray, n: int) -> GeomArray:
    """Coverage union of ``geoms`` per group (vertices kept, so the result stays noded)."""
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n + 1))
    out = np.empty(n, dtype=object)
    for i in range(n):
        part = geoms[order[bounds[i]:bounds[i + 1]]]
        out[i] = part[0] if len(part) == 1 else shapely.coverage_union_all(part)
    return out


# ----------------------------------------------------------------------------- houses

# Building types: (units lo, hi), (floors lo, hi), (doors per floor lo, hi),
# median floor area m², its log-sd, buildings per compound (mean), scatter in a compound (m).
_TYPES = {
    "tower": ((1, 4), (11, 33), (2, 4), 88.0, 0.28, 8.0, 60.0),
    "mid": ((2, 6), (5, 7), (2, 2), 72.0, 0.25, 4.0, 40.0),
    "low": ((1, 1), (1, 4), (1, 3), 115.0, 0.35, 1.0, 0.0),
}
_TYPE_NAMES = tuple(_TYPES)
_TYPE_MEAN_SIZE = np.array([np.mean(u) * np.mean(f) * np.mean(d)
                            for u, f, d, *_ in _TYPES.values()])
_RENT_FACTOR = np.array([1.0, 1.6, 2.5])  # urban villages and old blocks are let more


def _type_probs(f_rel: FloatArray) -> FloatArray:
    """(n, 3) probabilities of tower / mid / low buildings at relative density f_rel."""
    t = np.clip(f_rel, 0, 1) ** 0.35
    tower = 0.55 * t * t
    mid = 0.35 * t
    return np.column_stack([tower, mid, 1.0 - tower - mid])


@dataclass
class _Houses:
    """Buildings and the houses in them (index order = source_id order)."""

    # per building: metric and lon/lat position, grid (-1 outside every grid), community,
    # type, number (栋) in its community, road, street number (门牌号), first house, size
    b_mx: FloatArray
    b_my: FloatArray
    b_lon: FloatArray
    b_lat: FloatArray
    b_grid: IntArray
    b_community: IntArray
    b_type: IntArray
    b_number: IntArray
    b_road: IntArray
    road_names: list[str]
    b_door: IntArray
    b_size: IntArray
    # per house
    building: IntArray
    unit: IntArray
    room: IntArray
    area_m2: FloatArray
    mixed: npt.NDArray[np.bool_]
    rent_weight: FloatArray
    n_inside: int

    @property
    def n(self) -> int:
        return len(self.building)

    @property
    def grid(self) -> IntArray:
        return self.b_grid[self.building]

    @property
    def community(self) -> IntArray:
        return self.b_community[self.building]

    @classmethod
    def build(cls, city: _Geography, density: _Density, scale: float, cfg: DemoSettings,
              rng: np.random.Generator) -> _Houses:
        total = round(cfg.houses * scale)
        n_out = round(cfg.outside_share * total)
        n_in = total - n_out
        n_grids = len(city.grids)
        if n_in < n_grids:
            raise BadInput(f"scale {scale} gives fewer houses than grids; use a larger scale")
        inner = shapely.buffer(city.grids, -HOUSE_MARGIN_M)
        inner = np.where(shapely.is_empty(inner), city.grids, inner)
        x, y, owner = _sample_in(inner, np.full(n_grids, 48), rng)
        mass = shapely.area(city.grids) * np.bincount(owner, density(x, y), minlength=n_grids)
        target = _apportion(n_in, mass * rng.lognormal(0.0, 0.25, n_grids))

        pts = shapely.get_coordinates(shapely.point_on_surface(city.grids))
        probs = _type_probs(density(pts[:, 0], pts[:, 1]))
        in_grid, in_type, in_size = _buildings_for(target, probs, rng)
        in_x, in_y = _place_buildings(inner, in_grid, in_type, rng)
        o_x, o_y, o_comm, o_size = _outside_buildings(city, n_out, rng)
        n_b_in = len(in_grid)
        b_grid = np.concatenate([in_grid, np.full(len(o_x), -1)])
        b_type = np.concatenate([in_type, np.full(len(o_x), 2)])
        b_size = np.concatenate([in_size, o_size])
        b_x = np.concatenate([in_x, o_x])
        b_y = np.concatenate([in_y, o_y])
        b_comm = np.concatenate([city.grid_community[in_grid], o_comm])

        # Rooms run unit by unit, floor by floor (room = floor * 100 + door); the last
        # building of a grid may be cut short.
        n_b = len(b_type)
        dims = np.empty((n_b, 3), dtype=np.int64)
        for t, (u, f, d, *_) in enumerate(_TYPES.values()):
            sel = np.flatnonzero(b_type == t)
            dims[sel] = rng.integers((u[0], f[0], d[0]), (u[1] + 1, f[1] + 1, d[1] + 1),
                                     (len(sel), 3))
        floors, doors = dims[:, 1], dims[:, 2]
        first = _group_starts(b_size)
        building = np.repeat(np.arange(n_b), b_size)
        j = np.arange(len(building)) - first[building]
        per_unit = (floors * doors)[building]
        unit = j // per_unit + 1
        rem = j % per_unit
        floor = rem // doors[building] + 1
        room = np.asarray(floor * 100 + rem % doors[building] + 1, dtype=np.int64)

        h_type = b_type[building]
        median = np.array([v[3] for v in _TYPES.values()])[h_type]
        sd = np.array([v[4] for v in _TYPES.values()])[h_type]
        noise = np.exp(sd * rng.standard_normal(len(building)))
        area = np.round(np.clip(median * noise, 18.0, 400.0), 1)
        mixed = (floor == 1) & (h_type > 0) & (rng.random(len(building)) < 0.25)

        number, road, road_names, door = _addresses(city, b_comm, b_type, n_b_in, rng)
        lon, lat = transform_xy(b_x, b_y, city.crs, "EPSG:4326")

        dist = density.distance_km(b_x, b_y)
        fringe = 0.6 + 1.6 * np.exp(-(((dist - 12.0) / 7.0) ** 2))
        grid_noise = rng.lognormal(0.0, 0.5, n_grids + 1)[np.where(b_grid >= 0, b_grid, n_grids)]
        b_rent = fringe * grid_noise * _RENT_FACTOR[b_type]
        return cls(b_x, b_y, np.round(lon, 7), np.round(lat, 7), b_grid, b_comm, b_type,
                   number, road, road_names, door, b_size, building, unit, room, area, mixed,
                   b_rent[building], int(in_size.sum()))

    def frame(self, city: _Geography) -> pd.DataFrame:
        """Houses in the interchange columns."""
        comm = self.b_community
        street = city.communities.parent[comm]
        district = city.streets.parent[street]
        prefix = _join(
            pa.array(city.districts.names).take(pa.array(district)),
            pa.array(city.streets.names).take(pa.array(street)),
            pa.array(city.communities.names).take(pa.array(comm)),
            pa.array(self.road_names).take(pa.array(self.b_road)),
            _as_text(self.b_door), "号", _as_text(self.b_number), "栋",
        )
        address = _join(prefix.take(pa.array(self.building)), _as_text(self.unit), "单元",
                        _as_text(self.room), "室")
        return pd.DataFrame({
            "source_id": _to_str_series(_ids("H", self.n)),
            "lon": self.b_lon[self.building],
            "lat": self.b_lat[self.building],
            "address": _to_str_series(address),
            # The administering community, as a real register records it; the point alone
            # can fall across a coarse boundary.
            "community_code": _to_str_series(
                pa.array(city.communities.codes).take(pa.array(comm[self.building]))),
            "building": self.b_number[self.building].astype(np.int32),
            "unit": self.unit.astype(np.int32),
            "room": self.room.astype(np.int32),
            "area_m2": self.area_m2,
            "use": pd.Categorical.from_codes(self.mixed.astype(np.int8),
                                             categories=["residential", "mixed"]),
        })


def _buildings_for(target: IntArray, probs: FloatArray, rng: np.random.Generator
                   ) -> tuple[IntArray, IntArray, IntArray]:
    """Buildings per grid (type, houses) whose sizes add up exactly to ``target`` per grid."""
    lo = np.array([[v[0][0], v[1][0], v[2][0]] for v in _TYPES.values()])
    hi = np.array([[v[0][1], v[1][1], v[2][1]] for v in _TYPES.values()])
    grids: list[IntArray] = []
    types: list[IntArray] = []
    sizes: list[IntArray] = []
    need = target.copy()
    for _ in range(50):
        todo = np.flatnonzero(need > 0)
        if not len(todo):
            break
        mean = probs[todo] @ _TYPE_MEAN_SIZE
        count = np.ceil(need[todo] / mean * 1.5).astype(np.int64) + 2
        g = np.repeat(todo, count)
        cum = np.cumsum(probs[g], axis=1)
        t = (rng.random(len(g))[:, None] > cum[:, :2]).sum(axis=1)
        size = rng.integers(lo[t], hi[t] + 1).prod(axis=1)
        cs = np.cumsum(size)
        before = cs - size - np.repeat((cs - size)[_group_starts(count)], count)
        take = np.minimum(size, need[g] - before)
        keep = take > 0
        grids.append(g[keep])
        types.append(t[keep])
        sizes.append(take[keep])
        need -= np.bincount(g[keep], take[keep], minlength=len(need)).astype(np.int64)
    g = np.concatenate(grids)
    order = np.argsort(g, kind="stable")
    return g[order], np.concatenate(types)[order], np.concatenate(sizes)[order]


def _place_buildings(inner: GeomArray, b_grid: IntArray, b_type: IntArray,
                     rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    """Scatter buildings in compounds (小区) placed uniformly inside their grid."""
    per = np.array([v[5] for v in _TYPES.values()])[b_type]
    new = rng.random(len(b_grid)) < 1.0 / per
    new[np.r_[0, np.flatnonzero(b_grid[1:] != b_grid[:-1]) + 1]] = True
    compound = np.cumsum(new) - 1
    n_comp = np.bincount(b_grid[new], minlength=len(inner))
    cx, cy, _ = _sample_in(inner, n_comp, rng)
    spread = np.array([v[6] for v in _TYPES.values()])[b_type]
    x = cx[compound] + rng.normal(0.0, 1.0, len(b_grid)) * spread
    y = cy[compound] + rng.normal(0.0, 1.0, len(b_grid)) * spread
    outside = ~shapely.contains_xy(inner[b_grid], x, y)
    x[outside] = cx[compound[outside]]
    y[outside] = cy[compound[outside]]
    return x, y


def _outside_buildings(city: _Geography, n_houses: int, rng: np.random.Generator
                       ) -> tuple[FloatArray, FloatArray, IntArray, IntArray]:
    """Small houses 20–600 m outside the city edge, addressed to the nearest community."""
    if n_houses <= 0:
        z = np.zeros(0)
        return z, z, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    sizes = rng.integers(1, 7, n_houses)
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n_houses)) + 1]
    sizes[-1] -= int(sizes.sum()) - n_houses
    sizes = sizes[sizes > 0]
    city_poly = shapely.union_all(city.districts.geoms)
    edge = shapely.boundary(city_poly)
    shapely.prepare(city_poly)
    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    have = 0
    for _ in range(100):
        m = 2 * (len(sizes) - have) + 16
        at = shapely.line_interpolate_point(edge, rng.uniform(0, edge.length, m))
        angle = rng.uniform(0, 2 * np.pi, m)
        r = rng.uniform(20.0, 600.0, m)
        x = shapely.get_x(at) + r * np.cos(angle)
        y = shapely.get_y(at) + r * np.sin(angle)
        ok = ~shapely.contains_xy(city_poly, x, y)
        ok[ok] = shapely.distance(city_poly, shapely.points(x[ok], y[ok])) >= 20.0
        xs.append(x[ok])
        ys.append(y[ok])
        have += int(ok.sum())
        if have >= len(sizes):
            break
    x = np.concatenate(xs)[: len(sizes)]
    y = np.concatenate(ys)[: len(sizes)]
    tree = shapely.STRtree(city.communities.geoms)
    comm = tree.query_nearest(shapely.points(x, y), all_matches=False)[1]
    return x, y, comm.astype(np.int64), sizes.astype(np.int64)


def _addresses(city: _Geography, b_comm: IntArray, b_type: IntArray, n_inside: int,
               rng: np.random.Generator) -> tuple[IntArray, IntArray, list[str], IntArray]:
    """Building numbers per community, a road for each run of buildings, street numbers."""
    n = len(b_comm)
    order = np.argsort(b_comm, kind="stable")
    number = np.empty(n, dtype=np.int64)
    number[order] = _rank_within(b_comm[order]) + 1
    if number.max(initial=0) > 9999:
        raise BadInput("more than 9999 buildings in one community; use a smaller scale")
    per_comm = np.bincount(b_comm[:n_inside], minlength=len(city.communities.geoms))
    n_roads = np.clip(np.round(np.sqrt(per_comm) / 3), 1, 8).astype(np.int64)
    pool = _unique_names(rng, min(4000, int(n_roads.sum())))
    suffix = rng.integers(0, len(_ROAD_SUFFIXES), len(pool))
    road_names = [name + _ROAD_SUFFIXES[k] for name, k in zip(pool, suffix, strict=True)]
    # Consecutive buildings of a community (one compound after another) share a road; the
    # houses outside the city edge take the community's last road.
    local = np.minimum((number - 1) * n_roads[b_comm] // np.maximum(per_comm[b_comm], 1),
                       n_roads[b_comm] - 1)
    road = (_group_starts(n_roads)[b_comm] + local) % len(road_names)
    by_road = np.lexsort((number, b_comm, road))
    first = np.ones(n, dtype=bool)
    first[1:] = (road[by_road][1:] != road[by_road][:-1]) | (
        b_comm[by_road][1:] != b_comm[by_road][:-1])
    # A low house has a number of its own; flats of one compound mostly share a number.
    step = np.where(b_type[by_road] == 2, rng.integers(1, 4, n), 2 * (rng.random(n) < 0.3))
    step = np.where(first, rng.integers(1, 30, n), step)
    cs = np.cumsum(step)
    before = (cs - step)[np.flatnonzero(first)][np.cumsum(first) - 1]
    door = np.empty(n, dtype=np.int64)
    door[by_road] = cs - before
    return number, road, road_names, door


# ----------------------------------------------------------------------------- people


def _hukou_sources(city_code: str) -> tuple[list[str], FloatArray, list[list[str]]]:
    """Provinces, their point, weight and county codes, from the embedded table."""
    provinces: list[str] = []
    rows: list[tuple[float, float, float]] = []
    counties: list[list[str]] = []
    for line in _HUKOU_SOURCES.strip().splitlines():
        parts = line.split()
        if not line.startswith(" "):
            provinces.append(parts[0])
            rows.append((float(parts[1]), float(parts[2]), float(parts[3])))
            counties.append(parts[4:])
        else:
            counties[-1].extend(parts)
    counties = [[c for c in cs if c[:4] != city_code[:4]] for cs in counties]
    return provinces, np.array(rows), counties


def _floating_hukou(rng: np.random.Generator, n: int, city_code: str,
                    lon_lat: tuple[float, float]) -> npt.NDArray[np.str_]:
    """Registered-residence adcodes of floating residents: own province first, then by gravity.

    Other provinces pull in proportion to their share of migrants times exp(-distance /
    ``MIGRATION_DECAY_KM``); the county within a province is uniform over the table.
    """
    provinces, table, counties = _hukou_sources(city_code)
    lon, lat = lon_lat
    dx = (table[:, 0] - lon) * 111.0 * math.cos(math.radians(lat))
    dy = (table[:, 1] - lat) * 111.0
    pull = table[:, 2] * np.exp(-np.hypot(dx, dy) / MIGRATION_DECAY_KM)
    own = np.array([p == city_code[:2] and bool(c) for p, c in zip(provinces, counties,
                                                                   strict=True)])
    pull[own] = 0.0
    probs = pull / pull.sum()
    if own.any():
        probs = probs * (1.0 - SAME_PROVINCE_SHARE)
        probs[own] = SAME_PROVINCE_SHARE
    province = rng.choice(len(provinces), size=n, p=probs / probs.sum())
    out = np.empty(n, dtype="<U6")
    for p in np.unique(province):
        sel = np.flatnonzero(province == p)
        out[sel] = np.asarray(counties[p])[rng.integers(0, len(counties[p]), len(sel))]
    return out


@dataclass
class _People:
    """Residents, ordered by house (index order = source_id order)."""

    house: IntArray
    grid: IntArray  # -1: the house is outside every grid
    floating: npt.NDArray[np.bool_]
    tenant: npt.NDArray[np.bool_]
    male: npt.NDArray[np.bool_]
    birth: npt.NDArray[np.datetime64]
    arrived: npt.NDArray[np.datetime64]
    registered_on: npt.NDArray[np.datetime64]
    registered_house: IntArray  # -1: none
    person_class: IntArray  # 0 trusted, 1 uneasy, 2 key
    hukou: npt.NDArray[np.str_]
    id_number: npt.NDArray[np.str_]
    name: pa.Array
    phone: pa.Array
    business: IntArray  # -1: none
    external_landlords: npt.NDArray[np.str_]
    rented: IntArray  # rented houses, sorted
    tenants: IntArray  # tenants per rented house

    @classmethod
    def build(cls, city: _Geography, houses: _Houses, density: _Density, scale: float,
              cfg: DemoSettings, rng: np.random.Generator) -> _People:
        n_float = round(cfg.floating_residents * scale)
        n_reg = round(cfg.registered_per_floating * n_float)
        n_rent = min(round(cfg.rented_houses * scale), houses.n, n_float)
        rented = _choose_weighted(rng, houses.rent_weight, n_rent)
        n_tenants = min(n_float, max(n_rent, round(cfg.tenant_share * n_float)))
        tenants = np.ones(n_rent, dtype=np.int64)
        if n_tenants > n_rent:
            area = houses.area_m2[rented]
            more = rng.choice(n_rent, size=n_tenants - n_rent, p=area / area.sum())
            tenants += np.bincount(more, minlength=n_rent)
        free = np.ones(houses.n, dtype=bool)
        free[rented] = False
        free_idx = np.flatnonzero(free)
        w_free = houses.rent_weight[free_idx]
        other = free_idx[rng.choice(len(free_idx), size=n_float - n_tenants,
                                    p=w_free / w_free.sum())]
        n_households = min(len(free_idx), max(1, round(n_reg / 2.6))) if n_reg else 0
        homes = free_idx[_choose_weighted(rng, np.ones(len(free_idx)), n_households)]
        size = np.ones(len(homes), dtype=np.int64)
        if n_reg > len(homes):
            size += np.bincount(rng.integers(0, len(homes), n_reg - len(homes)),
                                minlength=len(homes))
        at_home = np.repeat(homes, size)[:n_reg]

        house = np.concatenate([np.repeat(rented, tenants), other, at_home])
        floating = np.arange(len(house)) < n_float
        tenant = np.arange(len(house)) < n_tenants
        order = np.argsort(house, kind="stable")
        house, floating, tenant = house[order], floating[order], tenant[order]
        n = len(house)

        as_of = np.datetime64(cfg.as_of, "D")
        male = rng.random(n) < np.where(floating, 0.56, 0.5)
        age = np.where(
            floating,
            np.select([rng.random(n) < 0.10, rng.random(n) < 0.07],
                      [rng.uniform(0, 16, n), rng.uniform(55, 75, n)],
                      16.0 + rng.gamma(3.0, 5.0, n)),
            rng.gamma(2.2, 18.0, n),
        )
        # Redraw the rare tail rather than clip it: a clipped age piles people on one day.
        age = np.where(age > 95.0, rng.uniform(16.0, 95.0, n), age)
        birth = as_of - np.floor(age * 365.25).astype("timedelta64[D]")
        days_here = np.where(floating, rng.exponential(500.0, n), rng.uniform(0, 30 * 365.25, n))
        arrived = np.maximum(as_of - np.floor(days_here).astype("timedelta64[D]"), birth)

        grid = houses.grid[house]
        n_grids = len(city.grids)
        g = np.where(grid >= 0, grid, n_grids)  # the extra slot: outside every grid
        rate = np.clip(1.0 - np.exp(rng.normal(math.log(0.06), 0.6, n_grids + 1)), 0.5, 0.995)
        rate[n_grids] = 0.9
        registered = ~floating | (rng.random(n) < rate[g])
        delay = np.select([rng.random(n) < 0.55, rng.random(n) < 0.67],
                          [0, 1], 2 + rng.geometric(0.15, n)).astype("timedelta64[D]")
        registered_on = np.where(floating, np.minimum(arrived + delay, as_of), arrived)
        registered_on = np.where(registered, registered_on, np.datetime64("NaT", "D"))

        differ_rate = np.clip(rng.normal(0.27, 0.05, n_grids + 1), 0.12, 0.45)
        differ = registered & (rng.random(n) < differ_rate[g])
        registered_house = np.where(registered, house, -1)
        registered_house[differ] = _other_house(houses, house[differ], rng)

        tilt = rng.lognormal(0.0, 0.6, n_grids + 1)[g] * np.where(floating, 1.6, 0.6)
        tilt /= tilt.mean()
        u = rng.random(n)
        p_key = cfg.key_person_share * tilt
        p_uneasy = cfg.uneasy_person_share * tilt
        person_class = np.where(u < p_key, 2, np.where(u < p_key + p_uneasy, 1, 0))

        district_codes = np.array(city.districts.codes)
        district = city.streets.parent[city.communities.parent[houses.community[house]]]
        hukou = district_codes[district].astype("<U6")
        hukou[floating] = _floating_hukou(rng, int(floating.sum()), city.city_code,
                                          _lon_lat_of(density))

        # Landlords who live elsewhere get their ID numbers in the same draw, so no two clash.
        n_ext = math.ceil(0.35 * n_rent / 1.4)
        ext_region = district_codes[rng.integers(0, len(district_codes), n_ext)]
        ext_age = rng.uniform(35, 75, n_ext)
        ext_birth = as_of - np.floor(ext_age * 365.25).astype("timedelta64[D]")
        ext_male = rng.random(n_ext) < 0.5
        ids = generate_id_numbers(
            rng,
            np.concatenate([hukou, ext_region]),
            np.concatenate([birth, ext_birth]),
            np.where(np.concatenate([male, ext_male]), "M", "F"),
        )
        return cls(house, grid, floating, tenant, male, birth, arrived, registered_on,
                   registered_house, person_class, hukou, ids[:n], _names(rng, male),
                   _phones(rng, n), np.full(n, -1, dtype=np.int64), ids[n:], rented, tenants)

    def floating_per_grid(self, n_grids: int) -> IntArray:
        """Floating residents living in each grid."""
        ok = self.floating & (self.grid >= 0)
        return np.bincount(self.grid[ok], minlength=n_grids).astype(np.int64)

    def frame(self, houses: _Houses) -> pd.DataFrame:
        """People in the interchange columns plus the three extension columns."""
        house_ids = _ids("H", houses.n)
        reg_house = pa.array(self.registered_house, mask=self.registered_house < 0)
        business = pa.array(self.business + 1, mask=self.business < 0)
        return pd.DataFrame({
            "source_id": _to_str_series(_ids("P", len(self.house))),
            "id_number": _to_str_series(pa.array(self.id_number)),
            "name": _to_str_series(self.name),
            "phone": _to_str_series(self.phone),
            "birth_date": self.birth.astype("datetime64[s]"),
            "sex": pd.Categorical.from_codes((~self.male).astype(np.int8),
                                             categories=["M", "F"]),
            "hukou_code": _to_str_series(pa.array(self.hukou)),
            "house_source_id": _to_str_series(house_ids.take(pa.array(self.house))),
            "arrived_on": self.arrived.astype("datetime64[s]"),
            "person_class": pd.Categorical.from_codes(self.person_class.astype(np.int8),
                                                      categories=["trusted", "uneasy", "key"]),
            "registered_on": self.registered_on.astype("datetime64[s]"),
            "registered_house_source_id": _to_str_series(house_ids.take(reg_house)),
            "business_source_id": _to_str_series(_join("B", _as_text(business, 8))),
        })


def _lon_lat_of(density: _Density) -> tuple[float, float]:
    p = to_metric(np.array([shapely.Point(density.cx, density.cy)]), density.crs,
                  inverse=True)[0]
    return float(p.x), float(p.y)


def _other_house(houses: _Houses, own: IntArray, rng: np.random.Generator) -> IntArray:
    """A different house: mostly in the same community, sometimes anywhere in the city."""
    comm = houses.community
    n_in = int(np.count_nonzero(houses.b_grid[houses.building] >= 0))
    # Inside houses are ordered by grid and grids by community, so each community is a run.
    lo = np.searchsorted(comm[:n_in], np.arange(comm.max() + 1), side="left")
    hi = np.searchsorted(comm[:n_in], np.arange(comm.max() + 1), side="right")
    c = comm[own]
    span = (hi - lo)[c]
    local = (rng.random(len(own)) < 0.7) & (span >= 2) & (own < n_in)
    pick = np.where(local, lo[c] + rng.integers(0, np.maximum(span - 1, 1)),
                    rng.integers(0, max(houses.n - 1, 1), len(own)))
    base = np.where(local, lo[c], 0)
    pick = np.where(pick - base >= own - base, pick + 1, pick)
    return np.asarray(np.minimum(pick, houses.n - 1), dtype=np.int64)


def _names(rng: np.random.Generator, male: npt.NDArray[np.bool_]) -> pa.Array:
    """Chinese names: a surname by rough frequency, then one or two given characters."""
    n = len(male)
    surnames = list(_SURNAMES)
    weight = 1.0 / np.arange(1, len(surnames) + 1) ** 0.9
    sur = rng.choice(len(surnames), size=n, p=weight / weight.sum())
    m_pool = list(_MALE_CHARS + _SHARED_CHARS)
    f_pool = list(_FEMALE_CHARS + _SHARED_CHARS)
    pool = pa.array(m_pool + f_pool)
    offset = np.where(male, 0, len(m_pool))
    size = np.where(male, len(m_pool), len(f_pool))
    g1 = offset + (rng.random(n) * size).astype(np.int64)
    g2 = offset + (rng.random(n) * size).astype(np.int64)
    two = rng.random(n) < 0.7
    second = pc.if_else(pa.array(two), pool.take(pa.array(g2)), "")
    return _join(pa.array(surnames).take(pa.array(sur)), pool.take(pa.array(g1)), second)


def _phones(rng: np.random.Generator, n: int) -> pa.Array:
    """11-digit mobile numbers."""
    prefix = np.asarray(_MOBILE_PREFIXES, dtype=np.int64)[rng.integers(0, len(_MOBILE_PREFIXES),
                                                                        n)]
    return _as_text(prefix * 100_000_000 + rng.integers(0, 100_000_000, n))


# ----------------------------------------------------------------------------- businesses


def worker_counts(rng: np.random.Generator, n: int) -> IntArray:
    """Heavy-tailed worker counts: lognormal body (most under 10), Pareto tail (some ≥ 100)."""
    body = np.ceil(rng.lognormal(1.1, 1.0, n))
    tail = np.ceil(20.0 * (1.0 + rng.pareto(1.1, n)))
    return np.minimum(np.where(rng.random(n) < 0.04, tail, body), 20_000).astype(np.int64)


def _make_businesses(city: _Geography, houses: _Houses, density: _Density, scale: float,
                     cfg: DemoSettings, rng: np.random.Generator
                     ) -> tuple[pd.DataFrame, IntArray]:
    """Employers at buildings, more of them where the city is dense; also their buildings."""
    n = round(cfg.businesses * scale)
    inside = np.flatnonzero(houses.b_grid >= 0)
    f = density(houses.b_mx[inside], houses.b_my[inside])
    w = np.sqrt(houses.b_size[inside] * f)
    at = inside[rng.choice(len(inside), size=n, p=w / w.sum())]
    workers = worker_counts(rng, n)
    brands = pa.array(_unique_names(rng, min(n, 4000)))
    shop = (workers < 10) & (rng.random(n) < 0.6)
    trade = np.where(shop, np.asarray(_SMALL_TRADES)[rng.integers(0, len(_SMALL_TRADES), n)],
                     np.asarray(_FIRMS)[rng.integers(0, len(_FIRMS), n)])
    brand = brands.take(pa.array(np.arange(n) % max(len(brands), 1)))
    frame = pd.DataFrame({
        "source_id": _to_str_series(_ids("B", n)),
        "name": _to_str_series(_join(brand, pa.array(trade))),
        "lon": houses.b_lon[at],
        "lat": houses.b_lat[at],
        "workers": workers,
    })
    return frame, at


def _assign_employers(city: _Geography, houses: _Houses, people: _People,
                      business_building: IntArray, workers: IntArray, as_of: dt.date,
                      rng: np.random.Generator) -> None:
    """Link working-age residents of each district to its employers, up to their workers."""
    if not len(business_building):
        return
    district_of = city.streets.parent[city.communities.parent]
    b_district = district_of[houses.b_community[business_building]]
    p_district = district_of[houses.community[people.house]]
    age = (np.datetime64(as_of, "D") - people.birth).astype(np.int64) / 365.25
    eligible = (age >= 16) & (age <= 65)
    for d in range(len(city.districts.codes)):
        biz = np.flatnonzero(b_district == d)
        pool = np.flatnonzero(eligible & (p_district == d))
        if not len(biz) or not len(pool):
            continue
        slots = np.repeat(biz, workers[biz])
        rng.shuffle(slots)
        k = min(len(slots), int(0.9 * len(pool)))
        chosen = pool[_choose_weighted(rng, np.where(people.floating[pool], 3.0, 1.0), k)]
        rng.shuffle(chosen)
        people.business[chosen] = slots[:k]


# ----------------------------------------------------------------------------- rentals


def _make_rentals(city: _Geography, houses: _Houses, people: _People, cfg: DemoSettings,
                  rng: np.random.Generator) -> pd.DataFrame:
    """One rental record per rented house: landlord, tenants, class and registration."""
    rented = people.rented
    n = len(rented)
    columns = ("house_source_id", "landlord_id_number", "tenants", "class", "registered_on")
    if n == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    idx = np.searchsorted(rented, people.house[people.tenant])
    klass_of_tenant = people.person_class[people.tenant]
    has_key = np.bincount(idx, klass_of_tenant == 2, minlength=n) > 0
    has_uneasy = np.bincount(idx, klass_of_tenant == 1, minlength=n) > 0
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, idx, people.arrived[people.tenant].astype(np.int64))

    # A key tenant makes a key house (重点户); the rest is drawn to reach the shares,
    # tilted per grid so that inspection loads differ between grids.
    grid = houses.grid[rented]
    n_grids = len(city.grids)
    g = np.where(grid >= 0, grid, n_grids)
    tilt = rng.lognormal(0.0, 0.5, n_grids + 1)[g]
    is_key = has_key | (rng.random(n) < _top_up(cfg.key_rental_share * n, has_key, has_key,
                                                   tilt))
    forced = has_uneasy & ~is_key
    is_uneasy = forced | (rng.random(n) < _top_up(cfg.uneasy_rental_share * n, forced,
                                                   forced | is_key, tilt))
    klass = np.where(is_key, 0, np.where(is_uneasy, 1, 2)).astype(np.int8)

    unregistered = rng.uniform(0.03, 0.10, n_grids + 1)[g]
    as_of = np.datetime64(cfg.as_of, "D")
    delay = rng.integers(0, 8, n).astype("timedelta64[D]")
    registered_on = np.minimum(first.astype("datetime64[D]") + delay, as_of)
    registered_on = np.where(rng.random(n) < unregistered, np.datetime64("NaT", "D"),
                             registered_on)

    # Landlords: mostly registered residents of the same district, else people living elsewhere.
    district_of = city.streets.parent[city.communities.parent]
    h_district = district_of[houses.community[rented]]
    adult = people.birth <= as_of - np.timedelta64(25 * 365, "D")
    residents = np.flatnonzero(~people.floating & adult)
    r_district = district_of[houses.community[people.house[residents]]]
    external = people.external_landlords
    landlord = external[rng.integers(0, len(external), n)]
    local = rng.random(n) < 0.65
    for d in np.unique(h_district):
        cand = residents[r_district == d]
        sel = np.flatnonzero(local & (h_district == d))
        if len(cand) and len(sel):
            landlord[sel] = people.id_number[cand[rng.integers(0, len(cand), len(sel))]]
    return pd.DataFrame({
        "house_source_id": _to_str_series(_ids("H", houses.n).take(pa.array(rented))),
        "landlord_id_number": _to_str_series(pa.array(landlord)),
        "tenants": people.tenants,
        "class": pd.Categorical.from_codes(klass, categories=["key", "uneasy", "trusted"]),
        "registered_on": registered_on.astype("datetime64[s]"),
    })


def _top_up(target: float, have: npt.NDArray[np.bool_], taken: npt.NDArray[np.bool_],
            tilt: FloatArray) -> FloatArray:
    """Probabilities for rows not ``taken`` that bring ``have.sum()`` up to ``target``."""
    free = ~taken
    p = np.zeros(len(taken))
    if free.any():
        need = max(0.0, target - float(have.sum()))
        p[free] = np.clip(need / free.sum() * tilt[free] / tilt[free].mean(), 0.0, 1.0)
    return p


__all__ = [
    "TIANFU_SQUARE",
    "DemoCity",
    "DemoSettings",
    "load_bundled_districts",
    "make_city",
    "worker_counts",
]
