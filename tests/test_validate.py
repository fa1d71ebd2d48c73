"""Whole-file validation: each bad row named with its column and reason, good rows typed."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from gridmgr.interchange import read_table
from gridmgr.validate import StoreKeys, check

HOUSES_CSV = """source_id,lon,lat,address,building,unit,room,area_m2,use,community_code
h1,104.06,30.65,松林街1号,1,1,101,80.5,residential,
h2, 104.07 ,30.66,  松林街2号 ,2,,,,,
h1,104.08,30.67,松林街3号,x,1,1.5,,,
h4,,30.68,,3,1,102,-2,,
h5,1e2,30.69,松林街5号,,,,,,
"""

PEOPLE_CSV = ("source_id,id_number,name,birth_date,sex,hukou_code,house_source_id,arrived_on,"
              "person_class\n") + """p1,11010519491231002X,甲,1949-12-31,M,510104,h1,2020-01-02,KEY
p2,11010519491231002X,乙,1949/12/31,女,510104,h1,2020/1/2,
p3,11010519491231002X,丙,1949-13-40,M,510104,h1,yesterday,bad
"""


def frame(text: str, tmp_path: object, kind: str) -> pd.DataFrame:
    """Read CSV text through the interchange reader, as `gridmgr load` does."""
    path = tmp_path / f"{kind}.csv"  # type: ignore[operator]
    path.write_text(text, encoding="utf-8")
    return read_table(path, kind)


def problems(checked: object) -> set[tuple[int, str, str]]:
    """(row, column, reason) of every problem."""
    return {(p.row, p.column, p.reason) for p in checked.report.problems}  # type: ignore[attr-defined]


def test_houses_bad_rows_are_named_and_good_rows_typed(tmp_path: object) -> None:
    checked = check("houses", frame(HOUSES_CSV, tmp_path, "houses"), StoreKeys())
    found = problems(checked)
    assert (3, "source_id", "duplicate source_id 'h1' (first on row 1)") in found
    assert (3, "building", "'x' is not a number") in found
    assert (3, "room", "'1.5' is not a whole number") in found
    assert (4, "lon", "missing value") in found
    assert (4, "address", "missing value") in found
    assert (4, "area_m2", "-2 is below the minimum 0") in found
    assert {r for r, _, _ in found} == {3, 4}
    assert checked.good.tolist() == [True, True, False, False, True]
    good = checked.frame[checked.good]
    # Whitespace is trimmed; blanks become missing, numbers are floats.
    assert good["address"].tolist() == ["松林街1号", "松林街2号", "松林街5号"]
    assert good["lon"].tolist() == [104.06, 104.07, 100.0]
    assert np.isnan(good["unit"].to_numpy()[1])
    assert good["use"].isna().tolist() == [False, True, True]
    assert good["_row"].tolist() == [1, 2, 5]


def test_existing_keys_are_reported(tmp_path: object) -> None:
    keys = StoreKeys(source_ids=pd.Index(["h2", "zz"]))
    checked = check("houses", frame(HOUSES_CSV, tmp_path, "houses"), keys)
    assert (2, "source_id", "source_id 'h2' is already loaded") in problems(checked)


def test_dates_accept_other_spellings_and_name_bad_ones(tmp_path: object) -> None:
    keys = StoreKeys(house_ids_by_source=pd.Series({"h1": 7}, dtype="int64"),
                     source_ids=pd.Index(["h1"]))
    checked = check("people", frame(PEOPLE_CSV, tmp_path, "people"), keys)
    found = problems(checked)
    assert (3, "birth_date", "'1949-13-40' is not a date (use YYYY-MM-DD)") in found
    assert (3, "arrived_on", "'yesterday' is not a date (use YYYY-MM-DD)") in found
    assert (3, "person_class", "'bad' is not one of key, uneasy, trusted") in found
    assert not any(r in (1, 2) and c in ("birth_date", "arrived_on") for r, c, _ in found)
    f = checked.frame
    assert f["birth_date"].iloc[1] == np.datetime64("1949-12-31")
    assert f["arrived_on"].iloc[1] == np.datetime64("2020-01-02")
    assert f["person_class"].tolist()[:2] == ["key", "trusted"]


@pytest.mark.parametrize("value", ["1,5", "一", "0x10", "--1"])
def test_a_single_unparsable_number_is_caught(value: str, tmp_path: object) -> None:
    rows = [f"h{i},104.0,30.6,街{i}号,1,1,{i + 1},,," for i in range(50)]
    rows[37] = f'h37,104.0,30.6,街37号,1,1,"{value}",,,'
    text = "source_id,lon,lat,address,building,unit,room,area_m2,use,community_code\n"
    checked = check("houses", frame(text + "\n".join(rows) + "\n", tmp_path, "houses"),
                    StoreKeys())
    assert problems(checked) == {(38, "room", f"{value!r} is not a number")}


def test_reading_short_rows_still_reports_per_row(tmp_path: object) -> None:
    text = io.StringIO()
    text.write("source_id,lon,lat,address\nh1,104.0,30.6,街1号\nh2,104.0\n")
    checked = check("houses", frame(text.getvalue(), tmp_path, "houses"), StoreKeys())
    assert (2, "lat", "missing value") in problems(checked)


def test_without_duplicate_checks_only_keys_in_the_store_are_flagged(tmp_path: object) -> None:
    """A loader that leaves repeats to the store's UNIQUE constraints skips only those."""
    df = frame(HOUSES_CSV, tmp_path, "houses")
    keys = StoreKeys(source_ids=pd.Index(["h5"]))
    full = problems(check("houses", df, keys))
    quick = problems(check("houses", df, keys, duplicates=False))
    repeat = (3, "source_id", "duplicate source_id 'h1' (first on row 1)")
    assert repeat in full and (5, "source_id", "source_id 'h5' is already loaded") in quick
    assert quick == full - {repeat}
    # with nothing in the store the text never needs to leave Arrow memory
    assert problems(check("houses", df, StoreKeys(), duplicates=False)) == (
        problems(check("houses", df, StoreKeys())) - {repeat})


def test_lookup_maps_repeated_blank_and_unknown_keys() -> None:
    from gridmgr.validate import lookup

    keys = np.array(["a", "b", "a", "", None, "zz"], dtype=object)
    assert lookup(keys, {"a": "street", "b": "community"}).tolist() == [
        "street", "community", "street", "", "", ""]
    assert lookup(np.array([], dtype=object), {"a": "x"}).tolist() == []


def test_a_house_in_an_unloaded_community_is_named(tmp_path: object) -> None:
    text = HOUSES_CSV.replace("residential,\n", "residential,510104001009\n", 1)
    keys = StoreKeys(area_levels={"510104001001": "community", "510104001": "street"})
    found = problems(check("houses", frame(text, tmp_path, "houses"), keys))
    assert (1, "community_code", "'510104001009' is not a loaded community") in found
    street = text.replace("510104001009", "510104001")
    found = problems(check("houses", frame(street, tmp_path, "houses"), keys))
    assert (1, "community_code", "'510104001' is not a loaded community") in found
