#!/usr/bin/env bash
# The quickstart, end to end: a virtualenv, the project, the iris model trained,
# built into a bundle, served by `bundle serve`, and one prediction over real HTTP.
# About a minute on a 2-core machine, most of it pip installing; then the README's "Using it".
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
echo "==> installing modelbundle with scikit-learn and uv (which locks environments in seconds)"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e ".[build,sklearn]"

echo "==> training the iris model"
"$VENV/bin/python" examples/iris/train.py

echo "==> building the bundle (the first build locks the environment with uv: seconds)"
"$VENV/bin/bundle" build examples/iris/service.py:IrisClassifier
TAG=$("$VENV/bin/bundle" build examples/iris/service.py:IrisClassifier -o tag)
"$VENV/bin/bundle" list

PORT=${PORT:-$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
echo "==> serving $TAG on port $PORT"
"$VENV/bin/bundle" serve "$TAG" --port "$PORT" --no-access-log &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT

"$VENV/bin/python" - "$PORT" <<'PY'
import json, sys, time, urllib.error, urllib.request

base = f"http://127.0.0.1:{sys.argv[1]}"
deadline = time.monotonic() + 60
while True:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:
            if response.status == 200:
                break
    except OSError:  # refused, reset, timed out, or 503 while setup() runs
        pass
    if time.monotonic() > deadline:
        sys.exit("the server did not become ready within 60 s")
    time.sleep(0.2)

rows = [[5.1, 3.5, 1.4, 0.2], [6.0, 2.9, 4.5, 1.5], [6.7, 3.0, 5.2, 2.3]]
request = urllib.request.Request(
    f"{base}/predict", data=json.dumps({"x": rows}).encode(), headers={"Content-Type": "application/json"}
)
with urllib.request.urlopen(request, timeout=10) as response:
    classes = json.load(response)
names = ["setosa", "versicolor", "virginica"]
print(f"==> POST {base}/predict {json.dumps({'x': rows})}")
print(f"    -> {classes}  ({', '.join(names[c] for c in classes)})")
PY
echo "==> done in ${SECONDS}s; stopping the server"
echo "==> next: \`source $VENV/bin/activate\` puts \`bundle\` on the PATH (or run $VENV/bin/bundle); then the README's \"Using it\""
