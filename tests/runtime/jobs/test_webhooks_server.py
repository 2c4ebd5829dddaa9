"""Webhooks from a real server: a target down at first gets the signed callback later, and
meanwhile the server stays ready and cancels other jobs."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from fixtures.servers import ProcessServer

from .test_webhooks import Receiver, _unused_port

SECRET = "server-side-secret"
DEADLINE = 120.0

Serve = Callable[..., AbstractContextManager[ProcessServer]]


def _until(server: ProcessServer, condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while not (found := condition()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}:\n{server.stderr[-3000:]}"
        time.sleep(0.05)
    return found


def test_a_webhook_target_down_at_first_gets_the_callback_and_the_server_stays_responsive(
    serve_in_subprocess: Serve, tmp_path: Path
) -> None:
    gate, record = tmp_path / "gate", tmp_path / "calls"
    gate.touch()
    env = {"MODELBUNDLE_TEST_RECORD": str(record), "MODELBUNDLE_TEST_GATE": str(gate), "MODELBUNDLE_WEBHOOK_SECRET": SECRET}
    port = _unused_port()  # nothing listens there yet: connections are refused
    hook = f"http://127.0.0.1:{port}/hook"
    receiver: Receiver | None = None
    with serve_in_subprocess("shared_queue.py:SharedQueue", "--jobs-dir", str(tmp_path / "jobs"), env=env) as server:
        try:
            answer = server.post("/square/jobs", json={"x": 3}, params={"callback_url": hook})
            assert answer.status_code == 202, answer.text
            job_id = answer.json()["id"]

            def deliveries() -> list[dict[str, Any]]:
                return list(server.get(f"/square/jobs/{job_id}").json()["deliveries"])

            failing = _until(server, lambda: (d := deliveries()) and d[0]["attempts"] >= 1 and d[0], "a failed attempt")
            assert failing["delivered"] is False and failing["last_status"] is None and failing["last_error"]

            # while the target is down: the server is ready, runs another job and cancels it
            gate.unlink()
            other = server.post("/square/jobs", json={"x": 4}).json()["id"]
            _until(server, lambda: record.exists() and "4 " in record.read_text(), "the other job to start")
            assert server.get("/readyz").status_code == 200
            with server.client() as client:
                cancelled = client.delete(f"/square/jobs/{other}")
            assert cancelled.status_code == 200, cancelled.text
            assert server.get(f"/square/jobs/{other}").json()["status"] == "cancelled"
            assert not deliveries()[0]["delivered"]

            receiver = Receiver(port, [503])  # up, failing once more, then answering 200
            _until(server, lambda: deliveries()[0]["delivered"], "the callback to be delivered")
            shown = deliveries()[0]
            assert shown["last_status"] == 200 and shown["attempts"] >= 3
        finally:
            gate.touch()  # the cancelled sync call returns, so the server stops
            if receiver is not None:
                receiver.close()
    assert receiver is not None
    assert [status for _, _, status in receiver.received][-2:] == [503, 200]
    headers, body, _ = receiver.received[-1]
    assert headers["X-Modelbundle-Signature"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    document = json.loads(body)
    assert (document["id"], document["status"]) == (job_id, "succeeded")
