"""A client for the OCI distribution API (``/v2/``): blobs, manifests, tags and the catalog.

It answers the registry's authentication challenge (Basic, or a Bearer token
from the realm the registry names) and is the one place where httpx errors
become ``RemoteStoreError`` (``_mapped_errors``, after httpx's own
``map_httpcore_exceptions``): callers never see an httpx exception.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

try:
    import httpx
except ImportError:  # pragma: no cover - reported when a client is created
    httpx = None  # type: ignore[assignment]

from .._install_hints import needs_build_tool
from .._version import __version__
from ..errors import AuthenticationError, RemoteStoreError
from ._progress import Advance
from ._registry_auth import PASSWORD_ENV, USERNAME_ENV, Challenge, Credentials, parse_challenge

#: blobs up to this size go up in one PUT; larger ones in PATCH requests of CHUNK_SIZE bytes
MONOLITHIC_LIMIT = 8 * 1024 * 1024
CHUNK_SIZE = 16 * 1024 * 1024
#: a registry may take a while to answer the PUT that completes a large blob (it re-hashes it)
READ_TIMEOUT = 300.0
CONNECT_TIMEOUT = 15.0
#: manifests and config blobs are small; a bigger answer is not one of ours
MAX_SMALL_BODY = 4 * 1024 * 1024
CATALOG_SCOPE = "registry:catalog:*"
_PAGE = 1000
_READ_CHUNK = 1024 * 1024
_OCTETS = {"Content-Type": "application/octet-stream"}
_REDIRECTS = (301, 302, 303, 307, 308)


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


class RegistryClient:
    """One registry host over HTTP(S), with the credentials to offer when it asks for them."""

    def __init__(self, host: str, *, secure: bool, credentials: Credentials | None) -> None:
        if httpx is None:
            raise RemoteStoreError(needs_build_tool("an oci:// store", "httpx"))
        self.host = host
        self.secure = secure
        self.credentials = credentials
        self._client = httpx.Client(
            base_url=f"{'https' if secure else 'http'}://{host}",
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            # blobs may live elsewhere (a registry on S3 redirects); httpx drops Authorization across origins
            follow_redirects=True,
            headers={"User-Agent": f"modelbundle/{__version__}"},
        )
        self._basic = False  # the registry asked for Basic once: offer it up front from then on
        self._tokens: dict[str, str] = {}  # scope -> bearer token

    def close(self) -> None:
        self._client.close()

    # -- blobs -----------------------------------------------------------------------------
    def blob_exists(self, repository: str, digest: str) -> bool:
        what = f"checking for blob {digest} in {repository}"
        response = self._send("HEAD", f"/v2/{repository}/blobs/{digest}", pull_scope(repository), what, ok=(200, 404))
        return response.status_code == 200

    def upload_blob(self, repository: str, source: Path, digest: str, advance: Advance, label: str = "blob") -> None:
        """POST an upload session, then one PUT (small blobs) or PATCH chunks and a closing PUT."""
        what = f"uploading {label} ({digest}) to {repository}"
        scope = push_scope(repository)
        started = self._send("POST", f"/v2/{repository}/blobs/uploads/", scope, what, ok=(202,))
        location = self._location(started, what)
        size = source.stat().st_size
        if size <= MONOLITHIC_LIMIT:
            body = source.read_bytes()
            self._send("PUT", location.copy_merge_params({"digest": digest}), scope, what, ok=(201,), headers=_OCTETS, content=body)
            advance(size)
            return
        offset = 0
        with open(source, "rb") as handle:
            # each chunk is held in memory, so a request retried after an auth challenge can be sent again
            while chunk := handle.read(CHUNK_SIZE):
                headers = {**_OCTETS, "Content-Range": f"{offset}-{offset + len(chunk) - 1}"}
                response = self._send("PATCH", location, scope, what, ok=(202,), headers=headers, content=chunk)
                location = self._location(response, what)
                offset += len(chunk)
                advance(len(chunk))
        self._send("PUT", location.copy_merge_params({"digest": digest}), scope, what, ok=(201,), headers=_OCTETS, content=b"")

    def download_blob(self, repository: str, digest: str, destination: Path, advance: Advance, label: str = "blob") -> str:
        """Stream a blob to ``destination``; the ``sha256:<hex>`` of what arrived (the caller compares)."""
        what = f"downloading {label} ({digest}) from {repository}"
        hasher = hashlib.sha256()
        response = self._send("GET", f"/v2/{repository}/blobs/{digest}", pull_scope(repository), what, ok=(200,), stream=True)
        try:
            with self._mapped_errors(what), open(destination, "wb") as out:
                for chunk in response.iter_bytes(_READ_CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    advance(len(chunk))
        finally:
            response.close()
        return f"sha256:{hasher.hexdigest()}"

    def blob_size(self, repository: str, digest: str) -> int:
        what = f"checking blob {digest} in {repository}"
        response = self._send("HEAD", f"/v2/{repository}/blobs/{digest}", pull_scope(repository), what, ok=(200,))
        return int(response.headers.get("Content-Length", "0"))

    def blob_request(self, repository: str, digest: str) -> tuple[str, dict[str, str]]:
        """(URL, headers) that GET a blob, for a reader of its own: the challenge is answered first (a HEAD)."""
        scope = pull_scope(repository)
        path = f"/v2/{repository}/blobs/{digest}"
        # not followed: a registry may redirect to storage that signs GETs only, where a HEAD is refused
        self._send("HEAD", path, scope, f"checking blob {digest} in {repository}", ok=(200, *_REDIRECTS), follow_redirects=False)
        return str(self._client.base_url.join(path)), self._authorization(scope)

    def blob_bytes(self, repository: str, digest: str) -> bytes:
        """A small blob (a config) in memory."""
        what = f"downloading the config ({digest}) from {repository}"
        response = self._send("GET", f"/v2/{repository}/blobs/{digest}", pull_scope(repository), what, ok=(200,), stream=True)
        return self._read_small(response, what)

    # -- manifests and tags ------------------------------------------------------------------
    def manifest(self, repository: str, reference: str, accept: list[str]) -> tuple[bytes, str] | None:
        """(body, content type) of a manifest, or None if the registry has no such tag or repository."""
        what = f"reading manifest {repository}:{reference}"
        response = self._send(
            "GET", f"/v2/{repository}/manifests/{reference}", pull_scope(repository), what,
            ok=(200, 404), stream=True, headers={"Accept": ", ".join(accept)},
        )
        if response.status_code == 404:
            response.close()
            return None
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return self._read_small(response, what), content_type

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> None:
        what = f"writing manifest {repository}:{reference}"
        headers = {"Content-Type": media_type}
        self._send("PUT", f"/v2/{repository}/manifests/{reference}", push_scope(repository), what, ok=(201,), headers=headers, content=body)

    def tags(self, repository: str) -> list[str]:
        """Every tag of ``repository`` ([] if it does not exist)."""
        tags = self._paginated(f"/v2/{repository}/tags/list", "tags", pull_scope(repository), f"listing the tags of {repository}")
        return [] if tags is None else tags

    def catalog(self) -> list[str]:
        """Every repository of the registry (``/v2/_catalog``, which some hosted registries do not offer)."""
        repositories = self._paginated("/v2/_catalog", "repositories", CATALOG_SCOPE, "listing the repositories")
        if repositories is None:
            raise RemoteStoreError(
                f"registry {self.host} does not list its repositories (/v2/_catalog answered 404), so its bundles "
                "cannot be listed; pull them by NAME:VERSION"
            )
        return repositories

    # -- HTTP, auth and errors -----------------------------------------------------------------
    def _send(
        self,
        method: str,
        url: str | httpx.URL,
        scope: str,
        what: str,
        *,
        ok: tuple[int, ...],
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        stream: bool = False,
        follow_redirects: bool = True,
    ) -> httpx.Response:
        """Send one request; after a 401, answer the challenge and send it once more."""
        with self._mapped_errors(what):
            response = self._send_once(method, url, scope, headers, content, stream, follow_redirects)
            if response.status_code == 401 and self._answer(response, scope, what):
                response.close()
                response = self._send_once(method, url, scope, headers, content, stream, follow_redirects)
            if response.status_code not in ok:
                try:
                    response.read()  # the error body names the reason (streamed responses are not read yet)
                finally:
                    response.close()
                raise self._status_error(response, what)
        return response

    def _send_once(
        self,
        method: str,
        url: str | httpx.URL,
        scope: str,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        stream: bool,
        follow_redirects: bool,
    ) -> httpx.Response:
        request = self._client.build_request(method, url, headers={**(headers or {}), **self._authorization(scope)}, content=content)
        return self._client.send(request, stream=stream, follow_redirects=follow_redirects)

    def _authorization(self, scope: str) -> dict[str, str]:
        token = self._tokens.get(scope)
        if token is not None:
            return {"Authorization": f"Bearer {token}"}
        if self._basic and self.credentials is not None:
            return {"Authorization": self.credentials.basic_header()}
        return {}

    def _answer(self, response: httpx.Response, scope: str, what: str) -> bool:
        """After a 401: get what the challenge asks for. False when there is nothing new to offer."""
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge.scheme == "basic":
            if self.credentials is None or self._basic:
                return False
            self._basic = True
            return True
        if challenge.scheme == "bearer":
            # always a fresh token: a cached one may have expired during a long push
            self._tokens[scope] = self._fetch_token(challenge, scope, what)
            return True
        return False

    def _fetch_token(self, challenge: Challenge, scope: str, what: str) -> str:
        realm = challenge.params.get("realm")
        if not realm:
            raise RemoteStoreError(f"{what}: registry {self.host} asked for a bearer token but named no realm to get it from")
        params: list[tuple[str, str | int | float | bool | None]] = [("scope", s) for s in dict.fromkeys([*challenge.scopes, scope])]
        if "service" in challenge.params:
            params.append(("service", challenge.params["service"]))
        headers = {"Authorization": self.credentials.basic_header()} if self.credentials is not None else {}
        response = self._client.get(realm, params=params, headers=headers)
        if response.status_code != 200:
            raise self._status_error(response, f"{what} (getting a token from {realm})")
        try:
            data = response.json()
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RemoteStoreError(f"{what}: the token service {realm} answered without a token")
        return token

    def _status_error(self, response: httpx.Response, what: str) -> RemoteStoreError:
        return self.refusal(response.status_code, response.reason_phrase, what, _error_detail(response))

    def refusal(self, status: int, reason: str, what: str, detail: str = "") -> RemoteStoreError:
        """The error for the registry's answer ``status`` while doing ``what`` (``detail``: its own words, ": CODE message")."""
        user = self.credentials.username if self.credentials is not None else None
        if status == 401 and user is not None:
            return AuthenticationError(f"registry {self.host} rejected the credentials for user {user} ({status}); {self._advice()}")
        if status == 401:
            return AuthenticationError(
                f"registry {self.host} requires credentials ({status}); set ${USERNAME_ENV} and ${PASSWORD_ENV}, "
                f"or run docker login {self.host}"
            )
        if status == 403:
            who = f"user {user}" if user is not None else "anonymous access"
            return AuthenticationError(f"registry {self.host} denied {who} ({status}) while {what}")
        return RemoteStoreError(f"{what} failed: registry {self.host} answered {status} {reason}{detail}")

    def _advice(self) -> str:
        assert self.credentials is not None
        if self.credentials.source.startswith("$"):
            return f"check ${USERNAME_ENV} and ${PASSWORD_ENV}"
        return f"run docker login {self.host} again (credentials from {self.credentials.source})"

    @contextmanager
    def _mapped_errors(self, what: str) -> Iterator[None]:
        """The one boundary where httpx errors become RemoteStoreError, the original chained."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise RemoteStoreError(f"{what}: {self._peer(exc)} did not answer in time ({type(exc).__name__})") from exc
        except httpx.ConnectError as exc:
            reason = _reason(exc)
            if self.secure and ("SSL" in reason or "certificate" in reason):
                hint = "; if the registry serves plain HTTP, pass --insecure"
            else:
                hint = "; is it running, and is the address right?"
            raise RemoteStoreError(f"{what}: cannot connect to {self._peer(exc)} ({reason}){hint}") from exc
        except httpx.HTTPError as exc:  # read/write errors, a dropped connection, a protocol violation
            raise RemoteStoreError(f"{what}: the connection to {self._peer(exc)} failed ({_reason(exc)})") from exc

    def _peer(self, exc: httpx.HTTPError) -> str:
        """Who failed: the registry, or another host it sent us to (its token service, a blob redirect)."""
        try:
            host = exc.request.url.netloc.decode()
        except RuntimeError:  # an error raised outside a request
            host = self.host
        return f"registry {self.host}" if host == self.host else host

    def _location(self, response: httpx.Response, what: str) -> httpx.URL:
        location = response.headers.get("Location")
        if not location:
            raise RemoteStoreError(f"{what}: registry {self.host} started an upload without a Location header")
        # a relative Location is relative to the registry, an absolute one may name another host
        return self._client.base_url.join(location)

    def _read_small(self, response: httpx.Response, what: str) -> bytes:
        body = bytearray()
        try:
            with self._mapped_errors(what):
                for chunk in response.iter_bytes(_READ_CHUNK):
                    body += chunk
                    if len(body) > MAX_SMALL_BODY:
                        raise RemoteStoreError(f"{what}: registry {self.host} sent more than {MAX_SMALL_BODY} bytes")
        finally:
            response.close()
        return bytes(body)

    def _paginated(self, path: str, key: str, scope: str, what: str) -> list[str] | None:
        """Every item of a paginated list (``Link: <...>; rel="next"``), or None if the first page is a 404."""
        items: list[str] = []
        url: str | httpx.URL = self._client.base_url.join(path).copy_merge_params({"n": str(_PAGE)})
        while True:
            response = self._send("GET", url, scope, what, ok=(200, 404))
            if response.status_code == 404:
                return items or None
            try:
                values = response.json().get(key) or []
            except (ValueError, AttributeError):
                raise RemoteStoreError(f"{what}: registry {self.host} answered with something other than JSON") from None
            items += [str(v) for v in values]
            following = response.links.get("next", {}).get("url")
            if not following:
                return items
            url = self._client.base_url.join(following)


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _error_detail(response: httpx.Response) -> str:
    """``: CODE message`` from the distribution API's ``{"errors": [...]}`` body, if any."""
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError, httpx.ResponseNotRead):
        return ""
    parts = [f"{e.get('code', '')} {e.get('message', '')}".strip() for e in errors if isinstance(e, dict)]
    return ": " + "; ".join(parts) if parts else ""
