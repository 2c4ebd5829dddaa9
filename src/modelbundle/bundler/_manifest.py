"""``bundle.json`` and ``artifact.json``: the typed manifest of bundle format version 1."""

from __future__ import annotations

import re
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
)

FORMAT_VERSION = 1
MANIFEST_FILE = "bundle.json"
ARTIFACT_FILE = "artifact.json"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(name: str) -> str:
    """Bundle names are lowercase DNS-ish words, so they work as image and repository names too."""
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"bundle name {name!r} must be 1-63 characters of lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


#: a Debian package name (Debian Policy 5.6.1): lowercase letters, digits, '+', '-', '.'; two characters or more
_SYSTEM_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


def check_system_package(name: str) -> str:
    """A Debian package name, as ``system_packages`` holds them (no versions: the image's release decides)."""
    if not _SYSTEM_PACKAGE.match(name):
        raise ValueError(
            f"system package {name!r} is not a Debian package name (lowercase letters, digits, '+', '-', '.'; "
            "no version or architecture), e.g. libgomp1"
        )
    return name


def check_version(version: str) -> str:
    """Versions must be valid as Docker/OCI tags."""
    if not VERSION_PATTERN.match(version):
        raise ValueError(f"bundle version {version!r} must be 1-128 letters, digits, '.', '_' or '-' (a valid image tag)")
    return version


def validation_summary(exc: ValidationError) -> str:
    """A manifest's first problem on one line, naming its field (pydantic's own text is lines and a URL)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].splitlines()[0] if first["msg"] else first["type"]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class APIInfo(_Model):
    name: str
    route: str
    batchable: bool
    max_batch_size: int
    max_latency_ms: float
    batch_dim: int
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    doc: str = ""
    #: the output schema is that of each item of a stream (SSE or NDJSON, or WebSocket messages)
    streaming: bool = False
    websocket: bool = False


class RefFile(_Model):
    """One file of a referenced directory: its path under the URI, its digest and size."""

    path: str
    sha256: str
    size: int


class ArtifactRef(_Model):
    """Weights by reference: what ``artifacts/<name>/`` does not copy, and the digest they must have."""

    uri: str
    #: 64 hex digits; for "dir", the digest of its files' lines (docs/bundle-format.md)
    sha256: str
    size: int
    kind: str = "file"
    files: list[RefFile] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _omit_no_files(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.kind == "file":
            data.pop("files", None)
        return data


class ArtifactInfo(_Model):
    """One entry of the manifest's ``artifacts``; the same data as the artifact's artifact.json."""

    name: str
    kind: str
    framework: str | None = None
    framework_version: str | None = None
    python_version: str
    meta: dict[str, Any] = Field(default_factory=dict)
    #: set for weights referenced by URI (nothing copied); written only then
    ref: ArtifactRef | None = None

    @model_serializer(mode="wrap")
    def _omit_no_ref(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a copied artifact's entry keeps the bytes (and the bundle version) it had before refs existed
        data: dict[str, Any] = handler(self)
        if data.get("ref") is None:
            data.pop("ref", None)
        return data


#: between a dependency's service name and its artifact's name, in a composed bundle (``Classifier.weights``)
ARTIFACT_SEPARATOR = "."


class ServiceInfo(_Model):
    """One service of a composed bundle's graph (``depends``), in ``bundle.json``'s ``services``."""

    name: str
    #: module:Class, importable from src/
    entry: str
    apis: list[APIInfo]
    #: attribute -> the service name it depends on
    dependencies: dict[str, str] = Field(default_factory=dict)


class Dependencies(_Model):
    #: what requirements.in holds: direct requirements, pinned
    requirements: list[str]
    #: imports found under try/except ImportError, recorded but not required
    optional: list[str] = Field(default_factory=list)
    #: import names that mapped to no installed distribution
    unresolved: list[str] = Field(default_factory=list)
    #: where the requirements came from: "inferred" or "requirements-file"
    source: str = "inferred"
    locked: int = 0


class BuildInfo(_Model):
    modelbundle_version: str
    python_implementation: str
    platform: str
    conda: bool = False


class BundleManifest(_Model):
    """The manifest of a bundle, ``bundle.json``."""

    format_version: int = FORMAT_VERSION
    name: str
    version: str
    created_at: str
    service: str = Field(description="module:Class, importable from src/")
    service_name: str
    apis: list[APIInfo]
    python_version: str
    dependencies: Dependencies
    artifacts: list[ArtifactInfo] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    #: Debian packages the bundle's images install (bundle containerize), sorted
    system_packages: list[str] = Field(default_factory=list)
    #: a composed bundle's graph: every service, dependencies first, the entry last; empty for one service
    services: list[ServiceInfo] = Field(default_factory=list)
    build: BuildInfo

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    def artifact_owner(self, artifact: str) -> str:
        """The service an artifact belongs to: a dependency's are stored as ``<service>.<name>``,
        the entry's (and a one-service bundle's, whose service is ``service_name``) by plain name."""
        if not self.services:
            return self.service_name
        owner, separator, _ = artifact.rpartition(ARTIFACT_SEPARATOR)
        if separator and owner in {info.name for info in self.services[:-1]}:
            return owner
        return self.services[-1].name

    @field_validator("system_packages")
    @classmethod
    def _system_packages(cls, value: list[str]) -> list[str]:
        return [check_system_package(name) for name in value]

    @model_serializer(mode="wrap")
    def _omit_no_system_packages(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # written only when there are some: a bundle without them has the bytes, the version and the
        # readers (older modelbundles reject unknown fields) it had before the field existed
        data: dict[str, Any] = handler(self)
        for optional in ("system_packages", "services"):  # likewise a one-service bundle's graph
            if not data.get(optional):
                data.pop(optional, None)
        return data

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        return check_version(value)

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def python_minor(self) -> str:
        """``"3.11"`` for a bundle built with Python 3.11.7: what an image or a runtime must match."""
        return ".".join(self.python_version.split(".")[:2])

    def dump(self) -> bytes:
        """Canonical JSON: sorted keys, fixed indentation, so equal manifests are equal bytes."""
        import json

        return (json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n").encode()
