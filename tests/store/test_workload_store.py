"""Workload read from the maintained counts, rolled up, on both stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from cityfiles import ORDER, write_city

from gridmgr.store.engine import make_engine
from gridmgr.store.load import load_file
from gridmgr.store.models import GRID_COUNT_COLUMNS
from gridmgr.store.queries import staffing_at, workload_at


def test_rollups_add_up(store_url: str, tmp_path: Path) -> None:
    files = write_city(tmp_path / "city")
    engine = make_engine(store_url)
    for kind in ORDER:
        load_file(engine, kind, files[kind], report_path=tmp_path / "r.csv")
    with engine.connect() as conn:
        grid = workload_at(conn, "grid")
        assert len(grid) == 3
        for level in ("community", "street", "district", "city"):
            rows = workload_at(conn, level)
            for col in GRID_COUNT_COLUMNS:
                assert int(rows[col].sum()) == int(grid[col].sum()), (level, col)
        city = workload_at(conn, "city").iloc[0]
        assert city["houses"] == 11 and city["floating_residents"] == 3
        # rates are recomputed from summed numerators, not averaged
        assert np.isclose(city["floating_registration_rate"],
                          grid["floating_registered"].sum() / grid["floating_residents"].sum())
        c1 = workload_at(conn, "grid", parent="510104001001")
        assert set(c1["grid_id"]) == {"510104001001-01", "510104001001-02"}
        staff = staffing_at(conn, "district", 500)
        assert int(staff["co_managers_assigned"].sum()) == 3
        assert {"tier", "tier_reasons", "inspections_per_month",
                "co_managers_needed"} <= set(grid.columns)
