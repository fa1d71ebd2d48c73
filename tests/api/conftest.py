"""Fixtures for the API tests: the tiny city loaded once per store and module, tokens, clients.

The city is loaded into a SpatiaLite file and into a fresh PostGIS database (from the
session's ``pg_cluster``) once per test module, because loading it for every test would
dominate the run; tests that change the store use ``store_url`` and load their own.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cityfiles import C1, C2, ORDER, STREET, write_city
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.settings import ApiSettings
from gridmgr.store.engine import make_engine
from gridmgr.store.load import load_file
from gridmgr.store.tokens import create_token

ROLES = {"admin": ("admin", None), "planner": ("planner", None),
         "supervisor": ("supervisor", None), "police_a": ("police", C1),
         "police_b": ("police", C2), "police_street": ("police", STREET)}


@dataclass
class City:
    """The tiny city in one store: its URL, a token per role, and ids by source id."""

    url: str
    tokens: dict[str, str] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)
    people: dict[str, int] = field(default_factory=dict)
    communities: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        """The Authorization header of a role's token."""
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def load_city(url: str, tmp: Path) -> City:
    """Load the tiny city, add past stays, and create one token per role."""
    paths = write_city(tmp / "city")
    engine = make_engine(url)
    for kind in ORDER:
        load_file(engine, kind, paths[kind], report_path=tmp / f"{kind}.report.csv")
    city = City(url)
    with engine.begin() as conn:
        # Past stays: P1 (now in C1) once lived in C2; P4 (now in C2) once lived in C1.
        for person, house, start, end in (("P1", "H008", "2022-01-01", "2023-06-30"),
                                          ("P4", "H002", "2021-03-01", "2023-12-31")):
            conn.execute(text(
                "INSERT INTO residence (person_id, house_id, arrived_on, left_on) "
                "SELECT p.id, h.id, :a, :l FROM person p, house h "
                "WHERE p.source_id = :p AND h.source_id = :h"),
                {"p": person, "h": house, "a": dt.date.fromisoformat(start),
                 "l": dt.date.fromisoformat(end)})
        for who, (role, area) in ROLES.items():
            _, city.tokens[who] = create_token(conn, role=role, area_code=area, name=who)
        for src, code, community in conn.execute(text(
                "SELECT source_id, house_code, community_code FROM house")).fetchall():
            city.codes[src] = code
            city.communities[src] = community
        city.people = {str(s): int(i) for s, i in conn.execute(text(
            "SELECT source_id, id FROM person")).fetchall()}
    engine.dispose()
    return city


@pytest.fixture(scope="module", params=["spatialite", "postgis"])
def city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> City:
    """The tiny city on each store, once per module."""
    tmp = tmp_path_factory.mktemp(f"api-{request.param}")
    if request.param == "spatialite":
        url = f"sqlite:///{tmp / 'gridmgr.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").create_database("api_" + uuid.uuid4().hex[:10])
    return load_city(url, tmp)


def settings_for(url: str, **kwargs: Any) -> ApiSettings:
    """API settings for a test store (small pools)."""
    return ApiSettings(database_url=url, pool_min_size=1, pool_max_size=4, sync_pool_size=4,
                       **kwargs)


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
