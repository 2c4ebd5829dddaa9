"""TinyLM: a word-bigram language model served through the OpenAI API, with step batching.

``train.py`` counts which word follows which in ``corpus.txt`` and writes ``model.json``;
no download. Each call of ``step`` advances every live generation by one word and
costs a fixed overhead plus a little per row (``TINYLM_STEP_OVERHEAD_MS``, default 2,
and ``TINYLM_ROW_COST_MS``, default 0.02), as a real model's forward pass does: batching
generations step by step is what makes many concurrent streams cheap. ``embed`` hashes
words into buckets and projects them with a fixed random matrix (seeded): similar texts
get similar vectors. See README.md for curl and ``openai`` client lines.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import zlib

import numpy as np

from modelbundle import Artifact, Service, openai
from modelbundle.errors import BadRequest

#: what follows the last word of a line in the corpus: the end of a generation
END = "<end>"
_WORD = re.compile(r"[A-Za-z']+|[.,;:!?]")
_PUNCTUATION = frozenset(".,;:!?")
EMBEDDING_DIMENSIONS = 64
_HASH_BUCKETS = 4096


def tokens(text: str) -> list[str]:
    """Words (lower case) and punctuation marks, in order: TinyLM's tokenizer."""
    return _WORD.findall(text.lower())


def _milliseconds(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        raise ValueError(f"{name} must be a number of milliseconds, got {value!r}") from None


class TinyLM(Service):
    """A word-bigram generator (model ``tinylm``) and a hashing embedder (model ``tinylm-embed``)."""

    name = "tinylm"
    #: written by train.py
    model = Artifact("file", path="model.json")

    def setup(self) -> None:
        counts = json.loads(self.model.read_text(encoding="utf-8"))
        self.followers: dict[str, dict[str, int]] = counts["followers"]
        self.starts: dict[str, int] = counts["starts"]
        self.step_overhead = _milliseconds("TINYLM_STEP_OVERHEAD_MS", 2.0) / 1000
        self.row_cost = _milliseconds("TINYLM_ROW_COST_MS", 0.02) / 1000
        # a fixed projection: the same seed on every replica gives the same vectors
        self.projection = np.random.default_rng(14).standard_normal((_HASH_BUCKETS, EMBEDDING_DIMENSIONS))

    @openai.generate(model="tinylm", max_batch_size=64, max_n=4)
    def step(self, batch: list[openai.Sequence]) -> list[str | None]:
        """The next word of every sequence; None where the model ends the text."""
        time.sleep(self.step_overhead + self.row_cost * len(batch))  # the cost of one forward pass
        return [self._next(sequence) for sequence in batch]

    def _next(self, sequence: openai.Sequence) -> str | None:
        if sequence.state is None:  # the first step: the prompt's last known word is where the walk starts
            prompt = sequence.prompt if isinstance(sequence.prompt, str) else ""
            known = [w for w in tokens(prompt) if w in self.followers and w not in _PUNCTUATION]
            sequence.state = known[-1] if known else None
        choices = self.followers.get(sequence.state) if sequence.state else self.starts
        word = _sample(choices or self.starts, sequence)
        if word == END:
            return None
        sequence.state = word
        return word if word in _PUNCTUATION else " " + word

    @openai.tokenize
    def count_tokens(self, text: str) -> list[str]:
        return tokens(text)

    @openai.chat_template
    def render(self, messages: list[openai.Message]) -> str:
        """The conversation as lines; the model continues from the last user message's last known word."""
        return "\n".join(f"{m.role}: {m.content}" for m in messages) + "\nassistant:"

    @openai.embeddings(model="tinylm-embed", max_batch_size=256, dimensions=True)
    def embed(self, texts: list[str], dimensions: int | None) -> np.ndarray:
        """Unit vectors of 64 floats (or the first ``dimensions`` of them, normalised again)."""
        if dimensions is not None and not 1 <= dimensions <= EMBEDDING_DIMENSIONS:
            raise BadRequest(f"tinylm-embed has 1 to {EMBEDDING_DIMENSIONS} dimensions, not {dimensions}")
        counts = np.zeros((len(texts), _HASH_BUCKETS))
        for row, text in enumerate(texts):
            for word in tokens(text):
                counts[row, zlib.crc32(word.encode()) % _HASH_BUCKETS] += 1.0
        vectors = (counts @ self.projection)[:, : dimensions or EMBEDDING_DIMENSIONS]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)


def _sample(counts: dict[str, int], sequence: openai.Sequence) -> str:
    """One word drawn from ``counts`` with the sequence's temperature, top_p and random generator."""
    words = sorted(counts, key=lambda w: (-counts[w], w))
    if sequence.temperature == 0:
        return words[0]
    weights = [math.pow(counts[w], 1 / sequence.temperature) for w in words]
    total = sum(weights)
    kept, mass = [], 0.0
    for word, weight in zip(words, weights, strict=True):  # the smallest set of likeliest words reaching top_p
        kept.append((word, weight))
        mass += weight / total
        if mass >= sequence.top_p:
            break
    return sequence.rng.choices([w for w, _ in kept], weights=[wt for _, wt in kept])[0]
