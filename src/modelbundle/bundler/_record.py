"""``RECORD``: one line per file (path, sha256, size), sorted; written last, checked on every load."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import IntegrityError

RECORD_FILE = "RECORD"
_CHUNK = 1024 * 1024


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_files(root: Path) -> Iterator[Path]:
    """Every regular file under ``root`` except RECORD, as relative POSIX paths, sorted."""
    found = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in filenames:
            relative = Path(directory, filename).relative_to(root)
            if relative.as_posix() != RECORD_FILE:
                found.append(relative)
    yield from sorted(found, key=lambda p: p.as_posix())


def _record_line(root: Path, relative: Path) -> str:
    path = root / relative
    return f"{relative.as_posix()},sha256={file_digest(path)},{path.stat().st_size}"


def build_record(root: Path) -> str:
    return "".join(_record_line(root, relative) + "\n" for relative in bundle_files(root))


def write_record(root: Path, known: str = "") -> None:
    """Write RECORD; ``known`` holds lines already computed, so only the other files are hashed."""
    lines = {line.rsplit(",", 2)[0]: line for line in known.splitlines()}  # paths may hold commas
    for relative in bundle_files(root):
        if relative.as_posix() not in lines:
            lines[relative.as_posix()] = _record_line(root, relative)
    (root / RECORD_FILE).write_text("".join(lines[path] + "\n" for path in sorted(lines)))


def read_record(root: Path) -> dict[str, tuple[str, int]]:
    """path -> (sha256 hex, size) from a bundle's RECORD."""
    record_path = root / RECORD_FILE
    if not record_path.is_file():
        raise IntegrityError(f"{root} has no RECORD; it is not a complete bundle")
    entries: dict[str, tuple[str, int]] = {}
    number = 0  # the last line read: names the line that fails to decode
    try:
        with open(record_path, encoding="utf-8", newline="\n") as lines:  # a line at a time: RECORD can be long
            for number, line in enumerate(lines, 1):
                try:
                    path, digest, size = line.rstrip("\n").rsplit(",", 2)
                    algorithm, _, hexdigest = digest.partition("=")
                    if algorithm != "sha256" or len(hexdigest) != 64:
                        raise ValueError
                    entries[path] = (hexdigest, int(size))
                except ValueError:
                    raise IntegrityError(f"{record_path}: line {number} is not 'path,sha256=<hex>,size'") from None
    except UnicodeDecodeError:
        raise IntegrityError(f"{record_path}: line {number + 1} is not UTF-8") from None
    return entries


def verify_record(root: Path) -> None:
    """Raise IntegrityError naming the first file that is missing, extra or changed."""
    expected = read_record(root)
    present = {p.as_posix() for p in bundle_files(root)}
    unlisted = sorted(present - expected.keys())
    if unlisted:
        raise IntegrityError(f"{root}: {unlisted[0]} is not listed in RECORD (the bundle was modified)")
    for path, (hexdigest, size) in sorted(expected.items()):
        if path not in present:
            raise IntegrityError(f"{root}: {path} is listed in RECORD but missing")
        file = root / path
        if file.stat().st_size != size or file_digest(file) != hexdigest:
            raise IntegrityError(f"{root}: {path} does not match its RECORD digest (the file was changed or corrupted)")
