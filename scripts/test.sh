#!/usr/bin/env bash
# Installs everything the tests need on a fresh machine, then runs the whole suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k batching).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv-test}
PYTHON=${PYTHON:-python3}

# what the tests run for real: an OCI registry (CNCF distribution) and htpasswd for its auth,
# headless Chromium for the /docs page (tests/runtime/test_docs_browser.py), and a PostgreSQL
# server for the jobs queue's store (tests/fixtures/postgres.py starts a cluster of its own;
# Debian keeps initdb and pg_ctl off the PATH, under /usr/lib/postgresql/<version>/bin), and
# curl, which reads a stream the way a user at a terminal does (curl -N)
if ! command -v docker-registry >/dev/null || ! command -v htpasswd >/dev/null || ! command -v chromium >/dev/null \
  || ! command -v curl >/dev/null || ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker-registry apache2-utils chromium postgresql curl >/dev/null
fi

# a real Docker engine (docker.io + dockerd) and the base image the image tests build on:
# nothing can be pulled here, so it is made with debootstrap once and reused (about a minute)
scripts/ensure-docker.sh
scripts/build-base-image.sh >/dev/null

# the test environment: exactly requirements/test.lock, hash-checked, wheels only (no sdist
# builds that fetch unpinned build tools), then this checkout editable without build isolation
# (hatchling is in the lock). The venv is made again whenever the lock changes, so it never
# holds anything the lock does not name; scripts/lock.sh refreshes the lock.
LOCK=requirements/test.lock
STAMP="$VENV/.modelbundle-test-lock"
WANT=$(cat "$LOCK" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
    echo "test.sh: $LOCK is for CPython 3.11; $PYTHON is $("$PYTHON" -V 2>&1) (set PYTHON=python3.11)" >&2
    exit 1
  }
  echo "test.sh: installing the test environment in $VENV from $LOCK (a few minutes the first time)" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --only-binary :all: -r "$LOCK"
  "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
  echo "$WANT" > "$STAMP"
fi

"$VENV/bin/ruff" check src tests bench examples
# the slowest tests are named at the end, so a slower suite shows where the time went
"$VENV/bin/python" -m pytest --durations=15 "$@"
