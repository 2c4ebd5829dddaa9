"""Registry credentials and authentication challenges, without any HTTP.

Credentials come from ``MODELBUNDLE_REGISTRY_USERNAME`` / ``MODELBUNDLE_REGISTRY_PASSWORD``,
else from the Docker config file (``$DOCKER_CONFIG/config.json`` or
``~/.docker/config.json``, as written by ``docker login``). Credential helpers
(``credsStore``, ``credHelpers``) are not run: they need the docker CLI.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RemoteStoreError

USERNAME_ENV = "MODELBUNDLE_REGISTRY_USERNAME"
PASSWORD_ENV = "MODELBUNDLE_REGISTRY_PASSWORD"
DOCKER_CONFIG_ENV = "DOCKER_CONFIG"
DEFAULT_DOCKER_CONFIG_DIR = Path("~/.docker")

# key="value" or key=token pairs of a WWW-Authenticate header (RFC 7235 auth-params)
_PARAM = re.compile(r'([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Credentials:
    """A user name and password for one registry, and where they came from (for messages)."""

    username: str
    password: str = field(repr=False)
    source: str

    def basic_header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header: the scheme (lowercase) and its parameters."""

    scheme: str
    params: dict[str, str]

    @property
    def scopes(self) -> list[str]:
        return self.params.get("scope", "").split()


def parse_challenge(header: str) -> Challenge:
    """``Bearer realm="https://auth/token",service="registry",scope="repository:a/b:pull"``."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM.finditer(rest)}
    return Challenge(scheme.lower(), {k: v.replace('\\"', '"') for k, v in params.items()})


def find_credentials(host: str) -> Credentials | None:
    """Credentials for ``host`` (``name[:port]``): env vars first, then the Docker config file."""
    username, password = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
    if username:
        return Credentials(username, password or "", f"${USERNAME_ENV}")
    return _from_docker_config(host)


def _docker_config_path() -> Path:
    directory = os.environ.get(DOCKER_CONFIG_ENV)
    return (Path(directory) if directory else DEFAULT_DOCKER_CONFIG_DIR.expanduser()) / "config.json"


def _from_docker_config(host: str) -> Credentials | None:
    path = _docker_config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RemoteStoreError(f"cannot read the Docker config file {path}: {exc}") from None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    # docker login writes the bare host; older clients and other tools also write URLs
    for key in (host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"):
        entry = auths.get(key)
        if isinstance(entry, dict) and entry.get("auth"):
            return _decode_auth(str(entry["auth"]), f"{path} (auths[{key!r}])")
        if isinstance(entry, dict) and entry.get("username"):
            return Credentials(str(entry["username"]), str(entry.get("password", "")), f"{path} (auths[{key!r}])")
    return None


def _decode_auth(value: str, source: str) -> Credentials:
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    username, sep, password = decoded.partition(":")
    if not sep:
        raise RemoteStoreError(f"{source}: 'auth' is not base64 of 'user:password'; run docker login again")
    return Credentials(username, password, source)
