"""``modelbundle.openai``'s decorators: checked when the class is defined, errors naming the method."""

from __future__ import annotations

import pytest

from modelbundle import Service, openai
from modelbundle.errors import DefinitionError


def test_a_service_without_declarations_serves_no_v1_routes() -> None:
    class Plain(Service):
        pass

    assert Plain.__openai__ is None


def test_declarations_are_read_with_their_options() -> None:
    class LM(Service):
        @openai.generate(model="lm", max_batch_size=8, max_n=2)
        async def step(self, batch):
            return [None for _ in batch]

        @openai.tokenize
        def count(self, text):
            return text.split()

        @openai.embeddings(model="lm-embed", dimensions=True)
        def embed(self, texts, dimensions):
            return [[0.0] for _ in texts]

    found = LM.__openai__
    assert found is not None
    assert (found.step, found.step_is_async, found.tokenize, found.embed, found.chat_template) == ("step", True, "count", "embed", None)
    assert found.generate == openai.GenerateOptions("lm", 8, 2)
    assert found.embeddings is not None and found.embeddings.dimensions is True
    assert found.models == [("lm", "modelbundle"), ("lm-embed", "modelbundle")]


@pytest.mark.parametrize(
    ("decorate", "match"),
    [
        (lambda: openai.generate(model="a b"), "model id"),
        (lambda: openai.generate(model="lm", max_batch_size=0), "max_batch_size"),
        (lambda: openai.generate(model="lm", max_n=True), "max_n"),
        (lambda: openai.embeddings(model="e", dimensions=1), "dimensions"),
    ],
)
def test_bad_options_are_refused_at_once(decorate, match) -> None:
    with pytest.raises(DefinitionError, match=match):
        decorate()


def test_a_step_with_the_wrong_shape_names_the_method() -> None:
    with pytest.raises(DefinitionError, match=r"LM\.step: @openai.generate marks a method shaped step\(self, batch"):

        class LM(Service):
            @openai.generate(model="lm")
            def step(self, batch, extra):
                return []


def test_two_step_functions_are_refused() -> None:
    with pytest.raises(DefinitionError, match=r"already has an @openai\.generate method"):

        class LM(Service):
            @openai.generate(model="lm")
            def one(self, batch):
                return []

            @openai.generate(model="lm2")
            def two(self, batch):
                return []


def test_a_tokenizer_without_a_generator_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"needs an @openai\.generate method"):

        class Embedder(Service):
            @openai.tokenize
            def count(self, text):
                return []


def test_a_sequence_seed_fixes_its_random_draws() -> None:
    first, second = openai.Sequence("p", seed=3), openai.Sequence("p", seed=3)
    assert [first.rng.random() for _ in range(3)] == [second.rng.random() for _ in range(3)]
    assert openai.default_chat_template([openai.Message("user", "hi")]) == "user: hi\nassistant:"
