"""``bundle import`` costs what the archive declares: bounded memory, and nothing written for a lying archive.

The import runs in a fresh process that reports its own peak memory
(``VmHWM``: unlike ``ru_maxrss``, it does not inherit the peak of the pytest
process that started it) and the bytes it wrote (``wchar`` in /proc/self/io), so the
numbers belong to the import alone. The archives in issue 16 are scaled down
tenfold or more: what matters is that the cost no longer grows with them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from modelbundle.bundler._archive_read import MAX_RECORD_BYTES

from ._helpers import Built, store_state

MB = 1024 * 1024

_MEASURE = """
import json, sys
from pathlib import Path
from modelbundle.bundler import LocalStore, import_archive
from modelbundle.errors import ModelbundleError

def wchar():
    return int(next(line.split()[1] for line in open("/proc/self/io") if line.startswith("wchar:")))

before = wchar()
error = None
try:
    import_archive(Path(sys.argv[1]), LocalStore(Path(sys.argv[2])))
except ModelbundleError as exc:
    error = str(exc)
written = wchar() - before
peak_kb = int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
print(json.dumps({"error": error, "peak_kb": peak_kb, "written": written}))
"""


def _import(archive: Path, home: Path, *, on_tmpfs_of: str = "") -> dict[str, object]:
    """Import in a fresh process; with ``on_tmpfs_of`` (a size such as ``96m``), into a home on a tmpfs that small."""
    command = [sys.executable, "-c", _MEASURE, str(archive), str(home)]
    if on_tmpfs_of:  # a private mount namespace (as root, or as a user where user namespaces are allowed)
        home.mkdir(parents=True)
        mount = f'mount -t tmpfs -o size={on_tmpfs_of} tmpfs "$1" && shift && exec "$@"'
        command = ["unshare", "--map-root-user", "--mount", "sh", "-c", mount, "sh", str(home), *command]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    measured: dict[str, object] = json.loads(result.stdout)
    return measured


def _bundle_members(bundle: Path) -> list[tuple[str, bytes]]:
    return [(p.relative_to(bundle).as_posix(), p.read_bytes()) for p in sorted(bundle.rglob("*")) if p.is_file()]


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, made as they are read."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def _write(
    archive: Path, members: list[tuple[str, bytes]], big: tuple[str, int] | None = None, pax: dict[str, str] | None = None
) -> None:
    with open(archive, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as zipped, tarfile.open(
        fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT
    ) as tar:
        if big is not None:
            info = tarfile.TarInfo(big[0])
            info.size = big[1]
            tar.addfile(info, io.BufferedReader(_Zeros(big[1]), MB))
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.pax_headers = dict(pax or {})
            tar.addfile(info, io.BytesIO(data))


def test_a_huge_record_is_refused_in_bounded_memory(iris: Built, tmp_path: Path, home: Path) -> None:
    honest = tmp_path / "honest.tar.gz"
    members = _bundle_members(iris.path)
    _write(honest, members)
    baseline = _import(honest, tmp_path / "baseline-home")
    assert baseline["error"] is None

    # 600,000 lines (the 6 million, scaled down tenfold): 2.78 GB then, so about 280 MB before this fix
    lines = b"".join(b"src/padding/file-%07d.py,sha256=%s,1\n" % (i, b"0" * 64) for i in range(600_000))
    assert len(lines) > MAX_RECORD_BYTES
    record = next(data for name, data in members if name == "RECORD")
    hostile = tmp_path / "hostile.tar.gz"
    _write(hostile, [*(m for m in members if m[0] != "RECORD"), ("RECORD", record + lines)])
    measured = _import(hostile, home)

    assert f"RECORD is {len(record) + len(lines)} bytes; a bundle's RECORD is at most {MAX_RECORD_BYTES}" in str(measured["error"])
    grown_mb = (int(measured["peak_kb"]) - int(baseline["peak_kb"])) / 1024  # type: ignore[call-overload]
    assert grown_mb < 32, f"the refused import peaked {grown_mb:.0f} MB above an honest one"
    assert store_state(home)[1] == []


def test_a_wrong_digest_is_refused_before_anything_is_written(iris: Built, tmp_path: Path, home: Path) -> None:
    # a file honest about its size and wrong about its digest (the 1.5 GiB, scaled to 256 MiB)
    size = 256 * MB
    members = _bundle_members(iris.path)
    record = next(data for name, data in members if name == "RECORD")
    wrong = hashlib.sha256(b"something else").hexdigest()
    listed = record + f"artifacts/zeros.bin,sha256={wrong},{size}\n".encode()
    archive = tmp_path / "lying.tar.gz"
    _write(archive, [*(m for m in members if m[0] != "RECORD"), ("RECORD", listed)], big=("artifacts/zeros.bin", size))
    assert archive.stat().st_size < 2 * MB

    measured = _import(archive, home)
    assert "artifacts/zeros.bin does not match its RECORD digest" in str(measured["error"])
    # before this fix every file, 256 MiB of zeros first, was written to staging and then checked
    assert int(measured["written"]) < MB, measured  # type: ignore[call-overload]
    assert store_state(home) == ([], [])


def test_an_import_that_would_not_fit_is_refused_before_writing(iris: Built, tmp_path: Path) -> None:
    members = _bundle_members(iris.path)
    honest = tmp_path / "honest.tar.gz"
    _write(honest, members)
    assert _import(honest, tmp_path / "roomy", on_tmpfs_of="96m")["error"] is None  # the small bundle fits

    size = 48 * MB  # with the room an import leaves spare, more than the 96 MiB filesystem has
    record = next(data for name, data in members if name == "RECORD")
    listed = record + f"artifacts/zeros.bin,sha256={hashlib.sha256(bytes(size)).hexdigest()},{size}\n".encode()
    archive = tmp_path / "big.tar.gz"
    _write(archive, [*(m for m in members if m[0] != "RECORD"), ("RECORD", listed)], big=("artifacts/zeros.bin", size))
    measured = _import(archive, tmp_path / "cramped", on_tmpfs_of="96m")
    assert re.search(r"the bundle needs \d+\.\d MB and .* has \d+\.\d MB free; nothing was written", str(measured["error"])), measured
    assert int(measured["written"]) < MB, measured  # type: ignore[call-overload]


def test_headers_stuffed_beyond_what_record_declares_are_refused(iris: Built, tmp_path: Path, home: Path) -> None:
    members = _bundle_members(iris.path)
    declared = sum(len(data) for _, data in members)
    # every member carries a 60 KB PAX comment (under the 64 KiB cap on one header): far more tar than bundle
    archive = tmp_path / "stuffed.tar.gz"
    _write(archive, members, pax={"comment": "x" * 60_000})
    assert 60_000 * len(members) > 2 * declared
    measured = _import(archive, home)
    assert re.search(r"stuffed\.tar\.gz: the archive expands to \d+ bytes; its RECORD accounts for at most \d+", str(measured["error"])), measured
    assert int(measured["written"]) < MB, measured  # type: ignore[call-overload]
    # GNU tar's own PAX records (times, long names) are not stuffing
    plain = tmp_path / "gnu-style.tar.gz"
    _write(plain, members, pax={"atime": "1700000000.123456789", "ctime": "1700000000.123456789"})
    assert _import(plain, tmp_path / "other-home")["error"] is None
