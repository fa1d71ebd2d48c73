"""Shared fixtures: a throwaway PostGIS cluster, store URLs for both backends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require

from gridmgr.store.pgtemp import TempCluster, postgis_available, start_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[TempCluster]:
    """One throwaway PostgreSQL 15 + PostGIS 3 cluster for the whole session."""
    require(postgis_available(), "PostgreSQL + PostGIS (postgresql-15-postgis-3)")
    cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgis_url(pg_cluster: TempCluster) -> str:
    """A fresh, empty PostGIS database for one test."""
    return pg_cluster.create_database("t_" + uuid.uuid4().hex[:12])


@pytest.fixture
def spatialite_url(tmp_path: Path) -> str:
    """A fresh SpatiaLite file for one test."""
    return f"sqlite:///{tmp_path / 'gridmgr.db'}"


@pytest.fixture(params=["spatialite", "postgis"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Run the test once on each store."""
    name = "spatialite_url" if request.param == "spatialite" else "postgis_url"
    return str(request.getfixturevalue(name))


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Directory where tests save screenshots and reports."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def playwright_browser() -> Iterator[Any]:
    """One headless Debian Chromium for the session (Playwright's sync API allows one)."""
    require(CHROMIUM.exists(), "chromium (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
