"""What a SIGKILLed process leaves: its staging folder is cleared by the next store operation, and its pip dies with it.

Every kill here is a real SIGKILL; "stays alive" is shown by a process that
holds a staging folder while another clears the store.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ._helpers import Built, cli, ok, store_state

#: a bounded wait, for what the kernel or another process does in its own time; never asserted on
_PATIENCE_S = 60.0

_HOLD_STAGING = """
import sys, time
from pathlib import Path
from modelbundle.bundler import LocalStore
with LocalStore(Path(sys.argv[1])).staging() as staging:
    (staging / "half-written.bin").write_bytes(b"x" * 1000)
    print(staging.name, flush=True)
    time.sleep(3600)
"""


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _PATIENCE_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _holding_staging(home: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-c", _HOLD_STAGING, str(home)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    name = process.stdout.readline().strip()
    assert name.startswith("staging-"), name
    return process, name


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie no parent reaps has exited too)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_the_next_store_operation_clears_what_killed_processes_left(iris_copy: Built, home: Path) -> None:
    live, live_name = _holding_staging(home)
    doomed = [_holding_staging(home) for _ in range(3)]  # all alive while the others are made: none is cleared yet
    for process, _ in doomed:
        _kill(process)
    killed = [name for _, name in doomed]
    try:
        left = store_state(home)[1]
        assert set(killed) <= set(left) and live_name in left  # SIGKILL ran no clean-up

        ok(cli("delete", iris_copy.tag, "--yes", home=home))  # any operation that takes the store lock

        left = store_state(home)[1]
        assert not set(killed) & set(left), left
        assert live_name in left and (home / "tmp" / live_name / "half-written.bin").is_file()  # in use: kept
    finally:
        _kill(live)


_RUN_PIP = """
import sys
from pathlib import Path
from modelbundle.bundler._installer import run_pip
run_pip(["download", "--no-deps", "--retries", "0", "--timeout", "3600", "--index-url", sys.argv[1], "-d", sys.argv[2], "anything"])
"""


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def test_a_sigkilled_build_takes_its_pip_with_it(tmp_path: Path) -> None:
    with socket.socket() as index:  # an index that accepts and never answers: pip waits on it
        index.bind(("127.0.0.1", 0))
        index.listen(8)
        url = f"http://127.0.0.1:{index.getsockname()[1]}/simple"
        build = subprocess.Popen([sys.executable, "-c", _RUN_PIP, url, str(tmp_path)])
        try:
            connection, _ = index.accept()  # pip is running and waiting for an answer
            started = _descendants(build.pid)
            assert started
            build.send_signal(signal.SIGKILL)
            build.wait()
            for pid in started:
                _wait_for(lambda pid=pid: _gone(pid), f"pip's process {pid} to die with the build")
            connection.close()
        finally:
            build.kill()
            build.wait()


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found += [child, *_descendants(child)]
    return found


def test_a_build_sigkilled_while_locking_leaves_no_child_and_no_staging_after_the_next_build(plain_project: Path, home: Path) -> None:
    with socket.socket() as index:  # the build's index accepts and never answers: the lock step waits on it
        index.bind(("127.0.0.1", 0))
        index.listen(8)
        index.settimeout(_PATIENCE_S)
        url = f"http://127.0.0.1:{index.getsockname()[1]}/simple"
        env = {**os.environ, "MODELBUNDLE_HOME": str(home), "PIP_INDEX_URL": url, "UV_INDEX_URL": url, "UV_DEFAULT_INDEX": url}
        build = subprocess.Popen(
            [sys.executable, "-m", "modelbundle", "build", "plain.py:Plain", "--python-package", "not-locked-before==1.0"],
            cwd=plain_project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            connection, _ = index.accept()
            children = _descendants(build.pid)
            assert children, "the build asked the index itself; this test needs it to ask through a child"
            assert [name for name in store_state(home)[1] if not name.endswith(".live")]  # it is staging
            build.send_signal(signal.SIGKILL)
            build.wait()
            for child in children:
                _wait_for(lambda child=child: _gone(child), f"the build's child (pid {child}) to die with it")
            connection.close()
        finally:
            build.kill()
            build.wait()
    assert store_state(home)[1]  # SIGKILL ran no clean-up
    ok(cli("build", "plain.py:Plain", home=home, cwd=plain_project))
    assert store_state(home)[1] == []


def test_the_guard_leaves_a_childs_output_and_status_as_they_are(tmp_path: Path) -> None:
    from modelbundle.bundler._children import run_child

    result = run_child(["sh", "-c", "echo out; echo err >&2; pwd; exit 3"], capture_output=True, text=True, cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (3, f"out\n{tmp_path}\n", "err\n")
    for signum in (signal.SIGKILL, signal.SIGTERM, signal.SIGPIPE):
        assert run_child(["sh", "-c", f"kill -{int(signum)} $$"]).returncode == -signum
