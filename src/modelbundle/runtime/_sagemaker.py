"""SageMaker's hosting contract on the runtime: ``GET /ping`` and ``POST /invocations``.

Mounted when ``ServeConfig.sagemaker`` is on (``--sagemaker``, ``MODELBUNDLE_SAGEMAKER=1``,
and always in a ``--target sagemaker`` image). ``/invocations`` is one of the
service's APIs under another path, so it shares that API's codecs, batcher,
limits and error bodies:

- the API is the one named by ``api=NAME`` in ``X-Amzn-SageMaker-Custom-Attributes``
  (``key=value`` pairs separated by ``,`` or ``;``; other keys are ignored), else
  ``ServeConfig.default_api``, else the first API the service declares;
- a service with ``modelbundle.openai`` declarations also answers its OpenAI routes there,
  named by path (``api=/v1/embeddings``); one that declares no ``@api`` calls
  ``/v1/chat/completions`` by default (or ``/v1/embeddings`` when it only embeds), so an
  OpenAI request body sent to /invocations is answered as that route answers it, streamed
  when it says ``"stream": true``;
- the custom attributes header comes back unchanged on every answer (SageMaker
  passes it on to the caller of InvokeEndpoint);
- ``Content-Type`` and ``Accept`` mean what they mean on the API's own route
  (``application/json``, ``text/csv``, ``application/x-npy`` for arrays).

``/ping`` is 200 with an empty body once every worker has finished ``setup()``,
and 503 before (the server accepts connections while ``setup()`` runs, so a ping
never hangs) and while draining.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ..errors import NotFound, ServeError
from ._codec import error_body
from ._state import ServerState
from ._types import ASGIApp, Message, Receive, Scope, Send

PING_PATH = "/ping"
INVOCATIONS_PATH = "/invocations"
CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"
#: the custom attribute that names the API
API_ATTRIBUTE = "api"


def default_api(apis: Collection[str], configured: str | None) -> str:
    """The API ``/invocations`` calls when the request names none; ServeError for an unknown name.

    ``apis`` are the names ``/invocations`` answers to, in order: the HTTP APIs, then any OpenAI route paths.
    """
    if configured is not None:
        if configured not in apis:
            raise ServeError(f"--default-api {configured!r} is not an API of the service; the APIs are {', '.join(apis) or 'none'}")
        return configured
    if not apis:
        raise ServeError("the service declares no API, so /invocations has nothing to call")
    return next(iter(apis))


def api_from_attributes(attributes: bytes | None) -> str | None:
    """``api=NAME`` out of a custom attributes header, or None."""
    if not attributes:
        return None
    text = attributes.decode("latin-1")
    for part in text.replace(";", ",").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip().lower() == API_ATTRIBUTE:
            return value.strip()
    return None


class Invocations:
    """``POST /invocations``: picks the API and hands the request to its endpoint."""

    def __init__(self, endpoints: Mapping[str, ASGIApp], default: str, state: ServerState) -> None:
        #: API name -> that API's endpoint
        self._endpoints = endpoints
        self._default = default
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        attributes = given_id = None
        for key, value in scope["headers"]:
            if key == CUSTOM_ATTRIBUTES:
                attributes = value
            elif key == b"x-request-id":
                given_id = value
        name = api_from_attributes(attributes) or self._default
        echo = [(CUSTOM_ATTRIBUTES, attributes)] if attributes is not None else []
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            request_id = self._state.request_id(given_id)
            error = NotFound(f"no API named {name!r} (from {CUSTOM_ATTRIBUTES.decode()}); the APIs are {', '.join(self._endpoints)}")
            payload = error_body(error.error_type, error.message, request_id.decode())
            headers = [
                (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", request_id), *echo,
            ]
            await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
            return
        if not echo:
            await endpoint(scope, receive, send)
            return

        async def send_with_attributes(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *echo]
            await send(message)

        await endpoint(scope, receive, send_with_attributes)
