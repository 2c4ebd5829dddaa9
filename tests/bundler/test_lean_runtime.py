"""A bundle's environment holds what serving needs and nothing of the build side (docs/dev/packaging.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from modelbundle.bundler import LocalStore, verify_record
from modelbundle.bundler._lockfile import read_lock

from ._helpers import Built, build_tag, cli, failed, ok, serving

REPO = Path(__file__).resolve().parents[2]
#: the build and development side: none of it may reach a bundle's lock unless the service imports it
BUILD_SIDE = {
    "pip", "pip-tools", "setuptools", "build", "wheel", "uv", "rich", "pathspec", "httpx", "pyyaml",
    "watchfiles", "python-dotenv", "pygments", "markdown-it-py",
}


@pytest.fixture(scope="module")
def text(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The text example (pydantic in and out, no arrays), built in the test environment, which has every build tool."""
    home = tmp_path_factory.mktemp("text-home")
    project = REPO / "examples" / "text"
    return Built(home, project, build_tag(f"{project}/service.py:TextSentiment", home=home))


def _locked(built: Built) -> set[str]:
    return {entry.name for entry in read_lock(built.path / "env" / "requirements.lock")}


def test_the_text_lock_holds_no_build_tools_and_no_numpy(text: Built) -> None:
    locked = _locked(text)
    assert {"modelbundle", "pydantic", "starlette", "uvicorn"} <= locked  # a real lock, not an empty one
    assert not locked & (BUILD_SIDE | {"numpy"}), sorted(locked & (BUILD_SIDE | {"numpy"}))


def test_the_iris_lock_has_numpy_because_the_service_imports_it_and_no_build_tools(iris: Built) -> None:
    locked = _locked(iris)
    assert {"numpy", "scikit-learn"} <= locked
    assert not locked & BUILD_SIDE, sorted(locked & BUILD_SIDE)


@pytest.fixture(scope="module")
def text_env(text: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv made from the text bundle's lock: exactly what an image of it runs."""
    venv = tmp_path_factory.mktemp("text-env") / "venv"
    ok(cli("env", "create", text.tag, venv, "--quiet", home=text.home))
    return venv


def _run(venv: Path, *args: str, home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "bundle"), *args], capture_output=True, text=True, timeout=120, cwd=cwd,
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "MODELBUNDLE_HOME": str(home)},
    )


def test_the_runtime_env_serves_the_bundle(text: Built, text_env: Path) -> None:
    installed = ok(subprocess.run(
        [text_env / "bin" / "python", "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
    )).stdout
    names = {canonicalize_name(line.split("==")[0]) for line in installed.splitlines()}
    assert "modelbundle" in names and "numpy" not in names and "rich" not in names, installed
    with serving([text_env / "bin" / "bundle"], text.tag, text.home) as server:
        answer = server.post("/sentiment", json={"review": {"text": "a great and wonderful day"}})
        assert answer.status_code == 200, answer.text
        assert answer.json()["label"] == "positive"
        assert server.get("/docs").status_code == 200  # the Swagger page's assets come without the build side
    # serving left nothing in the store (no __pycache__): the bundle verifies and serves again
    verify_record(text.path)
    with serving([text_env / "bin" / "bundle"], text.tag, text.home) as again:
        assert again.get("/readyz").status_code == 200


def test_the_runtime_env_lists_bundles_without_rich(text: Built, text_env: Path) -> None:
    table = ok(_run(text_env, "list", home=text.home)).stdout
    assert re.search(rf"^textsentiment\s+{text.version}\s", table, re.M), table


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        (["build", f"{REPO}/examples/text/service.py:TextSentiment"], "pathspec"),
        (["push", "textsentiment", "oci://127.0.0.1:1/models"], "httpx"),
        (["export", "kubernetes", "textsentiment", "--image", "text:1", "-o", "k8s"], "PyYAML"),
    ],
)
def test_what_needs_the_build_side_says_how_to_get_it_in_one_line(
    text: Built, text_env: Path, tmp_path: Path, command: list[str], missing: str
) -> None:
    before = [b.tag for b in LocalStore(text.home).list()]
    result = _run(text_env, *command, home=text.home, cwd=tmp_path)
    line = failed(result)
    assert missing in line and "pip install 'modelbundle[build]'" in line, line
    assert [b.tag for b in LocalStore(text.home).list()] == before  # nothing written
    assert list(tmp_path.iterdir()) == []


def test_importing_a_bundles_service_writes_no_bytecode_into_the_store(text: Built) -> None:
    """Python writes __pycache__ beside what it imports; a bundle is immutable, and RECORD would refuse it after."""
    script = (
        "import sys, importlib\n"
        "from modelbundle.bundler import LocalStore, open_bundle\n"
        f"cls = open_bundle({text.tag!r}, LocalStore()).service_class()\n"
        "importlib.import_module('json.tool')  # installed code still imports (and may cache) as usual\n"
        "print(cls.__name__, sys.dont_write_bytecode)\n"
    )
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    result = ok(subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True,
        env={**environment, "MODELBUNDLE_HOME": str(text.home)},
    ))
    assert result.stdout.split() == ["TextSentiment", "False"]  # bytecode stays on for everything else
    assert not list(text.path.rglob("__pycache__"))
    verify_record(text.path)


def test_the_client_without_httpx_says_which_extra_to_install(text_env: Path) -> None:
    """A bundle's runtime has no httpx: ``import modelbundle`` works, making a client says what to install."""
    script = (
        "import modelbundle\n"
        "try:\n"
        "    modelbundle.Client('http://127.0.0.1:1')\n"
        "except modelbundle.ModelbundleError as error:\n"
        "    print(error)\n"
    )
    result = ok(subprocess.run([text_env / "bin" / "python", "-c", script], capture_output=True, text=True, timeout=60))
    assert "httpx" in result.stdout and "pip install 'modelbundle[client]'" in result.stdout, result.stdout
    assert len(result.stdout.splitlines()) == 1
