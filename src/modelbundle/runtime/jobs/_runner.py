"""``JobRunner``: N slots that claim queued jobs and run them through the APIs' own invoke.

The invoke is the one the HTTP endpoint uses, so a batchable API's jobs join its micro-batcher
with the requests. A ticker beats for the running jobs (and learns which were cancelled
elsewhere), writes reported progress, re-queues the jobs of dead runners (when configured:
several workers or replicas share the queue) and purges finished jobs past their TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..._job_context import JobContext, set_current_job
from ...errors import RequestError
from ...service_base import APIMethod
from .._codec import decode_request_off_loop
from .._spans import job_run_span
from .._types import Invoke
from ._result import ResultNotEncodable, pack_result
from ._store import Job, JobStore

logger = logging.getLogger("modelbundle.jobs")

#: how often idle slots look for work they were not woken for, when other workers or replicas share
#: the queue; alone on it, a runner is woken by its own submits and never polls
POLL_SECONDS = 0.5
#: how often progress is written and running jobs beat
TICK_SECONDS = 0.25
#: at most; a shorter --job-lease beats three times per lease
HEARTBEAT_SECONDS = 2.0


@dataclass(frozen=True)
class RunnerSettings:
    concurrency: int
    max_attempts: int
    ttl: float  # seconds a finished job is kept
    #: re-queue running jobs whose runner has not beaten for this long; None: never (SQLite,
    #: one worker, where the start-up re-queue covers a dead server)
    stale_after: float | None = None


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        apis: dict[str, tuple[APIMethod, Invoke]],
        settings: RunnerSettings,
        *,
        may_claim: Callable[[], bool] = lambda: True,
        on_finished: Callable[[str], None] = lambda job_id: None,
    ) -> None:
        self.store = store
        self.owner = uuid.uuid4().hex
        self._apis = apis
        self._names = list(apis)
        self._settings = settings
        self._may_claim = may_claim
        #: told the id of each job that reached a final state here (the webhook sender wakes on it)
        self.on_finished = on_finished
        self._wake = asyncio.Event()
        self._stopping = False
        self._slots: list[asyncio.Task[None]] = []
        self._ticker: asyncio.Task[None] | None = None
        #: job id -> the task running it
        self._running: dict[str, asyncio.Task[None]] = {}
        #: job id -> the latest (fraction, message) not yet written; set from any thread
        self._progress: dict[str, tuple[float, str | None]] = {}

    def start(self) -> None:
        self._slots = [asyncio.create_task(self._slot(), name=f"job-slot-{i}") for i in range(self._settings.concurrency)]
        self._ticker = asyncio.create_task(self._tick(), name="job-ticker")

    def wake(self) -> None:
        """A job was queued: idle slots claim at once instead of at their next poll."""
        self._wake.set()

    def cancel_local(self, job_id: str) -> bool:
        """Stop the task running ``job_id`` here, if any (the store already says cancelled)."""
        task = self._running.get(job_id)
        if task is None:
            return False
        task.cancel()
        return True

    async def stop(self, timeout: float, *, inline: bool = False) -> None:
        """Drain: claim nothing more, give running jobs ``timeout`` seconds, hand the rest back to the queue.

        ``inline``: call the store on this thread (at interpreter exit, thread pools take no work).
        """
        self._stopping = True
        self._wake.set()
        running = list(self._running.values())
        if running:
            logger.info("waiting up to %g s for %d running job(s)", timeout, len(running))
            _, pending = await asyncio.wait(running, timeout=timeout)
            for task in pending:
                task.cancel()
        for task in self._slots:
            task.cancel()
        await asyncio.gather(*self._slots, return_exceptions=True)
        if inline:
            requeued = self.store.requeue_owned(self.owner)
        else:
            requeued = await asyncio.to_thread(self.store.requeue_owned, self.owner)
        if requeued:
            logger.warning("%d running job(s) did not finish within the graceful timeout; re-queued", requeued)
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker

    # -- slots --------------------------------------------------------------------------
    async def _slot(self) -> None:
        while not self._stopping:
            # cleared before the claim, so a job queued during it sets the event again: no wake-up is lost
            self._wake.clear()
            job = None
            if self._may_claim():
                try:
                    job = await asyncio.to_thread(self.store.claim, self.owner, self._names)
                except Exception:
                    logger.exception("claiming a job failed; retrying")
            if job is None:
                await self._wake.wait()
                continue
            task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
            self._running[job.id] = task
            try:
                await asyncio.shield(task)  # a drain cancels this slot, not the job: stop() decides about the job
            except asyncio.CancelledError:
                if not task.done():
                    raise
            except Exception:  # the store failed while finishing: the slot carries on with the next job
                logger.exception("job %s could not be finished; it is re-run when the queue is next recovered", job.id)
            finally:
                if task.done():
                    self._running.pop(job.id, None)
                    self._progress.pop(job.id, None)

    async def _run(self, job: Job) -> None:
        api, invoke = self._apis[job.api]
        outcome: dict[str, Any]
        try:
            body = await asyncio.to_thread(self.store.read_body, job.id)
            kwargs = await decode_request_off_loop(api, body, job.content_type)
            set_current_job(JobContext(job.id, job.attempts, lambda f, m: self._report(job.id, f, m)))
            with job_run_span(api.name, job.id, job.attempts, job.traceparent):
                value = await invoke(kwargs)
            outcome = {"result": await asyncio.to_thread(pack_result, api.output, value)}
        except asyncio.CancelledError:
            return  # cancelled (the store says so) or drained (stop() re-queues it)
        except RequestError as exc:  # the API rejected its input (InvalidInput from user code)
            outcome = {"error": f"{exc.error_type}: {exc.message}"}
        except ResultNotEncodable as exc:
            outcome = {"error": f"{api.name} {exc}"}
        except Exception as exc:
            logger.exception("job %s: %s raised", job.id, api.name)
            outcome = {"error": f"{api.name} raised {type(exc).__name__}: {exc}"}
        self._progress.pop(job.id, None)
        if await asyncio.to_thread(self._finish, job.id, outcome):
            self.on_finished(job.id)
        else:
            logger.info("job %s was cancelled or handed to another runner while it ran; its outcome is discarded", job.id)

    def _finish(self, job_id: str, outcome: dict[str, Any]) -> bool:
        return self.store.finish(job_id, self.owner, **outcome)

    def _report(self, job_id: str, fraction: float, message: str | None) -> None:
        self._progress[job_id] = (fraction, message)  # one dict store: safe from any thread

    # -- the ticker ---------------------------------------------------------------------
    async def _tick(self) -> None:
        last_beat = last_sweep = last_purge = last_poll = 0.0
        sweep_every = (self._settings.stale_after or math.inf) / 4
        beat_every = min(HEARTBEAT_SECONDS, (self._settings.stale_after or math.inf) / 3)
        purge_every = min(max(self._settings.ttl / 4, TICK_SECONDS), 60.0)
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.monotonic()
            if self._settings.stale_after is not None and now - last_poll >= POLL_SECONDS:
                last_poll = now
                self.wake()
            try:
                await self._flush_progress()
                if now - last_beat >= beat_every and self._running:
                    last_beat = now
                    for job_id in await asyncio.to_thread(self.store.heartbeat, self.owner, list(self._running)):
                        self.cancel_local(job_id)  # cancelled by another replica, or taken for dead
                if now - last_sweep >= sweep_every:
                    last_sweep = now
                    await self._requeue_stale()
                if now - last_purge >= purge_every:
                    last_purge = now
                    purged = await asyncio.to_thread(self.store.purge, time.time() - self._settings.ttl)
                    if purged:
                        logger.info("purged %d finished job(s) older than --job-ttl", purged)
            except Exception:  # a store hiccup must not end the ticker: the next tick tries again
                logger.exception("job bookkeeping failed; retrying")

    async def _requeue_stale(self) -> None:
        assert self._settings.stale_after is not None
        requeued, failed = await asyncio.to_thread(
            self.store.requeue_stale, time.time() - self._settings.stale_after, self._settings.max_attempts
        )
        if requeued or failed:
            logger.warning("jobs of a runner that stopped beating: %d re-queued, %d failed (attempts used up)", requeued, failed)
            self.wake()

    async def _flush_progress(self) -> None:
        while self._progress:
            job_id, (fraction, message) = self._progress.popitem()
            await asyncio.to_thread(self.store.set_progress, job_id, self.owner, fraction, message)
