"""A deterministic zip: entries sorted, fixed timestamps, 0644/0755 modes, written atomically.

Lambda unpacks the zip into /var/task and runs as a user that owns none of it,
so every file must be world-readable (0644; 0755 when it was executable) and
every directory 0755. Fixed timestamps and order make the same input give the
same bytes, so an unchanged function does not look changed to a deploy tool.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

#: the earliest time a zip entry can carry
_EPOCH = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ZipEntry:
    """One file of the zip: its name inside, and its content as a path on disk or bytes."""

    name: str
    source: Path | bytes

    @property
    def size(self) -> int:
        return len(self.source) if isinstance(self.source, bytes) else self.source.stat().st_size

    @property
    def executable(self) -> bool:
        return not isinstance(self.source, bytes) and bool(self.source.stat().st_mode & stat.S_IXUSR)


def tree_files(root: Path, prefix: str = "") -> Iterator[ZipEntry]:
    """Every regular file under ``root``, named ``prefix/relative/path`` (symbolic links followed)."""
    for directory, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(directory, filename)
            if path.is_file():
                relative = path.relative_to(root).as_posix()
                yield ZipEntry(f"{prefix}/{relative}" if prefix else relative, path)


def write_zip(files: Iterable[ZipEntry], output: Path) -> None:
    """Write ``files`` (and an entry for each of their directories) to ``output``."""
    entries = sorted(files, key=lambda f: f.name)
    directories = sorted({str(parent) + "/" for f in entries for parent in PurePosixPath(f.name).parents if str(parent) != "."})
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in directories:
            info = _info(name, 0o40755)
            info.external_attr |= 0x10  # the MS-DOS directory flag
            archive.writestr(info, b"")
        for entry in entries:
            info = _info(entry.name, 0o100755 if entry.executable else 0o100644)
            info.compress_type = zipfile.ZIP_DEFLATED
            if isinstance(entry.source, bytes):
                archive.writestr(info, entry.source)
                continue
            with open(entry.source, "rb") as src, archive.open(info, "w", force_zip64=entry.size >= 2**31) as dst:
                shutil.copyfileobj(src, dst, _CHUNK)


def _info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.create_system = 3  # Unix, so that unzip applies the mode bits
    info.external_attr = mode << 16
    return info
