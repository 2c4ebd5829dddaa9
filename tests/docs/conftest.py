"""The doc-example harness's fixtures: a page's folder and environment, and what pages may ask for.

A page asks for a session fixture with ``<!-- docs-test: fixture NAME -->``; ``PAGE_FIXTURES``
maps each NAME to what it adds to the page's environment (and so to the ``{...}`` names its
``replace`` directives may use).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures.session import CACHE, PREFIX
from stores._moto_fixture import moto_s3_fixture  # noqa: F401  (a page's `fixture moto`)

REPO = Path(__file__).resolve().parents[2]
#: what every page's folder starts with, as in a clone of the repository
COPIED = ("examples", "scripts")
#: "where: reason" of every block a page marks `skip`, for the summary at the end
SKIPPED: list[str] = []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _base_image(request: pytest.FixtureRequest) -> dict[str, str]:
    from fixtures.docker import docker_client, ensure_base_image

    return {"DOCS_TEST_BASE_IMAGE": ensure_base_image(docker_client())}


def _moto(request: pytest.FixtureRequest) -> dict[str, str]:
    s3 = request.getfixturevalue("moto_s3")  # sets fake AWS credentials in os.environ
    return {"AWS_ENDPOINT_URL": s3.endpoint_url, "DOCS_TEST_BUCKET": s3.bucket}


PAGE_FIXTURES: dict[str, Callable[[pytest.FixtureRequest], dict[str, str]]] = {
    "base_image": _base_image,
    "moto": _moto,
}


def page_folder(root: Path) -> Path:
    """A folder holding the repository's tracked ``examples/`` and ``scripts/``, nothing else."""
    tracked = subprocess.run(["git", "ls-files", "-z", *COPIED], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)
    return root


def page_environment(home: Path, fixtures: list[str], request: pytest.FixtureRequest) -> dict[str, str]:
    added: dict[str, str] = {}
    for name in fixtures:
        if name not in PAGE_FIXTURES:
            raise pytest.UsageError(f"unknown docs-test fixture {name!r} (known: {', '.join(sorted(PAGE_FIXTURES))})")
        added.update(PAGE_FIXTURES[name](request))
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        MODELBUNDLE_HOME=str(home), MODELBUNDLE_CACHE_DIR=str(CACHE),
        MODELBUNDLE_PORT=str(_free_port()), REGISTRY_PORT=str(_free_port()), DOCS_TEST_PREFIX=PREFIX,
    )
    env.update(added)
    return env


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SKIPPED:
        terminalreporter.write_sep("-", f"doc examples: {len(SKIPPED)} blocks not run (docs-test: skip)")
        for line in SKIPPED:
            terminalreporter.write_line(line)
