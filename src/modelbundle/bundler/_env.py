"""``bundle env create``: a virtualenv that is exactly the bundle's requirements.lock."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import BuildError, StoreError
from ._installer import last_lines, pip_env, run_pip
from ._report import Reporter
from ._store import StoredBundle


def create_env(bundle: StoredBundle, directory: Path, cache_dir: Path, reporter: Reporter) -> Path:
    """Make a venv at ``directory`` and install the lock with --require-hashes (offline if wheels are vendored)."""
    directory = directory.resolve()
    if directory.exists() and any(directory.iterdir()):
        raise StoreError(f"{directory} exists and is not empty; choose a new folder for the environment")
    wanted = bundle.manifest.python_minor
    running = ".".join(platform.python_version_tuple()[:2])
    if wanted != running:
        reporter.warn(f"{bundle.tag} was built with Python {wanted}; this environment gets Python {running}")
    lock = bundle.path / "env" / "requirements.lock"
    vendored = bundle.path / "env" / "wheels"
    try:
        with reporter.step(f"creating a virtualenv in {directory}..."):
            _run([sys.executable, "-m", "venv", str(directory)], "could not create the virtualenv")
        args = ["install", "--quiet", "--require-hashes", "--no-deps", "-r", str(lock)]
        if vendored.is_dir():
            args += ["--no-index", "--find-links", str(vendored)]
        args += ["--find-links", str(cache_dir / "wheels")]
        with reporter.step(f"installing {bundle.manifest.dependencies.locked} locked distributions..."):
            result = run_pip(args, python=directory / "bin" / "python")
        if result.returncode != 0:
            raise BuildError(f"could not install the bundle's requirements.lock: {last_lines(result.stderr or result.stdout)}")
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return directory


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=pip_env())
    if result.returncode != 0:
        raise BuildError(f"{what}: {last_lines(result.stderr or result.stdout)}")
