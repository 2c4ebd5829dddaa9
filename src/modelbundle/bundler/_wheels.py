"""Gather the wheels a lock names, for offline installs (``--vendor-wheels``, ``bundle env create``)."""

from __future__ import annotations

from pathlib import Path

from ..errors import BuildError
from ._fetch import find_wheels
from ._lockfile import read_lock
from ._platforms import WheelPlatform
from ._report import Reporter
from ._wheel_cache import WheelCache


def download_wheels(
    lock_file: Path, destination: Path, wheel_cache: Path, reporter: Reporter, *, offline: bool = False
) -> list[Path]:
    """Put a wheel of every locked distribution, for this platform, into ``destination``.

    Wheels already in the cache are linked or copied rather than downloaded; the
    missing ones are fetched in parallel into the cache, which is what later
    offline builds lock from. Offline, only the wheel cache is read.
    """
    locked = read_lock(lock_file)
    found = find_wheels(
        locked, WheelPlatform.host(), WheelCache(wheel_cache), reporter, offline=offline,
        label=f"this machine ({lock_file.name})",
    )
    if found.missing:
        pins = ", ".join(m.dist.pin + (f" ({m.reason})" if m.reason else "") for m in found.missing)
        where = "in the wheel cache (offline)" if offline else "in the wheel cache or on the package index"
        raise BuildError(f"could not download the locked wheels: no wheel for this machine {where} for: {pins}")
    return found.place(locked, destination)
