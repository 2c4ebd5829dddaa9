"""One GET of an object from an offset, read straight into the caller's buffers.

Weights are the one place where the HTTP client's cost shows: httpx and
botocore hand the body over as new ``bytes`` per chunk, which cost about a
CPU-second per GB beside the hash. ``http.client``'s ``readinto`` fills a
buffer the caller reuses, so reading a blob costs little more than the
kernel's copy. Callers (the S3 and OCI sources) do the signing and the
authentication; this module follows redirects, checks the range that came
back, and turns every failure into ``RemoteStoreError`` (a status the caller
maps to its own words is a ``StatusError``).
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import ssl
from collections.abc import Mapping
from urllib.parse import urljoin, urlsplit

from .._version import __version__
from ..errors import RemoteStoreError

#: seconds to connect, and to wait for any one read
TIMEOUT = 60.0
REDIRECTS = 5
#: how much of an error body is kept to name the reason
ERROR_BODY_LIMIT = 16 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_DISCARD = 1024 * 1024


class StatusError(RemoteStoreError):
    """The server answered with a status that is not the object; ``body`` is the start of its answer."""

    def __init__(self, url: str, status: int, reason: str, body: bytes) -> None:
        super().__init__(f"{_host(url)} answered {status} {reason}")
        self.url, self.status, self.reason, self.body = url, status, reason, body


class RangedBody:
    """The object's bytes from the asked offset: ``readinto(buffer)`` until it returns 0."""

    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse, url: str) -> None:
        self._connection, self._response, self.url = connection, response, url

    def readinto(self, buffer: memoryview) -> int:
        try:
            got = self._response.readinto(buffer)
        except (OSError, http.client.HTTPException) as exc:  # a cut, a timeout, a broken chunked body
            raise RemoteStoreError(f"reading from {_host(self.url)} failed ({_reason(exc)})") from exc
        missing = self._response.length  # what Content-Length still promises; http.client ends quietly
        if not got and buffer and missing:
            raise RemoteStoreError(f"reading from {_host(self.url)} failed (the connection closed {missing} bytes early)")
        return got

    def close(self) -> None:
        self._connection.close()  # not kept alive: a half-read body cannot be reused


def open_ranged_get(
    url: str, start: int = 0, stop: int | None = None, headers: Mapping[str, str] | None = None, *, cafile: str | None = None
) -> RangedBody:
    """GET ``url`` from byte ``start`` to ``stop`` (excluded; None: the end), following redirects
    (``Authorization`` goes to the first origin only). A server may send more than ``stop``: read what you need."""
    headers = {"User-Agent": f"modelbundle/{__version__}", **(headers or {})}
    if start or stop is not None:
        headers["Range"] = f"bytes={start}-{'' if stop is None else stop - 1}"
    for _ in range(REDIRECTS + 1):
        connection, response = _send(url, headers, cafile)
        if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
            following = urljoin(url, response.getheader("Location", ""))
            connection.close()
            if _origin(following) != _origin(url):
                headers.pop("Authorization", None)  # a signed storage URL needs none, and must not see the token
            url = following
            continue
        return _checked(RangedBody(connection, response, url), response, start)
    raise RemoteStoreError(f"{_host(url)} redirected more than {REDIRECTS} times")


def _send(url: str, headers: dict[str, str], cafile: str | None) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteStoreError(f"cannot fetch {url!r}: not an http(s) URL")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=TIMEOUT, context=_tls(cafile))
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        raise RemoteStoreError(f"cannot read {_host(url)} ({_reason(exc)}); is it running, and is the address right?") from exc
    return connection, response


def _checked(body: RangedBody, response: http.client.HTTPResponse, start: int) -> RangedBody:
    """``body`` once it is known to hold the object from ``start``: a 206 of that range, or a whole 200 skipped forward."""
    try:
        if response.status == 206:
            match = _CONTENT_RANGE.fullmatch(response.getheader("Content-Range", "").strip())
            if match is None or int(match.group(1)) != start:
                raise RemoteStoreError(
                    f"{_host(body.url)} answered the range from byte {start} with {response.getheader('Content-Range')!r}"
                )
            return body
        if response.status == 200:
            _discard(body, start)  # a server that ignores Range sends it all
            return body
        raise StatusError(body.url, response.status, response.reason, _error_body(response))
    except BaseException:
        body.close()
        raise


def _discard(body: RangedBody, count: int) -> None:
    scratch = memoryview(bytearray(min(count, _DISCARD) or 1))
    while count:
        got = body.readinto(scratch[: min(count, len(scratch))])
        if not got:
            raise RemoteStoreError(f"{_host(body.url)} sent the whole object and it ended before byte {count}")
        count -= got


def _error_body(response: http.client.HTTPResponse) -> bytes:
    try:
        return response.read(ERROR_BODY_LIMIT)
    except (OSError, http.client.HTTPException):
        return b""


_contexts: dict[str | None, ssl.SSLContext] = {}


def _tls(cafile: str | None) -> ssl.SSLContext:
    """A verifying context: ``cafile``, else ``$SSL_CERT_FILE``, else certifi's bundle when installed, else the system's."""
    cafile = cafile or os.environ.get("SSL_CERT_FILE") or _certifi()
    if cafile not in _contexts:
        _contexts[cafile] = ssl.create_default_context(cafile=cafile)
    return _contexts[cafile]


def _certifi() -> str | None:
    try:
        import certifi
    except ImportError:
        return None
    return str(certifi.where())


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return f"no answer in {TIMEOUT:.0f} s"
    return str(exc) or type(exc).__name__
