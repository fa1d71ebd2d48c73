"""Fixtures of the browser tests, a pytest plugin: ``pytest_plugins = ["webapp"]``.

Registered once however many modules name it, so the session fixtures (the loaded city,
the browser) are shared by every module of tests/e2e.

The demo city (``make_city(scale=0.003, seed=1)``: 20 districts, 20 grids, ~20 k houses)
is loaded into SpatiaLite once per session; every test module works on its own copy
behind its own uvicorn on 127.0.0.1, so the modules cannot disturb one another. Pages
may reach only that server: every other request is aborted and recorded, and a test
fails if any happened (or if the page threw a JavaScript error).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from sqlalchemy import text

VIEWPORT = {"width": 1366, "height": 768}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass
class WebCity:
    """The demo city in a store: its file, tokens per role, and facts the tests check."""

    db_path: Path
    tokens: dict[str, str] = field(default_factory=dict)
    police_area: str = ""
    house_code: str = ""  # a let house in the police area with several residents
    house_lonlat: tuple[float, float] = (0.0, 0.0)
    residents: list[dict[str, Any]] = field(default_factory=list)
    rental_class: str = ""
    foreign_house: str = ""  # a house outside the police area
    split_grid: str = ""
    split_line: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (0.0, 0.0))
    url: str = ""  # base URL of the module's server

    @property
    def db_url(self) -> str:
        """SQLAlchemy URL of the store."""
        return f"sqlite:///{self.db_path}"


def _build_city(directory: Path) -> WebCity:
    from gridmgr.demo import make_city
    from gridmgr.store.engine import make_engine
    from gridmgr.store.load import load_file
    from gridmgr.store.queries import grids_geoframe
    from gridmgr.store.tokens import create_token

    files = make_city(scale=0.003, seed=1).write(directory / "data")
    city = WebCity(db_path=directory / "web.db")
    engine = make_engine(city.db_url)
    for kind in ("areas", "grids", "houses", "businesses", "people", "rentals"):
        load_file(engine, kind, files[kind], report_path=directory / f"{kind}.report.csv")
    with engine.begin() as conn:
        code, community, rental_class = conn.execute(text(
            "SELECT h.house_code, h.community_code, r.rental_class FROM house h "
            "JOIN rental_record r ON r.house_id = h.id "
            "JOIN residence s ON s.house_id = h.id AND s.left_on IS NULL "
            "WHERE r.next_due_on IS NOT NULL AND r.rental_class = 'key' "
            "GROUP BY h.id, h.house_code, h.community_code, r.rental_class "
            "HAVING count(*) >= 2 ORDER BY h.house_code LIMIT 1")).one()
        city.house_code, city.rental_class = str(code), str(rental_class)
        lon, lat = conn.execute(text("SELECT lon, lat FROM house WHERE house_code = :c"),
                                {"c": city.house_code}).one()
        city.house_lonlat = (float(lon), float(lat))
        city.police_area = str(community)[:9]  # the street holding the house
        city.residents = [dict(r) for r in conn.execute(text(
            "SELECT p.name, p.id_number FROM residence s JOIN person p ON p.id = s.person_id "
            "JOIN house h ON h.id = s.house_id WHERE h.house_code = :c AND s.left_on IS NULL "
            "ORDER BY p.id"), {"c": city.house_code}).mappings()]
        city.foreign_house = str(conn.execute(text(
            "SELECT house_code FROM house WHERE house_code IS NOT NULL AND community_code "
            "NOT LIKE :s ORDER BY house_code LIMIT 1"), {"s": city.police_area + "%"}).scalar_one())
        for who, role, area in (("民警甲", "police", city.police_area), ("规划员", "planner", None),
                                ("督导员", "supervisor", None), ("管理员", "admin", None)):
            _, city.tokens[role] = create_token(conn, role=role, area_code=area, name=who)
        grids = grids_geoframe(conn)
    grid = grids.iloc[0]
    minx, _, maxx, _ = grid.geometry.bounds
    cy = grid.geometry.centroid.y
    city.split_grid = str(grid["grid_id"])
    city.split_line = ((minx - 0.002, cy), (maxx + 0.002, cy))
    engine.dispose()
    return city


@pytest.fixture(scope="session")
def web_base(tmp_path_factory: pytest.TempPathFactory) -> WebCity:
    """The demo city loaded once per session (tests work on copies)."""
    return _build_city(tmp_path_factory.mktemp("web-base"))


def web_app(db_url: str) -> FastAPI:
    """The API as ``gridmgr serve`` builds it (web app and /plans included), on a test store."""
    from api.app import create_app
    from api.settings import ApiSettings

    return create_app(ApiSettings(database_url=db_url, pool_min_size=1, pool_max_size=4,
                                  sync_pool_size=4))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def web_city(web_base: WebCity, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebCity]:
    """A copy of the demo city behind a live uvicorn on 127.0.0.1 (one per test module)."""
    import uvicorn

    copy = tmp_path_factory.mktemp("web") / "web.db"
    shutil.copyfile(web_base.db_path, copy)
    city = WebCity(**{**web_base.__dict__, "db_path": copy})
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(web_app(city.db_url), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    city.url = f"http://127.0.0.1:{port}"
    yield city
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser(playwright_browser: Any) -> Any:
    """Headless Debian Chromium driven by Playwright (the session's one browser)."""
    from playwright.sync_api import expect

    # Maps render on the server in a few seconds on a busy machine; 5 s is too tight.
    expect.set_options(timeout=15_000)
    return playwright_browser


@dataclass
class Guard:
    """What a page tried that it must not: requests off localhost, uncaught script errors."""

    offsite: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class WebSession:
    """One test's browser page on the module's server, with what it may not do recorded."""

    page: Any
    city: WebCity
    guard: Guard
    artifacts: Path

    def sign_in(self, role: str) -> None:
        """Open the app, sign in with the role's token, wait until signed in."""
        self.page.goto(self.city.url + "/")
        self.page.locator("#token-input").fill(self.city.tokens[role])
        self.page.locator("#signin-form button[type=submit]").click()
        self.page.locator("#whoami").wait_for(state="visible")

    def shot(self, name: str) -> Path:
        """Save a screenshot of the page as a test artifact."""
        path = self.artifacts / f"{name}.png"
        self.page.screenshot(path=path)
        return path


@pytest.fixture
def web(browser: Any, web_city: WebCity, artifacts_dir: Path) -> Iterator[WebSession]:
    """A 1366×768 zh-CN page whose network is limited to localhost.

    Fails the test afterwards if the page asked for anything off localhost or threw.
    """
    guard = Guard()
    # The browser keeps the machine's time zone, as the server does: "today" agrees.
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", accept_downloads=True)

    def route(r: Any) -> None:
        parts = urlsplit(r.request.url)
        if parts.scheme in ("data", "blob", "about") or parts.hostname in LOCAL_HOSTS:
            r.continue_()
        else:
            guard.offsite.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("pageerror", lambda exc: guard.errors.append(str(exc)))
    yield WebSession(page, web_city, guard, artifacts_dir)
    context.close()
    assert guard.offsite == [], f"requests off localhost: {guard.offsite}"
    assert guard.errors == [], f"script errors: {guard.errors}"
