"""Gather, on the host, a wheel for every locked distribution that runs on the image's platform.

Images never reach a package index: ``docker build`` installs from these wheels
with ``--no-index --require-hashes``. Wheels are found by content: a lock names
each distribution's allowed sha256 digests, and the wheel cache keeps an index
from digest to file, so a warm containerize reads no network at all. Wheels the
cache lacks are fetched with ``pip download`` for the image's platform and
Python version (not the host's); the ones no index has are named before any
build starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from ...bundler import Reporter
from ...bundler._lock import FAST_FAIL_PIP_ARGS, PREVIOUS_WHEELS_DIR, _last_lines, _pip_env
from ...bundler._lockfile import LockedDistribution, read_lock
from ...errors import ExportError
from ._platform import ImagePlatform

_INDEX_FILE = ".sha256-index.json"
_NOT_FOUND = re.compile(r"No matching distribution found for ([A-Za-z0-9._-]+)")


class WheelCache:
    """A folder of wheels with a digest index (file name, size and mtime decide when to hash again)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def by_digest(self, extra_dirs: Iterable[Path] = ()) -> dict[str, Path]:
        """sha256 hex -> wheel file, over the cache and ``extra_dirs`` (e.g. a bundle's env/wheels)."""
        found = {}
        for directory in extra_dirs:
            for wheel in sorted(directory.glob("*.whl")):
                found[_sha256(wheel)] = wheel
        found.update(self._indexed())
        return found

    def add(self, files: Iterable[Path]) -> None:
        """Move downloaded wheels into the cache (atomic renames; an existing name is kept)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for file in files:
            target = self.directory / file.name
            if not target.exists():
                shutil.move(str(file), target)

    def _indexed(self) -> dict[str, Path]:
        if not self.directory.is_dir():
            return {}
        index_path = self.directory / _INDEX_FILE
        try:
            index: dict[str, list[object]] = json.loads(index_path.read_text())
        except (OSError, ValueError):
            index = {}
        fresh: dict[str, list[object]] = {}
        # and the runtime wheels modelbundle's source tree made before its latest one
        wheels = [*self.directory.glob("*.whl"), *self.directory.glob(f"{PREVIOUS_WHEELS_DIR}/*/*.whl")]
        for wheel in sorted(wheels):
            name = wheel.relative_to(self.directory).as_posix()
            stat = wheel.stat()
            known = index.get(name)
            if known and known[:2] == [stat.st_size, stat.st_mtime_ns]:
                fresh[name] = known
            else:
                fresh[name] = [stat.st_size, stat.st_mtime_ns, _sha256(wheel)]
        if fresh != index:
            _write_json_atomically(index_path, fresh)
        return {str(entry[2]): self.directory / name for name, entry in fresh.items()}


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
    extra = [vendored] if vendored and vendored.is_dir() else []
    chosen, missing = _match(locked, cache.by_digest(extra), platform)
    if missing and not offline:
        names = ", ".join(d.pin for d in missing)
        with reporter.step(f"downloading {len(missing)} wheels for {platform.docker}, Python {platform.python_version}: {names}..."):
            _download(missing, platform, cache)
        more, missing = _match(missing, cache.by_digest(extra), platform)
        chosen.update(more)
    if missing:
        raise ExportError(_missing_message(missing, platform, offline))
    destination.mkdir(parents=True, exist_ok=True)
    placed = []
    for dist in locked:
        source = chosen[dist.name]
        target = destination / source.name
        _link_or_copy(source, target)
        placed.append(target)
    return placed


def _match(
    locked: list[LockedDistribution], wheels: dict[str, Path], platform: ImagePlatform
) -> tuple[dict[str, Path], list[LockedDistribution]]:
    """For each pin, the best wheel the lock allows whose tags fit the platform."""
    chosen: dict[str, Path] = {}
    missing = []
    for dist in locked:
        fitting = [wheels[h] for h in sorted(dist.hashes) if h in wheels and _fits(wheels[h], platform)]
        if fitting:
            chosen[dist.name] = fitting[0]
        else:
            missing.append(dist)
    return chosen, missing


def _fits(wheel: Path, platform: ImagePlatform) -> bool:
    try:
        _name, _version, _build, tags = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename:
        return False
    return not tags.isdisjoint(platform.tags)


def _download(missing: list[LockedDistribution], platform: ImagePlatform, cache: WheelCache) -> None:
    """pip download the pins into the cache; pins no index has a fitting wheel for are left out."""
    with tempfile.TemporaryDirectory(prefix="wheels-", dir=_scratch_parent(cache)) as scratch:
        work = Path(scratch)
        error = _pip_download(missing, platform, cache, work)
        if error is not None and not _NOT_FOUND.search(error):
            raise ExportError(f"pip download failed: {error}")
        if error is not None and len(missing) > 1:
            # pip stops at the first pin it cannot satisfy: fetch the others one by one
            for dist in missing:
                _pip_download([dist], platform, cache, work)
        cache.add(work.glob("*.whl"))


def _pip_download(
    pins: list[LockedDistribution], platform: ImagePlatform, cache: WheelCache, work: Path
) -> str | None:
    """Run pip download; None on success, else the end of its error output."""
    requirements = work / "requirements.txt"
    requirements.write_text("\n".join(d.text for d in pins) + "\n")
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes", *FAST_FAIL_PIP_ARGS,
        *platform.pip_args(), "--find-links", str(cache.directory), "-d", str(work), "-r", str(requirements),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=_pip_env())
    if result.returncode == 0:
        return None
    return _last_lines(result.stderr or result.stdout, 6)


def _missing_message(missing: list[LockedDistribution], platform: ImagePlatform, offline: bool) -> str:
    pins = ", ".join(d.pin for d in missing)
    where = "in the wheel cache (offline)" if offline else "in the wheel cache or on the package index"
    return (
        f"no wheel for {platform.docker} and CPython {platform.python_version} {where} for: {pins}. "
        "Images install only from wheels; build one on a matching machine and put it in the bundle "
        "(bundle build --vendor-wheels), or pin a version that ships wheels"
    )


def _scratch_parent(cache: WheelCache) -> Path:
    """Downloads land beside the cache, so moving them in is a rename."""
    cache.directory.mkdir(parents=True, exist_ok=True)
    return cache.directory


def _link_or_copy(source: Path, target: Path) -> None:
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json_atomically(path: Path, data: object) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".index-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, sort_keys=True)
    os.replace(tmp, path)
