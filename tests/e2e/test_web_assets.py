"""The web app's files: one catalogue per language with the same keys, vendored, offline."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from api.web_router import WEB_DIR, wants_html

SOURCES = [WEB_DIR / "index.html", WEB_DIR / "app.js", WEB_DIR / "app.css",
           *sorted((WEB_DIR / "js").glob("*.js"))]
# Keys built at run time from data values: the values each can take.
TEMPLATED = {
    "tier": ("strengthened", "key", "routine"), "class": ("key", "uneasy", "trusted"),
    "inspector": ("police", "committee", "landlord"), "sex": ("M", "F"),
    "role": ("police", "planner", "supervisor", "admin"),
    "nav": ("police", "planner", "supervisor"),
    "level": ("city", "district", "street", "community", "grid"),
    "planStatus": ("draft", "adopted", "retired", "discarded"),
    "op": ("split", "merge", "reshape", "lock", "unlock", "move", "undo", "rebalance"),
    "col": ("grids", "floating_residents", "co_managers_needed", "co_managers_gap",
            "inspections_per_month"),
    "sup.map": ("inspection", "staffing"),
}


def _catalogue(lang: str) -> dict[str, str]:
    data = json.loads((WEB_DIR / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_both_languages_have_every_key() -> None:
    zh, en = _catalogue("zh"), _catalogue("en")
    assert set(zh) == set(en)
    assert all(v.strip() for v in (*zh.values(), *en.values()))
    for key in zh:  # placeholders agree, so no message loses a value in translation
        assert set(re.findall(r"\{(\w+)\}", zh[key])) == set(re.findall(r"\{(\w+)\}", en[key])), key


def test_every_label_used_is_in_the_catalogue() -> None:
    zh = _catalogue("zh")
    namespaces = {k.split(".")[0] for k in zh}
    names = "|".join(sorted(namespaces))
    literal = re.compile(r"""["'`:]((?:""" + names + r""")\.[A-Za-z0-9_.]+)["'`;]""")
    used: set[str] = set()
    for path in SOURCES:
        used |= set(literal.findall(path.read_text(encoding="utf-8")))
    for prefix, values in TEMPLATED.items():
        used |= {f"{prefix}.{v}" for v in values}
    used = {u for u in used if not u.endswith((".js", ".json", ".css", ".html"))}
    missing = sorted(used - set(zh))
    assert not missing, f"labels missing from the catalogue: {missing}"
    assert len(used) > 150


def test_nothing_is_fetched_from_elsewhere() -> None:
    for path in [*SOURCES, *(WEB_DIR / "i18n").glob("*.json")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?i)\b(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), path
    html = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert ref.startswith(("/static/", "/web/", "#", "data:")), ref


def test_vendored_files_match_their_recorded_hashes() -> None:
    readme = (WEB_DIR / "vendor" / "README.md").read_text(encoding="utf-8")
    recorded = dict(re.findall(r"- `(leaflet-geoman/[^`]+)`:\s*`([0-9a-f]{64})`", readme))
    assert set(recorded) == {"leaflet-geoman/leaflet-geoman.min.js",
                             "leaflet-geoman/leaflet-geoman.css", "leaflet-geoman/LICENSE"}
    for name, digest in recorded.items():
        data = (WEB_DIR / "vendor" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
    assert "MIT License" in (WEB_DIR / "vendor" / "leaflet-geoman" / "LICENSE").read_text()


@pytest.mark.parametrize("path", [p for p in SOURCES if p.suffix == ".js"],
                         ids=lambda p: p.name)
def test_scripts_parse_as_modules(path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (only this syntax check needs it)")
    done = subprocess.run([node, "--experimental-default-type=module", "--check", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("accept, html", [
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
    ("*/*", False), (None, False), ("application/json", False),
    ("application/json, text/html;q=0.5", False), ("text/html;q=0.9, application/json", False),
    ("text/*", True), ("text/html;q=bad", False),
])
def test_wants_html(accept: str | None, html: bool) -> None:
    assert wants_html(accept) is html
