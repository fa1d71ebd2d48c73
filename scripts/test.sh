#!/usr/bin/env bash
# Install the test dependencies and run the whole suite: ruff, mypy, then pytest
# (SpatiaLite, a throwaway PostGIS cluster, the API over HTTP, maps in headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff" >&2
ruff check .
echo "== mypy" >&2
mypy
# bench/ apart: its api.py (the API benchmark) would clash with the api package
mypy bench
echo "== pytest" >&2
exec pytest -q -p no:cacheprovider "$@"
