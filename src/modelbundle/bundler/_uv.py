"""Find uv, and run ``uv pip compile`` so that it writes what pip-compile writes.

uv is optional (the ``modelbundle[build]`` extra, or any ``uv`` on PATH): bundles
must not carry it into every image, and pip-compile stays as the fallback.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .._install_hints import BUILD_EXTRA
from ._children import run_child
from ._pip_settings import PipSettings

#: the oldest uv that has every option used here (--index and --default-index came in 0.4.23)
MIN_UV_VERSION = Version("0.5")
INSTALL_HINT = BUILD_EXTRA
#: pip-compile --allow-unsafe writes these last, under its note; uv sorts them in with the rest
UNSAFE_PACKAGES = frozenset({"pip", "setuptools", "distribute"})
UNSAFE_NOTE = "# The following packages are considered to be unsafe in a requirements file:"

#: locked; unsatisfiable (uv read the indexes and no set of versions fits); failed (anything
#: else uv reports, such as an unreachable index); crashed (uv itself broke: a panic, a signal)
Outcome = Literal["locked", "unsatisfiable", "failed", "crashed"]


@dataclass(frozen=True)
class Uv:
    executable: str
    version: str


@dataclass(frozen=True)
class UvCompiled:
    outcome: Outcome
    #: the lock, in pip-compile's layout, when locked; otherwise what uv said, without its decoration
    text: str


def find_uv() -> str | None:
    """The uv executable: the ``uv`` package's own binary, else ``uv`` on PATH."""
    try:
        from uv import find_uv_bin
    except ImportError:
        pass
    else:
        try:
            return find_uv_bin()
        except FileNotFoundError:  # the package without its binary: try PATH
            pass
    return shutil.which("uv")


def usable_uv() -> tuple[Uv | None, str]:
    """uv if it is here and runs, else None and why not (a phrase for the user)."""
    executable = find_uv()
    if executable is None:
        return None, f"uv is not installed ({INSTALL_HINT})"
    try:
        result = run_child([executable, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"uv at {executable} does not run ({exc})"
    match = re.match(r"uv (\S+)", result.stdout)
    try:
        version = Version(match.group(1)) if result.returncode == 0 and match else None
    except InvalidVersion:
        version = None
    if version is None or match is None:
        said = _clean(result.stderr + result.stdout).splitlines()[-1:] or ["no output"]
        return None, f"uv at {executable} does not run (`uv --version` exited {result.returncode}: {said[0]})"
    if version < MIN_UV_VERSION:
        return None, f"uv {version} at {executable} is older than {MIN_UV_VERSION} (pip install -U 'modelbundle[build]')"
    return Uv(executable, match.group(1)), ""


def uv_compile(
    uv: Uv, workdir: Path, requirements: str, constraints: Sequence[str], links: Sequence[Path],
    pip: PipSettings, *, no_index: bool,
) -> UvCompiled:
    """``uv pip compile`` of ``workdir/requirements`` for this interpreter, with hashes.

    File names are relative to ``workdir`` (where uv runs), so the ``# via`` notes name
    ``requirements.in`` and ``constraints.txt``, never a temporary path. ``no_index``:
    offline, from ``links`` and pip's find-links alone.
    """
    command = [
        uv.executable, "pip", "compile", "--quiet", "--color", "never",
        # only pip's settings (below) and ours decide the lock: a uv.toml found on the way must not
        "--no-config", "--python", sys.executable,
        "--generate-hashes", "--strip-extras", "--no-header", "--annotation-style", "split",
        "--no-emit-index-url", "--no-emit-find-links", "-o", "requirements.lock",
    ]
    for name in constraints:
        command += ["-c", name]
    for link in links:
        command += ["--find-links", str(link)]
    command += pip.uv_args(no_index=no_index)
    if no_index:
        command.append("--offline")
    command.append(requirements)
    # uv's own cache is its default, or UV_CACHE_DIR when set: both come with the environment
    result = run_child(command, cwd=workdir, capture_output=True, text=True, env={**os.environ, **pip.uv_env()})
    if result.returncode == 0:
        return UvCompiled("locked", pip_tools_layout((workdir / "requirements.lock").read_text()))
    said = _clean(result.stderr) or f"uv exited {result.returncode} without a message"
    if result.returncode == 1 and "No solution found" in result.stderr:
        return UvCompiled("unsatisfiable", said)
    if result.returncode in (1, 2):  # uv's own codes for "failed" and "error"
        return UvCompiled("failed", said)
    return UvCompiled("crashed", f"uv exited {result.returncode}: {said}")  # 101: a panic; < 0: a signal


def pip_tools_layout(lock: str) -> str:
    """uv's lock with pip, setuptools and distribute moved last, under pip-compile's note.

    Everything else uv writes as pip-compile does, so the same resolution gives the
    same bytes (and the same bundle version) whichever resolver made it.
    """
    head: list[str] = []
    blocks: list[list[str]] = []
    for line in lock.splitlines():
        if line == UNSAFE_NOTE or (not line.strip() and blocks):
            continue
        if line[:1].isalnum():  # a requirement starts a block; its hashes and notes follow, indented
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
        else:
            head.append(line)
    unsafe = [block for block in blocks if _name(block[0]) in UNSAFE_PACKAGES]
    if not unsafe:
        return lock
    safe = [block for block in blocks if _name(block[0]) not in UNSAFE_PACKAGES]
    lines = head + [line for block in safe for line in block] + ["", UNSAFE_NOTE] + [line for block in unsafe for line in block]
    return "\n".join(lines) + "\n"


def _name(requirement: str) -> str:
    return canonicalize_name(re.split(r"[\s=<>!~\[;@\\]", requirement, maxsplit=1)[0])


#: the labels and tree drawing before each line of uv's messages (older uv draws a cross, then arrows)
_DECORATION = re.compile(r"(?i)^(?:[\s\u00d7\u2570\u2500\u25b6\u2502\u251c]+|error:\s*|caused by:\s*|cause:\s*)+")


def _clean(output: str) -> str:
    """uv's message as plain lines: no "error:"/"cause:" labels or tree drawing, no hints."""
    lines = []
    for line in output.splitlines():
        text = _DECORATION.sub("", line.strip()).strip()
        if text and not text.startswith("hint:"):
            lines.append(text)
    return "\n".join(lines)
