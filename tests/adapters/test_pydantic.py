"""``PydanticModel`` and ``JSONValue``: validation messages, JSON round trips, list batching."""

from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, Field, ValidationError

from modelbundle.adapters import JSONValue, PydanticModel, adapter_for
from modelbundle.errors import InvalidInput


class Address(BaseModel):
    city: str
    zip_code: str


class Customer(BaseModel):
    name: str
    age: int = Field(ge=0)
    address: Address
    tags: list[str] = []


CUSTOMER = {"name": "Ada", "age": 36, "address": {"city": "London", "zip_code": "N1"}, "tags": ["vip"]}


# -- PydanticModel ----------------------------------------------------------------------


def test_model_json_round_trip() -> None:
    adapter = PydanticModel(Customer)
    decoded = adapter.from_json(CUSTOMER, "customer")
    assert decoded == Customer.model_validate(CUSTOMER)
    assert adapter.to_json(decoded) == CUSTOMER


def test_model_to_json_accepts_a_plain_dict_return() -> None:
    # an API annotated -> Customer that returns a dict still serialises through the model
    assert PydanticModel(Customer).to_json(CUSTOMER) == Customer.model_validate(CUSTOMER).model_dump(mode="json")
    with pytest.raises(ValidationError, match="address"):  # checked, not passed through
        PydanticModel(Customer).to_json({"name": "Ada", "age": 1})


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({**CUSTOMER, "age": "old"}, r"^customer: age: Input should be a valid integer"),
        ({**CUSTOMER, "age": -1}, r"^customer: age: Input should be greater than or equal to 0"),
        ({k: v for k, v in CUSTOMER.items() if k != "name"}, r"^customer: name: Field required$"),
        ({**CUSTOMER, "address": {"city": "Paris"}}, r"^customer: address\.zip_code: Field required$"),
        ({"age": 1, "address": {}}, r"^customer: name: Field required; address\.city: Field required; address\.zip_code: Field required$"),
        ([1, 2], r"^customer: Input should be a valid dictionary or instance of Customer$"),
    ],
)
def test_model_validation_errors_name_the_field_and_problem(value: Any, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        PydanticModel(Customer).from_json(value, "customer")


def test_model_schema_goes_into_shared_definitions() -> None:
    defs: dict[str, Any] = {}
    schema = PydanticModel(Customer).json_schema(defs)
    assert schema == {"$ref": "#/components/schemas/Customer"}
    expected = Customer.model_json_schema(ref_template="#/components/schemas/{model}")
    assert defs["Customer"]["properties"] == expected["properties"]
    assert defs["Customer"]["required"] == expected["required"]
    assert defs["Address"]["properties"] == Address.model_json_schema()["properties"]
    assert defs["Customer"]["properties"]["address"] == {"$ref": "#/components/schemas/Address"}
    assert "$defs" not in defs["Customer"]


def test_model_is_not_batchable() -> None:
    assert not PydanticModel(Customer).batchable


# -- JSONValue --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "value", "expected"),
    [
        (dict, {"a": [1, 2]}, {"a": [1, 2]}),
        (list[int], [1, 2, 3], [1, 2, 3]),
        (list[float], [1, 2.5], [1.0, 2.5]),
        (int, 7, 7),
        (float, 2, 2.0),
        (bool, True, True),
        (dict[str, list[int]], {"a": [1]}, {"a": [1]}),
        (int | None, None, None),
    ],
)
def test_json_value_round_trip(hint: Any, value: Any, expected: Any) -> None:
    adapter = JSONValue(hint)
    decoded = adapter.from_json(value, "v")
    assert decoded == expected
    assert type(decoded) is type(expected)
    assert adapter.to_json(decoded) == expected


@pytest.mark.parametrize(
    ("hint", "value", "match"),
    [
        (list[int], ["a"], r"^xs: 0: Input should be a valid integer"),
        (list[int], [1, "b", "c"], r"^xs: 1: Input should be a valid integer.*; 2: Input should be a valid integer"),
        (list[int], "1,2", r"^xs: Input should be a valid list$"),
        (dict, [1], r"^xs: Input should be a valid dictionary$"),
        (int, 1.5, r"^xs: Input should be a valid integer, got a number with a fractional part$"),
    ],
)
def test_json_value_validation_errors_name_the_field_and_problem(hint: Any, value: Any, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        JSONValue(hint).from_json(value, "xs")


def test_json_value_schema_validates_what_the_adapter_accepts() -> None:
    schema = JSONValue(list[int]).json_schema({})
    jsonschema.validate([1, 2], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(["a"], schema)


def test_json_value_schema_moves_nested_models_into_definitions() -> None:
    defs: dict[str, Any] = {}
    schema = JSONValue(list[Address]).json_schema(defs)
    assert schema == {"type": "array", "items": {"$ref": "#/components/schemas/Address"}}
    assert set(defs["Address"]["properties"]) == set(Address.model_fields)


def test_only_lists_are_batchable() -> None:
    assert JSONValue(list[int]).batchable
    assert JSONValue(list).batchable
    assert not JSONValue(dict).batchable
    assert not JSONValue(int).batchable


def test_list_batch_unbatch_and_rows() -> None:
    adapter = JSONValue(list[int])
    parts = [[1, 2], [3], [4, 5, 6]]
    batched = adapter.batch(parts, 0)
    assert batched == [item for part in parts for item in part]
    sizes = [adapter.rows(part, 0) for part in parts]
    assert sizes == [len(part) for part in parts]
    assert adapter.unbatch([x * 10 for x in batched], sizes, 0) == [[x * 10 for x in part] for part in parts]


def test_list_unbatch_refuses_a_row_count_mismatch() -> None:
    with pytest.raises(ValueError, match=r"^the API returned 2 items for a batch of 3$"):
        JSONValue(list[int]).unbatch([1, 2], [1, 2], 0)


# -- selection --------------------------------------------------------------------------


def test_adapter_for_pydantic_model() -> None:
    adapter = adapter_for(Customer)
    assert isinstance(adapter, PydanticModel)
    assert adapter.model is Customer


@pytest.mark.parametrize("hint", [dict, list, list[int], dict[str, float], int, float, bool, tuple[int, str], int | None])
def test_adapter_for_plain_json_types(hint: Any) -> None:
    adapter = adapter_for(hint)
    assert isinstance(adapter, JSONValue)
    assert adapter.annotation == hint
