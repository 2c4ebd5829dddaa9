"""Freeze a bundle's environment: the full closure, pinned, with hashes, in pip-compile's format.

The lock reproduces the environment the build runs in: every installed
distribution is passed to the resolver as a constraint, so transitive
versions are the installed ones, not whatever the index has newest.
modelbundle itself resolves from a wheel built into the wheel cache.
Locks are cached by their inputs, so rebuilding unchanged code is instant.
Offline (``--offline``, or when the index cannot be reached), the resolver
works from the wheel cache alone.

The resolver is uv when it can run (seconds), else pip-compile (minutes when
cold); both write the same file for the same resolution, and both see pip's
settings (uv is handed them: it reads none of pip's configuration).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._install_hints import needs_build_tool
from .._version import __version__
from ..errors import BuildError
from ._atomic import write_text_atomically
from ._installed import RUNTIME_DISTRIBUTION, installed_pins, runtime_source_dir
from ._installer import last_lines, pip_compile, run_pip
from ._options import DEFAULT_RESOLVER, Resolver
from ._pip_settings import PipSettings, read_pip_settings
from ._record import file_digest
from ._report import Reporter
from ._uv import Uv, usable_uv, uv_compile
from ._wheel_cache import PREVIOUS_WHEELS_DIR, link_or_copy

#: what a conflict between the requirements and the installed versions asks of the user
_CONFLICT_HINT = (
    "every installed distribution is a constraint: pin versions that fit the environment, or install ones that fit the pins"
)


@dataclass(frozen=True)
class _LockInputs:
    requirements: tuple[str, ...]
    #: every installed distribution, pinned (constraints.txt)
    constraints: str
    #: pip's global constraint files, copied (pip-constraints.txt; empty when pip has none)
    pip_constraints: str
    wheel_cache: Path
    runtime_wheel: Path
    find_links: tuple[Path, ...]
    offline: bool
    pip: PipSettings


def lock_requirements(
    requirements: Sequence[str],
    cache_dir: Path,
    *,
    find_links: Sequence[Path] = (),
    offline: bool = False,
    resolver: Resolver = DEFAULT_RESOLVER,
    reporter: Reporter,
) -> str:
    """The text of requirements.lock for ``requirements`` (requirements.in lines).

    ``resolver``: ``uv``, ``pip-tools``, or ``auto``: uv when it can run, else
    pip-compile, with one line saying why.
    """
    wheel_cache = cache_dir / "wheels"
    wheel_cache.mkdir(parents=True, exist_ok=True)
    runtime_wheel = ensure_runtime_wheel(wheel_cache, reporter)
    uv = _pick_uv(resolver, reporter)
    pip = read_pip_settings(cache_dir=cache_dir)
    inputs = _LockInputs(
        tuple(requirements), _installed_constraints(), pip.constraints_text(), wheel_cache, runtime_wheel,
        tuple(find_links), offline, pip,
    )
    if uv is not None:
        lock = _cached(cache_dir, inputs, f"uv {uv.version}", reporter, lambda: _lock_with_uv(uv, inputs, resolver, reporter))
        if lock is not None:
            return lock
    lock = _cached(cache_dir, inputs, "pip-tools", reporter, lambda: _lock_with_pip_compile(inputs, reporter))
    assert lock is not None  # pip-compile locks or raises
    return lock


def _pick_uv(resolver: Resolver, reporter: Reporter) -> Uv | None:
    if resolver == "pip-tools":
        return None
    uv, why_not = usable_uv()
    if uv is None:
        if resolver == "uv":
            raise BuildError(f"cannot lock with uv (resolver uv): {why_not}; or choose --resolver pip-tools")
        reporter.info(f"environment lock: {why_not}; locking with pip-compile, which takes minutes where uv takes seconds")
    return uv


def _cached(cache_dir: Path, inputs: _LockInputs, resolver: str, reporter: Reporter, lock: Callable[[], str | None]) -> str | None:
    """The lock for these inputs from the cache, or made by ``lock`` and cached (None: ``lock`` gave up)."""
    cached = cache_dir / "locks" / f"{_cache_key(inputs, resolver)}.lock"
    if cached.is_file():
        reporter.info("environment lock: reusing a cached lock for these requirements")
        return cached.read_text()
    text = lock()
    if text is not None:
        write_text_atomically(cached, text)
    return text


def _lock_with_uv(uv: Uv, inputs: _LockInputs, resolver: Resolver, reporter: Reporter) -> str | None:
    """The lock, or None when uv crashed and ``auto`` falls back to pip-compile.

    A conflict found against the index is final: the wheel cache offline, or pip-compile,
    would only take longer to find it. Any other failure online (the index cannot be
    reached, most often) is retried offline, from the wheel cache, as pip-compile's is.
    """
    said = ""
    for no_index in [True] if inputs.offline else [False, True]:
        what = "offline, from the wheel cache, with uv" if no_index else f"with uv {uv.version}"
        with reporter.step(f"locking {len(inputs.requirements)} requirements {what}..."), _workdir(inputs) as (work, constraints):
            if no_index:
                links = [inputs.wheel_cache, *inputs.find_links]
            else:
                # online, the wheel cache offers modelbundle's own wheel only: for a release that is
                # both in a find-links folder and on the index, uv takes the folder's files alone, and
                # the lock would lose the hashes of every other platform's wheels
                runtime = work / "runtime"
                runtime.mkdir()
                link_or_copy(inputs.runtime_wheel, runtime / inputs.runtime_wheel.name)
                links = [runtime, *inputs.find_links]
            compiled = uv_compile(uv, work, "requirements.in", constraints, links, inputs.pip, no_index=no_index)
        if compiled.outcome == "locked":
            return compiled.text
        said = compiled.text
        if compiled.outcome == "crashed":
            if resolver == "uv":
                raise BuildError(f"could not lock the environment: uv {uv.version} crashed: {last_lines(said)} (--resolver pip-tools locks without it)")
            reporter.warn(f"uv {uv.version} crashed ({last_lines(said, 1)}); locking with pip-compile instead")
            return None
        if compiled.outcome == "unsatisfiable" and not no_index:
            raise BuildError(f"could not lock the environment: {last_lines(said)} ({_CONFLICT_HINT})")
        if not no_index:
            reporter.warn(f"locking against the package index failed ({last_lines(said, 1)}); trying offline from the wheel cache")
    raise BuildError(_offline_failure(said, inputs.wheel_cache))


def _lock_with_pip_compile(inputs: _LockInputs, reporter: Reporter) -> str:
    if importlib.util.find_spec("piptools") is None:
        raise BuildError(needs_build_tool("locking without uv", "pip-tools"))
    errors = []
    for no_index in [True] if inputs.offline else [False, True]:
        what = "offline, from the wheel cache" if no_index else "with pip-compile"
        with reporter.step(f"locking {len(inputs.requirements)} requirements {what}..."), _workdir(inputs) as (work, constraints):
            ok, output = pip_compile(work, "requirements.in", constraints, [inputs.wheel_cache, *inputs.find_links], no_index=no_index)
        if ok:
            return output
        errors.append(output)
        if not no_index:
            reporter.warn("locking against the package index failed; trying offline from the wheel cache")
    raise BuildError(_offline_failure(errors[-1], inputs.wheel_cache))


def _offline_failure(output: str, wheel_cache: Path) -> str:
    return (
        "could not lock the environment: " + last_lines(output)
        + f" (wheel cache: {wheel_cache}; pass --find-links DIR with the wheels, or check that the index is reachable)"
    )


@contextlib.contextmanager
def _workdir(inputs: _LockInputs) -> Iterator[tuple[Path, list[str]]]:
    """A folder with requirements.in and the constraint files; the constraint file names.

    The resolvers run inside it with relative names, which keeps the lock's
    ``# via -r requirements.in`` notes free of temporary paths.
    """
    with tempfile.TemporaryDirectory(prefix="modelbundle-lock-") as workdir:
        work = Path(workdir)
        (work / "requirements.in").write_text("\n".join(inputs.requirements) + "\n")
        (work / "constraints.txt").write_text(inputs.constraints)
        constraints = ["constraints.txt"]
        if inputs.pip_constraints:
            (work / "pip-constraints.txt").write_text(inputs.pip_constraints)
            constraints.append("pip-constraints.txt")
        yield work, constraints


def _installed_constraints() -> str:
    """Every installed distribution pinned, modelbundle aside (it is pinned in requirements.in)."""
    pins = installed_pins()  # from the dist-info folder names: parsing every METADATA takes a second
    pins.pop(RUNTIME_DISTRIBUTION, None)
    return "\n".join(pins[name] for name in sorted(pins)) + "\n"


def _cache_key(inputs: _LockInputs, resolver: str) -> str:
    """Everything the lock depends on: requirements, installed set, wheels offline, pip's settings, the resolver."""
    digest = hashlib.sha256()
    links = [inputs.wheel_cache, *inputs.find_links, *(Path(link) for link in inputs.pip.find_links if "://" not in link)]
    wheels = sorted(p.name for link in links if link.is_dir() for p in link.iterdir()) if inputs.offline else []
    payload = [
        list(inputs.requirements), inputs.constraints, inputs.offline, wheels, _runtime_wheel_digest(inputs.wheel_cache),
        platform.python_version(), sys.platform, platform.machine(), resolver, dataclasses.asdict(inputs.pip),
        inputs.pip_constraints,
    ]
    digest.update(json.dumps(payload).encode())
    return digest.hexdigest()[:32]


def _runtime_wheel_digest(wheel_cache: Path) -> str:
    wheel = wheel_cache / runtime_wheel_name()
    return file_digest(wheel) if wheel.is_file() else ""


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
        result = run_pip(["wheel", "--no-deps", "--quiet", "-w", out, str(source)])
        if result.returncode != 0:
            raise BuildError(f"could not build a wheel of modelbundle from {source}: {last_lines(result.stderr)}")
        built = next(Path(out).glob("*.whl"))
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        shutil.move(str(built), partial)
        _keep_previous(target)
        partial.replace(target)  # concurrent builds never see half a wheel
    write_text_atomically(stamp, source_digest)
    return target


def _keep_previous(wheel: Path) -> None:
    """Keep the wheel being replaced under previous/<digest>/ (same name, so pip still reads its tags)."""
    if not wheel.is_file():
        return
    keep = wheel.parent / PREVIOUS_WHEELS_DIR / file_digest(wheel)[:32] / wheel.name
    if not keep.exists():
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(wheel, keep)


def _tree_digest(root: Path, only: str | None = None) -> str:
    digest = hashlib.sha256()
    paths = [root / only] if only else sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in paths:
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
