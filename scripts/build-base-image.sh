#!/usr/bin/env bash
# Builds a Debian bookworm base image with Python 3.11 (python3, python3-venv, ca-certificates)
# without pulling anything from a registry: debootstrap (minbase) into a temporary root
# filesystem, then `docker import`. Idempotent: an existing image of that tag is kept.
#
#   scripts/build-base-image.sh [TAG]      default: modelbundle-base:bookworm-py3.11
#
# Environment:
#   DEBIAN_MIRROR   default http://deb.debian.org/debian
#   SUITE           default bookworm
#   REBUILD=1       build even when the tag exists
#
# The image has useradd/groupadd (passwd) and adduser, so Dockerfiles can make a non-root user;
# PATH and LANG=C.UTF-8 are set, CMD is ["/bin/bash"]. About a minute on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${1:-modelbundle-base:bookworm-py3.11}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

say() { echo "build-base-image: $*" >&2; }

scripts/ensure-docker.sh

show() {
  $SUDO docker image inspect --format '{{.Id}} {{.Size}}' "$TAG" | {
    read -r id size
    say "$TAG: $id, $((size / 1024 / 1024)) MiB"
    echo "$id"
  }
}

if [ "${REBUILD:-0}" != 1 ] && $SUDO docker image inspect "$TAG" >/dev/null 2>&1; then
  show
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap with apt"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/modelbundle-rootfs-XXXXXX")
ROOT="$WORK/rootfs"
cleanup() {
  # debootstrap mounts proc and sys inside the root while it works: unmount before removing
  grep -o " $ROOT/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do $SUDO umount -l "$m" || true; done || true
  $SUDO rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

start=$SECONDS
say "debootstrap --variant=minbase $SUITE from $MIRROR (log $WORK/debootstrap.log)"
if ! $SUDO debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
  tail -n 30 "$WORK/debootstrap.log" >&2
  $SUDO tail -n 30 "$ROOT/debootstrap/debootstrap.log" >&2 2>/dev/null || true
  say "error: debootstrap failed"
  exit 1
fi
say "debootstrap done in $((SECONDS - start)) s"
for tool in python3 useradd groupadd; do
  $SUDO chroot "$ROOT" sh -c "command -v $tool" >/dev/null || { say "error: $tool is missing from the root filesystem"; exit 1; }
done

# slim it down the way debian:*-slim does: no apt cache or lists, no docs (but the copyright
# files), no man pages, no translations; and nothing of this host (resolv.conf, hostname)
$SUDO sh -eu -c '
  cd "$1"
  rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* debootstrap
  find usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
  find usr/share/doc -mindepth 1 -type d -empty -delete
  rm -rf usr/share/man/* usr/share/info/* usr/share/locale/*
  find var/log -type f -delete
  : > etc/resolv.conf
  rm -f etc/hostname
  mkdir -p etc/dpkg/dpkg.cfg.d
  printf "%s\n" "path-exclude /usr/share/doc/*" "path-include /usr/share/doc/*/copyright" \
    "path-exclude /usr/share/man/*" "path-exclude /usr/share/info/*" "path-exclude /usr/share/locale/*" \
    > etc/dpkg/dpkg.cfg.d/docker-slim
' sh "$ROOT"

PYVER=$($SUDO chroot "$ROOT" python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
say "importing as $TAG (Python $PYVER)"
$SUDO tar -C "$ROOT" --numeric-owner --sort=name -c . | $SUDO docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase with Python $PYVER, made by modelbundle's scripts/build-base-image.sh\"" \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap --variant=minbase $SUITE + python3 python3-venv ca-certificates" \
  - "$TAG" >/dev/null
say "debootstrap + import done in $((SECONDS - start)) s"
show
