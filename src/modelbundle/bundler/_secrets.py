"""Which files bound for a bundle look like secrets: by name, and by what they hold.

A build warns about them by name (they still go in: the project may mean it)
and records in the bundle's labels that the check ran and what it found
(``SECRET_SCAN_LABEL``), so whoever pulls a bundle can tell a checked one from
one built before the check existed.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path, PurePosixPath

SECRET_SCAN_LABEL = "ai.modelbundle.secret-scan"
#: file names (fnmatch, case-insensitive) that usually hold keys, tokens or passwords
SECRET_NAMES = (
    ".env", ".env.*", "*.env", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.pem", "*.key", "*.p12", "*.pfx",
    "*.keystore", "*.jks", "*.kdbx", "*.ppk", "credentials", "credentials.*", "*credentials*.json", "secret", "secrets",
    "secret.*", "secrets.*", "*.secret", "*.secrets", "client_secret*.json", "service-account*.json", "token.json",
    ".netrc", ".pypirc", ".npmrc", ".pgpass", ".htpasswd", ".git-credentials", ".dockercfg", "*.tfstate", "*.tfvars",
)
#: a file named like code is code, whatever its name says (credentials.py reads a secret; it holds none)
_CODE_SUFFIXES = (".py", ".pyi", ".ipynb", ".md", ".rst")
SECRET_FOLDERS = (".aws", ".ssh", ".gnupg", ".docker", ".kube")
#: what a secret looks like inside a file
SECRET_CONTENT = {
    "a private key": re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    "an AWS access key id": re.compile(rb"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z2-7]{16}(?![A-Z0-9])"),
    "a GitHub token": re.compile(rb"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"),
    "a Slack token": re.compile(rb"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "a Google API key": re.compile(rb"\bAIza[0-9A-Za-z_-]{35}"),
    "a Stripe secret key": re.compile(rb"\b[sr]k_live_[0-9A-Za-z]{24,}"),
    "a Hugging Face token": re.compile(rb"\bhf_[A-Za-z0-9]{34,}"),
}
#: how much of each file is read for SECRET_CONTENT: secrets sit in small files
SCAN_BYTES = 4 * 1024 * 1024


def looks_like_secret(relative: Path) -> bool:
    """True if the file's name or folder says it holds a secret."""
    parts = PurePosixPath(relative.as_posix()).parts
    if any(part in SECRET_FOLDERS for part in parts[:-1]):
        return True
    name = relative.name.lower()
    if name.endswith(_CODE_SUFFIXES):
        return False
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in SECRET_NAMES)


def secret_in(path: Path) -> str | None:
    """What kind of secret the file holds (``"a private key"``), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(SCAN_BYTES)
    except OSError:
        return None
    return next((kind for kind, pattern in SECRET_CONTENT.items() if pattern.search(head)), None)


def find_secrets(root: Path, files: list[Path]) -> list[str]:
    """Each file (relative to ``root``) that looks like a secret, sorted: its path, and what it holds if its name does not say."""
    found = []
    for relative in sorted(files, key=lambda p: p.as_posix()):
        if looks_like_secret(relative):
            found.append(relative.as_posix())
        elif (kind := secret_in(root / relative)) is not None:
            found.append(f"{relative.as_posix()} ({kind})")
    return found


def scan_label(found: list[str]) -> str:
    """The value of SECRET_SCAN_LABEL: ``clean``, or ``flagged:`` and the files."""
    return "flagged: " + ", ".join(found) if found else "clean"
