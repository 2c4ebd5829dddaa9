"""Gather, on the host, a wheel for every locked distribution that runs on the image's platform.

Images never reach a package index: ``docker build`` installs from these wheels
with ``--no-index --require-hashes``. The bundler's ``find_wheels`` finds them by
content in the wheel cache, and fetches the ones it lacks, in parallel, for the
image's platform and Python version (not the host's); the ones no index has
are named before any build starts.
"""

from __future__ import annotations

from pathlib import Path

from ...bundler import MissingWheel, Reporter, WheelCache, find_wheels, read_lock
from ...errors import ExportError
from ._platform import ImagePlatform

__all__ = ["WheelCache", "gather_wheels"]


def gather_wheels(
    lock_file: Path,
    platform: ImagePlatform,
    destination: Path,
    cache: WheelCache,
    reporter: Reporter,
    *,
    vendored: Path | None = None,
    offline: bool = False,
) -> list[Path]:
    """Put one wheel per locked distribution, fit for ``platform``, into ``destination``."""
    locked = read_lock(lock_file)
    found = find_wheels(
        locked, platform.wheels, cache, reporter, extra_dirs=[vendored] if vendored else [], offline=offline,
        label=f"{platform.docker}, Python {platform.python_version}",
    )
    failed = [missing.reason for missing in found.missing if missing.reason]
    if failed and any(reason.startswith("pip download failed") for reason in failed):
        raise ExportError(next(reason for reason in failed if reason.startswith("pip download failed")))
    if found.missing:
        raise ExportError(_missing_message(found.missing, platform, offline))
    return found.place(locked, destination)


def _missing_message(missing: list[MissingWheel], platform: ImagePlatform, offline: bool) -> str:
    pins = ", ".join(m.dist.pin for m in missing)
    where = "in the wheel cache (offline)" if offline else "in the wheel cache or on the package index"
    reasons = "; ".join(f"{m.dist.pin}: {m.reason}" for m in missing if m.reason)
    return (
        f"no wheel for {platform.docker} and CPython {platform.python_version} {where} for: {pins}. "
        "Images install only from wheels; build one on a matching machine and put it in the bundle "
        "(bundle build --vendor-wheels), or pin a version that ships wheels"
        + (f" (what was tried: {reasons})" if reasons else "")
    )
