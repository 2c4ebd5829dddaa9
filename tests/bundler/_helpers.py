"""Helpers for the bundler tests: run the real ``bundle`` command, read bundles, serve them."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fixtures.cli import cli, failed, ok  # noqa: F401 - re-exported for the bundler tests
from fixtures.servers import ProcessServer

REPO = Path(__file__).resolve().parents[2]
IRIS_EXAMPLE = REPO / "examples" / "iris"
#: a bundle serves from a cold process that imports numpy, scikit-learn and FastAPI
START_TIMEOUT = 90.0

#: a service with no third-party imports: its requirements are modelbundle alone
PLAIN_SERVICE = '''\
from modelbundle import Service, api


class Plain(Service):
    """Sums numbers."""

    @api
    def add(self, x: list[float]) -> float:
        return sum(x)
'''


def build_tag(*args: str | Path, home: Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """``bundle build ARGS -o tag``; the tag it prints."""
    tag = ok(cli("build", *args, "-o", "tag", home=home, cwd=cwd, env=env)).stdout.strip()
    assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*:[A-Za-z0-9][A-Za-z0-9._-]*", tag), tag
    return tag


def bundle_path(home: Path, tag: str) -> Path:
    name, _, version = tag.partition(":")
    return home / "bundles" / name / version


def manifest(home: Path, tag: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((bundle_path(home, tag) / "bundle.json").read_text())
    return data


def record_lines(path: Path, *, without_manifest: bool = False) -> list[str]:
    lines = (path / "RECORD").read_text().splitlines()
    return [line for line in lines if not (without_manifest and line.startswith("bundle.json,"))]


def store_state(home: Path) -> tuple[list[str], list[str]]:
    """(every file under bundles/, every entry under tmp/): what a failed command must leave alone."""
    bundles = home / "bundles"
    files = sorted(p.relative_to(home).as_posix() for p in bundles.rglob("*")) if bundles.is_dir() else []
    leftovers = sorted(p.name for p in (home / "tmp").iterdir()) if (home / "tmp").is_dir() else []
    return files, leftovers


def flip_byte(path: Path, offset: int = 100) -> None:
    """Change one byte of ``path`` in place (same size, different digest)."""
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


@dataclass(frozen=True)
class Built:
    """A bundle built once per test package, in a store of its own."""

    home: Path
    project: Path
    tag: str

    @property
    def path(self) -> Path:
        return bundle_path(self.home, self.tag)

    @property
    def version(self) -> str:
        return self.tag.partition(":")[2]

    def manifest(self) -> dict[str, Any]:
        return manifest(self.home, self.tag)


@dataclass(frozen=True)
class Prebuilt:
    """The two bundles every session builds first (see conftest.prebuilt)."""

    iris: Built
    affine: Built


@contextlib.contextmanager
def serving(command: Sequence[str | Path], target: str, home: Path) -> Iterator[ProcessServer]:
    """``COMMAND serve TARGET`` (any ``bundle`` executable) on a free port, ready, with ``home`` as the store."""
    server = ProcessServer(target, env={"MODELBUNDLE_HOME": str(home)}, executable=command)
    try:
        server.wait_ready(START_TIMEOUT)
        yield server
    finally:
        server.close()
