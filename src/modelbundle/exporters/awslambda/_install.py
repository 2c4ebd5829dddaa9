"""Install a bundle's requirements.lock for a Lambda runtime with pip (``--target``, binary wheels only)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ...bundler import Reporter
from ...errors import ExportError
from ._platform import LambdaRuntime

#: pip gives up quickly on an unreachable index instead of retrying for minutes
_FAST_FAIL = ("--retries", "1", "--timeout", "15")
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")


def install_lock(
    lock: Path, target: Path, runtime: LambdaRuntime, find_links: Sequence[Path], reporter: Reporter
) -> None:
    """``pip install --target`` every locked distribution as a wheel for ``runtime``, hashes checked.

    ``--no-compile``: bytecode of the build machine's Python is useless to another
    runtime version, and Lambda's read-only file system keeps none it would write.
    """
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--no-deps", "--require-hashes",
        *_FAST_FAIL, "--only-binary=:all:", "--implementation", "cp", "--python-version", runtime.python,
        "--abi", runtime.abi,
    ]
    for platform in runtime.platforms:
        command += ["--platform", platform]
    for link in find_links:
        if link.is_dir():
            command += ["--find-links", str(link)]
    command += ["--target", str(target), "-r", str(lock)]
    with reporter.step(f"installing the locked distributions for {runtime.describe()}..."):
        result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if result.returncode != 0:
        raise ExportError(_explain(result.stderr or result.stdout, runtime))


def _explain(output: str, runtime: LambdaRuntime) -> str:
    """One line saying which distribution failed and what to do (the pip boundary)."""
    missing = _NO_MATCH.search(output)
    if missing:
        return (
            f"{missing.group(1)} has no wheel for {runtime.describe()}; lock a version that has one "
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
    lines = [line.strip() for line in output.strip().splitlines() if line.strip() and not line.startswith("WARNING")]
    return "could not install the bundle's requirements.lock for Lambda: " + (" | ".join(lines[-3:]) or "no output")
