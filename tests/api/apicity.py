"""The tiny city for the API tests: load it into a store, one token per role."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cityfiles import C1, C2, ORDER, STREET, write_city
from sqlalchemy import text

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


def settings_for(url: str, **kwargs: Any) -> ApiSettings:
    """API settings for a test store (small pools)."""
    return ApiSettings(database_url=url, pool_min_size=1, pool_max_size=4, sync_pool_size=4,
                       **kwargs)
