"""Step batching: concurrent generations of one ``@openai.generate`` model share step calls.

One loop per model. Each turn it takes up to ``max_batch_size`` live sequences and
calls the step function once, which advances each of them by one token. Policy:

- A new generation joins the running batch at the next step (it never waits for the
  others to finish); a finished one leaves at once, its answer ends right away.
- A cancelled one (its client went away) is dropped before the next step is built.
- With more live sequences than ``max_batch_size``, the batch rotates, so every
  sequence advances in turn; with step batching off the batch is one sequence.
- A sync step runs on a worker thread, an ``async`` one on the event loop. A step that
  raises (or answers with the wrong number of items) fails the sequences of that step
  only: their answers end with a 500, the others carry on.

``max_tokens`` and stop sequences are enforced here: text that could be the start of
a stop sequence is held back until it is known not to be one, and the stop text is
never sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ModelError
from ..openai import Sequence
from ._metrics import GenerationMetrics

logger = logging.getLogger("modelbundle.generation")


@dataclass(frozen=True)
class Delta:
    """What a generation adds to its answer: text, and a finish reason on its last delta."""

    index: int
    text: str
    finish_reason: str | None = None
    #: a step failure ends the generation with this error instead
    error: ModelError | None = None


class Generation:
    """One sequence being generated: its deltas go to ``events``, shared by a request's ``n`` choices."""

    __slots__ = ("_sent", "cancelled", "completion_tokens", "events", "finished", "sequence", "started", "stop")

    def __init__(self, sequence: Sequence, stop: list[str], events: asyncio.Queue[Delta]) -> None:
        self.sequence = sequence
        self.stop = [s for s in stop if s]
        self.events = events
        self.cancelled = False
        self.finished = False
        self.completion_tokens = 0
        self.started = time.perf_counter()
        self._sent = 0  # characters of sequence.text already handed out

    def advance(self, token: str | None) -> bool:
        """Take the step's answer for this sequence; True when the generation is over."""
        if token is None:
            return self._finish("stop", len(self.sequence.text))
        self.sequence.tokens.append(token)
        self.completion_tokens += 1
        text = self.sequence.text
        # the text already out holds no start of a stop sequence (see _held_back): search only the rest
        hits = [found for stop in self.stop if (found := text.find(stop, self._sent)) != -1]
        if hits:
            return self._finish("stop", min(hits))
        limit = self.sequence.max_tokens
        if limit is not None and self.completion_tokens >= limit:
            return self._finish("length", len(text))
        ready = len(text) - _held_back(text, self.stop)
        if ready > self._sent:
            self.events.put_nowait(Delta(self.sequence.index, text[self._sent : ready]))
            self._sent = ready
        return False

    def fail(self, error: ModelError) -> None:
        self.finished = True
        self.events.put_nowait(Delta(self.sequence.index, "", "error", error))

    def _finish(self, reason: str, end: int) -> bool:
        self.finished = True
        self.events.put_nowait(Delta(self.sequence.index, self.sequence.text[self._sent : end], reason))
        self._sent = end
        return True


def _held_back(text: str, stops: list[str]) -> int:
    """How many trailing characters of ``text`` could begin a stop sequence (so may not go out yet)."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


class StepScheduler:
    """Runs the generations of one model in shared step calls (see the module docstring)."""

    def __init__(
        self,
        step: Callable[[list[Sequence]], Any],
        *,
        is_async: bool,
        max_batch_size: int,
        metrics: GenerationMetrics,
        run_in_thread: Callable[..., Any],
    ) -> None:
        self._step = step
        self._is_async = is_async
        self.max_batch_size = max_batch_size
        self._metrics = metrics
        self._run_in_thread = run_in_thread
        self._live: deque[Generation] = deque()
        self._wakeup = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def active(self) -> int:
        return len(self._live)

    def submit(self, sequence: Sequence, stop: list[str], events: asyncio.Queue[Delta]) -> Generation:
        """Start a generation; it joins the batch at the next step."""
        generation = Generation(sequence, stop, events)
        if sequence.max_tokens == 0:
            generation._finish("length", 0)
            return generation
        self._live.append(generation)
        self._metrics.active.inc()
        self._wakeup.set()
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._run_forever())
        return generation

    def cancel(self, generation: Generation) -> None:
        """The client went away: the generation leaves before the next step."""
        generation.cancelled = True

    async def close(self) -> None:
        self._closed = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        for generation in self._live:
            generation.fail(ModelError("the server stopped before this generation finished"))
        self._live.clear()

    async def _run_forever(self) -> None:
        while not self._closed:
            batch = self._take_batch()
            if not batch:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._run_step(batch)

    def _take_batch(self) -> list[Generation]:
        for generation in [g for g in self._live if g.cancelled or g.finished]:
            self._leave(generation)
        batch = []
        for _ in range(min(self.max_batch_size, len(self._live))):
            generation = self._live.popleft()
            batch.append(generation)
            self._live.append(generation)  # rotated: the next batch starts with those left out of this one
        return batch

    async def _run_step(self, batch: list[Generation]) -> None:
        sequences = [g.sequence for g in batch]
        self._metrics.step_batch_size.observe(len(sequences))
        try:
            if self._is_async:
                tokens = await self._step(sequences)
            else:
                tokens = await self._run_in_thread(self._step, sequences)
            if not isinstance(tokens, list | tuple) or len(tokens) != len(batch):
                got = f"{len(tokens)} items" if isinstance(tokens, list | tuple) else type(tokens).__name__
                raise TypeError(f"the step returned {got} for {len(batch)} sequences; it returns one str or None per sequence")
            for token in tokens:
                if token is not None and not isinstance(token, str):
                    raise TypeError(f"the step returned {type(token).__name__}; each item is the next token's text (str) or None")
        except Exception as exc:
            logger.error("a step of %s raised; failing its %d sequences", self._metrics.model, len(batch), exc_info=exc)
            error = ModelError(f"the model's step raised {type(exc).__name__}: {exc}")
            for generation in batch:
                generation.fail(error)
                self._leave(generation)
            return
        now = time.perf_counter()
        for generation, token in zip(batch, tokens, strict=True):
            if generation.cancelled:  # left while the step ran: nobody reads its answer
                self._leave(generation)
                continue
            if generation.completion_tokens == 0 and token is not None:
                self._metrics.time_to_first_token.observe(now - generation.started)
            if token is not None:
                self._metrics.tokens.inc()
            if generation.advance(token):
                self._leave(generation)

    def _leave(self, generation: Generation) -> None:
        try:
            self._live.remove(generation)
        except ValueError:
            return
        self._metrics.active.dec()
