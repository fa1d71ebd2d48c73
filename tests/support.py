"""Helpers for tests that are not fixtures (import as `from support import require`).

Test modules must not `from conftest import ...`: with a conftest.py in several
directories the name `conftest` means whichever was imported first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# As root Chromium needs --no-sandbox; the rest keep it from calling out on a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ARTIFACTS = Path(os.environ.get("GRIDMGR_TEST_ARTIFACTS", "test-artifacts"))


def require(ok: bool, what: str) -> None:
    """Skip when a real part is missing locally; fail under CI=true."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing and CI=true: install it (.ci/run does)")
    pytest.skip(f"{what} is not installed")
