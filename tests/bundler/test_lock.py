"""Locking with uv and with pip-compile: the same versions in the same file, auto's fallback, errors, pip's settings.

Every resolution here is real (real uv, real pip-compile, the real index). Where
uv is "not found" or broken, only *where uv is found* is changed (``find_uv``);
each small test locks a one-package requirement that is not installed, so the
index decides and pip-compile takes seconds.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from fixtures.session import SESSION_DIR
from modelbundle.bundler import Reporter, _uv
from modelbundle.bundler._lock import ensure_runtime_wheel, lock_requirements
from modelbundle.bundler._lockfile import read_lock
from modelbundle.errors import BuildError

from ._helpers import Built, Prebuilt, build_tag, cli, failed, ok

#: pure Python, no dependencies, not installed here (so not pinned by the installed set)
TOMLI, COLORAMA = "tomli", "colorama"


class Recorder(Reporter):
    """A Reporter that keeps what it would print."""

    def __init__(self) -> None:
        super().__init__(quiet=True)
        self.lines: list[str] = []

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        self.lines.append(text)
        yield

    def info(self, text: str) -> None:
        self.lines.append(text)

    def warn(self, text: str) -> None:
        self.lines.append(f"warning: {text}")


@pytest.fixture
def cache(shared_cache: Path) -> Path:
    """The session's cache, with modelbundle's wheel already in it (so a lock's first words are the lock's)."""
    ensure_runtime_wheel(shared_cache / "wheels", Reporter(quiet=True))
    return shared_cache


def _lock(requirements: list[str], cache: Path, resolver: Any) -> tuple[str, list[str]]:
    """The lock, and what the build would have printed."""
    reporter = Recorder()
    return lock_requirements(requirements, cache, resolver=resolver, reporter=reporter), reporter.lines


def _pins(lock: str, tmp_path: Path) -> set[str]:
    path = tmp_path / "read.lock"
    path.write_text(lock)
    return {dist.pin for dist in read_lock(path)}  # read_lock also refuses a pin without hashes


def _canonical(pin: str) -> str:
    name, _, version = pin.partition("==")
    return f"{canonicalize_name(name)}=={version}"


def _no_temporary_paths(lock: str) -> None:
    assert str(SESSION_DIR) not in lock and "modelbundle-lock-" not in lock and "/tmp" not in lock, lock


# -- the iris example, with each resolver ---------------------------------------------------------
@pytest.fixture(scope="module")
def iris_by_pip_tools(prebuilt: Prebuilt, tmp_path_factory: pytest.TempPathFactory) -> tuple[Built, str]:
    """The iris project built with ``--resolver pip-tools`` (the session's one cold pip-compile of it); its stderr."""
    home = tmp_path_factory.mktemp("pip-tools-home")
    result = ok(cli("build", "service.py:IrisClassifier", "--resolver", "pip-tools", home=home, cwd=prebuilt.iris.project))
    tag = re.search(r"^built (\S+)$", result.stdout, re.M)
    assert tag, result.stdout
    return Built(home, prebuilt.iris.project, tag.group(1)), result.stderr


def test_both_resolvers_lock_the_iris_example_alike(iris: Built, iris_by_pip_tools: tuple[Built, str], tmp_path: Path) -> None:
    by_pip_tools, stderr = iris_by_pip_tools
    assert re.search(r"^locking \d+ requirements with pip-compile\.\.\.$|reusing a cached lock", stderr, re.M), stderr
    assert "with uv" not in stderr
    # the session's iris was built with the default, auto, which is uv here
    home = tmp_path / "uv-home"
    assert build_tag("service.py:IrisClassifier", "--resolver", "uv", home=home, cwd=iris.project) == iris.tag

    uv_lock = (iris.path / "env" / "requirements.lock").read_text()
    pip_tools_lock = (by_pip_tools.path / "env" / "requirements.lock").read_text()
    uv_pins = _pins(uv_lock, tmp_path)
    assert uv_pins == _pins(pip_tools_lock, tmp_path)
    # modelbundle's runtime needs no installer: neither resolver carries one in (docs/dev/packaging.md)
    assert not {"pip", "setuptools", "pip-tools", "uv"} & {pin.partition("==")[0] for pin in uv_pins}
    _no_temporary_paths(uv_lock)
    # the same file, byte for byte: which resolver ran does not change the bundle's version
    assert uv_lock == pip_tools_lock
    assert by_pip_tools.tag == iris.tag


@pytest.mark.parametrize("resolver", ["uv", "pip-tools"])
def test_the_lock_installs_with_pip_require_hashes(
    resolver: str, iris: Built, iris_by_pip_tools: tuple[Built, str], tmp_path: Path, shared_cache: Path
) -> None:
    built = iris if resolver == "uv" else iris_by_pip_tools[0]
    lock = built.path / "env" / "requirements.lock"
    venv = tmp_path / "venv"
    ok(subprocess.run([sys.executable, "-m", "venv", venv], capture_output=True, text=True))
    python = venv / "bin" / "python"
    ok(subprocess.run(
        # modelbundle's wheel is in the wheel cache only, as for `bundle env create`
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--require-hashes",
         "--find-links", shared_cache / "wheels", "-r", lock],
        capture_output=True, text=True,
    ))
    # without --all: pip and setuptools are the venv's own, and the lock names neither
    frozen = ok(subprocess.run([python, "-m", "pip", "freeze"], capture_output=True, text=True)).stdout
    installed = {_canonical(line) for line in frozen.splitlines() if "==" in line}
    assert installed == _pins(lock.read_text(), tmp_path)


# -- pip's settings, with each resolver -----------------------------------------------------------
def test_pips_global_constraint_applies_to_both_resolvers(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    constraints = tmp_path / "pip-constraints-of-this-machine.txt"
    constraints.write_text("tomli==2.0.1\nnot-in-this-closure==1.0\n")
    monkeypatch.setenv("PIP_CONSTRAINT", str(constraints))
    locks = {resolver: _lock([TOMLI], cache, resolver) for resolver in ("uv", "pip-tools")}
    uv_lock, uv_said = locks["uv"]
    assert "locking 1 requirements with uv" in uv_said[0]
    assert re.match(r"tomli==2\.0\.1 \\\n    --hash=sha256:[0-9a-f]{64}", uv_lock), uv_lock
    # the note names the copy in the resolver's folder, not the file's own (temporary) path
    assert "    #   -c pip-constraints.txt\n" in uv_lock
    _no_temporary_paths(uv_lock)
    assert locks["pip-tools"][0] == uv_lock


# -- auto: uv when it can run, else pip-compile, saying why -----------------------------------------
def test_auto_falls_back_to_pip_compile_when_uv_is_not_found(
    cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(_uv, "find_uv", lambda: None)
        lock, said = _lock([COLORAMA], cache, "auto")
    assert said[0] == (
        "environment lock: uv is not installed (pip install 'modelbundle[build]'); "
        "locking with pip-compile, which takes minutes where uv takes seconds"
    )
    assert said[1] == "locking 1 requirements with pip-compile..."
    assert not any("uv" in line for line in said[1:]), said
    assert re.match(r"colorama==\S+ \\\n    --hash=sha256:", lock), lock
    # and uv, found again, writes the same file
    uv_lock, uv_said = _lock([COLORAMA], cache, "auto")
    assert any(line.startswith("locking 1 requirements with uv ") for line in uv_said), uv_said
    assert uv_lock == lock


def test_resolver_uv_without_uv_is_an_error(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_uv, "find_uv", lambda: None)
    with pytest.raises(BuildError, match=re.escape(
        "cannot lock with uv (resolver uv): uv is not installed (pip install 'modelbundle[build]'); or choose --resolver pip-tools"
    )):
        _lock([COLORAMA], cache, "uv")


def _fake_uv(folder: Path, version: str, compile_exit: int) -> str:
    """An executable that says it is uv ``version`` and exits ``compile_exit`` for anything else."""
    script = folder / "uv"
    script.write_text(f"#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'uv {version}'; exit 0; fi\necho 'thread main panicked' >&2\nexit {compile_exit}\n")
    script.chmod(0o755)
    return str(script)


def test_auto_falls_back_when_uv_is_too_old_or_crashes(
    cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    old = _fake_uv(tmp_path, "0.4.9", 0)
    monkeypatch.setattr(_uv, "find_uv", lambda: old)
    lock, said = _lock([COLORAMA], cache, "auto")
    assert said[0] == f"environment lock: uv 0.4.9 at {old} is older than 0.5 (pip install -U 'modelbundle[build]'); locking with pip-compile, which takes minutes where uv takes seconds"

    (tmp_path / "broken").mkdir()
    broken = _fake_uv(tmp_path / "broken", "0.9.0", 101)
    monkeypatch.setattr(_uv, "find_uv", lambda: broken)
    crashed_lock, said = _lock([COLORAMA], cache, "auto")
    assert said[:2] == [
        "locking 1 requirements with uv 0.9.0...",
        "warning: uv 0.9.0 crashed (uv exited 101: thread main panicked); locking with pip-compile instead",
    ]
    assert crashed_lock == lock
    with pytest.raises(BuildError, match=r"^could not lock the environment: uv 0\.9\.0 crashed: uv exited 101: thread main panicked \(--resolver pip-tools locks without it\)$"):
        _lock([COLORAMA], cache, "uv")


# -- errors -----------------------------------------------------------------------------------------
def test_a_conflict_is_one_error_that_names_it_and_nothing_falls_back(plain_project: Path, home: Path) -> None:
    result = cli("build", "plain.py:Plain", "--python-package", "scipy<1.0", home=home, cwd=plain_project)
    error = failed(result)
    scipy = importlib.metadata.version("scipy")
    assert re.fullmatch(
        rf"error: could not lock the environment: No solution found when resolving dependencies"
        rf"(?::)? \| Because you require scipy<1\.0 and scipy=={re.escape(scipy)}, we can conclude that your requirements are unsatisfiable\. "
        r"\(every installed distribution is a constraint: pin versions that fit the environment, or install ones that fit the pins\)",
        error,
    ), error
    assert re.search(r"^locking 2 requirements with uv \S+\.\.\.$", result.stderr, re.M), result.stderr
    assert "pip-compile" not in result.stderr and "offline" not in result.stderr
    assert not (home / "bundles").exists()


def test_the_resolver_is_part_of_the_lock_cache_key(cache: Path) -> None:
    uv_lock, said = _lock([TOMLI], cache, "uv")
    assert said[-1].startswith("locking 1 requirements with uv ")
    again, said = _lock([TOMLI], cache, "uv")
    assert (again, said) == (uv_lock, ["environment lock: reusing a cached lock for these requirements"])
    # pip-compile's lock of the same inputs is its own, even though the file comes out the same
    pip_tools_lock, said = _lock([TOMLI], cache, "pip-tools")
    assert said == ["locking 1 requirements with pip-compile..."]
    assert pip_tools_lock == uv_lock
