"""``weights.lock``: the digests of a project's referenced weights, beside ``pyproject.toml``.

``bundle weights pin`` writes it; ``bundle build`` reads it, so a declaration
with only a ``uri=`` gets its pinned digest. JSON with sorted keys, one entry
per URI (the same object as a ``ref`` in ``bundle.json``), so a diff shows
which weights changed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import BuildError
from ._ref import WeightRef

LOCK_FILE = "weights.lock"
LOCK_VERSION = 1


def read_weights_lock(project_dir: Path) -> dict[str, WeightRef]:
    """uri -> its pinned reference (artifact name empty); {} when the project has no lock."""
    path = project_dir / LOCK_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        entries = data["weights"]
        return {uri: WeightRef.from_json("", entry) for uri, entry in entries.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BuildError(f"{path} is not a weights lock ({type(exc).__name__}: {exc}); run bundle weights pin again") from None


def write_weights_lock(project_dir: Path, refs: list[WeightRef]) -> Path:
    """Write (atomically) the lock of ``refs``, keyed by URI."""
    path = project_dir / LOCK_FILE
    entries: dict[str, Any] = {ref.uri: ref.as_json() for ref in refs}
    text = json.dumps({"version": LOCK_VERSION, "weights": entries}, indent=2, sort_keys=True) + "\n"
    fd, temporary = tempfile.mkstemp(prefix=f".{LOCK_FILE}.", dir=project_dir)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)
    return path
