#!/usr/bin/env bash
# Install what gridmgr needs on Debian 12: system packages, then a virtualenv in .venv.
# Usage: bash scripts/setup.sh [demo|test]
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-demo}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
pkgs=(libsqlite3-mod-spatialite python3-venv python3-dev)
if [ "$what" = test ]; then
  # fonts-wqy-microhei: Chinese labels in the browser tests' screenshots
  pkgs+=(postgresql-15-postgis-3 chromium fonts-wqy-microhei)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$what" = test ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q -e .
fi
