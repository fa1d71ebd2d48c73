"""Fixtures for the API tests: the tiny city loaded once per store and module, clients.

The city is loaded into a SpatiaLite file and into a fresh PostGIS database (from the
session's ``pg_cluster``) once per test module, because loading it for every test would
dominate the run; tests that change the store use ``store_url`` and load their own.
Helpers live in ``apicity`` (a module name no other test directory uses).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from apicity import City, load_city, settings_for
from fastapi.testclient import TestClient

from api.app import create_app


@pytest.fixture(scope="module", params=["spatialite", "postgis"])
def city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> City:
    """The tiny city on each store, once per module."""
    tmp = tmp_path_factory.mktemp(f"api-{request.param}")
    if request.param == "spatialite":
        url = f"sqlite:///{tmp / 'gridmgr.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").create_database("api_" + uuid.uuid4().hex[:10])
    return load_city(url, tmp)


@pytest.fixture(scope="module")
def client(city: City) -> Iterator[TestClient]:
    """A TestClient (lifespan run) over the module's city."""
    with TestClient(create_app(settings_for(city.url))) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live_url(city: City) -> Iterator[str]:
    """A live uvicorn server on loopback over the module's city; its base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings_for(city.url)), host="127.0.0.1",
                                           port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
