"""``current_job()``: what a running job's API code sees of its job, to report progress.

At the top of the package, not in ``runtime/jobs``: ``import modelbundle`` must stay light,
and user code imports ``current_job`` from there.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class JobContext:
    """The job an API call is running for (see ``modelbundle.current_job``)."""

    id: str
    attempt: int
    _report: Callable[[float, str | None], None]

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Record how far the job is (0 to 1) and what it is doing; ``GET .../jobs/<id>`` shows it.

        Cheap to call often: the latest value is written to the store a few times a second at most.
        """
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress takes a fraction from 0 to 1, not {fraction!r}")
        self._report(float(fraction), message)


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar("modelbundle_job", default=None)


def current_job() -> JobContext | None:
    """The job the calling API code runs for, or None outside a job.

    A batchable API's calls are merged across requests and jobs, so inside a batch there is no
    single job: None there too.

    ```python
    @api
    def score(self, rows: list[Row]) -> list[float]:
        job = current_job()
        for i, row in enumerate(rows):
            ...
            if job is not None:
                job.progress((i + 1) / len(rows), f"row {i + 1} of {len(rows)}")
    ```
    """
    return _current.get()


def set_current_job(context: JobContext | None) -> contextvars.Token[JobContext | None]:
    return _current.set(context)
