"""A dependency method binds a call's arguments by the dependency's signature (``_composition/_handle.py``).

The common call takes a short path; whatever it does not cover (and every mistake) goes
through ``Signature.bind``: both must agree on what a call means.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from fixtures.services.pipeline import Tokens
from modelbundle.errors import InvalidDependencyCall
from modelbundle.runtime._composition import DependencyMethod


class Recorded:
    """A transport that answers each call with the arguments it was handed."""

    dependency = Tokens.name

    async def call(self, api_name: str, kwargs: dict[str, Any]) -> Any:
        return api_name, kwargs

    async def stream(self, api_name: str, kwargs: dict[str, Any]) -> Any:
        raise AssertionError("not a stream")


def scale_method() -> DependencyMethod:
    loop = asyncio.new_event_loop()
    loop.close()
    return DependencyMethod("Front.tokens.scale", Tokens, Tokens.__apis__["scale"], Recorded(), loop)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(([1.0],), {}), (([1.0], 3.0), {}), (([1.0],), {"factor": 3.0}), ((), {"values": [1.0], "factor": 3.0}), ((), {"factor": 3.0, "values": [1.0]})],
)
def test_a_call_binds_as_the_signature_does(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    method = scale_method()
    expected = inspect.signature(Tokens.scale).bind(None, *args, **kwargs).arguments
    expected.pop("self")
    assert method._check(args, kwargs) == expected


@pytest.mark.parametrize(
    ("args", "kwargs", "words"),
    [
        (([1.0], 2.0, 3.0), {}, "too many positional arguments"),
        (([1.0],), {"values": [2.0]}, "multiple values for argument 'values'"),
        ((), {"factor": 2.0}, "missing a required argument: 'values'"),
        (([1.0],), {"scale": 2.0}, "got an unexpected keyword argument 'scale'"),
    ],
)
def test_a_wrong_call_is_told_in_the_signatures_words(args: tuple[Any, ...], kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidDependencyCall, match=r"^Front\.tokens\.scale\(values: list\[float\], factor: float = 2\.0\)") as caught:
        scale_method()._check(args, kwargs)
    assert caught.value.message.endswith(words)
