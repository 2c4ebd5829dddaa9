#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine: installs Debian's docker.io when `docker`
# or `dockerd` is missing, and starts `dockerd` in the background when `docker info` fails.
# Idempotent: with an engine already answering it only prints its version.
#
#   scripts/ensure-docker.sh
#
# Environment:
#   DOCKERD_STORAGE_DRIVER  overlay2 | vfs | auto (default auto: overlay2 when the kernel has
#                           overlayfs, else vfs; vfs works anywhere but copies every layer)
#   DOCKERD_TIMEOUT         seconds to wait for the engine to answer (default 60)
#   DOCKERD_LOG             dockerd's log (default /var/log/modelbundle-dockerd.log)
#   DOCKERD_PIDFILE         dockerd's pidfile (default /var/run/docker.pid)
#
# dockerd is started with setsid + nohup so that it outlives this script and the test run;
# stop it with `kill $(cat /var/run/docker.pid)`.
set -euo pipefail

SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
TIMEOUT=${DOCKERD_TIMEOUT:-60}
LOG=${DOCKERD_LOG:-/var/log/modelbundle-dockerd.log}
PIDFILE=${DOCKERD_PIDFILE:-/var/run/docker.pid}

say() { echo "ensure-docker: $*" >&2; }
die() { say "error: $*"; exit 1; }

engine_up() { $SUDO docker info >/dev/null 2>&1; }

report() {
  say "engine up: $($SUDO docker version --format 'server {{.Server.Version}} (API {{.Server.APIVersion}}), client {{.Client.Version}}' 2>/dev/null || echo '?')," \
      "storage driver $($SUDO docker info --format '{{.Driver}}' 2>/dev/null || echo '?')"
  if [ -n "$SUDO" ] && ! docker info >/dev/null 2>&1; then
    say "note: the engine answers to root only; add yourself to the docker group (sudo usermod -aG docker $USER) and log in again"
  fi
}

# 1. the packages: docker.io brings dockerd, the client, containerd, runc, tini and iptables
if ! command -v docker >/dev/null || ! command -v dockerd >/dev/null || ! command -v iptables >/dev/null; then
  say "installing docker.io with apt"
  start=$SECONDS
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null
  say "installed docker.io in $((SECONDS - start)) s"
fi
command -v dockerd >/dev/null || die "dockerd is still missing after installing docker.io"

if engine_up; then
  report
  exit 0
fi

# 2. is a dockerd of ours (or anyone's) already starting? then only wait for it.
# A process counts as running only if it exists, is not a zombie (PID 1 here may be slow to
# reap orphans, and kill -0 succeeds on a zombie) and has the expected name
alive() {
  local pid=$1 name=${2:-}
  [ -n "$pid" ] && [ -r "/proc/$pid/status" ] &&
    ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null &&
    { [ -z "$name" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; }
}
running_pid() {
  local pid
  pid=$($SUDO cat "$PIDFILE" 2>/dev/null || true)
  if alive "$pid" dockerd; then echo "$pid"; fi
}

PID=$(running_pid)
if [ -z "$PID" ]; then
  # a dockerd killed with SIGKILL leaves its pidfile and containerd's: dockerd refuses to start
  # while its pidfile names a process that still exists (a zombie counts)
  for f in "$PIDFILE" /var/run/docker/containerd/containerd.pid; do
    pid=$($SUDO cat "$f" 2>/dev/null || true)
    name=$([ "$f" = "$PIDFILE" ] && echo dockerd || echo containerd)
    if [ -n "$pid" ] && ! alive "$pid" "$name"; then $SUDO rm -f "$f"; fi
  done
  # 3. the settings this machine needs
  ARGS=(--pidfile "$PIDFILE")
  DRIVER=${DOCKERD_STORAGE_DRIVER:-auto}
  if [ "$DRIVER" = auto ]; then
    # overlay2 needs overlayfs in the kernel and a backing filesystem other than overlayfs
    # itself (ext4 here); else vfs, which works anywhere but copies every layer in full
    DATA=/var/lib/docker
    [ -d "$DATA" ] || DATA=/var/lib
    if grep -qw overlay /proc/filesystems && [ "$(stat -f -c %T "$DATA")" != overlayfs ]; then
      DRIVER=overlay2
    else
      DRIVER=vfs
    fi
  fi
  # a storage-driver given both as a flag and in daemon.json stops dockerd: the file wins
  if ! grep -qs '"storage-driver"' /etc/docker/daemon.json; then
    ARGS+=(--storage-driver "$DRIVER")
  fi
  # bridge networking needs iptables (nat table); fall back to iptables-legacy, then to none
  if ! $SUDO iptables -t nat -S >/dev/null 2>&1; then
    if command -v iptables-legacy >/dev/null && $SUDO iptables-legacy -t nat -S >/dev/null 2>&1; then
      say "iptables (nft) has no nat table here: switching to iptables-legacy"
      $SUDO update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null
      $SUDO update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null || true
    else
      say "warning: no usable iptables: starting dockerd with --iptables=false (published ports still work through docker-proxy; containers get no outbound NAT)"
      ARGS+=(--iptables=false --ip-masq=false)
    fi
  fi
  # cgroups: dockerd needs the hierarchy mounted (a fresh container may not have it)
  if [ ! -e /sys/fs/cgroup/cgroup.controllers ] && [ -z "$(ls -A /sys/fs/cgroup 2>/dev/null)" ]; then
    say "mounting the cgroup hierarchy"
    if ! command -v cgroupfs-mount >/dev/null; then
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends cgroupfs-mount >/dev/null
    fi
    $SUDO cgroupfs-mount || true
  fi

  say "starting dockerd ${ARGS[*]} (log $LOG)"
  $SUDO mkdir -p "$(dirname "$LOG")"
  # setsid: its own session, so that it is not ended with the caller's process group; the log
  # is opened by the (sudo) shell that runs dockerd, so that it may live under /var/log
  # shellcheck disable=SC2016
  $SUDO sh -c 'log=$1; shift; exec setsid nohup dockerd "$@" </dev/null >>"$log" 2>&1' sh "$LOG" "${ARGS[@]}" &
  LAUNCHER=$!
else
  say "dockerd (pid $PID) is running but does not answer yet: waiting for it"
  LAUNCHER=""
fi

# 4. wait for the engine
start=$SECONDS
while ! engine_up; do
  if [ -n "$LAUNCHER" ] && ! alive "$LAUNCHER" && [ -z "$(running_pid)" ]; then
    say "dockerd exited; the end of $LOG:"
    $SUDO tail -n 30 "$LOG" >&2 || true
    die "dockerd could not start (try DOCKERD_STORAGE_DRIVER=vfs if the log names the storage driver)"
  fi
  if [ $((SECONDS - start)) -ge "$TIMEOUT" ]; then
    say "the end of $LOG:"
    $SUDO tail -n 30 "$LOG" >&2 || true
    die "the Docker engine did not answer within $TIMEOUT s"
  fi
  sleep 0.5
done
say "dockerd answered after $((SECONDS - start)) s"
report
