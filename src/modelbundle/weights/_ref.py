"""``WeightRef``: one referenced artifact of a bundle (a file or a directory behind a URI), and its digests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..bundler import BundleManifest

SCHEMES = ("file", "s3", "oci")
_HEX = re.compile(r"^[0-9a-f]{64}$")


def check_hex(value: str, what: str) -> str:
    """A sha256 as 64 lowercase hex digits (a ``sha256:`` prefix is accepted and dropped)."""
    hex_digest = value.removeprefix("sha256:")
    if not _HEX.match(hex_digest):
        raise ValueError(f"{what} must be a sha256 of 64 lowercase hex digits, got {value!r}")
    return hex_digest


@dataclass(frozen=True)
class WeightFile:
    """One file of a directory reference: its path relative to the directory, its digest, its size."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class WeightBlob:
    """One blob to fetch: where it is, what it must hash to, and which artifact (and file) it is for."""

    uri: str
    sha256: str
    size: int
    label: str


@dataclass(frozen=True)
class WeightRef:
    """A referenced artifact: ``kind`` "file" (one blob) or "dir" (``files``, each a blob under ``uri``)."""

    artifact: str
    uri: str
    sha256: str
    size: int
    kind: str = "file"
    files: tuple[WeightFile, ...] = ()

    def blobs(self) -> list[WeightBlob]:
        if self.kind == "file":
            return [WeightBlob(self.uri, self.sha256, self.size, self.artifact)]
        base = self.uri.rstrip("/")
        return [WeightBlob(f"{base}/{f.path}", f.sha256, f.size, f"{self.artifact}/{f.path}") for f in self.files]

    def as_json(self) -> dict[str, Any]:
        """The ``ref`` object of the artifact's entry in ``bundle.json``."""
        data: dict[str, Any] = {"uri": self.uri, "sha256": self.sha256, "size": self.size, "kind": self.kind}
        if self.kind == "dir":
            data["files"] = [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files]
        return data

    @classmethod
    def from_json(cls, artifact: str, data: dict[str, Any]) -> WeightRef:
        files = tuple(WeightFile(f["path"], f["sha256"], int(f["size"])) for f in data.get("files", ()))
        return cls(artifact, data["uri"], data["sha256"], int(data["size"]), data.get("kind", "file"), files)


def dir_digest(files: list[WeightFile] | tuple[WeightFile, ...]) -> str:
    """A directory's digest: the sha256 of its sorted ``<sha256> <size> <path>`` lines (one per file)."""
    lines = "".join(f"{f.sha256} {f.size} {f.path}\n" for f in sorted(files, key=lambda f: f.path))
    return hashlib.sha256(lines.encode()).hexdigest()


def distinct_blobs(refs: Iterable[WeightRef]) -> list[WeightBlob]:
    """Every blob ``refs`` name, once per digest (a directory's files each are one), in order of first mention."""
    found: dict[str, WeightBlob] = {}
    for ref in refs:
        for blob in ref.blobs():
            found.setdefault(blob.sha256, blob)
    return list(found.values())


def references(manifest: BundleManifest) -> list[WeightRef]:
    """Every artifact of ``manifest`` that is a reference rather than a copy, in manifest order."""
    return [WeightRef.from_json(info.name, info.ref.model_dump()) for info in manifest.artifacts if info.ref is not None]
