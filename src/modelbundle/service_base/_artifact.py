"""``Artifact``: a model file or object a Service declares and reads as an attribute."""

from __future__ import annotations

from typing import Any

from ..adapters import ARTIFACT_KINDS as KINDS
from ..adapters import artifact_kind
from ..errors import ArtifactError, DefinitionError

LOADED_ARTIFACTS_ATTR = "_modelbundle_artifacts"


class Artifact:
    """Declare a model the service needs; read it as ``self.<name>`` in ``setup()`` and APIs::

        class Iris(Service):
            model = Artifact("sklearn")                      # bound with Iris.pack(model=clf)
            labels = Artifact("file", path="labels.txt")     # a file beside the service file

    Kinds: pickle (cloudpickle), joblib, sklearn, xgboost, lightgbm, torch, onnx,
    mlflow (an MLflow model directory; ``flavor="sklearn"`` for the native model
    rather than pyfunc), file, dir. Framework kinds are saved in the framework's own
    format with its version recorded; loading checks the version.
    """

    def __init__(self, kind: str, path: str | None = None, *, description: str = "", flavor: str | None = None) -> None:
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
        self.kind = kind
        self.path = path
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
        return f"Artifact({self.kind!r}{path})"


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
