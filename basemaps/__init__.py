"""Offline map assets: vendored Leaflet and gridmgr's renderer, found or inlined from here.

Police intranets have no internet, so no map may reference a CDN. The files live in
``basemaps/static`` (see its README for versions and licences); the API serves that
directory at ``/static`` and ``layers`` either links them there or inlines them.
"""

from __future__ import annotations

import base64
import html
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

__all__ = [
    "LEAFLET_VERSION",
    "Assets",
    "asset_path",
    "head_tags",
    "inline_css",
    "inline_js",
    "static_dir",
]

#: Version of the vendored Leaflet (basemaps/static/leaflet).
LEAFLET_VERSION = "1.9.4"

Assets = Literal["inline", "static"]

#: Stylesheets then scripts every map needs, relative to ``static_dir()``, in load order.
_CSS: tuple[str, ...] = ("leaflet/leaflet.css", "gridmgr/gridmgr-map.css")
_JS: tuple[str, ...] = ("leaflet/leaflet.js", "gridmgr/gridmgr-map.js")

_SOURCE_MAP = re.compile(r"^\s*//# sourceMappingURL=.*$", re.MULTILINE)
_CSS_URL = re.compile(r"url\((['\"]?)(images/[A-Za-z0-9_.-]+\.png)\1\)")


def static_dir() -> Path:
    """Directory holding the vendored assets, to mount at ``/static``."""
    return Path(__file__).resolve().parent / "static"


def asset_path(name: str) -> Path:
    """Path of one asset, e.g. ``asset_path("leaflet/leaflet.js")``; NotFound if absent."""
    from gridmgr.errors import NotFound

    root = static_dir()
    path = (root / name).resolve()
    if root not in path.parents or not path.is_file():
        raise NotFound(f"no map asset {name!r} under {root}: reinstall gridmgr (basemaps/static)")
    return path


@lru_cache(maxsize=16)
def inline_js(name: str) -> str:
    """Text of a script asset ready to sit inside ``<script>`` (no source-map lookup)."""
    text = asset_path(name).read_text(encoding="utf-8")
    return _SOURCE_MAP.sub("", text).replace("</script", "<\\/script")


@lru_cache(maxsize=16)
def inline_css(name: str) -> str:
    """Text of a stylesheet asset with its ``images/*.png`` turned into data URIs."""
    path = asset_path(name)
    text = path.read_text(encoding="utf-8")

    def to_data_uri(match: re.Match[str]) -> str:
        image = path.parent / match.group(2)
        if not image.is_file():
            return match.group(0)
        encoded = base64.b64encode(image.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{encoded})"

    return _CSS_URL.sub(to_data_uri, text).replace("</style", "<\\/style")


def head_tags(assets: Assets = "inline", static_prefix: str = "/static") -> str:
    """The ``<link>``/``<style>`` and ``<script>`` tags that load Leaflet and the renderer.

    ``assets="inline"`` embeds every file (the page needs no server and no internet);
    ``assets="static"`` links them under ``static_prefix`` (the API's ``/static`` mount).
    """
    if assets == "inline":
        styles = [f"<style>\n{inline_css(name)}\n</style>" for name in _CSS]
        scripts = [f"<script>\n{inline_js(name)}\n</script>" for name in _JS]
    elif assets == "static":
        prefix = html.escape(static_prefix.rstrip("/"), quote=True)
        for name in (*_CSS, *_JS):
            asset_path(name)
        styles = [f'<link rel="stylesheet" href="{prefix}/{name}"/>' for name in _CSS]
        scripts = [f'<script src="{prefix}/{name}"></script>' for name in _JS]
    else:
        from gridmgr.errors import BadInput

        raise BadInput(f"assets must be 'inline' or 'static', not {assets!r}")
    return "\n".join([*styles, *scripts])
