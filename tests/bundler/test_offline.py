"""Locking and vendoring offline, from the wheel cache, with the package index unreachable.

Uses the modelbundle-only service: its wheels (~35 MB) are what --vendor-wheels
puts in the shared wheel cache; iris would add ~60 MB of scipy and scikit-learn.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from ._helpers import Prebuilt, build_tag, bundle_path, cli, manifest, ok

#: no index at all: a closed port, no extra index, no find-links from the machine's pip config
UNREACHABLE_INDEX = {
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
    "PIP_EXTRA_INDEX_URL": "",
    "PIP_FIND_LINKS": "",
    "PIP_CONFIG_FILE": os.devnull,
}


def _pins(lock: Path) -> list[str]:
    return re.findall(r"^(\S+==\S+) \\$", lock.read_text(), re.M)


def _wheels(bundle: Path) -> list[str]:
    return sorted(p.name for p in (bundle / "env" / "wheels").glob("*.whl"))


def test_offline_build_from_the_wheel_cache(prebuilt: Prebuilt, plain_project: Path, tmp_path: Path, shared_cache: Path) -> None:
    online_home, offline_home = tmp_path / "online", tmp_path / "offline"
    # online, --vendor-wheels: env/wheels holds every locked distribution, and the wheel cache gets them too
    online = bundle_path(online_home, build_tag("plain.py:Plain", "--vendor-wheels", home=online_home, cwd=plain_project))
    wheels = _wheels(online)
    assert len(wheels) == manifest(online_home, f"plain:{online.name}")["dependencies"]["locked"] > 10
    assert all((shared_cache / "wheels" / wheel).is_file() for wheel in wheels)

    # offline, the index unreachable: locked by uv from the cache alone, wheels vendored from it
    started = time.monotonic()
    tag = build_tag(
        "plain.py:Plain", "--offline", "--resolver", "uv", "--vendor-wheels", home=offline_home, cwd=plain_project,
        env=UNREACHABLE_INDEX,
    )
    # a few seconds; pip retrying the closed index for each of ~40 wheels took 5 minutes
    assert time.monotonic() - started < 90
    offline = bundle_path(offline_home, tag)
    assert _pins(offline / "env" / "requirements.lock") == _pins(online / "env" / "requirements.lock")
    assert _wheels(offline) == wheels
    assert "env/wheels/" + wheels[0] in (offline / "RECORD").read_text()

    # and `bundle env create` installs from env/wheels without the index
    venv = tmp_path / "venv"
    ok(cli("env", "create", tag, venv, "--quiet", home=offline_home, env=UNREACHABLE_INDEX))
    where = ok(subprocess.run([venv / "bin" / "python", "-c", "import modelbundle; print(modelbundle.__file__)"], capture_output=True, text=True))
    assert Path(where.stdout.strip()).is_relative_to(venv)


def test_offline_without_the_wheels_is_a_clear_error(
    prebuilt: Prebuilt, plain_project: Path, tmp_path: Path, home: Path, shared_cache: Path
) -> None:
    # a wheel cache with modelbundle's own wheel only: nothing else to lock from
    empty_cache = tmp_path / "empty-cache"
    (empty_cache / "wheels").mkdir(parents=True)
    for runtime in (shared_cache / "wheels").glob("*modelbundle-*"):
        shutil.copy2(runtime, empty_cache / "wheels" / runtime.name)
    result = cli(
        "build", "plain.py:Plain", "--offline", "-o", "tag", home=home, cwd=plain_project,
        env={**UNREACHABLE_INDEX, "MODELBUNDLE_CACHE_DIR": str(empty_cache)},
    )
    assert result.returncode == 1, result.stderr
    assert re.search(r"error: could not lock the environment: .*\(wheel cache: .*empty-cache/wheels; pass --find-links DIR", result.stderr)
    assert not (home / "bundles").exists()
