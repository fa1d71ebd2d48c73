"""The CLI as a user meets it: exit codes, one-line errors, outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
from cityfiles import ORDER, write_city


def gm(*args: str, db: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridmgr", *args, "--db", db],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_load_workload_export(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    files = write_city(tmp_path / "city")
    for kind in ORDER:
        r = gm("load", kind, str(files[kind]), db=db, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert f"{kind}: loaded" in r.stdout
    r = gm("workload", "--level", "city", "--format", "json", db=db, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 1 and rows[0]["houses"] == 11 and rows[0]["residents"] == 5
    out = tmp_path / "houses.csv"
    r = gm("export", "houses", str(out), db=db, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert {"source_id", "house_code", "lon", "lat", "grid_id", "community_code"} <= set(df.columns)
    assert df.loc[df["source_id"] == "H012", "grid_id"].item() == ""
    assert (df["grid_id"] != "").sum() == 11


def test_bad_file_exit_2_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    files = write_city(tmp_path / "city")
    for kind in ("areas", "grids"):
        assert gm("load", kind, str(files[kind]), db=db, cwd=tmp_path).returncode == 0
    df = pd.read_csv(files["houses"], dtype=str)
    df.loc[1, "lon"] = "abc"
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    r = gm("load", "houses", str(bad), db=db, cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "row 2, column lon" in lines[0] and "not a number" in lines[0]
    assert "Traceback" not in r.stderr


def test_user_mistakes_are_clear(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    r = gm("load", "houses", str(tmp_path / "missing.csv"), db=db, cwd=tmp_path)
    assert r.returncode == 2 and "no such file" in r.stderr
    r = gm("load", "tents", str(tmp_path / "x.csv"), db=db, cwd=tmp_path)
    assert r.returncode == 2 and "unknown kind" in r.stderr
    r = gm("workload", db=db, cwd=tmp_path)
    assert r.returncode == 2 and "no grids are loaded" in r.stderr
    r = gm("workload", "--level", "planet", db=db, cwd=tmp_path)
    assert r.returncode == 2 and "--level" in r.stderr
    r = gm("workload", db="mysql://x", cwd=tmp_path)
    assert r.returncode == 2 and "unsupported database" in r.stderr


def test_assign_dask_engine_files(tmp_path: Path) -> None:
    files = write_city(tmp_path / "city")
    out = tmp_path / "assigned.parquet"
    r = subprocess.run([sys.executable, "-m", "gridmgr", "assign", "--engine", "dask",
                        "--houses", str(files["houses"]), "--grids", str(files["grids"]),
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    got = pd.read_parquet(out).set_index("source_id")["grid_id"]
    assert got["H007"] == "510104001001-01"  # shared edge: smallest grid_id
    assert got["H011"] == "510104001002-01"  # island part
    assert pd.isna(got["H012"])
