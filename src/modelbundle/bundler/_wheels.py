"""Gather the wheels a lock names, for offline installs (``--vendor-wheels``, ``bundle env create``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import BuildError
from ._lock import FAST_FAIL_PIP_ARGS, _last_lines, _pip_env
from ._report import Reporter


def download_wheels(
    lock_file: Path, destination: Path, wheel_cache: Path, reporter: Reporter, *, offline: bool = False
) -> list[Path]:
    """Download every locked distribution as a wheel for this platform into ``destination``.

    Wheels already in the cache are copied rather than downloaded; new ones
    are added to the cache, which is what later offline builds lock from.
    Offline, only the wheel cache is read (pip would otherwise retry the index for every wheel).
    """
    destination.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes", *FAST_FAIL_PIP_ARGS,
        "--only-binary=:all:", "--find-links", str(wheel_cache), "-d", str(destination), "-r", str(lock_file),
    ]
    if offline:
        command.append("--no-index")
    with reporter.step(f"downloading the wheels of {lock_file.name}..."):
        result = subprocess.run(command, capture_output=True, text=True, env=_pip_env())
    if result.returncode != 0:
        raise BuildError(f"could not download the locked wheels: {_last_lines(result.stderr)}")
    wheels = sorted(destination.glob("*.whl"))
    for wheel in wheels:
        cached = wheel_cache / wheel.name
        if not cached.exists():
            shutil.copyfile(wheel, cached)
    return wheels
