"""Install a bundle's requirements.lock for a Lambda runtime with pip (``--target``, binary wheels only)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ...bundler import (
    FAST_FAIL_PIP_ARGS,
    MissingWheel,
    Reporter,
    WheelCache,
    find_wheels,
    last_lines,
    missing_distribution,
    read_lock,
    run_pip,
)
from ...errors import ExportError
from ._platform import LambdaRuntime


def install_lock(
    lock: Path,
    target: Path,
    runtime: LambdaRuntime,
    find_links: Sequence[Path],
    reporter: Reporter,
    *,
    cache: WheelCache | None = None,
) -> None:
    """``pip install --target`` every locked distribution as a wheel for ``runtime``, hashes checked.

    The wheels are found first, by digest, in ``find_links`` and ``cache``; the missing ones
    are fetched in parallel into ``cache`` (without one, into a folder beside ``target``
    that goes with it). pip then installs from those wheels alone (``--no-index``).
    ``--no-compile``: bytecode of the build machine's Python is useless to another
    runtime version, and Lambda's read-only file system keeps none it would write.
    """
    locked = read_lock(lock)
    with tempfile.TemporaryDirectory(prefix="wheels-", dir=target.parent) as scratch:
        wheels = Path(scratch)
        found = find_wheels(
            locked, runtime.wheels, cache or WheelCache(wheels / "fetched"), reporter, extra_dirs=find_links,
            label=runtime.describe(),
        )
        if found.missing:
            raise ExportError(_explain_missing(found.missing, runtime))
        placed = found.place(locked, wheels / "chosen")
        args = [
            "install", "--quiet", "--no-compile", "--no-deps", "--require-hashes", "--no-index", *FAST_FAIL_PIP_ARGS,
            *runtime.wheels.pip_args(), "--find-links", str(wheels / "chosen"), "--target", str(target), "-r", str(lock),
        ]
        with reporter.step(f"installing {len(placed)} locked distributions for {runtime.describe()}..."):
            result = run_pip(args)
    if result.returncode != 0:
        raise ExportError(_explain(result.stderr or result.stdout, runtime))


def _explain_missing(missing: list[MissingWheel], runtime: LambdaRuntime) -> str:
    """The first pin without a wheel for the runtime (and the others), and what to do."""
    first, others = missing[0], missing[1:]
    more = f" (nor do {', '.join(m.dist.pin for m in others)})" if others else ""
    if first.dist.name == "modelbundle" and first.reason and "does not allow" in first.reason:
        return f"{first.dist.pin}: the modelbundle wheel in the wheel cache was rebuilt since this bundle was built; rebuild the bundle"
    why = f" ({first.reason})" if first.reason else ""
    return (
        f"{first.dist.pin} has no wheel for {runtime.describe()}{more}{why}; lock a version that has one "
        f"(rebuild the bundle with it), choose another --python or --arch, or use --target lambda-image"
    )


def _explain(output: str, runtime: LambdaRuntime) -> str:
    """One line saying which distribution failed and what to do (the pip boundary)."""
    missing = missing_distribution(output)
    if missing:
        return (
            f"{missing} has no wheel for {runtime.describe()}; lock a version that has one "
            f"(rebuild the bundle with it), choose another --python or --arch, or use --target lambda-image"
        )
    if "DO NOT MATCH THE HASHES" in output:
        names = re.findall(r"^\s+(\S+==\S+) from ", output, re.M)
        which = ", ".join(names) or "a locked distribution"
        hint = (
            "the modelbundle wheel in the wheel cache was rebuilt since this bundle was built; rebuild the bundle"
            if any(name.startswith("modelbundle==") for name in names)
            else "the file found does not have a hash the lock allows"
        )
        return f"{which}: {hint}"
    said = "\n".join(line for line in output.splitlines() if not line.startswith("WARNING"))
    return "could not install the bundle's requirements.lock for Lambda: " + last_lines(said)
