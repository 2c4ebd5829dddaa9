#!/usr/bin/env bash
# Installs everything the tests need on a fresh machine, then runs the whole suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k batching).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# services the tests run for real: an OCI registry (CNCF distribution) and htpasswd for its auth
if ! command -v docker-registry >/dev/null || ! command -v htpasswd >/dev/null; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker-registry apache2-utils >/dev/null
fi

# a real Docker engine (docker.io + dockerd) and the base image the image tests build on:
# nothing can be pulled here, so it is made with debootstrap once and reused (about a minute)
scripts/ensure-docker.sh
scripts/build-base-image.sh >/dev/null

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e ".[test]"

"$VENV/bin/ruff" check src tests bench examples
"$VENV/bin/python" -m pytest "$@"
