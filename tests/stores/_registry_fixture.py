"""A real OCI registry on 127.0.0.1: Debian's ``docker-registry`` (CNCF distribution 2.8).

Three flavours, one storage directory each: open, behind htpasswd (Basic), and
behind token authentication (Bearer) with a small token service of our own
that signs JWTs for the registry the way Docker Hub's or Harbor's does. The
registry's access log is kept, so tests can count the requests it received.

Use the fixtures by importing them into a test module (or a conftest)::

    from ._registry_fixture import registry_fixture  # noqa: F401
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

INSTALL_HINT = "scripts/test.sh installs it (apt-get install -y docker-registry apache2-utils)"
USER, PASSWORD = "mb-user", "mb-secret"
START_TIMEOUT = 20.0
TOKEN_SERVICE = "modelbundle-test-registry"
TOKEN_ISSUER = "modelbundle-test-token-service"
_ACCESS_LOG = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3})')


def _binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None)
    if path is None:  # a failure, not a skip: these tests must run wherever the suite runs
        pytest.fail(f"{name} is not installed; {INSTALL_HINT}", pytrace=False)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Request:
    method: str
    path: str
    status: int


@dataclass
class Registry:
    """``docker-registry serve`` on 127.0.0.1:``port`` with its storage under ``root``."""

    root: Path
    auth: dict[str, Any] = field(default_factory=dict)  # the config's auth section
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    @property
    def log(self) -> Path:
        return self.root / "registry.log"

    def url(self, namespace: str = "models") -> str:
        return f"oci://{self.host}/{namespace}"

    def start(self) -> None:
        config = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)}, "delete": {"enabled": True}},
            # a fixed secret: upload state stays valid across a restart, and no warning
            "http": {"addr": self.host, "secret": "modelbundle-tests"},
            **({"auth": self.auth} if self.auth else {}),
        }
        path = self.root / "config.yml"
        path.write_text(json.dumps(config))  # YAML is a superset of JSON
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([_binary("docker-registry"), "serve", str(path)], stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"docker-registry exited with {self.proc.returncode}:\n{self.log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://{self.host}/v2/", timeout=1.0).status_code in (200, 401):
                    return
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"docker-registry did not answer within {START_TIMEOUT} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no graceful end to the requests in flight."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def requests(self, method: str | None = None, path: str = "") -> list[Request]:
        """The requests in the access log, optionally only ``method`` ones whose path contains ``path``."""
        found = [Request(m.group(1), m.group(2), int(m.group(3))) for m in _ACCESS_LOG.finditer(self.log.read_text())]
        return [r for r in found if (method is None or r.method == method) and path in r.path]

    def blob_data(self, digest: str) -> Path:
        hexdigest = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"

    def blob_digests(self) -> set[str]:
        """Every blob the registry stores (layers, configs and manifests)."""
        root = self.storage / "docker/registry/v2/blobs/sha256"
        return {f"sha256:{p.parent.name}" for p in root.glob("*/*/data")} if root.is_dir() else set()

    def tags(self, repository: str, headers: dict[str, str] | None = None) -> list[str]:
        response = httpx.get(f"http://{self.host}/v2/{repository}/tags/list", headers=headers, timeout=10)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return list(response.json().get("tags") or [])


@contextlib.contextmanager
def running(registry: Registry) -> Iterator[Registry]:
    registry.root.mkdir(parents=True, exist_ok=True)
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(name="registry")
def registry_fixture(tmp_path: Path) -> Iterator[Registry]:
    """An open registry (no authentication)."""
    with running(Registry(tmp_path / "registry")) as started:
        yield started


@pytest.fixture(name="htpasswd_registry")
def htpasswd_registry_fixture(tmp_path: Path) -> Iterator[Registry]:
    """A registry that asks for Basic credentials: ``USER`` / ``PASSWORD``."""
    root = tmp_path / "registry"
    root.mkdir()
    line = subprocess.run([_binary("htpasswd"), "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True).stdout
    (root / "htpasswd").write_text(line.strip() + "\n")
    auth = {"htpasswd": {"realm": "modelbundle", "path": str(root / "htpasswd")}}
    with running(Registry(root, auth=auth)) as started:
        yield started


# -- token authentication ---------------------------------------------------------------------
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """Issues registry tokens (RS256 JWTs with the signing certificate in ``x5c``) to ``USER``.

    The registry trusts the certificate through ``auth.token.rootcertbundle``;
    every request's Basic user and scopes are kept in ``issued``.
    """

    def __init__(self, root: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOKEN_ISSUER)])
        now = datetime.now(timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self._key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1)).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.certificate = root / "token.pem"
        self.certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.issued: list[tuple[str | None, list[str]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.realm = f"http://127.0.0.1:{self._server.server_address[1]}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def token(self, subject: str, scopes: list[str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for scope in scopes:  # "repository:models/echo:pull,push" or "registry:catalog:*"
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": TOKEN_ISSUER, "sub": subject, "aud": TOKEN_SERVICE, "exp": now + 300, "nbf": now - 10,
            "iat": now, "jti": uuid.uuid4().hex, "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if (user, password) != (USER, PASSWORD):
                        self._answer(401, {"details": "wrong user name or password"})
                        return
                scopes = query.get("scope", [])
                service.issued.append((user, scopes))
                if user is None:  # anonymous: a token that grants nothing, as public registries do
                    scopes = []
                token = service.token(user or "anonymous", scopes)
                self._answer(200, {"token": token, "access_token": token, "expires_in": 300})

            def _answer(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> TokenService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


@dataclass
class TokenRegistry:
    registry: Registry
    tokens: TokenService


@pytest.fixture(name="token_registry")
def token_registry_fixture(tmp_path: Path) -> Iterator[TokenRegistry]:
    """A registry that asks for Bearer tokens from a token service that knows ``USER`` / ``PASSWORD``."""
    root = tmp_path / "registry"
    root.mkdir()
    with TokenService(root) as tokens:
        auth = {"token": {"realm": tokens.realm, "service": TOKEN_SERVICE, "issuer": TOKEN_ISSUER, "rootcertbundle": str(tokens.certificate)}}
        with running(Registry(root, auth=auth)) as started:
            yield TokenRegistry(started, tokens)
