"""``Artifact``: a model file or object a Service declares and reads as an attribute."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from ..adapters import ARTIFACT_KINDS as KINDS
from ..adapters import artifact_kind
from ..errors import ArtifactError, DefinitionError

LOADED_ARTIFACTS_ATTR = "_modelbundle_artifacts"
#: where referenced weights may live (docs/weights.md); modelbundle.weights reads each
REFERENCE_SCHEMES = ("s3", "oci", "file")
_SHA256 = re.compile(r"^(sha256:)?[0-9a-f]{64}$")


class Artifact:
    """Declare a model the service needs; read it as ``self.<name>`` in ``setup()`` and APIs::

        class Iris(Service):
            model = Artifact("sklearn")                      # bound with Iris.pack(model=clf)
            labels = Artifact("file", path="labels.txt")     # a file beside the service file
            weights = Artifact("file", uri="s3://models/llm.bin", sha256="<64 hex>")  # by reference

    Kinds: pickle (cloudpickle), joblib, sklearn, xgboost, lightgbm, torch, onnx,
    mlflow (an MLflow model directory; ``flavor="sklearn"`` for the native model
    rather than pyfunc), file, dir. Framework kinds are saved in the framework's own
    format with its version recorded; loading checks the version.

    A "file" or "dir" artifact may be a reference instead of a copy: ``uri=`` (s3://bucket/key,
    oci://registry/repo@sha256:<hex>, file:///path) with its ``sha256=`` (and ``size=``), or a
    digest pinned by ``bundle weights pin``; it is fetched into the cache on first need.
    """

    def __init__(
        self, kind: str, path: str | None = None, *, description: str = "", flavor: str | None = None,
        uri: str | None = None, sha256: str | None = None, size: int | None = None,
    ) -> None:
        if kind not in KINDS:
            raise DefinitionError(f"Artifact kind {kind!r} is unknown; choose one of {', '.join(KINDS)}")
        if path is not None and (not isinstance(path, str) or not path):
            raise DefinitionError(f"Artifact(path=...) must be a file path relative to the service file, got {path!r}")
        options = {} if flavor is None else {"flavor": flavor}
        unknown = sorted(set(options) - set(artifact_kind(kind).option_names))
        if unknown:
            raise DefinitionError(f"Artifact({kind!r}) takes no {', '.join(unknown)}=...; only Artifact('mlflow', flavor=...) does")
        if flavor is not None and (not isinstance(flavor, str) or not flavor.isidentifier()):
            raise DefinitionError(f"Artifact(flavor=...) must be an MLflow flavor name such as 'sklearn', got {flavor!r}")
        _check_reference(kind, path, uri, sha256, size)
        self.kind = kind
        self.path = path
        self.uri = uri
        #: 64 hex digits (a "sha256:" prefix dropped), or None until built or pinned
        self.sha256 = sha256.removeprefix("sha256:") if sha256 else _oci_digest(uri)
        self.size = size
        self.description = description
        #: keyword options for the kind's handler (artifact_kind(kind, **options))
        self.options = options
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        if name.startswith("_"):
            raise DefinitionError(f"{owner.__name__}.{name}: an artifact name may not start with '_'")
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        loaded = instance.__dict__.get(LOADED_ARTIFACTS_ATTR, {})
        if self.name not in loaded:
            raise ArtifactError(
                f"artifact '{self.name}' of {type(instance).__name__} is not loaded; serve a built bundle "
                "(bundle build, then bundle serve NAME), or give it a path=... beside the service file"
            )
        return loaded[self.name]

    def __repr__(self) -> str:
        path = f", path={self.path!r}" if self.path else ""
        uri = f", uri={self.uri!r}" if self.uri else ""
        return f"Artifact({self.kind!r}{path}{uri})"


def _oci_digest(uri: str | None) -> str | None:
    """An oci:// reference names its blob's digest: the declaration needs no sha256= of its own."""
    if uri is None or not uri.startswith("oci://"):
        return None
    return uri.rpartition("@sha256:")[2]


def _check_reference(kind: str, path: str | None, uri: str | None, sha256: str | None, size: int | None) -> None:
    """A reference's URI, digest and size, checked when the class is defined."""
    if uri is None:
        if sha256 is not None or size is not None:
            raise DefinitionError("Artifact(sha256=..., size=...) describe a reference: give its uri=... too")
        return
    if kind not in ("file", "dir"):
        raise DefinitionError(f"Artifact({kind!r}, uri=...): only 'file' and 'dir' artifacts may be references")
    if path is not None:
        raise DefinitionError("Artifact(path=..., uri=...): give one, a copied file (path) or a reference (uri)")
    parts = urlsplit(uri) if isinstance(uri, str) else None
    if parts is None or parts.scheme not in REFERENCE_SCHEMES:
        schemes = ", ".join(f"{s}://" for s in REFERENCE_SCHEMES)
        raise DefinitionError(f"Artifact(uri={uri!r}): the URI must start with one of {schemes}")
    if parts.scheme == "s3" and (not parts.netloc or not parts.path.strip("/")):
        raise DefinitionError(f"Artifact(uri={uri!r}): an S3 reference is s3://bucket/key")
    if parts.scheme == "file" and (parts.netloc not in ("", "localhost") or not parts.path.startswith("/")):
        raise DefinitionError(f"Artifact(uri={uri!r}): a file reference is file:///absolute/path")
    if parts.scheme == "oci":
        _repository, _, digest = parts.path.partition("@")
        if kind == "dir":
            raise DefinitionError(f"Artifact('dir', uri={uri!r}): an OCI blob is one file; reference a directory on s3:// or file://")
        if not parts.netloc or not _repository.strip("/") or not _SHA256.match(digest) or not digest.startswith("sha256:"):
            raise DefinitionError(f"Artifact(uri={uri!r}): an OCI reference is oci://registry/repository@sha256:<64 hex digits>")
        if sha256 is not None and sha256.removeprefix("sha256:") != digest.removeprefix("sha256:"):
            raise DefinitionError(f"Artifact(uri={uri!r}, sha256={sha256!r}): the digests differ")
    if sha256 is not None and (not isinstance(sha256, str) or not _SHA256.match(sha256)):
        raise DefinitionError(f"Artifact(sha256={sha256!r}): a digest is 64 lowercase hex digits (optionally after 'sha256:')")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise DefinitionError(f"Artifact(size={size!r}): a size is a whole number of bytes")


def declared_artifacts(cls: type) -> dict[str, Artifact]:
    """The artifacts a Service class declares, inherited ones included, in definition order."""
    found: dict[str, Artifact] = {}
    for klass in reversed(cls.__mro__):
        for name, member in vars(klass).items():
            if isinstance(member, Artifact):
                found[name] = member
    return found


def bind_artifacts(instance: Any, values: dict[str, Any]) -> None:
    """Give a service instance its loaded artifacts (before setup() runs)."""
    instance.__dict__[LOADED_ARTIFACTS_ATTR] = dict(values)


class PackedService:
    """A Service class with artifact values bound, ready to ``save()`` as a bundle."""

    def __init__(self, service_cls: type, values: dict[str, Any]) -> None:
        declared = declared_artifacts(service_cls)
        unknown = sorted(set(values) - set(declared))
        if unknown:
            known = ", ".join(declared) or "none"
            raise ArtifactError(f"{service_cls.__name__}.pack() got unknown artifacts {unknown}; declared: {known}")
        self.service_cls = service_cls
        self.values = dict(values)

    def save(
        self,
        name: str | None = None,
        version: str | None = None,
        *,
        labels: dict[str, str] | None = None,
        python_packages: list[str] | None = None,
        quiet: bool = True,
    ) -> str:
        """Build a bundle into the local store and return its tag ``name:version``."""
        # the one call from the declaration layer down to the bundler, imported on use
        from ..bundler import BuildOptions, build_packed

        options = BuildOptions(
            name=name, version=version, labels=labels or {}, python_packages=python_packages or [], quiet=quiet
        )
        return build_packed(self, options).tag
