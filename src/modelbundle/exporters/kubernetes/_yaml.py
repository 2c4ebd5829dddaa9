"""YAML out, byte for byte the same for the same objects, and written to a directory all at once or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:  # a runtime-only install: reported when manifests are written
    yaml = None

from ..._install_hints import needs_build_tool
from ...errors import ExportError


def to_yaml(obj: Mapping[str, Any], header: str = "") -> bytes:
    """One YAML document: keys in the order built (apiVersion, kind, metadata, spec), strings quoted where YAML 1.1 needs it."""
    if yaml is None:
        raise ExportError(needs_build_tool("writing Kubernetes manifests", "PyYAML"))
    body: str = yaml.safe_dump(dict(obj), sort_keys=False, default_flow_style=False, width=4096, allow_unicode=True)
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return (comment + body).encode()


def write_directory(output: Path, files: Mapping[str, bytes], owned: Collection[str]) -> None:
    """Write ``files`` into the directory ``output``.

    A new directory appears complete (staged beside it, then renamed). An
    existing one may hold only files named in ``owned`` (an earlier export);
    they are replaced, or removed when this export no longer writes them.
    Anything else in it is refused before a byte is written.
    """
    if output.exists() and not output.is_dir():
        raise ExportError(f"-o {output}: exists and is not a directory; choose a directory to write the manifests to")
    if output.is_dir():
        others = sorted(p.name for p in output.iterdir() if p.name not in owned or not p.is_file())
        if others:
            listed = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise ExportError(
                f"-o {output}: the directory holds files this export did not write ({listed}); "
                "choose an empty or new directory"
            )
        for name, data in sorted(files.items()):
            handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=output)
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, output / name)
        for stale in sorted(set(owned) - set(files)):
            (output / stale).unlink(missing_ok=True)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent))
    try:
        for name, data in sorted(files.items()):
            (staging / name).write_bytes(data)
            (staging / name).chmod(0o644)
        staging.chmod(0o755)
        os.rename(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
