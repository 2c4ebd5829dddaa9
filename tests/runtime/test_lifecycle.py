"""`bundle serve` start-up and shut-down: failures exit non-zero with a clear message and
never report ready; setup() runs before ready and teardown() at shutdown."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from fixtures.services import setup_raises

SERVICES_DIR = Path(setup_raises.__file__).parent

# (target, the one-line message's fragments)
BAD_TARGETS = [
    pytest.param("no_such_module_here:Service", ["no module named 'no_such_module_here'"], id="missing-module"),
    pytest.param("echo.py:Missing", ["module 'echo' has no attribute 'Missing'; its Service classes: Echo"], id="missing-class"),
    pytest.param("echo.py:Ecko", ["module 'echo' has no attribute 'Ecko'; did you mean 'Echo'? its Service classes: Echo"], id="class-typo"),
    pytest.param("echo.py:np", ["np is not a modelbundle.Service subclass"], id="not-a-service"),
    pytest.param("import_raises.py:ImportRaises", ["importing 'import_raises' failed", "RuntimeError: config.yaml is missing", "import_raises.py:"], id="import-raises"),
    pytest.param("tests/fixtures/services/absent.py:Absent", ["no such file tests/fixtures/services/absent.py"], id="missing-file"),
]  # fmt: skip


@pytest.mark.parametrize(("target", "fragments"), BAD_TARGETS)
def test_a_bad_target_exits_1_with_a_one_line_error(serve_in_subprocess, target, fragments):
    with serve_in_subprocess(target, ready=False) as server:
        assert server.wait() == 1
        lines = server.stderr.strip().splitlines()
        assert len(lines) == 1, server.stderr
        assert lines[0].startswith("error: ")
        for fragment in fragments:
            assert fragment in lines[0]


def test_a_missing_artifact_is_one_line_with_no_traceback(serve_in_subprocess):
    with serve_in_subprocess("missing_artifact.py:MissingArtifact", ready=False) as server:
        assert server.wait() == 1
    missing = SERVICES_DIR / "not-trained-yet.pkl"
    assert "Traceback" not in server.stderr, server.stderr
    assert [line for line in server.stderr.splitlines() if "ERROR" in line or line.startswith("error: ")] == [
        f"error: MissingArtifact did not start: artifact 'model' of MissingArtifact: {missing} does not exist"
    ], server.stderr


def test_a_file_with_one_service_is_served_without_a_class_name(serve_in_subprocess):
    with serve_in_subprocess("tickets.py") as server:
        assert server.post("/route", json=["an invoice"]).json() == ["billing"]
        assert f"serving Tickets (module {SERVICES_DIR / 'tickets.py'})" in server.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_setup_raising_exits_non_zero_and_never_reports_ready(serve_in_subprocess, workers):
    with serve_in_subprocess("setup_raises.py:SetupRaises", "--workers", workers, ready=False) as server:
        url = server.wait_for_port()
        statuses = []
        while server.proc.poll() is None:
            try:
                # connections wait in the listen backlog while setup() runs: keep each try short
                statuses.append(httpx.get(url + "/readyz", timeout=0.5).status_code)
            except httpx.TransportError:
                time.sleep(0.05)
        code = server.wait()

        assert code != 0
        assert 200 not in statuses
        assert setup_raises.MESSAGE in server.stderr
        assert "RuntimeError" in server.stderr
        errors = [line for line in server.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and "setup() failed" in errors[0], server.stderr
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/readyz", timeout=5.0)


def test_setup_runs_before_ready_and_teardown_at_shutdown(serve_in_subprocess, tmp_path):
    record = tmp_path / "events.txt"
    with serve_in_subprocess("recorder.py:Recorder", env={"MODELBUNDLE_TEST_RECORD": str(record)}) as server:
        # serve_in_subprocess waited for /readyz: setup() must be over by now
        assert record.read_text().split()[0] == "setup"
        response = server.post("/predict", json=21)
        assert response.json() == 42

        assert server.stop(signal.SIGTERM) == 0

    events = [line.split() for line in record.read_text().splitlines()]
    assert [event for event, _ in events] == ["setup", "request", "teardown"]
    assert len({pid for _, pid in events}) == 1, "setup, the API and teardown ran in different processes"


def test_a_busy_port_gives_a_clear_error(serve_in_subprocess):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with serve_in_subprocess("echo.py:Echo", "--port", str(port), ready=False) as server:
            assert server.wait() == 1
            assert server.stderr.strip() == (
                f"error: cannot listen on 127.0.0.1:{port}: Address already in use; choose another --port or --host"
            )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_start_up_runs_without_the_collector_which_resumes_with_start_up_frozen(serve_in_subprocess, workers):
    # start-up (imports, setup) allocates what lives as long as the server: collecting while it
    # is made is wasted work, and freezing it keeps later full collections short
    with serve_in_subprocess("gc_state.py:GCState", "--workers", workers) as server:
        response = httpx.post(server.url + "/state", json={"detail": True}, timeout=10)
    assert response.status_code == 200, response.text
    state = response.json()
    assert state["collecting_during_setup"] == 0
    assert state["collecting_now"] == 1
    assert state["frozen_objects"] > 10_000  # the runtime's and the service's modules, at least
