"""Freeze a bundle's environment with pip-tools: the full closure, pinned, with hashes.

The lock reproduces the environment the build runs in: every installed
distribution is passed to pip-compile as a constraint, so transitive
versions are the installed ones, not whatever the index has newest.
modelbundle itself resolves from a wheel built into the wheel cache.
Locks are cached by their inputs, so rebuilding unchanged code is instant.
Offline (``--offline``, or when the index cannot be reached), pip-compile
resolves from the wheel cache alone.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

from .._version import __version__
from ..errors import BuildError
from ._report import Reporter
from ._requirements import RUNTIME_DISTRIBUTION

#: pip gives up quickly on an unreachable index instead of retrying for minutes
FAST_FAIL_PIP_ARGS = ("--retries", "1", "--timeout", "15")


def lock_requirements(
    requirements: Sequence[str],
    cache_dir: Path,
    *,
    find_links: Sequence[Path] = (),
    offline: bool = False,
    reporter: Reporter,
) -> str:
    """The text of requirements.lock for ``requirements`` (requirements.in lines)."""
    wheel_cache = cache_dir / "wheels"
    wheel_cache.mkdir(parents=True, exist_ok=True)
    ensure_runtime_wheel(wheel_cache, reporter)
    constraints = _installed_constraints()
    links = [wheel_cache, *find_links]
    key = _cache_key(requirements, constraints, offline, links)
    cached = cache_dir / "locks" / f"{key}.lock"
    if cached.is_file():
        reporter.info("environment lock: reusing a cached lock for these requirements")
        return cached.read_text()

    attempts = [True] if offline else [False, True]
    errors = []
    for no_index in attempts:
        what = "offline, from the wheel cache" if no_index else "with pip-compile"
        with reporter.step(f"locking {len(requirements)} requirements {what}..."):
            ok, output = _pip_compile(requirements, constraints, links, no_index)
        if ok:
            _write_atomically(cached, output)
            return output
        errors.append(output)
        if not no_index:
            reporter.warn("locking against the package index failed; trying offline from the wheel cache")
    raise BuildError(
        "could not lock the environment: " + _last_lines(errors[-1])
        + f" (wheel cache: {wheel_cache}; pass --find-links DIR with the wheels, or check that the index is reachable)"
    )


def _pip_compile(requirements: Sequence[str], constraints: str, links: Sequence[Path], no_index: bool) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix="modelbundle-lock-") as workdir:
        work = Path(workdir)
        (work / "requirements.in").write_text("\n".join(requirements) + "\n")
        (work / "constraints.txt").write_text(constraints)
        command = [
            sys.executable, "-m", "piptools", "compile",
            "--generate-hashes", "--allow-unsafe", "--strip-extras", "--no-header", "--quiet",
            "--no-emit-index-url", "--no-emit-find-links", "--no-emit-trusted-host",
            "--pip-args", " ".join(FAST_FAIL_PIP_ARGS),
            "-c", "constraints.txt", "-o", "requirements.lock",
        ]
        for link in links:
            command += ["--find-links", str(link)]
        if no_index:
            command.append("--no-index")
        command.append("requirements.in")
        # relative file names keep the "# via -r requirements.in" annotations free of temporary paths
        result = subprocess.run(command, cwd=work, capture_output=True, text=True, env=_pip_env())
        if result.returncode != 0:
            return False, result.stderr or result.stdout
        return True, (work / "requirements.lock").read_text()


def _pip_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    return env


def _installed_constraints() -> str:
    """Every installed distribution pinned, modelbundle aside (it is pinned in requirements.in)."""
    pins = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if not name or canonicalize_name(name) == RUNTIME_DISTRIBUTION:
            continue
        pins[canonicalize_name(name)] = f"{name}=={dist.version}"
    return "\n".join(pins[name] for name in sorted(pins)) + "\n"


def _cache_key(requirements: Sequence[str], constraints: str, offline: bool, links: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    wheels = sorted(p.name for link in links if link.is_dir() for p in link.iterdir()) if offline else []
    runtime_wheel = _runtime_wheel_digest(links[0])
    payload = [list(requirements), constraints, offline, wheels, runtime_wheel, platform.python_version(), sys.platform, platform.machine()]
    digest.update(json.dumps(payload).encode())
    return digest.hexdigest()[:32]


def _runtime_wheel_digest(wheel_cache: Path) -> str:
    wheel = wheel_cache / runtime_wheel_name()
    return hashlib.sha256(wheel.read_bytes()).hexdigest() if wheel.is_file() else ""


def runtime_wheel_name() -> str:
    return f"{RUNTIME_DISTRIBUTION}-{__version__}-py3-none-any.whl"


def ensure_runtime_wheel(wheel_cache: Path, reporter: Reporter) -> Path:
    """A wheel of the running modelbundle in the wheel cache, so bundles can lock and install it.

    Built from the source tree when modelbundle is installed from one (editable
    or local); the build is reproducible, so an unchanged tree gives the same hash.
    """
    wheel_cache.mkdir(parents=True, exist_ok=True)
    target = wheel_cache / runtime_wheel_name()
    source = runtime_source_dir()
    if source is None:
        if target.is_file():
            return target
        raise BuildError(
            f"no wheel of modelbundle {__version__} to put in the bundle's environment; "
            f"copy it into {wheel_cache} (pip download modelbundle=={__version__} -d {wheel_cache})"
        )
    stamp = wheel_cache / f".{runtime_wheel_name()}.source"
    source_digest = _tree_digest(source / "src" / "modelbundle") + _tree_digest(source, "pyproject.toml")
    if target.is_file() and stamp.is_file() and stamp.read_text() == source_digest:
        return target
    with reporter.step("building a wheel of modelbundle for the bundle's environment..."), tempfile.TemporaryDirectory() as out:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out, str(source)],
            capture_output=True, text=True, env=_pip_env(),
        )
        if result.returncode != 0:
            raise BuildError(f"could not build a wheel of modelbundle from {source}: {_last_lines(result.stderr)}")
        built = next(Path(out).glob("*.whl"))
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        shutil.move(str(built), partial)
        _keep_previous(target)
        partial.replace(target)  # concurrent builds never see half a wheel
    _write_atomically(stamp, source_digest)
    return target


#: earlier runtime wheels, by digest: bundles locked against them can still be containerized
PREVIOUS_WHEELS_DIR = "previous"


def _keep_previous(wheel: Path) -> None:
    """Keep the wheel being replaced under previous/<digest>/ (same name, so pip still reads its tags)."""
    if not wheel.is_file():
        return
    keep = wheel.parent / PREVIOUS_WHEELS_DIR / hashlib.sha256(wheel.read_bytes()).hexdigest()[:32] / wheel.name
    if not keep.exists():
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(wheel, keep)


def _write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the whole new one (builds may run side by side)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text)
    partial.replace(path)


def runtime_source_dir() -> Path | None:
    """The project folder modelbundle was installed from, if it was installed from source."""
    try:
        dist = importlib.metadata.distribution(RUNTIME_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        direct_url = dist.read_text("direct_url.json")
        if direct_url:
            url = json.loads(direct_url).get("url", "")
            if url.startswith("file://") and (Path(url[7:]) / "pyproject.toml").is_file():
                return Path(url[7:])
    here = Path(__file__).resolve().parents[3]  # src/modelbundle/bundler/_lock.py -> project
    return here if (here / "pyproject.toml").is_file() and (here / "src" / "modelbundle").is_dir() else None


def _tree_digest(root: Path, only: str | None = None) -> str:
    digest = hashlib.sha256()
    paths = [root / only] if only else sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in paths:
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "no output"
