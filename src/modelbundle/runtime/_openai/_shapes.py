"""The response objects of OpenAI's API, as plain dicts: whole answers and streamed chunks.

Chat: ``chat.completion`` and ``chat.completion.chunk``; completions: ``text_completion``
(the same object name for chunks, as OpenAI does). A stream's chunks share the answer's
``id`` and ``created``; the usage chunk (``stream_options.include_usage``) has no choices.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}


@dataclass(frozen=True)
class Answer:
    """The constant part of one answer: its kind (chat or text), id, creation time and model."""

    chat: bool
    model: str
    id: str
    created: int

    @classmethod
    def new(cls, chat: bool, model: str) -> Answer:
        prefix = "chatcmpl-" if chat else "cmpl-"
        return cls(chat, model, prefix + secrets.token_hex(12), int(time.time()))

    def _head(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model, "system_fingerprint": None}

    def whole(self, texts: list[str], reasons: list[str], prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        if self.chat:
            choices = [
                {"index": i, "message": {"role": "assistant", "content": text, "refusal": None}, "finish_reason": reason, "logprobs": None}
                for i, (text, reason) in enumerate(zip(texts, reasons, strict=True))
            ]
        else:
            choices = [
                {"index": i, "text": text, "finish_reason": reason, "logprobs": None}
                for i, (text, reason) in enumerate(zip(texts, reasons, strict=True))
            ]
        obj = "chat.completion" if self.chat else "text_completion"
        return {**self._head(obj), "choices": choices, "usage": usage(prompt_tokens, completion_tokens)}

    def chunk(self, index: int, text: str | None, finish_reason: str | None = None, *, role: bool = False) -> dict[str, Any]:
        """One streamed delta of choice ``index``; ``role`` marks a chat choice's first chunk."""
        if self.chat:
            delta: dict[str, Any] = {}
            if role:
                delta["role"] = "assistant"
            if text is not None:
                delta["content"] = text
            choice = {"index": index, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            return {**self._head("chat.completion.chunk"), "choices": [choice]}
        choice = {"index": index, "text": text or "", "finish_reason": finish_reason, "logprobs": None}
        return {**self._head("text_completion"), "choices": [choice]}

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        obj = "chat.completion.chunk" if self.chat else "text_completion"
        return {**self._head(obj), "choices": [], "usage": usage(prompt_tokens, completion_tokens)}


def model_card(model: str, owned_by: str, created: int) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": created, "owned_by": owned_by}
