"""Errors in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, with the statuses its clients map.

The official client raises by status: 400 BadRequestError, 401 AuthenticationError,
404 NotFoundError, 422 UnprocessableEntityError, 429 RateLimitError, 5xx
InternalServerError. ``error.type`` follows OpenAI's names.
"""

from __future__ import annotations

import orjson
from pydantic import ValidationError

from ...errors import RequestError

_TYPES = {400: "invalid_request_error", 404: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}


class OpenAIError(RequestError):
    """An error answered in OpenAI's shape; ``param`` names the request field at fault, ``code`` a stable id."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, headers=headers)
        self.status_code = status
        self.error_type = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.param = param
        self.code = code


def from_request_error(error: RequestError) -> OpenAIError:
    """Our native errors (a model's InvalidInput, a 413, a 503...) in OpenAI's shape, status kept."""
    if isinstance(error, OpenAIError):
        return error
    return OpenAIError(error.status_code, error.message, code=error.error_type, headers=dict(error.headers))


def from_validation_error(exc: ValidationError) -> OpenAIError:
    first = exc.errors(include_url=False)[0]
    param = ".".join(str(part) for part in first["loc"]) or None
    message = f"{param}: {first['msg']}" if param else first["msg"]
    return OpenAIError(400, message, param=param.split(".")[0] if param else None, code="invalid_value")


def model_not_found(model: str, served: list[str]) -> OpenAIError:
    return OpenAIError(
        404, f"The model '{model}' does not exist here; this service serves {', '.join(served) or 'no models'}", param="model", code="model_not_found"
    )


def error_json(error: OpenAIError) -> bytes:
    return orjson.dumps({"error": {"message": error.message, "type": error.error_type, "param": error.param, "code": error.code}})
