"""Cancellation with ``bundle serve --workers 2``: the worker that took the request notices its client leave."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .test_cancellation import WAIT_S, _cancelled, _leave, _send


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _until_recorded(path: Path, event: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while event not in _lines(path):
        assert time.monotonic() < deadline, f"{event!r} never recorded: {_lines(path)}"
        time.sleep(0.01)


def test_an_async_api_is_cancelled_in_whichever_worker_took_it(serve_in_subprocess: Any, tmp_path: Path) -> None:
    record = tmp_path / "record"
    with serve_in_subprocess("abandoned.py:Abandoned", "--workers", "2", env={"MODELBUNDLE_TEST_RECORD": str(record)}) as server:
        for _ in range(2):  # two requests, so both workers are likely to be tried, whatever the kernel picks
            gone = _send(server.address, "wait", {"n": 1})
            _until_recorded(record, "started")
            assert _leave(gone) == b""
            _until_recorded(record, "cancelled")
            started, started_pid, cancelled, cancelled_pid = _lines(record)
            assert (started, cancelled) == ("started", "cancelled") and cancelled_pid == started_pid  # in the worker that ran it
            record.unlink()
        deadline = time.monotonic() + WAIT_S
        while _cancelled(server, "wait") != 2:
            assert time.monotonic() < deadline, "the workers' metrics never counted both cancellations"
            time.sleep(0.05)
        assert "Traceback" not in server.stderr and "ERROR" not in server.stderr, server.stderr
