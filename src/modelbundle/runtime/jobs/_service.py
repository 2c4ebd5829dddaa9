"""``JobsService``: the jobs of one worker, started and stopped by the app's lifespan.

Where the store is and who owns it:

* SQLite, one worker: this process locks the folder, and at start re-queues every job left
  running (their server died; at most ``--job-max-attempts`` runs, then failed).
* SQLite, ``--workers N``: the server's parent process locks the folder and re-queues at start
  (``prepare_jobs_for_workers``); every worker runs a runner over the same database (claims are
  ``BEGIN IMMEDIATE`` transactions), and the jobs of a worker that died while serving are
  re-queued once it has not beaten for ``--job-lease`` seconds.
* PostgreSQL: no lock; every replica re-queues jobs whose runner stopped beating.

The default folder ($MODELBUNDLE_HOME/jobs/<service>) is best effort: if it cannot be made or
another server holds it, this server serves without jobs and says why in its log (a second
copy of a service on one machine, a read-only home). A folder given with --jobs-dir must work.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import math
from collections.abc import Callable, Mapping
from typing import Protocol

from ...errors import ModelbundleError, Overloaded, ServeError
from ...service_base import APIMethod
from .._config import ServeConfig
from .._types import Invoke
from ._lock import DirectoryLock
from ._open import jobs_directory, lock_directory, open_store
from ._runner import JobRunner, RunnerSettings
from ._store import JobStore

logger = logging.getLogger("modelbundle.jobs")
#: the webhook sender, "module:class"; built as ``cls(store, secret)`` (``_webhooks.py``)
WEBHOOK_SENDER = "modelbundle.runtime.jobs._webhooks:WebhookSender"


class WebhookSender(Protocol):
    """Sends the deliveries the store records (``JobStore.claim_deliveries``), on its own tasks:
    never blocking the runner, health or cancellation."""

    def start(self) -> None:
        """Begin sending (called on the event loop, once the runner runs)."""

    def wake(self, job_id: str) -> None:
        """``job_id`` just finished or was cancelled: its delivery (if any) is due now."""

    async def stop(self) -> None:
        """Stop sending; undelivered deliveries stay in the store for the next start."""


def job_apis(apis: Mapping[str, APIMethod]) -> list[APIMethod]:
    """The APIs that can run as jobs: all but streaming and WebSocket ones (a job has one result)."""
    return [api for api in apis.values() if not api.streaming and not api.websocket]


def prepare_jobs_for_workers(config: ServeConfig, service_name: str) -> tuple[ServeConfig, DirectoryLock | None]:
    """In the parent of several workers: lock the SQLite folder and re-queue what a dead server left.

    Returns the workers' config (jobs turned off when the default folder is unusable) and the lock to hold.
    """
    if not config.jobs or config.jobs_url is not None:
        return config, None
    directory = jobs_directory(config, service_name)
    try:
        lock = lock_directory(directory)
    except ServeError as exc:
        if config.jobs_dir is not None:
            raise
        logger.warning("serving without jobs: %s", exc)
        return config.model_copy(update={"jobs": False}), None
    store = open_store(config, directory)
    try:
        _requeue_orphans(store, config.job_max_attempts)
    finally:
        store.close()
    return config.model_copy(update={"jobs_dir": str(directory)}), lock


class JobsService:
    def __init__(self, service_name: str, config: ServeConfig, may_claim: Callable[[], bool]) -> None:
        self._service_name = service_name
        self._config = config
        self._may_claim = may_claim
        self.store: JobStore | None = None
        self.runner: JobRunner | None = None
        self.webhooks: WebhookSender | None = None
        self._lock: DirectoryLock | None = None
        #: why jobs are off, for the 503 the job routes answer
        self.off_reason = "jobs are off (--no-jobs)" if not config.jobs else "the service is not ready"

    def open(self) -> None:
        """Open the store (before the artifacts load, so a bad --jobs-dir fails fast)."""
        config = self._config
        if not config.jobs:
            return
        directory = jobs_directory(config, self._service_name)
        try:
            if config.jobs_url is None and config.workers == 1:
                self._lock = lock_directory(directory)
            self.store = open_store(config, directory)
            if config.jobs_url is None and config.workers == 1:
                _requeue_orphans(self.store, config.job_max_attempts)
        except ModelbundleError as exc:
            self.close()
            if config.jobs_dir is not None or config.jobs_url is not None:
                raise
            self.off_reason = f"jobs are off on this server: {exc}"
            logger.warning("serving without jobs: %s", exc)

    def start(self, apis: dict[str, tuple[APIMethod, Invoke]]) -> None:
        if self.store is None:
            return
        config = self._config
        shared = config.jobs_url is not None or config.workers > 1
        settings = RunnerSettings(
            concurrency=config.job_concurrency,
            max_attempts=config.job_max_attempts,
            ttl=config.job_ttl,
            stale_after=config.job_lease if shared else None,
        )
        self.webhooks = _webhook_sender(self.store, config.webhook_secret)
        on_finished = self.webhooks.wake if self.webhooks is not None else (lambda job_id: None)
        self.runner = JobRunner(self.store, apis, settings, may_claim=self._may_claim, on_finished=on_finished)
        self.runner.start()
        if self.webhooks is not None:
            self.webhooks.start()

    async def stop(self, timeout: float, *, inline: bool = False) -> None:
        """Drain the runner, stop the sender, close the store; ``inline``: no threads (interpreter exit)."""
        if self.runner is not None:
            await self.runner.stop(timeout, inline=inline)
            self.runner = None
        if self.webhooks is not None:
            await self.webhooks.stop()
            self.webhooks = None
        if inline:
            self.close()
        elif self.store is not None or self._lock is not None:
            await asyncio.to_thread(self.close)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def require(self) -> tuple[JobStore, JobRunner]:
        """The store and runner for a job route, or a 503 saying why there are none."""
        if self.store is None or self.runner is None:
            raise Overloaded(self.off_reason, headers={"Retry-After": "1"})
        return self.store, self.runner


def _webhook_sender(store: JobStore, secret: str | None) -> WebhookSender | None:
    """The sender, once its module is there (it is written beside this one, separately)."""
    module_name, _, class_name = WEBHOOK_SENDER.partition(":")
    if importlib.util.find_spec(module_name) is None:
        return None
    sender: WebhookSender = getattr(importlib.import_module(module_name), class_name)(store, secret)
    return sender


def _requeue_orphans(store: JobStore, max_attempts: int) -> None:
    requeued, failed = store.requeue_stale(math.inf, max_attempts)
    if requeued or failed:
        logger.warning(
            "jobs left running by a server that stopped: %d re-queued, %d failed after %d attempts", requeued, failed, max_attempts
        )


__all__ = ["JobsService", "job_apis", "prepare_jobs_for_workers"]
