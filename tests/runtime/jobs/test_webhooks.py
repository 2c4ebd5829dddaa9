"""WebhookSender against real receivers on loopback, with deliveries in a real PostgreSQL store."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from fixtures.postgres import PostgresCluster
from modelbundle.runtime.jobs import JobStore, NewJob
from modelbundle.runtime.jobs._postgres import PostgresJobStore
from modelbundle.runtime.jobs._webhooks import WebhookSender, WebhookSettings, post, retry_delay

SECRET = "s3cr3t-for-tests"
#: a long wait for what should come soon: reaching it is a failure, not a measurement
DEADLINE = 60.0


class Receiver:
    """An HTTP server on ``port`` that answers the statuses in ``answers`` in turn (then 200), recording each POST."""

    def __init__(self, port: int, answers: list[int]) -> None:
        self.answers = answers
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.answers.pop(0) if receiver.answers else 200
                receiver.received.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def store(postgres: PostgresCluster) -> Iterator[PostgresJobStore]:
    store = PostgresJobStore(postgres.new_database())
    yield store
    store.close()


def _finished_job(store: JobStore, callback_url: str) -> str:
    job, _ = store.submit(NewJob("predict", b"{}", "application/json", callback_url=callback_url))
    claimed = store.claim("runner", ["predict"])
    assert claimed is not None and claimed.id == job.id
    assert store.finish(job.id, "runner", result=b"[0]")
    return job.id


def _document(store: JobStore) -> Any:
    def document(job_id: str) -> dict[str, Any] | None:
        job = store.get(job_id)
        return None if job is None else {"id": job.id, "status": job.status.value, "attempts": job.attempts}

    return document


async def _until(condition: Any) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, "gave up waiting"
        await asyncio.sleep(0.02)


def test_a_target_down_at_first_gets_the_signed_callback_later(store: PostgresJobStore) -> None:
    port = _unused_port()  # nothing listens there yet: connections are refused
    job_id = _finished_job(store, f"http://127.0.0.1:{port}/hook?from=test")
    settings = WebhookSettings(base_delay=0.05, max_delay=0.2, poll_interval=0.05)
    receiver: Receiver | None = None

    async def scenario() -> None:
        nonlocal receiver
        sender = WebhookSender(store, SECRET, settings=settings)  # as the jobs service makes and drives it
        sender.start()
        try:
            await _until(lambda: store.deliveries(job_id)[0].attempts >= 2)
            refused = store.deliveries(job_id)[0]
            assert (refused.delivered, refused.last_status) == (False, None)
            assert "refused" in (refused.last_error or "").lower()
            receiver = Receiver(port, [503])  # up, but failing once more
            await _until(lambda: store.deliveries(job_id)[0].delivered)
        finally:
            await sender.stop()

    try:
        asyncio.run(scenario())
    finally:
        if receiver is not None:
            receiver.close()
    assert receiver is not None
    assert [status for _, _, status in receiver.received] == [503, 200]
    headers, body, _ = receiver.received[-1]
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Modelbundle-Signature"] == f"sha256={expected}"
    assert abs(int(headers["X-Modelbundle-Timestamp"]) - time.time()) < 3600
    document = json.loads(body)  # the job's status document, as GET .../jobs/<id> answers it
    assert (document["id"], document["status"], document["attempts"]) == (job_id, "succeeded", 1)
    (delivery,) = store.deliveries(job_id)
    assert delivery.delivered and delivery.attempts >= 4 and delivery.last_status == 200


def test_a_hanging_target_holds_up_no_other_delivery(store: PostgresJobStore) -> None:
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(8)  # accepts connections and never answers
    receiver = Receiver(_unused_port(), [])
    stuck = _finished_job(store, f"http://127.0.0.1:{hanging.getsockname()[1]}/hook")
    fine = _finished_job(store, f"http://127.0.0.1:{receiver.server.server_port}/hook")
    settings = WebhookSettings(timeout=600, poll_interval=0.05)

    async def scenario() -> None:
        sender = asyncio.create_task(WebhookSender(store, settings=settings, document=_document(store)).run())
        try:
            await _until(lambda: store.deliveries(fine)[0].delivered)
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    try:
        asyncio.run(scenario())
    finally:
        receiver.close()
        hanging.close()
    assert store.deliveries(stuck)[0].attempts == 0, "the hanging attempt was still in flight"
    assert [json.loads(body)["id"] for _, body, _ in receiver.received] == [fine]
    assert "X-Modelbundle-Signature" not in receiver.received[0][0], "signed without a secret"


def test_an_answer_that_is_not_http_is_a_failed_attempt_not_a_crash() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer_garbage() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"SSH-2.0-OpenSSH\r\n")
        conn.close()

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    attempt = asyncio.run(post(f"http://127.0.0.1:{server.getsockname()[1]}/", b"{}", {}, 30))
    thread.join()
    server.close()
    assert attempt.status is None and not attempt.delivered
    assert "not an HTTP answer" in (attempt.error or "")


def test_retry_delays_grow_to_the_cap_with_jitter() -> None:
    settings = WebhookSettings(base_delay=1.0, max_delay=60.0)
    for attempts in range(1, 12):
        ceiling = min(60.0, 2.0 ** (attempts - 1))
        delays = {retry_delay(attempts, settings) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1, "no jitter"
