"""The OpenAI front-end: ``/v1`` chat, completions, embeddings and models for ``modelbundle.openai`` services."""

from __future__ import annotations

from ._errors import OpenAIError, error_json
from ._front import CHAT_PATH, COMPLETIONS_PATH, EMBEDDINGS_PATH, PREFIX, OpenAIFrontEnd
from ._openapi import add_openai_paths

__all__ = ["CHAT_PATH", "COMPLETIONS_PATH", "EMBEDDINGS_PATH", "PREFIX", "OpenAIError", "OpenAIFrontEnd", "add_openai_paths", "error_json"]
