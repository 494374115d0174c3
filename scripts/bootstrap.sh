#!/usr/bin/env bash
# Everything `make demo` and `make test` need on a fresh Debian machine: the Debian packages of
# the real servers, then a virtual environment with the project and its Python dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have mosquitto || debs+=(mosquitto)
have mosquitto_pub || debs+=(mosquitto-clients)
have influxd || debs+=(influxdb)
# PostgreSQL for the operational state of a city deployment and its tests (binaries off the PATH)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || have initdb || debs+=(postgresql)
have openssl || debs+=(openssl)
have node || debs+=(nodejs)  # the independent LwM2M client of the tests (lwm2m-node-lib) runs on Node.js
have npm || debs+=(npm)
if [ "${STREETLIGHT_BROWSER_TESTS:-1}" = 1 ]; then
  have chromium || debs+=(chromium)
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || debs+=(fonts-wqy-microhei)
fi
if [ ${#debs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian packages: ${debs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
  else
    echo "Please install the Debian packages ${debs[*]} (as root: apt-get install ${debs[*]}), then run make again." >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Python 3.11 or newer is needed as '$PY' (set PYTHON=/path/to/python3.11)." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating the virtual environment .venv"
  "$PY" -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  echo "==> installing the project and its Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c 'import streetlight, paho.mqtt, fastapi, influxdb_client, sqlalchemy, alembic, psycopg' 
  touch .venv/.installed
fi
# The LwM2M client nobody here wrote, which the tests drive against the platform's LwM2M server
LWM2M_NODE_LIB=lwm2m-node-lib@1.4.0
if [ ! -f .venv/npm/node_modules/lwm2m-node-lib/package.json ]; then
  echo "==> installing $LWM2M_NODE_LIB (npm) into .venv/npm"
  mkdir -p .venv/npm
  npm install --prefix .venv/npm --no-audit --no-fund --loglevel=error "$LWM2M_NODE_LIB" >/dev/null
fi
