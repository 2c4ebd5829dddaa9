"""``bundle export archive`` / ``bundle import``: a faithful round trip, and hostile archives refused."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from modelbundle.bundler import LocalStore, import_archive, verify_record
from modelbundle.bundler._record import write_record
from modelbundle.errors import IntegrityError, StoreError

from ._helpers import Built, bundle_path, cli, failed, ok, store_state


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_export_then_import_into_an_empty_store_gives_the_same_files(iris: Built, tmp_path: Path, home: Path) -> None:
    archive = tmp_path / "out" / "iris.tar.gz"
    assert f"exported {iris.tag} to {archive}" in ok(cli("export", "archive", iris.tag, "-o", archive, home=iris.home)).stdout
    assert [p.name for p in archive.parent.iterdir()] == ["iris.tar.gz"]  # no .partial left behind

    assert ok(cli("import", archive, home=home)).stdout.strip() == f"imported {iris.tag}"
    imported = bundle_path(home, iris.tag)
    assert _files(imported) == _files(iris.path)
    verify_record(imported)
    assert ok(cli("import", archive, home=home)).stdout.strip() == f"{iris.tag} is already in the store"
    assert [p.name for p in (home / "bundles" / "iris").iterdir()] == [iris.version]
    assert store_state(home)[1] == []


def test_exporting_twice_gives_identical_bytes(iris: Built, tmp_path: Path, home: Path) -> None:
    first, second, third = tmp_path / "a.tar.gz", tmp_path / "b" / "other-name.tgz", tmp_path / "c.tar.gz"
    ok(cli("export", "archive", iris.tag, "-o", first, home=iris.home))
    ok(cli("export", "archive", "iris", "-o", second, home=iris.home))
    assert first.read_bytes() == second.read_bytes()
    # and a copy imported elsewhere exports to the same bytes again
    ok(cli("import", first, home=home))
    ok(cli("export", "archive", iris.tag, "-o", third, home=home))
    assert third.read_bytes() == first.read_bytes()
    with tarfile.open(first) as tar:
        names = tar.getnames()
        assert all(m.mtime == 0 and m.uid == 0 and m.mode == 0o644 for m in tar.getmembers())
    assert names == [*sorted(n for n in names if n != "RECORD"), "RECORD"]


# -- hostile archives --------------------------------------------------------------------------
Member = tuple[tarfile.TarInfo, bytes]


def _bundle_members(bundle: Path) -> list[Member]:
    members = []
    for name, data in _files(bundle).items():
        info = tarfile.TarInfo(name)
        info.size = len(data)
        members.append((info, data))
    return members


def _entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", linkname: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3
    return info, data


def _with(*extra: Member) -> Callable[[list[Member], Path], list[Member]]:
    return lambda members, outside: [*members, *extra]


def _absolute(members: list[Member], outside: Path) -> list[Member]:
    return [*members, _entry(str(outside / "escaped.txt"), data=b"owned")]


def _without_record(members: list[Member], outside: Path) -> list[Member]:
    return [(info, data) for info, data in members if info.name != "RECORD"]


def _first_source(members: list[Member]) -> Member:
    return next((info, data) for info, data in members if info.name.startswith("src/") and info.name.endswith(".py"))


def _twice(rename: Callable[[str], str], data: bytes = b"import os  # the copy tar does not show\n") -> Callable[[list[Member], Path], list[Member]]:
    """The bundle plus a second member whose name normalises to an existing one."""

    def make(members: list[Member], outside: Path) -> list[Member]:
        info, _ = _first_source(members)
        return [*members, _entry(rename(info.name), data=data)]

    return make


def _second_record(members: list[Member], outside: Path) -> list[Member]:
    record = next(data for info, data in members if info.name == "RECORD")
    return [*members, _entry("RECORD", data=record)]


def _recorded(*extra: Member) -> Callable[[list[Member], Path], list[Member]]:
    """The bundle plus ``extra`` files, each listed in RECORD with its true digest."""

    def make(members: list[Member], outside: Path) -> list[Member]:
        record = next(data for info, data in members if info.name == "RECORD")
        lines = b"".join(f"{info.name},sha256={hashlib.sha256(data).hexdigest()},{len(data)}\n".encode() for info, data in extra)
        return [*(m for m in members if m[0].name != "RECORD"), *extra, _entry("RECORD", data=record + lines)]

    return make


def _pax_named(name: str, data: bytes) -> Member:
    info, _ = _entry("placeholder", data=data)
    info.pax_headers = {"path": name}
    info.name = name
    return info, data


def _record_not_utf8(members: list[Member], outside: Path) -> list[Member]:
    return [(info, b"\xff\xfe" + data) if info.name == "RECORD" else (info, data) for info, data in members]


HOSTILE: dict[str, tuple[Callable[[list[Member], Path], list[Member]], str]] = {
    "traversal": (_with(_entry("../escaped.txt", data=b"owned")), r"refusing member '\.\./escaped\.txt': absolute paths and '\.\.' are not allowed"),
    "nested-traversal": (_with(_entry("src/../../escaped.txt", data=b"owned")), r"refusing member 'src/\.\./\.\./escaped\.txt': absolute paths"),
    "absolute": (_absolute, r"refusing member '/.*escaped\.txt': absolute paths and '\.\.' are not allowed"),
    "symlink-out": (_with(_entry("src/link", tarfile.SYMTYPE, linkname="/etc/passwd")), r"refusing member 'src/link': links are not allowed in a bundle"),
    "symlink-up": (_with(_entry("src/up", tarfile.SYMTYPE, linkname="../../..")), r"refusing member 'src/up': links are not allowed"),
    "hardlink": (_with(_entry("src/hard", tarfile.LNKTYPE, linkname="bundle.json")), r"refusing member 'src/hard': links are not allowed"),
    "fifo": (_with(_entry("src/fifo", tarfile.FIFOTYPE)), r"refusing member 'src/fifo': only regular files and folders are allowed"),
    "device": (_with(_entry("src/null", tarfile.CHRTYPE)), r"refusing member 'src/null': only regular files and folders are allowed"),
    "not-in-record": (_with(_entry("src/extra.py", data=b"import os\n")), r"src/extra\.py is not listed in the bundle's RECORD"),
    "no-record": (_without_record, r"no RECORD file; this is not a bundle archive"),
    "same-path-twice": (_twice(lambda name: name), r"refusing member 'src/.*\.py': the archive holds src/.*\.py twice"),
    "dot-slash-beside": (_twice(lambda name: "./" + name), r"refusing member '\./src/.*\.py': the archive holds src/.*\.py twice"),
    "double-slash-beside": (_twice(lambda name: name.replace("/", "//", 1)), r"the archive holds src/.*\.py twice"),
    "two-records": (_second_record, r"refusing member 'RECORD': the archive holds RECORD twice"),
    "nul-in-pax-name": (_recorded(_pax_named("src/evil\x00.py", b"x = 1\n")), r"refusing member 'src/evil\\x00\.py': its name holds control characters"),
    "record-not-utf8": (_record_not_utf8, r"RECORD is not UTF-8 \(line 1\)"),
    "file-and-folder": (_recorded(_entry("bundle.json/inner.py", data=b"x = 1\n")), r"bundle\.json is a file and also the folder of bundle\.json/inner\.py"),
}


def _write_archive(archive: Path, members: list[Member]) -> None:
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)


@pytest.fixture
def occupied(iris_copy: Built) -> Built:
    """A store that already holds a bundle, so "unchanged" means something."""
    return iris_copy


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_archive_is_refused_and_the_store_is_unchanged(case: str, iris: Built, occupied: Built, tmp_path: Path) -> None:
    make, message = HOSTILE[case]
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = tmp_path / "hostile.tar.gz"
    _write_archive(archive, make(_bundle_members(iris.path), outside))
    before = store_state(occupied.home)

    with pytest.raises(IntegrityError, match=message):
        import_archive(archive, LocalStore(occupied.home))
    assert store_state(occupied.home) == before
    assert [p.name for p in outside.iterdir()] == []
    assert not (tmp_path / "escaped.txt").exists() and not (occupied.home / "escaped.txt").exists()


@pytest.mark.parametrize(
    "content", [b"just some text, not a tar at all\n", b"\x1f\x8b\x08\x00garbage"], ids=["text", "broken-gzip"],
)
def test_a_file_that_is_not_an_archive_is_refused(content: bytes, occupied: Built, tmp_path: Path) -> None:
    archive = tmp_path / "bundle.tar.gz"
    archive.write_bytes(content)
    before = store_state(occupied.home)
    with pytest.raises(IntegrityError, match=r"bundle\.tar\.gz is not a readable bundle archive"):
        import_archive(archive, LocalStore(occupied.home))
    assert store_state(occupied.home) == before


def test_a_truncated_archive_is_refused(iris: Built, occupied: Built, tmp_path: Path) -> None:
    archive = tmp_path / "whole.tar.gz"
    ok(cli("export", "archive", iris.tag, "-o", archive, home=iris.home))
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    before = store_state(occupied.home)
    with pytest.raises(IntegrityError, match=r"truncated\.tar\.gz is not a readable bundle archive"):
        import_archive(truncated, LocalStore(occupied.home))
    assert store_state(occupied.home) == before


def test_the_cli_refuses_on_one_line(iris: Built, tmp_path: Path, home: Path) -> None:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for info, data in [*_bundle_members(iris.path), _entry("../escaped.txt", data=b"owned")]:
            tar.addfile(info, io.BytesIO(data))
    error = failed(cli("import", archive, home=home))
    assert re.search(r"evil\.tar\.gz: refusing member '\.\./escaped\.txt': absolute paths and '\.\.' are not allowed", error)
    assert store_state(home) == ([], [])
    error = failed(cli("import", tmp_path / "missing.tar.gz", home=home))
    assert re.search(r"no such archive: .*missing\.tar\.gz", error)


def test_import_keeps_an_existing_bundle_of_the_same_version(iris: Built, iris_copy: Built, tmp_path: Path) -> None:
    """An archive whose files differ from the stored bundle of the same name:version is refused."""
    staged = tmp_path / "edited"
    shutil.copytree(iris.path, staged)
    (staged / "env" / "python_version").write_text("3.0.0\n")
    write_record(staged)  # a self-consistent bundle, only not the one in the store
    archive = tmp_path / "edited.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for info, data in _bundle_members(staged):
            tar.addfile(info, io.BytesIO(data))
    before = store_state(iris_copy.home)
    with pytest.raises(StoreError, match=rf"{re.escape(iris.tag)} already exists with different content"):
        import_archive(archive, LocalStore(iris_copy.home))
    assert store_state(iris_copy.home) == before


@pytest.mark.parametrize("case", ["nul-in-pax-name", "record-not-utf8", "two-records"])
def test_the_cli_names_the_member_on_one_line(case: str, iris: Built, tmp_path: Path, home: Path) -> None:
    make, message = HOSTILE[case]
    archive = tmp_path / "hostile.tar.gz"
    _write_archive(archive, make(_bundle_members(iris.path), tmp_path))
    error = failed(cli("import", archive, home=home))
    assert len(error.strip().splitlines()) == 1 and re.search(message, error), error
    assert store_state(home) == ([], [])


def test_an_invalid_manifest_is_one_line_naming_the_field(iris: Built, tmp_path: Path, home: Path) -> None:
    staged = tmp_path / "edited"
    shutil.copytree(iris.path, staged)
    data = json.loads((staged / "bundle.json").read_text())
    data["name"] = "Not A Name"
    del data["apis"]
    (staged / "bundle.json").write_text(json.dumps(data))
    write_record(staged)  # self-consistent: only the manifest is wrong
    archive = tmp_path / "bad-manifest.tar.gz"
    _write_archive(archive, _bundle_members(staged))
    error = failed(cli("import", archive, home=home))
    assert len(error.strip().splitlines()) == 1, error
    assert re.search(r"bundle\.json is not a valid manifest: (name|apis): .* \(and 1 more\)", error), error
    assert "http" not in error and "Traceback" not in error
    assert store_state(home) == ([], [])
