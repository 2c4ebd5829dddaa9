"""One part of a bundle as an OCI layer: a deterministic tar+gzip, and its safe extraction.

The same files always give the same bytes (sorted entries, mtime 0, owner 0,
mode 0644, no user names, a gzip header without time or file name), so an
unchanged part has an unchanged digest and the registry already has it.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..errors import IntegrityError
from ._layout import Part

#: zlib's default; level 9 costs much more time for little gain
COMPRESS_LEVEL = 6
#: a part whose largest file gzip shrinks by less than this is stored uncompressed (level 0, still
#: valid gzip): model weights barely compress, and deflating hundreds of MB costs more than it saves
MIN_SAVING = 0.10
SAMPLE_SIZE = 1024 * 1024
_CHUNK = 1024 * 1024


def part_digest(part: Part) -> str:
    """``sha256:<hex>`` of the part's (path, sha256) list: equal for equal files, whatever the tar bytes."""
    listing = "".join(f"{f.path}\t{f.sha256}\n" for f in part.files)
    return f"sha256:{hashlib.sha256(listing.encode()).hexdigest()}"


class _HashingWriter:
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def compress_level(root: Path, part: Part) -> int:
    """COMPRESS_LEVEL, or 0 if a sample of the part's largest file does not compress.

    A function of the content alone, so the same part always gives the same layer.
    """
    largest = max(part.files, key=lambda f: (f.size, f.path))
    if largest.size < SAMPLE_SIZE:
        return COMPRESS_LEVEL  # small parts: compressing costs nothing worth measuring
    try:
        with open(root / largest.path, "rb") as handle:
            sample = handle.read(SAMPLE_SIZE)
    except OSError:
        return COMPRESS_LEVEL  # write_layer reports the missing file
    saving = 1 - len(zlib.compress(sample, 1)) / max(len(sample), 1)
    return COMPRESS_LEVEL if saving >= MIN_SAVING else 0


def write_layer(root: Path, part: Part, output: Path) -> tuple[str, int]:
    """Write the part's files under ``root`` as a tar+gzip; its (``sha256:<hex>``, size).

    Each file is hashed as it is read and must match RECORD, so a damaged bundle is never published.
    """
    level = compress_level(root, part)
    with open(output, "wb") as raw:
        counted = _HashingWriter(raw)
        with (
            gzip.GzipFile(filename="", mode="wb", fileobj=counted, mtime=0, compresslevel=level) as zipped,
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for file in part.files:
                _add_file(tar, root, file.path, file.sha256, file.size)
    return f"sha256:{counted.hasher.hexdigest()}", counted.size


def _add_file(tar: tarfile.TarFile, root: Path, name: str, sha256: str, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    try:
        source = open(root / name, "rb")  # noqa: SIM115 - closed below, after the last check
    except FileNotFoundError:
        raise IntegrityError(f"{root}: {name} is listed in RECORD but missing; the bundle was not pushed") from None
    with source:
        checked = _CheckedReader(source, name, root)
        try:
            tar.addfile(info, checked)
        except OSError:  # "unexpected end of data": the file is shorter than RECORD says
            checked.finish(sha256, size)
            raise
        checked.finish(sha256, size)


class _CheckedReader:
    """Reads a bundle file for tarfile while hashing it, to compare with its RECORD line."""

    def __init__(self, source: BinaryIO, name: str, root: Path) -> None:
        self.source, self.name, self.root = source, name, root
        self.hasher = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.hasher.update(data)
        self.size += len(data)
        return data

    def finish(self, sha256: str, size: int) -> None:
        # tarfile reads exactly the size RECORD gives: a longer file still differs by digest or by the extra byte
        extra = self.source.read(1)
        if self.size != size or extra or self.hasher.hexdigest() != sha256:
            raise IntegrityError(
                f"{self.root}: {self.name} does not match its RECORD digest (the file was changed or corrupted); "
                "the bundle was not pushed"
            )


def extract_layer(blob: Path, staging: Path, allowed: Callable[[str], bool], layer: str) -> list[str]:
    """Unpack a layer into ``staging``; the files written. Refuses anything but regular files and
    folders, absolute paths, ``..``, and files ``allowed`` does not accept (so nothing lands outside)."""
    written = []
    root = staging.resolve()
    try:
        # stream mode: one pass over the gzip, each member checked before anything of it is written
        with open(blob, "rb") as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            for member in tar:
                name = _checked_name(member, layer)
                if member.isdir():
                    continue  # folders come from the files' parents
                if not allowed(name):
                    raise IntegrityError(f"layer {layer}: refusing {name!r}: it is not a file of this part in the bundle's RECORD")
                destination = staging.joinpath(*PurePosixPath(name).parts)
                if not destination.resolve().is_relative_to(root):
                    raise IntegrityError(f"layer {layer}: refusing {name!r}: it would be written outside the bundle")
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has content
                with open(destination, "wb") as out:
                    while chunk := source.read(_CHUNK):
                        out.write(chunk)
                written.append(name)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise IntegrityError(f"layer {layer} is not a readable tar+gzip: {exc}") from None
    return written


def _checked_name(member: tarfile.TarInfo, layer: str) -> str:
    name = member.name
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name:
        raise IntegrityError(f"layer {layer}: refusing member {name!r}: absolute paths and '..' are not allowed")
    if not (member.isfile() or member.isdir()):
        raise IntegrityError(f"layer {layer}: refusing member {name!r}: only regular files and folders are allowed")
    return path.as_posix()
