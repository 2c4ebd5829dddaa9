"""The acceptance walk shared by every store: a bundle referencing the session's 300 MB file, through a counting proxy.

``walk`` takes the steps in order on one upload: an interrupted fetch keeps a
partial and a cut in the next fetch is resumed in-process, each time asking only
for the missing ranges (the rest comes in parts over several connections); the service reads the verified file (it hashes its Path);
a second bundle with the same digest downloads nothing; with the server
unreachable and fetching off, the cache is enough; a byte tampered on the
server is refused, naming both digests, and nothing of it is kept.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from fixtures.bundles import build_in_process

from ._proxy import CountingProxy
from .conftest import BigFile

SERVICE = '''
from modelbundle import Artifact, Service, api


class {name}(Service):
    weights = Artifact("file", uri={uri!r}, sha256={sha256!r}, size={size})

    @api
    def digest(self, text: str) -> str:
        import hashlib

        with open(self.weights, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
'''
#: what a response's status line and headers may add to the body bytes the proxy counts
HEADERS_SLACK = 64 * 1024


def load(tag: str, home: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``modelbundle.load(tag).digest()`` in a fresh process: the loader ``bundle serve`` uses."""
    script = f"import modelbundle; print(modelbundle.load({tag!r}).digest('x'))"
    return subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "MODELBUNDLE_HOME": str(home), **env},
        capture_output=True, text=True, timeout=600,
    )


def last_byte_flipped_digest(big_file: BigFile) -> tuple[str, bytes]:
    """The digest of the big file with its last byte flipped, and that byte."""
    hasher = hashlib.sha256()
    with open(big_file.path, "rb") as handle:
        left = big_file.size - 1
        while left:
            chunk = handle.read(min(left, 8 * 1024 * 1024))
            hasher.update(chunk)
            left -= len(chunk)
        flipped = bytes([handle.read(1)[0] ^ 0xFF])
    hasher.update(flipped)
    return hasher.hexdigest(), flipped


def requested_ranges(headers: list[str], size: int) -> list[tuple[int, int]]:
    """``bytes=A-B`` and ``bytes=A-`` Range headers as [start, stop) pairs."""
    pairs = []
    for header in headers:
        start, _, end = header.removeprefix("bytes=").partition("-")
        pairs.append((int(start), int(end) + 1 if end else size))
    return pairs


def covers(ranges: list[tuple[int, int]], start: int, stop: int) -> bool:
    """True when the ranges together hold every byte of [start, stop)."""
    reached = start
    for first, last in sorted(ranges):
        if first > reached:
            return False
        reached = max(reached, last)
    return reached >= stop


def walk(
    uri: str, proxy: CountingProxy, env: dict[str, str], big_file: BigFile, tmp_path: Path, tamper: Callable[[], str]
) -> None:
    """Every step of the acceptance for weights at ``uri``, served through ``proxy``; ``tamper`` returns the new digest."""
    home = tmp_path / "home"
    tags = []
    for name in ("First", "Second"):
        project = tmp_path / name.lower()
        project.mkdir()
        (project / "svc.py").write_text(SERVICE.format(name=name, uri=uri, sha256=big_file.sha256, size=big_file.size))
        tags.append(build_in_process(f"{project}/svc.py:{name}", project, home).tag)
    blob = home / "blobs" / "sha256" / big_file.sha256
    partial = blob.with_name(blob.name + ".partial")

    # interrupted a third of the way, every connection cut from then on: a one-line error, a partial kept
    proxy.cut_after = big_file.size // 3
    failed = load(tags[0], home, env)
    assert failed.returncode != 0 and not blob.exists()
    assert "what arrived is kept" in failed.stderr.splitlines()[-1], failed.stderr  # the error, in one line
    kept = partial.stat().st_size
    assert 0 < kept <= big_file.size // 3

    # resumed from the partial with ranged GETs (parts over several connections); one cut once more half
    # way, that part resumed from where it stopped in the same fetch
    proxy.sent, proxy.ranges = 0, []
    proxy.cut_after, proxy.cut_once = (big_file.size - kept) // 2, True
    first = load(tags[0], home, {**env, "MODELBUNDLE_FETCH_CONNECTIONS": "4"})
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == big_file.sha256  # the service read the verified file
    asked = requested_ranges(proxy.ranges, big_file.size)
    assert min(asked)[0] == kept and covers(asked, kept, big_file.size), proxy.ranges
    resumed = [r for r in asked if any(o[0] < r[0] < o[1] for o in asked if o is not r)]
    assert resumed, proxy.ranges  # the cut part, asked again from where it stopped
    assert big_file.size - kept <= proxy.sent < big_file.size - kept + HEADERS_SLACK  # only the rest was sent, once
    assert not partial.exists()
    # progress in bytes on stderr: a line as the blob starts, one as it ends with its rate
    mib = f"{big_file.size / 2**20:.1f} MiB"
    assert f"fetching weights 'weights': {mib}\n" in first.stderr, first.stderr
    assert re.search(rf"fetching weights 'weights': {mib} in [0-9.]+ s \([0-9.]+ [KMG]iB/s\), verified", first.stderr)

    # a second bundle, the same digest: nothing downloaded
    proxy.sent = 0
    second = load(tags[1], home, env)
    assert second.returncode == 0 and second.stdout.strip() == big_file.sha256, second.stderr
    assert proxy.sent == 0

    # offline, with the server unreachable: the cache is enough
    proxy.refuse = True
    offline = load(tags[1], home, {**env, "MODELBUNDLE_OFFLINE": "1"})
    assert offline.returncode == 0 and offline.stdout.strip() == big_file.sha256, offline.stderr
    proxy.refuse = False

    # a byte tampered on the server, with the cache emptied: refused, naming both digests; nothing kept
    # (in one stream, the other way a blob comes)
    blob.unlink()
    got = tamper()
    proxy.ranges = []
    refused = load(tags[0], home, {**env, "MODELBUNDLE_FETCH_CONNECTIONS": "1"})
    assert proxy.ranges == []  # one GET of the whole object
    assert refused.returncode != 0
    error = refused.stderr.splitlines()[-1]
    assert "IntegrityError: artifact 'weights'" in error, refused.stderr
    assert f"sha256:{got}" in error and f"sha256:{big_file.sha256}" in error
    assert not blob.exists() and not partial.exists()
