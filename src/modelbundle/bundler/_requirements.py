"""Import names -> pinned distributions; explicit requirements always win, extras included."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .._version import __version__
from ..errors import BuildError
from ._installed import RUNTIME_DISTRIBUTION, import_map
from ._manifest import ArtifactInfo

#: what each artifact kind needs at serve time, besides modelbundle's own dependencies
KIND_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "joblib": ("joblib",),
    "sklearn": ("scikit-learn", "joblib"),
    "xgboost": ("xgboost",),
    "lightgbm": ("lightgbm",),
    "torch": ("torch",),
    "onnx": ("onnx",),
}


@dataclass
class ResolvedRequirements:
    """Direct requirements of a bundle, and what could not be resolved."""

    requirements: dict[str, str] = field(default_factory=dict)  # canonical name -> requirement line
    optional: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [self.requirements[name] for name in sorted(self.requirements)]


def installed_pin(distribution: str) -> str | None:
    """``Name==version`` of an installed distribution, in its own spelling, or None."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    return f"{dist.metadata['Name']}=={dist.version}"


def infer_requirements(
    required: Iterable[str], optional: Iterable[str], kinds: Iterable[str], cache_dir: Path | None = None
) -> ResolvedRequirements:
    """Pin the installed distribution behind each import name and each artifact kind."""
    result = ResolvedRequirements()
    by_import = import_map(cache_dir)
    wanted: set[str] = {RUNTIME_DISTRIBUTION}
    for name in sorted(set(required) - {RUNTIME_DISTRIBUTION}):  # the runtime is always added, pinned
        distributions = by_import.get(name)
        if not distributions:
            result.unresolved.append(name)
            continue
        wanted.update(distributions)
    for kind in kinds:
        wanted.update(KIND_DISTRIBUTIONS.get(kind, ()))
    for distribution in sorted(wanted):
        pin = installed_pin(distribution)
        if pin is None:
            if distribution == RUNTIME_DISTRIBUTION:
                pin = f"{RUNTIME_DISTRIBUTION}=={__version__}"
            else:
                result.unresolved.append(distribution)
                continue
        result.requirements[canonicalize_name(distribution)] = pin
    required = {canonicalize_name(d) for d in wanted}  # compare canonical names: "PyYAML" is "pyyaml"
    result.optional = sorted(
        {d for name in optional for d in by_import.get(name, [name]) if canonicalize_name(d) not in required}
    )
    return result


def apply_explicit(result: ResolvedRequirements, explicit: Iterable[str], source: str) -> None:
    """Put each explicit requirement over the inferred one of the same name, keeping its extras and pins."""
    for line in explicit:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise BuildError(f"{source}: {line!r} is not a valid requirement ({exc})") from None
        result.requirements[canonicalize_name(requirement.name)] = str(requirement)


def artifact_requirements(artifacts: Iterable[ArtifactInfo]) -> list[tuple[str, list[str]]]:
    """The requirements artifacts bring with them (an MLflow model's requirements.txt), by artifact name."""
    return [(a.name, list(a.meta["requirements"])) for a in artifacts if a.meta.get("requirements")]


def read_requirements_file(path: str) -> list[str]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise BuildError(f"cannot read --requirements {path}: {exc.strerror}") from None
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line.startswith(("-r", "-c", "--")):
            raise BuildError(f"{path}: options such as {line.split()[0]} are not supported; list requirements only")
        if line and not line.startswith("#"):
            lines.append(line)
    return lines
