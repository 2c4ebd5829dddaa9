#!/usr/bin/env bash
# Refreshes every lock the tests install from (requirements/*.lock), with uv from the test venv.
#
#   scripts/lock.sh              keep every pin that still fits the inputs; change only what they force
#   scripts/lock.sh --upgrade    move every pin to the newest release that fits
#
# A refreshed lock is a reviewed change, never a silent one: read `git diff requirements/`
# and commit it on its own. The locks are for CPython 3.11 on Linux (what scripts/test.sh and
# CI run); each holds the hashes of every file PyPI has for a pinned version.
#
#   test.lock           pyproject.toml's [test] extra + test.in; resolved together with
#                       ray-target.in, so that `--target ray` can join a bundle locked in it
#   ray-target.lock     what `bundle containerize --target ray` adds (the Ray image tests
#                       pass it as --target-lock); its shared pins equal test.lock's
#   lambda-image-target.lock  likewise for `--target lambda-image` (awslambdaric)
#   kserve-client.lock  KServe's client, in a venv of its own (tests/runtime/test_oip_kserve.py)
#   lambda-iris.lock    modelbundle[build] + Lambda-compatible scikit-learn
#                       (tests/exporters/awslambda/conftest.py)
set -euo pipefail
cd "$(dirname "$0")/.."

UPGRADE=()
case "${1:-}" in
  --upgrade) UPGRADE=(--upgrade) ;;
  "") ;;
  *) echo "usage: scripts/lock.sh [--upgrade]" >&2; exit 2 ;;
esac

UV=${UV:-.venv-test/bin/uv}
if [ ! -x "$UV" ]; then
  echo "lock: no uv at $UV; run scripts/test.sh once (it installs the test environment) or set UV=/path/to/uv" >&2
  exit 1
fi

# the joint resolution of step 1, at a fixed path so that the locks' "# via" notes do not change
JOINT=requirements/.joint-resolution.txt
trap 'rm -f "$JOINT"' EXIT

compile() {  # compile OUTPUT INPUT... [uv options]
  local output=$1
  shift
  # an existing output file is uv's preference: pins move only when the inputs force them
  "$UV" pip compile --quiet --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
    --custom-compile-command "scripts/lock.sh" "${UPGRADE[@]}" -o "$output" "$@"
}

# 1. the test environment and what the image targets add, resolved together (versions only), so
#    that the locked test environment makes bundles whose locks ray[serve] and awslambdaric can join
[ -f requirements/test.lock ] && cp requirements/test.lock "$JOINT"
compile "$JOINT" pyproject.toml requirements/test.in requirements/ray-target.in \
  requirements/lambda-image-target.in --extra test

# 2. the locks, with hashes; the shared pins come from that joint resolution
compile requirements/test.lock pyproject.toml requirements/test.in --extra test \
  -c "$JOINT" --generate-hashes
compile requirements/ray-target.lock requirements/ray-target.in -c "$JOINT" --generate-hashes
compile requirements/lambda-image-target.lock requirements/lambda-image-target.in -c "$JOINT" --generate-hashes
compile requirements/kserve-client.lock requirements/kserve-client.in --generate-hashes
compile requirements/lambda-iris.lock pyproject.toml requirements/lambda-iris.in --extra build --generate-hashes

for lock in requirements/*.lock; do
  echo "$lock: $(grep -cE '^[A-Za-z0-9]' "$lock") pins"
done
git --no-pager diff --stat -- requirements/ 2>/dev/null || true
