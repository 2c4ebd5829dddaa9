"""Streaming answers: a token-by-token text generator, a stream of numpy rows, a WebSocket.

The text model is a word-bigram (Markov) model built in ``setup()`` from
``corpus.txt`` beside this file: no download, and the same ``seed`` always
gives the same words. See README.md for curl and Python clients.
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from modelbundle import Service, api
from modelbundle.errors import InvalidInput

CORPUS = Path(__file__).resolve().parent / "corpus.txt"
_WORD = re.compile(r"[A-Za-z']+|[.,]")


class Prompt(BaseModel):
    prompt: str = Field("", max_length=10_000, description="Text to continue; its last word picks the first token.")
    max_tokens: int = Field(30, ge=1, le=1000, description="How many tokens to generate.")
    seed: int = Field(0, description="The same seed and prompt always give the same tokens.")
    delay_ms: float = Field(0, ge=0, le=1000, description="A pause before each token, to watch them arrive.")


class BigramModel:
    """Which words follow which in a text; generates by walking those pairs at random."""

    def __init__(self, text: str) -> None:
        words = _WORD.findall(text.lower())
        followers: dict[str, list[str]] = {}
        for first, second in itertools.pairwise(words):
            followers.setdefault(first, []).append(second)
        self.followers = followers
        self.starts = sorted(followers)

    def tokens(self, prompt: str, seed: int) -> Iterator[str]:
        """An endless walk; each token is a word (with its leading space) or a punctuation mark."""
        rng = random.Random(seed)
        known = [w for w in _WORD.findall(prompt.lower()) if w in self.followers]
        word = known[-1] if known else rng.choice(self.starts)
        while True:
            word = rng.choice(self.followers.get(word) or self.starts)
            yield word if word in {".", ","} else " " + word


class StreamDemo(Service):
    """Three streaming APIs: SSE/NDJSON text tokens, NDJSON numpy rows, and a WebSocket."""

    def setup(self) -> None:
        self.model = BigramModel(CORPUS.read_text(encoding="utf-8"))

    @api
    def generate(self, request: Prompt) -> Iterator[str]:
        """Continue a prompt one token at a time (Server-Sent Events with Accept: text/event-stream)."""
        tokens = self.model.tokens(request.prompt, request.seed)
        for _ in range(request.max_tokens):
            if request.delay_ms:
                time.sleep(request.delay_ms / 1000)  # a sync API runs on a worker thread: sleeping is fine
            yield next(tokens)

    @api
    def walk(self, steps: int, dims: int = 3, seed: int = 0) -> Iterator[np.ndarray]:
        """A random walk: one row of ``dims`` floats per step, each step at most 1 in every dimension."""
        if not 1 <= steps <= 100_000 or not 1 <= dims <= 1000:
            # raised before the first row, so the client gets a plain 422, not a stream
            raise InvalidInput("steps must be 1 to 100000 and dims 1 to 1000")
        rng = np.random.default_rng(seed)
        position = np.zeros(dims)
        for _ in range(steps):
            position = position + rng.uniform(-1.0, 1.0, dims)
            yield position

    @api(websocket=True)
    async def shout(self, messages: AsyncIterator[str]) -> AsyncIterator[str]:
        """Echo each text message back in upper case, as it arrives."""
        async for message in messages:
            yield message.upper()
