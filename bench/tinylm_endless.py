"""TinyLM for ``openai_bench.py``: the same model, step and step cost, but a text never ends by itself.

The example's bigram walk ends a generation at the end of a sentence (about 18 words in
its corpus); the benchmark asks for streams of exactly ``max_tokens`` tokens, so here the
walk starts a new sentence instead. Only the choice of word differs: each step still costs
``TINYLM_STEP_OVERHEAD_MS`` plus ``TINYLM_ROW_COST_MS`` per row, as the example's does.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from modelbundle import Artifact, openai

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tinylm"


def _example_module() -> Any:
    # by file, under a name of its own: "service" alone would clash with any other example's module
    spec = importlib.util.spec_from_file_location("tinylm_example_service", EXAMPLE / "service.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


TinyLM = _example_module().TinyLM


class EndlessTinyLM(TinyLM):  # type: ignore[misc, valid-type]
    """TinyLM whose walk starts a new sentence where the example's would end the text."""

    # artifacts load from beside this file when served directly: point at the example's
    model = Artifact("file", path="../examples/tinylm/model.json")

    def _next(self, sequence: openai.Sequence) -> str | None:
        word: str | None = super()._next(sequence)
        if word is None:
            sequence.state = ""  # no current word: the next one is drawn from the sentence starts
            word = super()._next(sequence)
        return word
