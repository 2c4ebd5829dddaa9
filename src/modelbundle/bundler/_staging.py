"""Staging directories under ``$MODELBUNDLE_HOME/tmp``, and clearing those a killed process left.

A process that stages a bundle holds an exclusive ``flock`` on
``staging-XXXX.live`` beside its directory until it is done. The kernel drops
the lock when the process dies, however it dies, so under the store lock a
staging directory whose ``.live`` file can be locked (or that has none) belongs
to nobody. ``deleted-*`` folders are only ever made and removed under the
store lock, so any found there were left by a killed ``bundle delete``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path
from typing import IO

STAGING_PREFIX = "staging-"
DELETED_PREFIX = "deleted-"
_LIVE_SUFFIX = ".live"


def _live_file(directory: Path) -> Path:
    return directory.with_name(directory.name + _LIVE_SUFFIX)


def claim_staging(directory: Path) -> IO[bytes]:
    """Lock ``directory``'s live file for as long as the returned handle stays open."""
    handle = open(_live_file(directory), "wb")  # noqa: SIM115 - held open until release_staging
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new and unique: nobody else can hold it
    # not inherited by children (close_fds), so a build's pip cannot keep a dead build's claim
    os.set_inheritable(handle.fileno(), False)
    return handle


def release_staging(directory: Path, handle: IO[bytes]) -> None:
    _live_file(directory).unlink(missing_ok=True)
    handle.close()


def remove_stale_staging(tmp: Path) -> list[str]:
    """Remove the staging and trash folders no live process holds; their names. Call under the store lock."""
    if not tmp.is_dir():
        return []
    removed = []
    for entry in sorted(tmp.iterdir()):
        if entry.name.startswith(DELETED_PREFIX) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
        elif entry.name.startswith(STAGING_PREFIX) and entry.is_dir() and not _in_use(entry):
            shutil.rmtree(entry, ignore_errors=True)
            _live_file(entry).unlink(missing_ok=True)
            removed.append(entry.name)
        elif entry.name.endswith(_LIVE_SUFFIX) and not entry.with_name(entry.name[: -len(_LIVE_SUFFIX)]).exists():
            with contextlib.suppress(OSError):  # its directory was committed or removed by a process killed since
                if not _locked(entry):
                    entry.unlink()
    return removed


def _in_use(directory: Path) -> bool:
    live = _live_file(directory)
    try:
        return _locked(live)
    except FileNotFoundError:
        return False  # left by a modelbundle from before live files, or killed before claiming it


def _locked(live: Path) -> bool:
    with open(live, "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
