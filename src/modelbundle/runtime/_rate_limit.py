"""``RateLimiter``: ``--rate-limit N/s`` (or ``N/m``) per caller, a token bucket each.

A caller is its API key's name, or its client address when the server has no keys.
A bucket holds up to N tokens (so a burst of N passes) and refills at N per period;
a request takes one token or is answered 429 with Retry-After, the whole seconds until
a token is back. The buckets live in one worker's memory: with ``--workers 4`` a caller
gets up to 4 x N, and a restart forgets them.
"""

from __future__ import annotations

import math
import re
import time

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute)\s*$", re.IGNORECASE)
_PERIOD_S = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
#: buckets kept before the full ones (callers idle for a whole period) are dropped
MAX_IDLE_BUCKETS = 10_000


def parse_rate(value: str) -> tuple[float, float]:
    """``"10/s"`` or ``"600/m"`` -> (burst, tokens per second)."""
    match = _RATE.match(value)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"not a rate: {value!r} (try 10/s or 600/m: requests per second or per minute)")
    count = float(match.group(1))
    return count, count / _PERIOD_S[match.group(2).lower()]


class RateLimiter:
    """One token bucket per caller."""

    def __init__(self, rate: str) -> None:
        self.burst, self.per_second = parse_rate(rate)
        #: caller -> (tokens, when they were counted)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, caller: str) -> float:
        """Take a token for ``caller``: 0 if it had one, else the seconds until it will."""
        now = time.monotonic()
        tokens, then = self._buckets.get(caller, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.per_second)
        if tokens >= 1:
            self._store(caller, tokens - 1, now)
            return 0.0
        self._store(caller, tokens, now)
        return (1 - tokens) / self.per_second

    def _store(self, caller: str, tokens: float, now: float) -> None:
        if caller not in self._buckets and len(self._buckets) >= MAX_IDLE_BUCKETS:
            self._forget_full(now)
        self._buckets[caller] = (tokens, now)

    def _forget_full(self, now: float) -> None:
        """A bucket that has refilled is the same as none: drop those, so many callers cost no memory."""
        full_after = self.burst / self.per_second
        self._buckets = {c: (t, at) for c, (t, at) in self._buckets.items() if now - at < full_after}


def retry_after(seconds: float) -> str:
    """Retry-After in whole seconds, at least 1 (the header takes no fractions)."""
    return str(max(1, math.ceil(seconds)))
