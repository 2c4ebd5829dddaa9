"""``bundle serve --reload`` logs as ``bundle serve`` does (its format, its serving and ready
lines) and serves the code as it is after an edit."""

from __future__ import annotations

import re
import shutil
import signal
import time
from pathlib import Path

import httpx

from fixtures.services import setup_raises

SERVICES_DIR = Path(setup_raises.__file__).parent
#: every line the runtime logs: time, level, logger, [pid], message
OUR_FORMAT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.]+ \[\d+\] ")


def _wait_for(condition, what: str, server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert server.proc.poll() is None, f"the server exited:\n{server.stderr}"
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s:\n{server.stderr}"
        time.sleep(0.1)


def test_reload_keeps_the_runtime_log_format_and_lines_and_reloads_an_edit(serve_in_subprocess, tmp_path):
    service = tmp_path / "tickets.py"
    shutil.copy(SERVICES_DIR / "tickets.py", service)
    with serve_in_subprocess(str(service), "--reload") as server:
        assert server.post("/route", json=["an invoice"]).json() == ["billing"]
        assert f"serving Tickets (module {service}) on http://127.0.0.1:" in server.stderr
        assert server.stderr.count("Tickets is ready: POST /route, POST /triage") == 1

        service.write_text(service.read_text().replace('"billing"', '"accounts"'))

        def reloaded() -> bool:
            try:
                return server.post("/route", json=["an invoice"]).json() == ["accounts"]
            except httpx.TransportError:  # between the old process and the new one
                return False

        _wait_for(reloaded, "the reload", server)
        assert server.stderr.count("Tickets is ready: POST /route, POST /triage") == 2
        assert server.stop(signal.SIGTERM) == 0

    lines = server.stderr.splitlines()
    assert lines, "nothing was logged"
    assert [line for line in lines if not OUR_FORMAT.match(line)] == [], server.stderr
