"""How a bundle's files group into parts: the unit of upload for OCI layers and of reuse on pull.

Parts: ``bundle`` (bundle.json, RECORD, openapi.json), ``src``, ``env``, and one
``artifacts/<name>`` per artifact, so an unchanged model is one unchanged part.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..bundler import RECORD_FILE, BundleManifest, file_digest, read_record
from ..errors import IntegrityError


@dataclass(frozen=True)
class BundleFile:
    path: str  # relative POSIX path inside the bundle
    sha256: str
    size: int


@dataclass(frozen=True)
class Part:
    name: str
    files: tuple[BundleFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def part_of(path: str) -> str:
    top, _, rest = path.partition("/")
    if top == "artifacts" and rest:
        return "artifacts/" + rest.split("/", 1)[0]
    if top in ("src", "env"):
        return top
    return "bundle"


def bundle_files(root: Path) -> list[BundleFile]:
    """Every file of a verified bundle with its digest, RECORD included, sorted by path."""
    files = [BundleFile(path, digest, size) for path, (digest, size) in read_record(root).items()]
    record = root / RECORD_FILE
    files.append(BundleFile(RECORD_FILE, file_digest(record), record.stat().st_size))
    return sorted(files, key=lambda f: f.path)


def split_parts(files: list[BundleFile]) -> list[Part]:
    """Files grouped into parts, in a fixed order: bundle, src, env, then artifacts by name."""
    groups: dict[str, list[BundleFile]] = {}
    for file in files:
        groups.setdefault(part_of(file.path), []).append(file)
    order = sorted(groups, key=lambda name: (name.startswith("artifacts/"), {"bundle": 0, "src": 1, "env": 2}.get(name, 3), name))
    return [Part(name, tuple(groups[name])) for name in order]


def check_pulled_manifest(staging: Path, name: str, version: str, url: str) -> None:
    """A pulled bundle must be the one asked for: a store cannot slip ``evil:v2`` in as ``iris:v1``."""
    try:
        manifest = BundleManifest.model_validate_json((staging / "bundle.json").read_bytes())
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"the bundle {name}:{version} in {url} has no valid bundle.json: {exc}") from None
    if (manifest.name, manifest.version) != (name, version):
        raise IntegrityError(f"{url} returned {manifest.tag} when asked for {name}:{version}; nothing was stored")
