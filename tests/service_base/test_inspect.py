"""Service subclasses are checked when defined; every message names ``Class.method`` and the rule."""

import importlib
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pytest
from numpy.typing import NDArray
from pydantic import BaseModel

from modelbundle import DefinitionError, DType, Service, Shape, api
from modelbundle.adapters import JSONValue, NumpyArray, PydanticModel, Text
from modelbundle.service_base import RESERVED_ROUTES


class Unsupported:
    """A type no adapter knows."""


class Query(BaseModel):
    text: str
    top_k: int = 3


# -- signatures -------------------------------------------------------------------------


def test_parameter_without_hint_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"^Svc\.predict: parameter 'x' needs a type hint"):

        class Svc(Service):
            @api
            def predict(self, x) -> str:  # type: ignore[no-untyped-def]
                return str(x)


def test_missing_return_hint_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"^Svc\.predict: the return type needs a hint"):

        class Svc(Service):
            @api
            def predict(self, x: str):  # type: ignore[no-untyped-def]
                return x


@pytest.mark.parametrize("kind", ["args", "kwargs"])
def test_star_args_and_kwargs_are_refused(kind: str) -> None:
    with pytest.raises(DefinitionError, match=r"^Svc\.predict: \*args and \*\*kwargs are not allowed"):
        if kind == "args":

            class Svc(Service):
                @api
                def predict(self, x: str, *rest: str) -> str:
                    return x

        else:

            class Svc(Service):  # type: ignore[no-redef]
                @api
                def predict(self, x: str, **rest: str) -> str:
                    return x


def test_positional_only_parameter_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"^Svc\.predict: parameter 'x' must not be positional-only"):

        class Svc(Service):
            @api
            def predict(self, x: str, /) -> str:
                return x


def test_api_without_inputs_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"^Svc\.predict: an API takes at least one input parameter"):

        class Svc(Service):
            @api
            def predict(self) -> str:
                return ""


def test_static_method_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"^Svc\.predict: @api goes on a plain method, not a staticmethod"):

        class Svc(Service):
            @api
            @staticmethod
            def predict(x: str) -> str:
                return x


def test_api_name_starting_with_underscore_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"^Svc\._hidden: an API name may not start with '_'"):

        class Svc(Service):
            @api
            def _hidden(self, x: str) -> str:
                return x


def test_hint_naming_an_undefined_type_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # with postponed annotations the hint is only a string until the check resolves it
    (tmp_path / "late_hints.py").write_text(
        textwrap.dedent(
            """
            from __future__ import annotations

            from modelbundle import Service, api


            class Late(Service):
                @api
                def predict(self, q: Later) -> str:
                    return ""
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "late_hints", raising=False)
    with pytest.raises(DefinitionError, match=r"^Late\.predict: a type hint names something undefined .*'Later'"):
        importlib.import_module("late_hints")


# -- adapters ---------------------------------------------------------------------------


def test_parameter_type_without_adapter_names_method_and_type() -> None:
    with pytest.raises(
        DefinitionError, match=r"^Svc\.predict: no adapter for parameter 'x' of type Unsupported; .*@api\(input=\.\.\., output=\.\.\.\)"
    ):

        class Svc(Service):
            @api
            def predict(self, x: Unsupported) -> str:
                return ""


def test_return_type_without_adapter_names_method_and_type() -> None:
    with pytest.raises(DefinitionError, match=r"^Svc\.predict: no adapter for the return type of type Unsupported"):

        class Svc(Service):
            @api
            def predict(self, x: str) -> Unsupported:
                return Unsupported()


@pytest.mark.parametrize(
    ("hint", "described"),
    [(str, "a string"), (Query, "a Query object"), (dict, "dict")],
)
def test_batchable_with_a_non_batchable_input_names_the_rule(hint: Any, described: str) -> None:
    with pytest.raises(
        DefinitionError,
        match=rf"^Svc\.predict: batchable=True needs batchable inputs .*; parameter 'x' is {described}$",
    ):

        class Svc(Service):
            @api(batchable=True)
            def predict(self, x: hint) -> list[int]:  # type: ignore[valid-type]
                return []


def test_batchable_with_a_non_batchable_return_names_the_rule() -> None:
    with pytest.raises(DefinitionError, match=r"^Svc\.predict: batchable=True needs a batchable return type .*, not a string$"):

        class Svc(Service):
            @api(batchable=True)
            def predict(self, x: np.ndarray) -> str:
                return ""


def test_batchable_with_arrays_lists_and_frames_is_accepted() -> None:
    import pandas as pd

    class Svc(Service):
        @api(batchable=True)
        def arrays(self, x: np.ndarray) -> np.ndarray:
            return x

        @api(batchable=True)
        def lists(self, x: list[int]) -> list[int]:
            return x

        @api(batchable=True)
        def frames(self, x: pd.DataFrame) -> pd.DataFrame:
            return x

    assert all(method.batchable for method in Svc.__apis__.values())
    assert sorted(Svc.__apis__) == ["arrays", "frames", "lists"]


def test_explicit_adapters_override_inference() -> None:
    given_input, given_output = NumpyArray(dtype="int16"), Text()

    class Svc(Service):
        @api(input=given_input, output=given_output)
        def predict(self, x):  # type: ignore[no-untyped-def]  # no hints needed with explicit adapters
            return str(x)

        @api(input={"b": given_input})
        def pair(self, a: str, b: Unsupported) -> str:
            return a

    predict = Svc.__apis__["predict"]
    assert predict.params[0].adapter is given_input
    assert predict.output is given_output
    pair = Svc.__apis__["pair"]
    assert isinstance(pair.params[0].adapter, Text)
    assert pair.params[1].adapter is given_input


def test_single_input_adapter_on_a_two_parameter_api_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"^Svc\.predict: @api\(input=adapter\) fits a one-parameter API"):

        class Svc(Service):
            @api(input=Text())
            def predict(self, a: str, b: str) -> str:
                return a + b


def test_input_mapping_naming_an_unknown_parameter_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"^Svc\.predict: @api\(input=\.\.\.\) names unknown parameters \['y'\]"):

        class Svc(Service):
            @api(input={"y": Text()})
            def predict(self, x: str) -> str:
                return x


def test_input_mapping_with_a_non_adapter_value_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"^Svc\.predict: @api\(input=\.\.\.\)\['x'\] must be an adapter, got <class 'str'>"):

        class Svc(Service):
            @api(input={"x": str})  # type: ignore[dict-item]
            def predict(self, x: str) -> str:
                return x


def test_ndarray_hints_carry_dtype_and_shape() -> None:
    class Svc(Service):
        @api
        def typed(self, x: NDArray[np.float32]) -> NDArray[np.int64]:
            return x.astype(np.int64)

        @api
        def shaped(self, x: Annotated[NDArray[np.float32], Shape(-1, 4)]) -> np.ndarray:
            return x

        @api
        def marked(self, x: Annotated[np.ndarray, DType("int16"), Shape(None, 2, 3)]) -> np.ndarray:
            return x

    typed = Svc.__apis__["typed"]
    assert typed.params[0].adapter.dtype == np.dtype(np.float32)
    assert typed.params[0].adapter.shape is None
    assert typed.output.dtype == np.dtype(np.int64)
    shaped = Svc.__apis__["shaped"].params[0].adapter
    assert (shaped.dtype, shaped.shape) == (np.dtype(np.float32), (-1, 4))
    marked = Svc.__apis__["marked"].params[0].adapter
    assert (marked.dtype, marked.shape) == (np.dtype("int16"), (-1, 2, 3))


def test_adapter_inside_annotated_is_used_as_is() -> None:
    adapter = NumpyArray(dtype="uint8")

    class Svc(Service):
        @api
        def predict(self, x: Annotated[Any, adapter]) -> str:
            return ""

    assert Svc.__apis__["predict"].params[0].adapter is adapter


def test_parameters_keep_order_required_and_defaults() -> None:
    class Svc(Service):
        @api
        def search(self, query: Query, limit: int = 10, tags: list[str] | None = None) -> dict:  # type: ignore[type-arg]
            return {}

    params = Svc.__apis__["search"].params
    assert [p.name for p in params] == ["query", "limit", "tags"]
    assert [p.required for p in params] == [True, False, False]
    assert [p.default for p in params[1:]] == [10, None]
    assert isinstance(params[0].adapter, PydanticModel)
    assert params[0].adapter.model is Query
    assert all(isinstance(p.adapter, JSONValue) for p in params[1:])
    assert Svc.__apis__["search"].single_param is None


# -- routes -----------------------------------------------------------------------------


def test_duplicate_route_names_both_methods() -> None:
    with pytest.raises(DefinitionError, match=r"^Svc\.other: route /predict is already taken by Svc\.predict"):

        class Svc(Service):
            @api
            def predict(self, x: str) -> str:
                return x

            @api(route="/predict")
            def other(self, x: str) -> str:
                return x


@pytest.mark.parametrize("route", ["/metrics", "/livez", "/openapi.json", "/docs/index.html", "/v2/models/m/infer"])
def test_reserved_route_is_refused(route: str) -> None:
    with pytest.raises(DefinitionError, match=rf"^Svc\.predict: route {route} is reserved for the server; choose another"):

        class Svc(Service):
            @api(route=route)
            def predict(self, x: str) -> str:
                return x


def test_method_named_like_a_reserved_route_is_refused() -> None:
    assert "/metrics" in RESERVED_ROUTES
    with pytest.raises(DefinitionError, match=r"^Svc\.metrics: route /metrics is reserved"):

        class Svc(Service):
            @api
            def metrics(self, x: str) -> str:
                return x


# -- inheritance and naming -------------------------------------------------------------


class Base(Service):
    @api
    def predict(self, x: str) -> str:
        return x

    @api
    def explain(self, x: str) -> str:
        return x


def test_subclass_inherits_apis_and_adds_its_own() -> None:
    class Child(Base):
        @api
        def summarize(self, x: str) -> str:
            return x

    assert sorted(Child.__apis__) == ["explain", "predict", "summarize"]
    assert sorted(Base.__apis__) == ["explain", "predict"]  # the parent is untouched


def test_override_without_api_removes_the_api() -> None:
    class Child(Base):
        def explain(self, x: str) -> str:  # a plain helper now
            return x

    assert sorted(Child.__apis__) == ["predict"]


def test_override_with_api_replaces_the_options() -> None:
    class Child(Base):
        @api(route="/v1/predict")
        def predict(self, x: str) -> str:
            return x

    assert Child.__apis__["predict"].route == "/v1/predict"
    assert Base.__apis__["predict"].route == "/predict"


def test_inherited_api_is_checked_against_the_subclass_routes() -> None:
    with pytest.raises(DefinitionError, match=r"^Child\.other: route /predict is already taken by Child\.predict"):

        class Child(Base):
            @api(route="/predict")
            def other(self, x: str) -> str:
                return x


def test_service_name_defaults_to_the_class_name() -> None:
    class Sentiment(Service):
        @api
        def predict(self, x: str) -> str:
            return x

    class Named(Service):
        name = "fraud-detector"

    class SubNamed(Named):
        pass

    assert Sentiment.name == "Sentiment"
    assert Named.name == "fraud-detector"
    assert SubNamed.name == "SubNamed"  # each class is its own service
    assert Named.__apis__ == {}

