"""``bundle serve --split`` and ``--service NAME``: a composed graph over loopback HTTP."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from fixtures.services.composed import Doubler


def test_split_answers_as_one_process_would_and_stops_cleanly(serve_in_subprocess: Callable[..., Any]) -> None:
    with serve_in_subprocess("composed.py:Front", "--split", "--dependency-timeout", "1") as server:
        assert server.post("/run", json={"x": [1.0, 2.5]}).json() == [3.0, 6.0]
        assert server.post("/run_sync", json={"x": [4.0]}).json() == [9.0]
        # the entry request's id is the dependency's request id too
        assert server.post("/ids", json={"tag": "t"}, headers={"X-Request-ID": "entry-42"}).text == "t:entry-42"
        slow = server.post("/slow", json={"seconds": 20})
        assert slow.status_code == 504
        assert "dependency 'doubler' timed out after 1s" in slow.json()["error"]["message"]
        assert server.stop() == 0


def test_one_service_alone_finds_its_dependency_by_variable_and_answers_503_once_it_is_gone(
    serve_in_subprocess: Callable[..., Any],
) -> None:
    with serve_in_subprocess("composed.py:Doubler") as doubler:
        env = {"MODELBUNDLE_DEPENDENCY_DOUBLER_URL": doubler.url}
        with serve_in_subprocess("composed.py:Front", "--service", "front", env=env) as front:
            assert front.post("/run", json={"x": [1.0]}).json() == [3.0]
            doubler.stop(signal.SIGKILL)
            down = front.post("/run", json={"x": [1.0]})
            assert down.status_code == 503
            assert "dependency 'doubler' is unavailable" in down.json()["error"]["message"]
            ready = front.get("/readyz")
            assert ready.status_code == 503 and ready.json()["dependencies"] == [Doubler.name]


def test_a_missing_dependency_url_is_one_line_naming_the_variable(serve_in_subprocess: Callable[..., Any]) -> None:
    with serve_in_subprocess("composed.py:Front", "--service", "front", ready=False) as front:
        assert front.wait() != 0
    lines = [line for line in front.stderr.splitlines() if line.strip()]
    assert "MODELBUNDLE_DEPENDENCY_DOUBLER_URL is not set" in front.stderr
    assert not any("Traceback" in line for line in lines)

