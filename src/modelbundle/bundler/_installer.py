"""Running pip and pip-compile: their arguments, environment and failures, in one place.

Every pip that modelbundle starts goes through ``run_pip``: the same
environment (no version check), the same fast failure on an unreachable index
(``FAST_FAIL_PIP_ARGS``), and failures read the same way (``last_lines``,
``missing_distribution``). uv is found and run by ``_uv``; the lock module
picks between the two resolvers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._children import run_child

#: pip gives up quickly on an unreachable index instead of retrying for minutes
FAST_FAIL_PIP_ARGS = ("--retries", "1", "--timeout", "15")
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")


def pip_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment pip runs in: ``env`` (default: this one), without pip's version check (a network call, and noise)."""
    result = dict(os.environ if env is None else env)
    result.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    return result


def run_pip(
    args: Sequence[str], *, python: str | Path = sys.executable, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m pip ARGS`` (this interpreter's pip unless ``python`` names another), its output captured."""
    return run_child([str(python), "-m", "pip", *args], cwd=cwd, capture_output=True, text=True, env=pip_env(env))


def pip_compile(
    work: Path, requirements: str, constraints: Sequence[str], links: Sequence[Path], *, no_index: bool
) -> tuple[bool, str]:
    """pip-compile ``work/requirements`` into a hashed lock: (True, the lock) or (False, what it said).

    File names are relative to ``work`` (where it runs), so ``# via`` notes name no temporary path.
    """
    command = [
        sys.executable, "-m", "piptools", "compile",
        "--generate-hashes", "--allow-unsafe", "--strip-extras", "--no-header", "--quiet",
        "--no-emit-index-url", "--no-emit-find-links", "--no-emit-trusted-host",
        "--pip-args", " ".join(FAST_FAIL_PIP_ARGS), "-o", "requirements.lock",
    ]
    for name in constraints:
        command += ["-c", name]
    for link in links:
        command += ["--find-links", str(link)]
    if no_index:
        command.append("--no-index")
    command.append(requirements)
    result = run_child(command, cwd=work, capture_output=True, text=True, env=pip_env())
    if result.returncode != 0:
        return False, result.stderr or result.stdout
    return True, (work / "requirements.lock").read_text()


def last_lines(text: str, count: int = 3) -> str:
    """The last ``count`` non-empty lines of a tool's output, on one line (``a | b | c``)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "no output"


def missing_distribution(output: str) -> str | None:
    """The requirement pip says no index or find-links folder has a fitting file for, if that is what failed."""
    match = _NO_MATCH.search(output)
    return match.group(1) if match else None
