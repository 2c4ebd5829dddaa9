"""``KeyRing``: the API keys a server accepts, from ``--api-key-file`` and ``MODELBUNDLE_API_KEYS``.

A key file holds one entry a line: a key itself, or ``name:sha256-hex-of-the-key`` so the
file holds no secret (``printf %s KEY | sha256sum``); blank lines and ``#`` comments are
skipped. The ring keeps only SHA-256 digests: a given key is hashed and compared with
every digest by ``hmac.compare_digest``, so neither the comparison nor the number of
keys tried tells an attacker how close a guess came. Keys are never logged; an entry
is named in messages by its name or its line number only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from ..errors import ServeError

_HASHED = re.compile(r"^([A-Za-z0-9_.@-]+):([0-9a-fA-F]{64})$")


class KeyRing:
    """Named SHA-256 digests of the accepted keys."""

    def __init__(self, digests: dict[str, bytes]) -> None:
        self._digests = list(digests.items())

    def __len__(self) -> int:
        return len(self._digests)

    def match(self, key: bytes) -> str | None:
        """The name of ``key`` if the ring holds it, else None (constant time in the key's bytes)."""
        digest = hashlib.sha256(key).digest()
        found = None
        for name, known in self._digests:  # no early exit: every digest is compared
            if hmac.compare_digest(digest, known) and found is None:
                found = name
        return found


def load_keys(key_file: str | None, env_keys: tuple[str, ...]) -> KeyRing | None:
    """The keys of ``key_file`` and ``env_keys`` (MODELBUNDLE_API_KEYS), or None when neither is set."""
    if key_file is None and not env_keys:
        return None
    digests: dict[str, bytes] = {}
    if key_file is not None:
        digests.update(_read_key_file(Path(key_file)))
    for number, entry in enumerate(env_keys, 1):
        name, digest = _parse_entry(entry, f"MODELBUNDLE_API_KEYS entry {number}", f"env-{number}")
        digests[name] = digest
    return KeyRing(digests)


def _read_key_file(path: Path) -> dict[str, bytes]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ServeError(f"--api-key-file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ServeError(f"--api-key-file {path}: cannot be read ({exc.__class__.__name__})") from None
    digests: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        name, digest = _parse_entry(entry, f"--api-key-file {path} line {number}", f"line-{number}")
        if name in digests:
            raise ServeError(f"--api-key-file {path} line {number}: the name {name!r} is used twice; give each key its own name")
        digests[name] = digest
    if not digests:
        raise ServeError(f"--api-key-file {path} holds no keys: write one key, or name:sha256-of-the-key, a line")
    return digests


def _parse_entry(entry: str, where: str, default_name: str) -> tuple[str, bytes]:
    """``name:sha256hex`` or a plain key (named ``default_name``); the key itself never enters a message."""
    entry = entry.strip()
    hashed = _HASHED.match(entry)
    if hashed:
        return hashed.group(1), bytes.fromhex(hashed.group(2))
    if any(char.isspace() for char in entry) or not entry.isprintable():
        raise ServeError(f"{where}: a key may not hold spaces or control characters")
    if len(entry) < 8:
        raise ServeError(f"{where}: a key must be at least 8 characters long")
    return default_name, hashlib.sha256(entry.encode()).digest()
