"""``BuildOptions``: everything ``bundle build`` needs, resolved once (flag > pyproject > default)."""

from __future__ import annotations

import os
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import BuildError

PYPROJECT = "pyproject.toml"
OFFLINE_ENV = "MODELBUNDLE_OFFLINE"

#: what locks the environment: uv, pip-compile, or uv when it can run (else pip-compile, saying why)
Resolver = Literal["auto", "uv", "pip-tools"]
DEFAULT_RESOLVER: Resolver = "auto"


class BuildOptions(BaseModel):
    """How to build. Field, CLI flag and ``[tool.modelbundle]`` key share a name."""

    model_config = ConfigDict(extra="forbid")

    #: module:Class or path/file.py:Class
    service: str | None = None
    name: str | None = None
    version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    #: extra files to ship in src/ (globs relative to the import root)
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    #: a requirements file used instead of inference
    requirements: str | None = None
    #: requirements added over the inferred ones (they win on a name clash)
    python_packages: list[str] = Field(default_factory=list)
    #: Debian packages the bundle's images install (libgomp1, ffmpeg, libsndfile1): recorded in bundle.json
    system_packages: list[str] = Field(default_factory=list)
    #: artifact name -> file path, over the paths declared on the class
    artifacts: dict[str, str] = Field(default_factory=dict)
    vendor_wheels: bool = False
    conda_pack: bool = False
    find_links: list[str] = Field(default_factory=list)
    offline: bool = False
    #: compute a referenced artifact's missing digest by streaming its URI (docs/weights.md)
    fetch_digest: bool = False
    resolver: Resolver = DEFAULT_RESOLVER
    quiet: bool = False
    #: the folder the pyproject.toml was read from (paths in it are relative to it)
    project_dir: str | None = None


_FILE_KEYS = {
    "service", "name", "version", "labels", "include", "exclude", "requirements", "python_packages",
    "packages", "system_packages", "artifacts", "vendor_wheels", "find_links", "resolver",
}
#: build options that may come from MODELBUNDLE_BUILD_<FIELD> (the BUILD_ keeps them apart
#: from the server's MODELBUNDLE_<FIELD>: MODELBUNDLE_VERSION would read as modelbundle's own)
ENV_PREFIX = "MODELBUNDLE_BUILD_"
_ENV_FIELDS = ("service", "name", "version", "requirements", "vendor_wheels", "conda_pack", "offline", "resolver", "quiet")


def resolve_build_options(
    flags: Mapping[str, Any], cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> BuildOptions:
    """Merge CLI flags (None/empty = not given) over MODELBUNDLE_BUILD_* env vars over
    ``[tool.modelbundle]`` in ./pyproject.toml over defaults."""
    cwd = cwd or Path.cwd()
    env = os.environ if env is None else env
    values: dict[str, Any] = dict(_read_pyproject(cwd / PYPROJECT))
    for field in _ENV_FIELDS:
        if env.get(ENV_PREFIX + field.upper(), "") != "":
            values[field] = env[ENV_PREFIX + field.upper()]  # pydantic parses "1"/"true" for flags
    for key, value in flags.items():
        if value is None or value == () or value == [] or value == {}:
            continue
        if key == "labels":
            values["labels"] = {**values.get("labels", {}), **value}
        elif key in ("include", "exclude", "python_packages", "system_packages", "find_links"):
            values[key] = [*values.get(key, []), *value]
        else:
            values[key] = value
    if env.get(OFFLINE_ENV, "").lower() in ("1", "true", "yes", "on"):  # also read by other commands
        values.setdefault("offline", True)
    try:
        return BuildOptions(**values)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise BuildError(f"build option {'.'.join(map(str, error['loc']))}: {error['msg']}") from None


def _read_pyproject(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{path} is not valid TOML: {exc}") from None
    section = data.get("tool", {}).get("modelbundle", {})
    if not isinstance(section, dict):
        raise BuildError(f"{path}: [tool.modelbundle] must be a table")
    unknown = sorted(set(section) - _FILE_KEYS)
    if unknown:
        raise BuildError(f"{path}: unknown keys in [tool.modelbundle]: {', '.join(unknown)} (known: {', '.join(sorted(_FILE_KEYS))})")
    values = dict(section)
    if "packages" in values:  # the short name, kept beside the field's own name
        values["python_packages"] = [*values.get("python_packages", []), *values.pop("packages")]
    base = path.parent
    if "requirements" in values:
        values["requirements"] = str(base / values["requirements"])
    if "artifacts" in values:
        values["artifacts"] = {k: str(base / v) for k, v in values["artifacts"].items()}
    if "find_links" in values:
        values["find_links"] = [str(base / v) for v in values["find_links"]]
    if "service" in values and (".py:" in values["service"] or values["service"].endswith(".py")):
        values["service"] = str(base / values["service"])
    values["project_dir"] = str(base)
    return values
