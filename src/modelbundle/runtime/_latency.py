"""How long a batch of n rows takes: a linear fit with exponential forgetting.

Kept apart from the batcher's scheduling so each can be read (and tested) alone.
"""

from __future__ import annotations

# weight kept by older observations at each new one: ~10 batches of memory, so one slow
# warm-up call or a change of load is forgotten quickly
_DECAY = 0.9


class LatencyModel:
    """Estimates ``seconds(rows) = fixed + per_row * rows`` from observed batches."""

    __slots__ = ("_count", "_fixed", "_per_row", "_sn", "_snn", "_snt", "_st", "_sw")

    def __init__(self) -> None:
        self._sw = self._sn = self._st = self._snn = self._snt = 0.0
        self._count = 0
        self._fixed = 0.0
        self._per_row = 0.0

    @property
    def trained(self) -> bool:
        """True once a batch has been observed; before that, predictions are 0."""
        return self._count > 0

    def observe(self, rows: int, seconds: float) -> None:
        """Record that a batch of ``rows`` took ``seconds``."""
        d = _DECAY
        self._sw = self._sw * d + 1.0
        self._sn = self._sn * d + rows
        self._st = self._st * d + seconds
        self._snn = self._snn * d + rows * rows
        self._snt = self._snt * d + rows * seconds
        self._count += 1
        mean_n, mean_t = self._sn / self._sw, self._st / self._sw
        var_n = self._snn / self._sw - mean_n * mean_n
        if var_n > 1e-9:
            slope = (self._snt / self._sw - mean_n * mean_t) / var_n
            self._per_row = max(slope, 0.0)
            self._fixed = max(mean_t - self._per_row * mean_n, 0.0)
        else:  # every batch had the same size: no slope to learn, so treat the cost as fixed
            # (over-estimating bigger batches would refuse requests; under-estimating only queues a little)
            self._per_row = 0.0
            self._fixed = mean_t

    def predict(self, rows: int) -> float:
        """Estimated seconds for a batch of ``rows``."""
        return self._fixed + self._per_row * rows
