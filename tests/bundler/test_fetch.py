"""Fetching a lock's missing wheels: in parallel, digests checked against the lock, missing pins named.

A real HTTP index on loopback (the simple API's HTML, with ``#sha256=`` digests)
serves tiny wheel files; pip's settings are given, so the machine's own index is never asked.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from modelbundle.bundler import (
    LockedDistribution,
    PipSettings,
    Reporter,
    WheelCache,
    WheelPlatform,
    find_wheels,
)

PLATFORM = WheelPlatform("x86_64", "3.11", (2, 36))


@dataclass
class Index:
    """Files by project; what the server was asked, and when."""

    url: str = ""
    #: project -> [(file name, bytes, the digest the page publishes)]
    projects: dict[str, list[tuple[str, bytes, str | None]]] = field(default_factory=dict)
    #: (file name, start, end) of every file download
    downloads: list[tuple[str, float, float]] = field(default_factory=list)
    #: downloads wait here for a second one: a serial client would break it
    barrier: threading.Barrier | None = None
    broken: int = 0


@pytest.fixture
def index() -> Iterator[Index]:
    state = Index()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = self.path.strip("/").split("/")
            if parts[0] == "simple" and len(parts) == 2 and parts[1] in state.projects:
                links = "".join(
                    f'<a href="/files/{name}{f"#sha256={digest}" if digest else ""}">{name}</a>\n'
                    for name, _, digest in state.projects[parts[1]]
                )
                return self._send(f"<html><body>{links}</body></html>".encode(), "text/html")
            if parts[0] == "files":
                started = time.monotonic()
                if state.barrier is not None:
                    try:
                        state.barrier.wait()
                    except threading.BrokenBarrierError:
                        state.broken += 1
                for files in state.projects.values():
                    for name, data, _ in files:
                        if name == parts[1]:
                            self._send(data, "application/octet-stream")
                            state.downloads.append((name, started, time.monotonic()))
                            return None
            self.send_error(404)
            return None

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def wheel(index: Index, project: str, version: str, tag: str = "py3-none-any", *, publish: bool = True) -> LockedDistribution:
    """A tiny wheel file on the index, and the lock's pin for it."""
    name = f"{project.replace('-', '_')}-{version}-{tag}.whl"
    data = f"{name} contents".encode()
    digest = hashlib.sha256(data).hexdigest()
    index.projects.setdefault(project, []).append((name, data, digest if publish else None))
    return LockedDistribution(project, version, frozenset({digest}), f"{project}=={version} --hash=sha256:{digest}")  # type: ignore[arg-type]


def fetch(index: Index, locked: list[LockedDistribution], cache: Path, **kwargs: object) -> object:
    settings = PipSettings(index_url=index.url)
    return find_wheels(locked, PLATFORM, WheelCache(cache), Reporter(quiet=True), pip=settings, pip_fallback=False, **kwargs)  # type: ignore[arg-type]


def max_overlap(intervals: list[tuple[str, float, float]]) -> int:
    events = sorted([(start, 1) for _, start, _ in intervals] + [(end, -1) for _, _, end in intervals])
    running = best = 0
    for _, step in events:
        running += step
        best = max(best, running)
    return best


def test_missing_wheels_are_fetched_at_once_and_land_in_the_cache(index: Index, tmp_path: Path) -> None:
    locked = [wheel(index, f"pkg{n}", "1.0") for n in range(4)]
    index.barrier = threading.Barrier(2, timeout=10)
    found = fetch(index, locked, tmp_path / "cache", workers=4)
    assert not found.missing  # type: ignore[attr-defined]
    assert index.broken == 0 and len(index.downloads) == 4
    assert max_overlap(index.downloads) >= 2  # downloads overlapped: each waited for another to start
    assert sorted(p.name for p in (tmp_path / "cache").glob("*.whl")) == sorted(f"pkg{n}-1.0-py3-none-any.whl" for n in range(4))
    placed = found.place(locked, tmp_path / "out")  # type: ignore[attr-defined]
    assert [p.name for p in placed] == [f"pkg{n}-1.0-py3-none-any.whl" for n in range(4)]


def test_a_warm_cache_fetches_nothing(index: Index, tmp_path: Path) -> None:
    locked = [wheel(index, "pkg", "1.0")]
    fetch(index, locked, tmp_path / "cache")
    index.downloads.clear()
    found = fetch(index, locked, tmp_path / "cache")
    assert not found.missing and index.downloads == []  # type: ignore[attr-defined]


def test_a_file_whose_digest_the_lock_does_not_allow_is_refused(index: Index, tmp_path: Path) -> None:
    good = wheel(index, "pkg", "1.0")
    # the index publishes the lock's digest, but serves other bytes
    name, _, digest = index.projects["pkg"][0]
    index.projects["pkg"][0] = (name, b"tampered", digest)
    unpublished = wheel(index, "other", "2.0", publish=False)
    index.projects["other"][0] = (index.projects["other"][0][0], b"tampered too", None)
    found = fetch(index, [good, unpublished], tmp_path / "cache")
    missing = {m.dist.pin: m.reason for m in found.missing}  # type: ignore[attr-defined]
    assert set(missing) == {"pkg==1.0", "other==2.0"}
    assert f"has sha256 {hashlib.sha256(b'tampered').hexdigest()}, which the lock does not allow for pkg==1.0" in str(missing["pkg==1.0"])
    assert "which the lock does not allow for other==2.0" in str(missing["other==2.0"])
    assert list((tmp_path / "cache").glob("*.whl")) == []  # nothing unchecked enters the cache


def test_pins_without_a_fitting_wheel_are_named(index: Index, tmp_path: Path) -> None:
    here = wheel(index, "pkg", "1.0", "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64")
    other_machine = wheel(index, "armonly", "1.0", "cp311-cp311-manylinux2014_aarch64")
    too_new = wheel(index, "newglibc", "1.0", "cp311-cp311-manylinux_2_39_x86_64")
    absent = LockedDistribution("absent", "3.0", frozenset({"0" * 64}), f"absent==3.0 --hash=sha256:{'0' * 64}")  # type: ignore[arg-type]
    found = fetch(index, [here, other_machine, too_new, absent], tmp_path / "cache")
    assert list(found.chosen) == ["pkg"]  # type: ignore[attr-defined]
    assert [(m.dist.pin, m.reason) for m in found.missing] == [  # type: ignore[attr-defined]
        ("armonly==1.0", None), ("newglibc==1.0", None), ("absent==3.0", None)
    ]
    assert [name for name, _, _ in index.downloads] == [index.projects["pkg"][0][0]]  # only the fitting file was fetched


def test_offline_reads_the_cache_alone(index: Index, tmp_path: Path) -> None:
    found = fetch(index, [wheel(index, "pkg", "1.0")], tmp_path / "cache", offline=True)
    assert [m.dist.pin for m in found.missing] == ["pkg==1.0"] and index.downloads == []  # type: ignore[attr-defined]


def test_a_local_copy_with_the_digest_is_taken_before_the_network(index: Index, tmp_path: Path) -> None:
    pin = wheel(index, "pkg", "1.0")
    name, data, _ = index.projects["pkg"][0]
    links = tmp_path / "links"
    links.mkdir()
    (links / name).write_bytes(data)
    found = fetch(index, [pin], tmp_path / "cache", extra_dirs=[links])
    assert found.chosen["pkg"] == links / name and index.downloads == []  # type: ignore[attr-defined]


def test_a_wheel_for_a_newer_python_is_refused_as_pip_would(index: Index, tmp_path: Path) -> None:
    # the index does not say (no data-requires-python): the wheel's own METADATA does
    name = "modern-1.0-py3-none-any.whl"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("modern-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: modern\nVersion: 1.0\nRequires-Python: >=3.12\n\nText\n")
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    index.projects["modern"] = [(name, data, digest)]
    pin = LockedDistribution("modern", "1.0", frozenset({digest}), f"modern==1.0 --hash=sha256:{digest}")  # type: ignore[arg-type]
    found = fetch(index, [pin], tmp_path / "cache")
    assert [(m.dist.pin, m.reason) for m in found.missing] == [("modern==1.0", "modern==1.0 requires Python >=3.12")]  # type: ignore[attr-defined]
    on_312 = find_wheels(
        [pin], WheelPlatform("x86_64", "3.12", (2, 36)), WheelCache(tmp_path / "cache"), Reporter(quiet=True),
        pip=PipSettings(index_url=index.url), pip_fallback=False,
    )
    assert not on_312.missing


def test_pins_whose_marker_fails_on_the_target_platform_need_no_wheel(index: Index, tmp_path: Path) -> None:
    linux = wheel(index, "pkg", "1.0")
    linux = LockedDistribution(linux.name, linux.version, linux.hashes, f'pkg==1.0 ; platform_machine == "x86_64" --hash=sha256:{next(iter(linux.hashes))}')  # type: ignore[arg-type]
    windows = LockedDistribution("pywin32", "306", frozenset({"1" * 64}), f'pywin32==306 ; sys_platform == "win32" --hash=sha256:{"1" * 64}')  # type: ignore[arg-type]
    old_python = LockedDistribution("tomli", "2.0.1", frozenset({"2" * 64}), f'tomli==2.0.1 ; python_version < "3.11" --hash=sha256:{"2" * 64}')  # type: ignore[arg-type]
    found = fetch(index, [linux, windows, old_python], tmp_path / "cache")
    assert list(found.chosen) == ["pkg"]  # type: ignore[attr-defined]
    assert found.missing == []  # type: ignore[attr-defined]
