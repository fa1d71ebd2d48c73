#!/usr/bin/env bash
# Install gridmgr and run the demo on the embedded SpatiaLite store (no server needed).
# Extra arguments go to `gridmgr demo` (e.g. --scale 0.2 --seed 7).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
exec .venv/bin/gridmgr demo --replace "$@"
