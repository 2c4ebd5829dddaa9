"""Read a ``requirements.lock`` written by pip-compile: each pinned distribution and its allowed hashes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from ..errors import IntegrityError

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>\S+?)(?:\s*;.*)?$")
_OPTIONS = re.compile(r"\s+--|\\")
_HASH = re.compile(r"--hash=sha256:(?P<hex>[0-9a-f]{64})")


@dataclass(frozen=True)
class LockedDistribution:
    name: NormalizedName
    version: str
    #: sha256 hex digests of the files (wheels, sdist) pip may install for this pin
    hashes: frozenset[str]
    #: the requirement's own line(s), hashes included, as pip reads them
    text: str

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


def read_lock(path: Path) -> list[LockedDistribution]:
    """Every pin of the lock, in file order; a pin without hashes is an error (pip would refuse it too)."""
    locked = []
    for entry in _entries(path.read_text()):
        first = _OPTIONS.split(entry, maxsplit=1)[0].strip()  # the requirement, before any --hash
        match = _PIN.match(first)
        if not match:
            raise IntegrityError(f"{path}: cannot read the locked requirement {first!r}")
        hashes = frozenset(m.group("hex") for m in _HASH.finditer(entry))
        if not hashes:
            raise IntegrityError(f"{path}: {first} has no --hash lines")
        locked.append(LockedDistribution(canonicalize_name(match.group("name")), match.group("version"), hashes, entry))
    return locked


def _entries(text: str) -> list[str]:
    """Requirement lines joined with their backslash continuations; comments and options dropped."""
    entries: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith(("#", "-"))):
            continue
        current.append(line)
        if not stripped.endswith("\\"):
            entries.append("\n".join(current))
            current = []
    if current:
        entries.append("\n".join(current))
    return entries
