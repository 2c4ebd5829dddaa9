"""Reading an untrusted bundle archive: every check made before a byte is written.

``scan`` streams the archive once, writing nothing: it refuses unsafe or
duplicate members, reads RECORD line by line under a size cap, and hashes
every file, so a lying archive (a wrong digest, an unlisted file, a RECORD of
millions of lines, headers far larger than their files) is refused having cost
one read and bounded memory. ``extract`` streams it again into staging,
hashing as it writes, and stops at the first file that differs from what the
scan saw (the archive changed in between).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import IntegrityError
from ._record import RECORD_FILE

#: RECORD is one short line a file; a bundle with more files than this is not one modelbundle makes
MAX_RECORD_ENTRIES = 100_000
MAX_RECORD_BYTES = 16 * 1024 * 1024
#: one member's PAX or GNU long-name header (tarfile reads it whole into memory)
MAX_HEADER_BYTES = 64 * 1024
MAX_NAME_CHARS = 4096
#: what tar may add around a member's data: header blocks, padding, and an extended header of its name
#: and times (GNU tar's PAX records), besides the name itself; and the end-of-archive blocks
_OVERHEAD_PER_MEMBER = 6 * tarfile.BLOCKSIZE
_OVERHEAD_PER_ARCHIVE = 20 * tarfile.BLOCKSIZE
_CHUNK = 1024 * 1024


class _HeaderTooLarge(Exception):
    pass


class _CappedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses a huge PAX or GNU long-name header before tarfile reads it into memory."""

    def _proc_pax(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:
        self._check_header_size()
        return super()._proc_pax(tarfile)  # type: ignore[misc,no-any-return]

    def _proc_gnulong(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:
        self._check_header_size()
        return super()._proc_gnulong(tarfile)  # type: ignore[misc,no-any-return]

    def _check_header_size(self) -> None:
        if self.size > MAX_HEADER_BYTES:
            raise _HeaderTooLarge(f"an extended header of {self.size} bytes (at most {MAX_HEADER_BYTES})")


@dataclass
class Inventory:
    """What the scan found: RECORD's entries, and the archive's files as read."""

    #: path -> (sha256 hex, size), from RECORD
    listed: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: path -> (sha256 hex, size), from the files' bytes
    found: dict[str, tuple[str, int]] = field(default_factory=dict)
    record_size: int = 0
    record_digest: str = ""

    @property
    def declared_size(self) -> int:
        return sum(size for _, size in self.listed.values()) + self.record_size


@contextmanager
def open_stream(archive: Path) -> Iterator[tarfile.TarFile]:
    """The archive as a forward-only stream (gzip, bzip2, xz or plain tar)."""
    try:
        tar = tarfile.open(archive, mode="r|*", tarinfo=_CappedTarInfo)  # noqa: SIM115 - the with below closes it
    except (tarfile.ReadError, tarfile.CompressionError, EOFError, zlib.error, gzip.BadGzipFile):
        raise IntegrityError(f"{archive} is not a readable bundle archive: not a tar or tar.gz file") from None
    with tar:
        yield tar


def _members(tar: tarfile.TarFile, archive: Path) -> Iterator[tuple[tarfile.TarInfo, str]]:
    """Each member and its normalised name, checked; the archive's member list is not kept."""
    seen: set[str] = set()
    try:
        while (member := tar.next()) is not None:
            name = checked_name(member, archive)
            if name in seen:
                raise IntegrityError(f"{archive}: refusing member {member.name!r}: the archive holds {name} twice")
            seen.add(name)
            if len(seen) > 2 * MAX_RECORD_ENTRIES:
                raise IntegrityError(f"{archive}: more than {2 * MAX_RECORD_ENTRIES} members; this is not a bundle archive")
            yield member, name
            tar.members.clear()  # type: ignore[attr-defined]  # tarfile keeps every member it has read; a stream needs none of them
    except _HeaderTooLarge as exc:
        raise IntegrityError(f"{archive}: refusing {exc}") from None


def checked_name(member: tarfile.TarInfo, archive: Path) -> str:
    """The member's path as RECORD writes it (``./a//b/`` is ``a/b``), or IntegrityError if it is unsafe."""
    name = member.name
    if len(name) > MAX_NAME_CHARS or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name) or not _is_utf8(name):
        raise IntegrityError(f"{archive}: refusing member {name[:200]!r}: its name holds control characters, is not UTF-8 or is too long")
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")) or ".." in path.parts or "\\" in name:
        raise IntegrityError(f"{archive}: refusing member {name!r}: absolute paths and '..' are not allowed")
    if member.issym() or member.islnk():
        raise IntegrityError(f"{archive}: refusing member {name!r}: links are not allowed in a bundle")
    if not (member.isfile() or member.isdir()) or member.issparse():
        raise IntegrityError(f"{archive}: refusing member {name!r}: only regular files and folders are allowed")
    return path.as_posix()


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")  # a name tarfile could not decode holds surrogates
    except UnicodeEncodeError:
        return False
    return True


def scan(tar: tarfile.TarFile, archive: Path) -> Inventory:
    """Read the whole archive, writing nothing; IntegrityError unless it is exactly what its RECORD lists."""
    inventory = Inventory()
    overhead = _OVERHEAD_PER_ARCHIVE
    for member, name in _members(tar, archive):
        overhead += _OVERHEAD_PER_MEMBER + 2 * len(member.name)  # a long name is stored twice (PAX, and cut short)
        if not member.isfile():
            continue
        source = tar.extractfile(member)
        assert source is not None
        if name == RECORD_FILE:
            hashing = _HashingReader(source)
            inventory.listed = _read_record(io.BufferedReader(hashing), member.size, archive)
            inventory.record_size, inventory.record_digest = member.size, hashing.digest.hexdigest()
        else:
            inventory.found[name] = (_digest(source), member.size)
    if not inventory.record_digest:
        raise IntegrityError(f"{archive}: no RECORD file; this is not a bundle archive")
    _compare(inventory, archive)
    # tar's own bytes beside the files RECORD declares: anything beyond is headers stuffed to cost time
    allowed = inventory.declared_size + overhead
    if tar.offset > allowed:
        raise IntegrityError(f"{archive}: the archive expands to {tar.offset} bytes; its RECORD accounts for at most {allowed}")
    return inventory


def _compare(inventory: Inventory, archive: Path) -> None:
    for name, (digest, size) in sorted(inventory.found.items()):
        if name not in inventory.listed:
            raise IntegrityError(f"{archive}: {name} is not listed in the bundle's RECORD")
        listed_digest, listed_size = inventory.listed[name]
        if size != listed_size:
            raise IntegrityError(f"{archive}: {name} holds {size} bytes; RECORD says {listed_size}")
        if digest != listed_digest:
            raise IntegrityError(f"{archive}: {name} does not match its RECORD digest (the archive is corrupted or was changed)")
    for name in inventory.found:  # a file where another needs a folder cannot be written
        clash = next((parent for parent in PurePosixPath(name).parents if parent.as_posix() in inventory.found), None)
        if clash is not None:
            raise IntegrityError(f"{archive}: {clash} is a file and also the folder of {name}")
    missing = sorted(inventory.listed.keys() - inventory.found.keys())
    if missing:
        raise IntegrityError(f"{archive}: {missing[0]} is listed in RECORD but not in the archive")


def _read_record(source: Any, size: int, archive: Path) -> dict[str, tuple[str, int]]:
    """RECORD's entries, read a line at a time under the size and entry caps."""
    if size > MAX_RECORD_BYTES:
        raise IntegrityError(f"{archive}: RECORD is {size} bytes; a bundle's RECORD is at most {MAX_RECORD_BYTES}")
    listed: dict[str, tuple[str, int]] = {}
    lines = io.TextIOWrapper(source, encoding="utf-8", newline="\n")
    number = 0  # the last line read: names the line that fails to decode
    try:
        for number, line in enumerate(lines, 1):
            entry = line.rstrip("\n")
            parts = entry.rsplit(",", 2)  # paths may hold commas
            path, digest, size_text = parts if len(parts) == 3 else ("", "", "")
            algorithm, _, hexdigest = digest.partition("=")
            if not path or algorithm != "sha256" or len(hexdigest) != 64 or not size_text.isdigit():
                raise IntegrityError(f"{archive}: RECORD line {number} {entry[:80]!r} is not 'path,sha256=<hex>,size'")
            if path in listed:
                raise IntegrityError(f"{archive}: RECORD lists {path} twice")
            if len(listed) >= MAX_RECORD_ENTRIES:
                raise IntegrityError(f"{archive}: RECORD lists more than {MAX_RECORD_ENTRIES} files; this is not a bundle archive")
            listed[path] = (hexdigest, int(size_text))
    except UnicodeDecodeError:
        raise IntegrityError(f"{archive}: RECORD is not UTF-8 (line {number + 1})") from None
    return listed


class _HashingReader(io.RawIOBase):
    """Reads ``source`` and hashes what it reads: RECORD is parsed and hashed in one pass."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        self.digest.update(data)
        return len(data)


def _digest(source: Any) -> str:
    digest = hashlib.sha256()
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def extract(tar: tarfile.TarFile, archive: Path, inventory: Inventory, staging: Path) -> None:
    """Write the scanned archive into ``staging``, hashing as it goes; stop at the first file that changed since."""
    root = staging.resolve()
    expected = {**inventory.found}
    for member, name in _members(tar, archive):
        if not member.isfile():
            continue
        want = (inventory.record_digest, inventory.record_size) if name == RECORD_FILE else expected.pop(name, None)
        if want is None or member.size != want[1]:
                raise IntegrityError(f"{archive}: {name} changed while it was imported; import it again")
        destination = root / name
        if not destination.resolve().is_relative_to(root):
            raise IntegrityError(f"{archive}: refusing member {member.name!r}: it would be written outside the bundle")
        destination.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        assert source is not None
        digest = hashlib.sha256()
        with open(destination, "xb") as out:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != want[0]:
            raise IntegrityError(f"{archive}: {name} changed while it was imported; import it again")
    if expected:
        raise IntegrityError(f"{archive}: {min(expected)} changed while it was imported; import it again")
