"""The ``/v1`` routes in the service's OpenAPI document: request bodies from the pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ...openai import OpenAIDeclarations
from ._front import CHAT_PATH, COMPLETIONS_PATH, EMBEDDINGS_PATH
from ._requests import ChatCompletionRequest, CompletionRequest, EmbeddingRequest

_REF = "#/components/schemas/{model}"
_OPENAI_ERROR = {
    "type": "object",
    "description": "An error in OpenAI's shape.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
            "required": ["message", "type", "param", "code"],
        }
    },
    "required": ["error"],
}
_ERRORS = {
    "400": "An invalid request (a field, n above what the model allows).",
    "404": "An unknown model.",
    "422": "An input the model refuses.",
    "429": "Too many requests in flight (--max-concurrency).",
    "500": "The model failed.",
}
_STREAM = (
    "With `stream: true`, Server-Sent Events: one `data: <chunk JSON>` per chunk "
    "(`chat.completion.chunk` or `text_completion` objects), then `data: [DONE]`."
)


def add_openai_paths(document: dict[str, Any], declarations: OpenAIDeclarations) -> None:
    """Add the /v1 routes ``declarations`` serve to ``document`` (built by ``build_openapi``), in place."""
    schemas = document["components"]["schemas"]
    schemas["OpenAIError"] = _OPENAI_ERROR
    models: list[type[BaseModel]] = [ChatCompletionRequest, CompletionRequest, EmbeddingRequest]
    refs, top = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    schemas.update(top.get("$defs", {}))
    ref = {m: refs[(m, "validation")] for m in models}
    paths = document["paths"]
    tags = ["openai"]
    if declarations.generate is not None:
        model = declarations.generate.model
        paths[CHAT_PATH] = {"post": _post("openai_chat_completions", f"Chat with {model} (OpenAI's chat completions)", ref[ChatCompletionRequest], tags, stream=True)}
        paths[COMPLETIONS_PATH] = {"post": _post("openai_completions", f"Continue a prompt with {model} (OpenAI's completions)", ref[CompletionRequest], tags, stream=True)}
    if declarations.embeddings is not None:
        model = declarations.embeddings.model
        paths[EMBEDDINGS_PATH] = {"post": _post("openai_embeddings", f"Embed texts with {model} (OpenAI's embeddings)", ref[EmbeddingRequest], tags, stream=False)}
    card = {"type": "object", "properties": {"id": {"type": "string"}, "object": {"const": "model"}, "created": {"type": "integer"}, "owned_by": {"type": "string"}}}
    paths["/v1/models"] = {"get": {"operationId": "openai_list_models", "summary": "The models served", "tags": tags,
                                   "responses": {"200": {"description": "A list of models.", "content": {"application/json": {"schema": {
                                       "type": "object", "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": card}}}}}}}}}
    paths["/v1/models/{model}"] = {"get": {
        "operationId": "openai_retrieve_model", "summary": "One served model", "tags": tags,
        "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The model.", "content": {"application/json": {"schema": card}}}, **_errors("404")},
    }}


def _post(operation_id: str, summary: str, body: dict[str, Any], tags: list[str], *, stream: bool) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
    if stream:
        content["text/event-stream"] = {"schema": {"type": "string"}}
    return {
        "operationId": operation_id,
        "summary": summary,
        "description": _STREAM if stream else "",
        "tags": tags,
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {"200": {"description": "The answer, in OpenAI's shape.", "content": content}, **_errors(*_ERRORS)},
    }


def _errors(*statuses: str) -> dict[str, Any]:
    return {s: {"description": _ERRORS[s], "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}} for s in statuses}
