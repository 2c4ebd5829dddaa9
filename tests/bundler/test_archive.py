"""``bundle export archive`` / ``bundle import``: a faithful round trip, and hostile archives refused."""

from __future__ import annotations

import io
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
}


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
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in make(_bundle_members(iris.path), outside):
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
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
