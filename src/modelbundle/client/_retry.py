"""When to call again after a 503: the server's Retry-After, bounded, else a growing pause."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` more tries after a 503, each after the answer's Retry-After (at most ``max_wait``
    seconds); an answer without one waits ``backoff`` seconds, doubled each time."""

    retries: int = 3
    max_wait: float = 30.0
    backoff: float = 0.5

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first)."""
        wait = _parse_retry_after(retry_after)
        if wait is None:
            wait = self.backoff * 2**attempt
        return min(max(wait, 0.0), self.max_wait)


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After is whole seconds or an HTTP date (RFC 9110 10.2.3); anything else is ignored."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()
