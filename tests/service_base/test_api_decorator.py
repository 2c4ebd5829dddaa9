"""``@api``: bare or with keywords, options checked when the decorator is applied."""

from typing import Any

import numpy as np
import pytest

from modelbundle import DefinitionError, Service, api
from modelbundle.adapters import Text
from modelbundle.service_base import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_LATENCY_MS


def test_bare_api_marks_the_method_without_wrapping_it() -> None:
    def upper(self: Any, x: str) -> str:
        return x.upper()

    marked = api(upper)
    assert marked is upper

    class Upper(Service):
        predict = marked

    method = Upper.__apis__["predict"]
    assert method.route == "/predict"
    assert not method.batchable
    assert method.max_batch_size == DEFAULT_MAX_BATCH_SIZE
    assert method.max_latency_ms == DEFAULT_MAX_LATENCY_MS
    assert method.batch_dim == 0
    assert Upper().predict("ab") == "AB"  # still a plain method


def test_api_with_arguments_keeps_every_option() -> None:
    class Doubler(Service):
        @api(route="/double", batchable=True, max_batch_size=8, max_latency_ms=25, batch_dim=1)
        def predict(self, x: np.ndarray) -> np.ndarray:
            """Double every value."""
            return x * 2

    method = Doubler.__apis__["predict"]
    assert (method.route, method.batchable, method.max_batch_size, method.batch_dim) == ("/double", True, 8, 1)
    assert method.max_latency_ms == 25.0
    assert isinstance(method.max_latency_ms, float)
    assert method.doc == "Double every value."
    np.testing.assert_array_equal(Doubler().predict(np.arange(3)), np.arange(3) * 2)


def test_async_api_is_recorded_as_async() -> None:
    class Echo(Service):
        @api
        async def echo(self, text: str) -> str:
            return text

        @api
        def sync_echo(self, text: str) -> str:
            return text

    assert Echo.__apis__["echo"].is_async
    assert not Echo.__apis__["sync_echo"].is_async


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"route": "predict"}, r"route=\.\.\.\) must be a path such as '/predict', got 'predict'"),
        ({"route": "/"}, r"route=\.\.\.\) must be a path .* got '/'"),
        ({"route": 5}, r"route=\.\.\.\) must be a path .* got 5"),
        ({"batchable": "yes"}, r"batchable=\.\.\.\) must be True or False, got 'yes'"),
        ({"max_batch_size": 0}, r"max_batch_size=\.\.\.\) must be an int >= 1, got 0"),
        ({"max_batch_size": True}, r"max_batch_size=\.\.\.\) must be an int >= 1, got True"),
        ({"max_batch_size": "3"}, r"max_batch_size=\.\.\.\) must be an int >= 1, got '3'"),
        ({"max_batch_size": 2.0}, r"max_batch_size=\.\.\.\) must be an int >= 1, got 2\.0"),
        ({"max_latency_ms": 0}, r"max_latency_ms=\.\.\.\) must be a number > 0, got 0"),
        ({"max_latency_ms": -1.5}, r"max_latency_ms=\.\.\.\) must be a number > 0, got -1\.5"),
        ({"max_latency_ms": True}, r"max_latency_ms=\.\.\.\) must be a number > 0, got True"),
        ({"batch_dim": -1}, r"batch_dim=\.\.\.\) must be an int >= 0, got -1"),
        ({"batch_dim": False}, r"batch_dim=\.\.\.\) must be an int >= 0, got False"),
        ({"input": "text"}, r"input=\.\.\.\) must be an adapter or a mapping .* got 'text'"),
        ({"input": Text}, r"input=\.\.\.\) must be an adapter or a mapping"),  # the class, not an instance
        ({"output": str}, r"output=\.\.\.\) must be an adapter, got <class 'str'>"),
    ],
)
def test_bad_option_raises_at_decoration_time(options: dict[str, Any], match: str) -> None:
    with pytest.raises(DefinitionError, match=match):

        @api(**options)
        def predict(self: Any, x: str) -> str:  # pragma: no cover - never reached
            return x


def test_definition_error_is_also_a_type_error() -> None:
    # callers that guard declarations with `except TypeError` keep working
    with pytest.raises(TypeError, match="max_batch_size"):
        api(max_batch_size=0)


def test_api_refuses_something_that_is_not_callable() -> None:
    with pytest.raises(DefinitionError, match=r"@api decorates a method, not 42"):
        api()(42)  # type: ignore[type-var]
