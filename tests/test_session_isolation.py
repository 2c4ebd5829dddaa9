"""Every test session runs in its own directory with its own Docker names (fixtures/session.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from fixtures.docker import docker_client, ensure_base_image
from fixtures.session import (
    CACHE,
    HOME,
    PREFIX,
    SESSION_DIR,
    TMP,
    remove_docker_objects,
    unique_name,
)

TESTS = Path(__file__).resolve().parent
SHOW_SESSION = "import json; from fixtures import session; print(json.dumps([session.PREFIX, str(session.SESSION_DIR)]))"


def test_temp_paths_store_and_cache_lie_in_the_session_dir(tmp_path: Path) -> None:
    assert SESSION_DIR.name.startswith("modelbundle-tests-")
    assert Path(tempfile.gettempdir()) == TMP and os.environ["TMPDIR"] == str(TMP)
    assert tmp_path.is_relative_to(TMP)
    assert Path(os.environ["MODELBUNDLE_HOME"]) == HOME and Path(os.environ["MODELBUNDLE_CACHE_DIR"]) == CACHE
    assert all(path.parent == SESSION_DIR for path in (TMP, HOME, CACHE))


def test_a_subprocess_uses_the_session_dir_too() -> None:
    script = "import os, tempfile; print(tempfile.gettempdir()); print(os.environ['MODELBUNDLE_HOME']); print(os.environ['MODELBUNDLE_CACHE_DIR'])"
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert output.splitlines() == [str(TMP), str(HOME), str(CACHE)]


def test_each_session_has_a_directory_and_prefix_of_its_own(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(TESTS)}
    sessions = [
        json.loads(subprocess.run([sys.executable, "-c", SHOW_SESSION], env=env, capture_output=True, text=True, check=True).stdout)
        for _ in range(2)
    ]
    prefixes = {prefix for prefix, _ in sessions} | {PREFIX}
    directories = {Path(directory) for _, directory in sessions} | {SESSION_DIR}
    assert len(prefixes) == 3 and len(directories) == 3
    assert all(re.fullmatch(r"mbt-[0-9a-f]{8}", prefix) for prefix in prefixes)  # a valid image repository name
    # each made under the temp dir it started with
    assert all(Path(directory).parent == tmp_path.resolve() for _, directory in sessions)


def test_the_end_of_a_session_removes_its_docker_objects_and_nothing_else() -> None:
    engine = docker_client()
    base = ensure_base_image(engine)
    # stands in for a session's prefix; under this session's, so the session's end removes what a failure leaves
    probe = unique_name("probe")
    image = f"{probe}/base:1"
    engine.images.get(base).tag(image)
    network = engine.networks.create(f"{probe}-net")
    named = engine.containers.create(image, ["true"], name=f"{probe}-named")
    unnamed = engine.containers.create(image, ["true"])  # found by its image
    other = engine.networks.create(f"{PREFIX}-not-the-probe")
    try:
        removed = remove_docker_objects(probe)
        assert removed == ["2 containers", "1 network", "1 image tag"]
        assert not [c for c in engine.containers.list(all=True) if c.id in (named.id, unnamed.id)]
        assert not engine.networks.list(ids=[network.id]) and not engine.images.list(name=f"{probe}/base")
        assert engine.networks.list(ids=[other.id]) and engine.images.get(base)
    finally:
        other.remove()
