"""The wheel cache: a folder of wheels found by content (sha256), shared by builds and exporters.

A lock names each distribution's allowed sha256 digests, so a wheel is found
by its digest, whatever its source. The cache keeps an index from digest to
file (file name, size and mtime decide when to hash again), so a warm lookup
reads no wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ._atomic import write_text_atomically
from ._record import file_digest

#: earlier runtime wheels, by digest: bundles locked against them can still be containerized
PREVIOUS_WHEELS_DIR = "previous"
_INDEX_FILE = ".sha256-index.json"


class WheelCache:
    """A folder of wheels with a digest index."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def by_digest(self, extra_dirs: Iterable[Path] = ()) -> dict[str, Path]:
        """sha256 hex -> wheel file, over the cache and ``extra_dirs`` (e.g. a bundle's env/wheels)."""
        found = {}
        for directory in extra_dirs:
            for wheel in sorted(directory.glob("*.whl")):
                found[file_digest(wheel)] = wheel
        found.update(self._indexed())
        return found

    def add(self, files: Iterable[Path]) -> None:
        """Move downloaded wheels into the cache (atomic renames; an existing name is kept)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for file in files:
            target = self.directory / file.name
            if not target.exists():
                shutil.move(str(file), target)

    def scratch(self) -> tempfile.TemporaryDirectory[str]:
        """A temporary folder beside the cache, so moving a download in is a rename."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix="wheels-", dir=self.directory)

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
                fresh[name] = [stat.st_size, stat.st_mtime_ns, file_digest(wheel)]
        if fresh != index:
            write_text_atomically(index_path, json.dumps(fresh, sort_keys=True))
        return {str(entry[2]): self.directory / name for name, entry in fresh.items()}


def link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (a copy across file systems); an existing target is kept."""
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copyfile(source, target)


