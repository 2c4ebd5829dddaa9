"""The README's front door works: in a fresh clone, the quickstart, then the "Using it" block, pasted into bash.

A user's shell, not the test's: no virtualenv on the PATH, no PYTHONDONTWRITEBYTECODE,
an empty store. Only two things differ from a user's run, so that this test can run
beside others on one machine: the server's port 3000 and the registry's port 5000
become free ports (``MODELBUNDLE_PORT``, ``REGISTRY_PORT`` and the URLs in the block),
and the lock and wheel cache is the session's (``MODELBUNDLE_CACHE_DIR``). pip's own
cache is the user's, as it would be.

Slow-ish (about two minutes: most of it is pip installing the quickstart's venv).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from fixtures.session import CACHE

REPO = Path(__file__).resolve().parents[1]
USING_IT = "## Using it"


def using_it_block(readme: str) -> str:
    """The first bash block of the README's "Using it" section."""
    section = readme.split(f"\n{USING_IT}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, f"no bash block under {USING_IT!r}"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_clone(destination: Path) -> Path:
    """``git clone`` of this checkout, with the working tree's version of every tracked file
    (so uncommitted changes are tested too), and nothing untracked: no venv, no model, no store."""
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(destination)], check=True)
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        source = REPO / name
        if source.is_file() and not source.is_symlink():
            shutil.copy2(source, destination / name)
    return destination


def users_environment(home: Path, server_port: int, registry_port: int) -> dict[str, str]:
    # not the test run's settings: test.sh's VENV would make the quickstart install into the test venv
    dropped = {"VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "VENV", "PORT"}
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("MODELBUNDLE_")}
    # no virtualenv's bin on the PATH (a developer may run the tests from an activated one)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and not (Path(p).parent / "pyvenv.cfg").is_file()
    )
    env.update(
        MODELBUNDLE_HOME=str(home), MODELBUNDLE_CACHE_DIR=str(CACHE),
        MODELBUNDLE_PORT=str(server_port), REGISTRY_PORT=str(registry_port),
    )
    return env


def run_bash(script: str, cwd: Path, env: dict[str, str], log: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """``bash -c SCRIPT`` in a process group of its own; whatever it left running is stopped after."""
    with open(log, "w") as out:
        process = subprocess.Popen(
            ["bash", "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=out, text=True,
            start_new_session=True,
        )
        try:
            stdout, _ = process.communicate(timeout=timeout)
        finally:
            # servers and the registry the script started in the background, if a line failed
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, log.read_text())


@pytest.mark.readme
def test_the_using_it_block_runs_after_the_quickstart_in_a_fresh_clone(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path / "clone")
    server_port, registry_port = free_port(), free_port()
    env = users_environment(tmp_path / "home", server_port, registry_port)

    quickstart = run_bash("./scripts/quickstart.sh", clone, env, tmp_path / "quickstart.log", timeout=600)
    assert quickstart.returncode == 0, f"the quickstart failed:\n{quickstart.stdout}\n{quickstart.stderr[-4000:]}"
    assert "source .venv/bin/activate" in quickstart.stdout  # it says how to get `bundle` on the PATH

    block = using_it_block((clone / "README.md").read_text())
    assert block.startswith("source .venv/bin/activate")
    assert "127.0.0.1:3000" in block
    block = block.replace("127.0.0.1:3000", f"127.0.0.1:{server_port}")
    # every line must succeed, as a reader would check; -x shows which one did not
    result = run_bash(f"set -e -o pipefail -x\n{block}", clone, env, tmp_path / "using-it.log", timeout=600)
    assert result.returncode == 0, f"the 'Using it' block failed:\n{result.stdout}\n{result.stderr[-6000:]}"

    # the two curl lines: iris rows 0 (setosa) and 145 (virginica) of the data set
    assert re.findall(r"^\[\d\]$", result.stdout, re.MULTILINE) == ["[0]", "[2]"], result.stdout
    assert (clone / "iris.tar.gz").is_file() and (clone / "iris-env" / "bin" / "python").is_file()
    assert re.search(r"registry pid \d+", result.stderr), "start-registry.sh did not say how to stop it"
