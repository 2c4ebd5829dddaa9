"""Every error modelbundle raises on purpose, in one tree.

    ModelbundleError
    ├── DefinitionError        a Service or @api declaration is wrong (raised at class definition)
    ├── ImportTargetError      "module:Class" cannot be loaded
    ├── ArtifactError          an artifact cannot be saved or loaded (unbound, wrong kind, framework mismatch)
    ├── BuildError             ``bundle build`` cannot make a bundle (bad options, locking failed)
    ├── IntegrityError         a bundle's files do not match its RECORD, or an archive is unsafe
    ├── StoreError             the local store cannot do what was asked
    │   ├── BundleNotFound     no bundle of that name or version (locally or in a remote store)
    │   └── RemoteStoreError   a remote store (directory, S3, OCI registry) failed or refused
    │       └── AuthenticationError  the remote store rejected the credentials (401/403)
    ├── ExportError            an exporter cannot make an image, zip or manifests (engine, base image, wheels, push)
    │   └── DeployError        a cloud deploy failed or was refused (bundle deploy sagemaker)
    ├── ServeError             the server cannot start (bad option, setup() failed, port in use)
    └── RequestError           a request cannot be answered; carries an HTTP status and a type
        ├── BadRequest         400: the body cannot be parsed at all
        ├── InvalidInput       422: parsed, but a field is missing or of the wrong type or shape
        ├── Unauthorized       401: no API key, or not one the server knows (--api-key-file, MODELBUNDLE_API_KEYS)
        ├── NotFound           404: no such route
        ├── MethodNotAllowed   405: the route exists, the method does not
        ├── JobNotFinished     409: a job's result was asked for before it succeeded
        ├── PayloadTooLarge    413: the body is above the server's limit
        ├── UnsupportedMediaType 415: the API does not take bodies of this Content-Type
        ├── TooManyRequests    429: the caller is over --rate-limit; retry after Retry-After
        ├── Overloaded         503: the server cannot meet the latency budget; retry later
        ├── RequestTimeout     504: the request ran past the server's timeout
        ├── RequestTooSlow     408: the body stalled or trickled (--body-timeout, --body-min-rate)
        ├── ClientDisconnected 499: the client left before sending its whole body
        ├── ModelError         500: the user's API raised
        └── DependencyError    a call to a dependency service (``depends``) failed; names the dependency
            ├── InvalidDependencyCall 422: the caller's code passed a wrong argument to a dependency's API
            ├── DependencyUnavailable 503: the dependency is down or cannot be reached
            └── DependencyTimeout     504: the dependency did not answer in time

Later stages add their branches here (export, remote stores), never elsewhere.
User code may raise ``InvalidInput`` from an API to reject one input with a 422.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "AuthenticationError",
    "BadRequest",
    "BuildError",
    "BundleNotFound",
    "ClientDisconnected",
    "DefinitionError",
    "DependencyError",
    "DependencyTimeout",
    "DependencyUnavailable",
    "DeployError",
    "ExportError",
    "ImportTargetError",
    "IntegrityError",
    "InvalidDependencyCall",
    "InvalidInput",
    "JobNotFinished",
    "MethodNotAllowed",
    "ModelError",
    "ModelbundleError",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "RemoteStoreError",
    "RequestError",
    "RequestTimeout",
    "RequestTooSlow",
    "ServeError",
    "StoreError",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
]


class ModelbundleError(Exception):
    """Base of every error modelbundle raises on purpose. Never raised bare."""


class DefinitionError(ModelbundleError, TypeError):
    """Raised when a Service subclass or an ``@api`` method is declared wrongly.

    Raised at class definition, so a mistake shows when the module is imported,
    not on the first request. The message names ``Class.method`` and the rule.
    """


class ImportTargetError(ModelbundleError):
    """Raised when a ``module:Class`` or ``path/file.py:Class`` target cannot be loaded."""


class ArtifactError(ModelbundleError):
    """Raised when an artifact cannot be saved or loaded: unbound, wrong kind, or a framework version mismatch."""


class BuildError(ModelbundleError):
    """Raised when ``bundle build`` cannot make a bundle: bad options, unreadable files, locking failed."""


class IntegrityError(ModelbundleError):
    """Raised when a bundle's files do not match its RECORD, or an archive holds unsafe members.

    The message names the offending file; nothing in the local store has changed.
    """


class StoreError(ModelbundleError):
    """Raised when the local store cannot do what was asked (bad tag, locked, unwritable)."""


class BundleNotFound(StoreError):
    """Raised when no bundle in the store has that name or version; the message lists what exists."""


class RemoteStoreError(StoreError):
    """Raised when a remote store (file://, s3://, oci://) cannot be read or written.

    The message names the store and the operation; the local store is unchanged.
    """


class AuthenticationError(RemoteStoreError):
    """Raised when a remote store rejects the credentials (HTTP 401/403, S3 access denied)."""


class ExportError(ModelbundleError):
    """An exporter cannot turn a bundle into what was asked: the Docker engine is unreachable,
    the base image is missing, a locked distribution has no wheel for the target platform,
    the image build or push failed, or the output would break the platform's limits."""


class DeployError(ExportError):
    """Raised when ``bundle deploy`` cannot create or update cloud resources; the message names the API call and AWS's reason."""


class ServeError(ModelbundleError):
    """Raised when the server cannot start or exits abnormally (setup() failed, bad option)."""


class RequestError(ModelbundleError):
    """A request that cannot be answered with a 2xx. The runtime turns it into a JSON error body."""

    status_code: int = 400
    error_type: str = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(RequestError):
    """The body cannot be decoded: malformed JSON, a broken .npy file, an unknown content type."""

    status_code = 400
    error_type = "bad_request"


class InvalidInput(RequestError):
    """The body decoded but does not fit the API: a missing field, a wrong dtype or shape.

    User code may raise it from an API to reject one input without a 500.
    """

    status_code = 422
    error_type = "invalid_input"


class Unauthorized(RequestError):
    """The request carries no API key, or one the server does not know; the response carries WWW-Authenticate."""

    status_code = 401
    error_type = "unauthorized"


class TooManyRequests(RequestError):
    """The caller (its API key, or its address without keys) is over ``--rate-limit``; the response carries Retry-After."""

    status_code = 429
    error_type = "rate_limited"


class NotFound(RequestError):
    """No API or endpoint at this path."""

    status_code = 404
    error_type = "not_found"


class MethodNotAllowed(RequestError):
    """The path exists but does not accept this HTTP method."""

    status_code = 405
    error_type = "method_not_allowed"


class JobNotFinished(RequestError):
    """A job's result was asked for before the job succeeded; the message gives its status."""

    status_code = 409
    error_type = "job_not_finished"


class PayloadTooLarge(RequestError):
    """The body is larger than the server's ``max_body_size``."""

    status_code = 413
    error_type = "payload_too_large"


class UnsupportedMediaType(RequestError):
    """The API does not accept a body of this Content-Type; the message lists what it accepts."""

    status_code = 415
    error_type = "unsupported_media_type"


class Overloaded(RequestError):
    """The server cannot answer within the API's latency budget; the response carries Retry-After."""

    status_code = 503
    error_type = "overloaded"


class RequestTimeout(RequestError):
    """The request ran longer than the server's ``timeout``."""

    status_code = 504
    error_type = "timeout"


class RequestTooSlow(RequestError):
    """The request body stalled or trickled past ``body_timeout`` / ``body_min_rate``; the connection is closed."""

    status_code = 408
    error_type = "request_timeout"


class ClientDisconnected(RequestError):
    """The client went away before sending its whole body: nothing is run, and no one reads the answer."""

    status_code = 499
    error_type = "client_disconnected"


class ModelError(RequestError):
    """The user's API raised. The traceback is logged with the request id; the server stays up."""

    status_code = 500
    error_type = "model_error"


class DependencyError(RequestError):
    """A call from one service to a dependency (``depends``) failed.

    ``dependency`` is the dependency's service name. Raised as is, it passes on the
    dependency's own client-error status (``status_code``/``error_type`` given): the
    caller's request caused it. The subclasses say what went wrong with the call itself.
    """

    status_code = 500
    error_type = "dependency_error"

    def __init__(
        self,
        dependency: str,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, headers=headers)
        self.dependency = dependency
        if status_code is not None:
            self.status_code = status_code
        if error_type is not None:
            self.error_type = error_type


class InvalidDependencyCall(DependencyError, InvalidInput):
    """The caller's code called a dependency's API with a wrong argument (unknown, missing, or of the wrong type)."""

    status_code = 422
    error_type = "invalid_input"


class DependencyUnavailable(DependencyError):
    """The dependency is down, not ready, or cannot be reached: ``dependency 'Embedder' is unavailable: ...``."""

    status_code = 503
    error_type = "dependency_unavailable"


class DependencyTimeout(DependencyError):
    """The dependency did not answer in time: ``dependency 'Embedder' timed out after 30s``."""

    status_code = 504
    error_type = "dependency_timeout"
