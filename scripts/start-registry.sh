#!/usr/bin/env bash
# Starts a local OCI registry (Debian's docker-registry, CNCF distribution) on 127.0.0.1,
# for trying `bundle push NAME oci://127.0.0.1:PORT/models` by hand and for bench/.
#
#   scripts/start-registry.sh [PORT] [DIR]     defaults: $REGISTRY_PORT or 5000, a new temporary directory
#
# With REGISTRY_USER and REGISTRY_PASSWORD set, the registry asks for those credentials
# (htpasswd, Basic); give them to bundle with MODELBUNDLE_REGISTRY_USERNAME/PASSWORD.
# Prints the store URL and the registry's PID; stop it with `kill PID`.
set -euo pipefail

PORT=${1:-${REGISTRY_PORT:-5000}}
DIR=${2:-$(mktemp -d -t modelbundle-registry-XXXXXX)}
BINARY=$(command -v docker-registry || true)
if [ -z "$BINARY" ]; then
  echo "docker-registry is not installed: apt-get install -y docker-registry apache2-utils" >&2
  exit 1
fi
mkdir -p "$DIR/storage"

AUTH=""
if [ -n "${REGISTRY_USER:-}" ]; then
  htpasswd -Bbn "$REGISTRY_USER" "${REGISTRY_PASSWORD:-}" > "$DIR/htpasswd"
  AUTH="auth:
  htpasswd:
    realm: modelbundle
    path: $DIR/htpasswd"
fi

cat > "$DIR/config.yml" <<CONFIG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DIR/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
  secret: modelbundle-local
$AUTH
CONFIG

"$BINARY" serve "$DIR/config.yml" > "$DIR/registry.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "docker-registry exited; see $DIR/registry.log:" >&2
    cat "$DIR/registry.log" >&2
    exit 1
  fi
  STATUS=$(python3 -c "import urllib.request, urllib.error, sys
try: print(urllib.request.urlopen('http://127.0.0.1:$PORT/v2/', timeout=1).status)
except urllib.error.HTTPError as e: print(e.code)
except Exception: print(0)")
  if [ "$STATUS" = 200 ] || [ "$STATUS" = 401 ]; then
    echo "oci://127.0.0.1:$PORT/models"
    echo "registry pid $PID, storage $DIR/storage, log $DIR/registry.log" >&2
    exit 0
  fi
  sleep 0.1
done
echo "docker-registry did not answer on 127.0.0.1:$PORT; see $DIR/registry.log" >&2
kill "$PID"
exit 1
