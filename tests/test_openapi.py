"""``build_openapi``: a valid OpenAPI 3.1 document carrying each API's real schemas."""

from typing import Annotated, Any

import jsonschema
import numpy as np
import pytest
from numpy.typing import NDArray
from openapi_spec_validator import validate
from pydantic import BaseModel, Field

from modelbundle import Service, Shape, __version__, api
from modelbundle.runtime import build_openapi


class Review(BaseModel):
    text: str = Field(min_length=1)
    stars: int = Field(ge=1, le=5)


class Verdict(BaseModel):
    label: str
    score: float


class Shop(Service):
    """Scores reviews and embeddings."""

    @api(batchable=True, max_batch_size=16, max_latency_ms=50)
    def embed(self, x: Annotated[NDArray[np.float32], Shape(-1, 8)]) -> NDArray[np.float32]:
        """Embed feature rows.

        One row per item.
        """
        return x

    @api(route="/v1/classify")
    def classify(self, review: Review) -> Verdict:
        return Verdict(label="pos", score=1.0)

    @api
    def echo(self, text: str) -> str:
        return text

    @api
    def rank(self, query: str, limit: int = 10) -> list[Verdict]:
        return []


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return build_openapi(Shop, version="1.2.3")


def request_schema(spec: dict[str, Any], route: str, media_type: str = "application/json") -> dict[str, Any]:
    return spec["paths"][route]["post"]["requestBody"]["content"][media_type]["schema"]  # type: ignore[no-any-return]


def response_schema(spec: dict[str, Any], route: str, media_type: str = "application/json") -> dict[str, Any]:
    return spec["paths"][route]["post"]["responses"]["200"]["content"][media_type]["schema"]  # type: ignore[no-any-return]


def resolver_schema(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the document's components, so its $refs resolve in jsonschema."""
    return {**schema, "components": spec["components"]}


def test_document_is_valid_openapi_31(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["openapi"].startswith("3.1")


def test_info_names_the_service_and_version(spec: dict[str, Any]) -> None:
    assert spec["info"]["title"] == Shop.name
    assert spec["info"]["version"] == "1.2.3"
    assert spec["info"]["description"] == "Scores reviews and embeddings."
    assert build_openapi(Shop)["info"]["version"] == "dev"


def test_every_api_route_has_a_post_operation(spec: dict[str, Any]) -> None:
    routes = {method.route for method in Shop.__apis__.values()}
    assert routes <= set(spec["paths"])
    for method in Shop.__apis__.values():
        assert spec["paths"][method.route]["post"]["operationId"] == method.name
    assert {"/livez", "/readyz", "/metrics"} <= set(spec["paths"])


def test_pydantic_models_are_components_with_their_fields(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for model in (Review, Verdict):
        assert schemas[model.__name__]["properties"] == model.model_json_schema()["properties"]
        assert schemas[model.__name__]["required"] == model.model_json_schema()["required"]
    body = request_schema(spec, "/v1/classify")
    assert body["anyOf"][1] == {"$ref": "#/components/schemas/Review"}
    assert body["anyOf"][0]["properties"]["review"] == {"$ref": "#/components/schemas/Review"}
    assert response_schema(spec, "/v1/classify") == {"$ref": "#/components/schemas/Verdict"}
    assert response_schema(spec, "/rank")["items"] == {"$ref": "#/components/schemas/Verdict"}


def test_array_schema_carries_the_fixed_dimension(spec: dict[str, Any]) -> None:
    bare = request_schema(spec, "/embed")["anyOf"][1]
    assert bare["items"]["minItems"] == bare["items"]["maxItems"] == 8
    assert bare["items"]["items"]["type"] == "number"
    schema = resolver_schema(spec, request_schema(spec, "/embed"))
    jsonschema.validate(np.zeros((3, 8)).tolist(), schema)
    jsonschema.validate({"x": np.zeros((1, 8)).tolist()}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(np.zeros((3, 7)).tolist(), schema)


def test_request_schemas_accept_valid_bodies_and_reject_invalid_ones(spec: dict[str, Any]) -> None:
    classify = resolver_schema(spec, request_schema(spec, "/v1/classify"))
    jsonschema.validate({"text": "great", "stars": 5}, classify)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"text": "great", "stars": 9}, classify)
    rank = resolver_schema(spec, request_schema(spec, "/rank"))
    jsonschema.validate({"query": "shoes"}, rank)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"limit": 3}, rank)  # query is required
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"query": "shoes", "extra": 1}, rank)  # unknown fields are refused


def test_non_json_media_types_are_listed(spec: dict[str, Any]) -> None:
    embed = spec["paths"]["/embed"]["post"]
    assert set(embed["requestBody"]["content"]) == {"application/json", "application/x-npy", "text/csv"}
    assert set(embed["responses"]["200"]["content"]) == {"application/json", "application/x-npy", "text/csv"}
    assert request_schema(spec, "/echo", "text/plain") == {"type": "string"}
    assert set(spec["paths"]["/rank"]["post"]["requestBody"]["content"]) == {"application/json"}


def test_operation_text_comes_from_the_docstring_and_batching(spec: dict[str, Any]) -> None:
    embed = spec["paths"]["/embed"]["post"]
    assert embed["summary"] == "Embed feature rows."
    assert embed["description"].startswith("Embed feature rows.\n\nOne row per item.")
    assert "up to 16 rows" in embed["description"]
    assert "50 ms" in embed["description"]
    assert spec["paths"]["/echo"]["post"]["summary"] == "echo"


def test_error_responses_share_one_schema(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/echo"]["post"]["responses"]
    for status in ("400", "413", "415", "422", "500", "503", "504"):
        assert responses[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    error = resolver_schema(spec, spec["components"]["schemas"]["Error"])
    jsonschema.validate({"error": {"type": "invalid_input", "message": "x: bad", "request_id": "abc"}}, error)


def test_service_without_docstring_gets_a_default_description() -> None:
    class Bare(Service):
        @api
        def echo(self, text: str) -> str:
            return text

    spec = build_openapi(Bare)
    validate(spec)
    assert spec["info"]["description"] == f"Bare, served by modelbundle {__version__}."
