"""The test environment is exactly requirements/test.lock, and the locks agree with their inputs.

scripts/test.sh installs the lock with ``pip install --require-hashes --only-binary
:all:`` into a venv made for it; these tests check the result from inside it, so
a lock edited by hand, a dependency added to pyproject.toml without running
scripts/lock.sh, or a package installed by some other route fails here.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from modelbundle.bundler._lockfile import read_lock

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "requirements"
TEST_LOCK = REQUIREMENTS / "test.lock"


def _pins(lock: Path) -> dict[str, str]:
    return {dist.name: dist.version for dist in read_lock(lock)}  # read_lock refuses an entry without hashes


def _frozen() -> dict[str, str]:
    """``pip freeze --all`` of this interpreter's environment, modelbundle (editable) aside."""
    output = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable", "--disable-pip-version-check"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    frozen = {}
    for line in output.splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"pip freeze lists {line!r}, which is not a pinned release"
            frozen[canonicalize_name(name)] = version
    return frozen


def test_the_environment_holds_exactly_what_the_test_lock_names():
    frozen, pins = _frozen(), _pins(TEST_LOCK)
    extra = sorted(f"{name}=={version}" for name, version in frozen.items() if name not in pins)
    missing = sorted(f"{name}=={version}" for name, version in pins.items() if name not in frozen)
    moved = sorted(f"{name} {pins[name]} -> {version}" for name, version in frozen.items() if pins.get(name, version) != version)
    assert (extra, missing, moved) == ([], [], []), "the environment is not requirements/test.lock (extra, missing, moved)"
    assert len(frozen) > 100  # the whole closure, not an empty comparison


def test_modelbundle_itself_is_this_checkout_installed_editable():
    direct_url = json.loads(importlib.metadata.distribution("modelbundle").read_text("direct_url.json") or "{}")
    assert direct_url.get("dir_info", {}).get("editable") is True, direct_url
    assert Path(direct_url["url"].removeprefix("file://")).resolve() == REPO


def test_the_environment_is_consistent():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _project_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"], *_extra_lines(project, "test")]
    lines += [line.split("#")[0].strip() for line in (REQUIREMENTS / "test.in").read_text().splitlines()]
    return [Requirement(line) for line in lines if line]


def _extra_lines(project: dict, extra: str) -> list[str]:
    """An extra's requirements, with the project's own extras it names (``modelbundle[build]``) expanded."""
    lines = []
    for line in project["optional-dependencies"][extra]:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == project["name"]:
            lines += [inner for named in sorted(requirement.extras) for inner in _extra_lines(project, named)]
        else:
            lines.append(line)
    return lines


def test_the_test_lock_satisfies_pyproject_and_test_in():
    """A requirement added or tightened without running scripts/lock.sh is caught here."""
    pins = _pins(TEST_LOCK)
    environment = default_environment()
    unmet = []
    for requirement in _project_requirements():
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        version = pins.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            unmet.append(f"{requirement} (locked: {version})")
    assert not unmet, f"requirements/test.lock is stale; run scripts/lock.sh: {unmet}"


@pytest.mark.parametrize("target_lock", ["ray-target.lock", "lambda-image-target.lock"])
def test_what_a_target_adds_was_locked_with_the_test_environment(target_lock):
    """Shared pins are equal, so `--target-lock` can join a bundle built in this environment."""
    tests, target = _pins(TEST_LOCK), _pins(REQUIREMENTS / target_lock)
    differ = {name: (tests[name], version) for name, version in target.items() if name in tests and tests[name] != version}
    assert not differ, f"{target_lock} and test.lock disagree (test, target): {differ}; run scripts/lock.sh"
    assert set(target) - set(tests), f"{target_lock} adds nothing"
