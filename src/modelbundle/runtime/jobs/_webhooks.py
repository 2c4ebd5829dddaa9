"""Webhooks: a finished job's status document POSTed to its ``callback_url``, signed, retried.

The store records each delivery (``finish``/``cancel`` add one in the transaction that
ends the job) and each attempt, so a delivery survives restarts and shows in the job's
status document. ``WebhookSender`` is one background task per server: it takes due
deliveries from the store (leased, so two replicas never send one twice at once),
POSTs each in a task of its own with a timeout, and records the outcome. A target
that is down or slow therefore never holds up health checks, other jobs, other
deliveries or cancellation.

Signature: ``X-Modelbundle-Signature: sha256=<hex>``, the HMAC-SHA256 of the exact
body with the server's secret (``--webhook-secret`` or ``MODELBUNDLE_WEBHOOK_SECRET``);
``X-Modelbundle-Timestamp`` says when the attempt was made (seconds since the epoch).
Without a secret, deliveries go unsigned.

Retries: exponential back-off with jitter, capped (``WebhookSettings``), until the
delivery is ``give_up_after`` old (24 h by default); then it is left undelivered, and the
job's status says so. Any 2xx answer is a delivery; anything else, or no answer, is retried.

The POST is a few lines of asyncio streams rather than an HTTP client library: the runtime
needs nothing beyond what ``bundle serve`` installs (httpx is in the ``build`` extra), and an
async socket lets a dead target cost no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._document import status_document
from ._store import Delivery, JobStore

SIGNATURE_HEADER = "X-Modelbundle-Signature"
TIMESTAMP_HEADER = "X-Modelbundle-Timestamp"
SECRET_ENV = "MODELBUNDLE_WEBHOOK_SECRET"
USER_AGENT = "modelbundle-webhooks"
_RANDOM = random.Random()


@dataclass(frozen=True)
class WebhookSettings:
    """How deliveries are retried."""

    #: the first retry waits about this long; each next one twice as long, up to ``max_delay``
    base_delay: float = 2.0
    max_delay: float = 600.0
    give_up_after: float = 24 * 3600.0
    #: one attempt's limit, connecting and answering
    timeout: float = 10.0
    #: how often the store is asked for due deliveries when nothing wakes the sender
    poll_interval: float = 1.0
    #: deliveries in flight at once, per server
    concurrency: int = 16


DEFAULT_SETTINGS = WebhookSettings()


def sign(body: bytes, secret: str) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def retry_delay(attempts: int, settings: WebhookSettings, rng: random.Random | None = None) -> float:
    """Seconds before the next try after ``attempts`` failed ones: doubling, capped, and jittered
    (half fixed, half random) so that targets coming back are not hit by every sender at once."""
    ceiling = min(settings.max_delay, settings.base_delay * 2.0 ** max(attempts - 1, 0))
    return ceiling / 2 + (rng or _RANDOM).uniform(0, ceiling / 2)


def job_document(store: JobStore) -> Callable[[str], dict[str, Any] | None]:
    """What a delivery POSTs: the job's status document as GET .../jobs/<id> answers it, or None once purged."""

    def document(job_id: str) -> dict[str, Any] | None:
        job = store.get(job_id)
        return None if job is None else status_document(job, store.deliveries(job_id))

    return document


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: the HTTP status (None: no answer) and why it is not a delivery."""

    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
    """POST ``body`` to ``url`` (http or https) and read the status line; never raises for network trouble."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host, port = parts.hostname or "", parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc.rpartition('@')[2]}", f"User-Agent: {USER_AGENT}",
             "Content-Type: application/json", f"Content-Length: {len(body)}", "Connection: close",
             *(f"{name}: {value}" for name, value in headers.items())]  # fmt: skip
    writer = None

    async def exchange() -> bytes:
        nonlocal writer
        reader, writer = await asyncio.open_connection(host, port, ssl=ssl.create_default_context() if secure else None)
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        return await reader.readline()

    try:
        status_line = await asyncio.wait_for(exchange(), timeout)
    except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
        return Attempt(None, f"no answer within {timeout:g} s")
    except (OSError, ssl.SSLError, UnicodeError) as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}")
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    fields = status_line.decode("latin-1").split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        return Attempt(None, f"not an HTTP answer: {status_line[:80]!r}")
    status = int(fields[1])
    return Attempt(status, None if 200 <= status < 300 else f"HTTP {status}")


class WebhookSender:
    """The background task that sends due deliveries: ``start()`` on the event loop, ``stop()`` at the end.

    Made by the jobs service as ``WebhookSender(store, secret)`` (``_service.py``); the runner
    calls ``wake(job_id)`` when a job ends, so its webhook goes at once rather than at the next
    poll. ``document(job_id)`` gives what is POSTed (default: the job's status document), or None
    once the job is gone (purged): its delivery is then given up.
    """

    def __init__(
        self,
        store: JobStore,
        secret: str | None = None,
        *,
        settings: WebhookSettings = DEFAULT_SETTINGS,
        document: Callable[[str], dict[str, Any] | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.secret = secret
        self.settings = settings
        self.document = document or job_document(store)
        self.clock = clock
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="modelbundle-webhooks")

    def wake(self, job_id: str) -> None:
        """A job just ended: look for due deliveries now rather than at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop sending: an attempt in flight is dropped, and its delivery tried again after its lease."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run(self) -> None:
        """Send due deliveries until cancelled (``start`` runs it as a task)."""
        try:
            while True:
                free = self.settings.concurrency - len(self._in_flight)
                if free > 0:
                    # leased for longer than one attempt can take, so no other sender takes it meanwhile
                    lease = self.settings.timeout + 30
                    due = await asyncio.to_thread(self.store.claim_deliveries, self.clock(), lease, free)
                    for delivery in due:
                        task = asyncio.create_task(self._attempt(delivery))
                        self._in_flight.add(task)
                        task.add_done_callback(self._in_flight.discard)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)
                self._wake.clear()
        finally:
            for task in list(self._in_flight):
                task.cancel()  # an unfinished attempt stays leased, and is tried again after the lease

    async def _attempt(self, delivery: Delivery) -> None:
        document = await asyncio.to_thread(self.document, delivery.job_id)
        if document is None:
            await asyncio.to_thread(
                self.store.record_delivery, delivery.id, status=None, error="the job is gone",
                delivered=False, next_attempt_at=None,
            )  # fmt: skip
            return
        body = json.dumps(document, separators=(",", ":")).encode()
        headers = {TIMESTAMP_HEADER: str(int(self.clock()))}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(body, self.secret)
        outcome = await post(delivery.url, body, headers, self.settings.timeout)
        now = self.clock()
        # delivered: the time it was (the status document's delivered_at); else when to try again
        next_attempt_at: float | None = now
        if not outcome.delivered:
            next_attempt_at = now + retry_delay(delivery.attempts + 1, self.settings)
            if next_attempt_at - delivery.created_at > self.settings.give_up_after:
                next_attempt_at = None  # given up: the status document shows the last error
        await asyncio.to_thread(
            self.store.record_delivery, delivery.id, status=outcome.status, error=outcome.error,
            delivered=outcome.delivered, next_attempt_at=next_attempt_at,
        )  # fmt: skip
        self._wake.set()  # a slot is free
