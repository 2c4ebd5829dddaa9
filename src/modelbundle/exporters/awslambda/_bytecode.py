"""Bytecode for the zip: a ``__pycache__/<module>.cpython-3XY.pyc`` beside every module, compiled at export.

Lambda unpacks a zip function into /var/task, which is read-only: Python cannot
keep the bytecode it compiles there, so a zip without it compiles every module it
imports on every cold start (numpy, scipy, scikit-learn and pydantic: seconds).
The files written here are unchecked-hash pyc (PEP 552): they hold a hash of the
source instead of its mtime, so the same sources always give the same bytes (the
zip stays reproducible), and Python loads them without reading the source again.
Each module is compiled as the path it has in /var/task, so tracebacks name the
file Lambda has, not the export's temporary folder.

Bytecode belongs to one Python minor version: it is compiled only when the Python
running the export is the runtime's (``skip_reason`` says why not otherwise).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ...bundler import Reporter
from ...errors import ExportError
from ._platform import LambdaRuntime

#: where Lambda unpacks a zip function: the path every module is compiled as
TASK_ROOT = "/var/task"
#: compiler processes per export; fixed rather than the CPU count, so which modules share a
#: process (whose interned strings marshal can see) never depends on the machine
_PROCESSES = 4
#: a fixed hash seed keeps the order of any set marshal writes the same in every run
_COMPILER_ENV = {"PYTHONHASHSEED": "0"}
#: run by ``python -S``: compile each (source, pyc, name in /var/task) read from stdin; print the failures
_COMPILER = """\
import json, py_compile, sys
failed = []
for source, cfile, dfile in json.load(sys.stdin):
    try:
        py_compile.compile(
            source, cfile, dfile, doraise=True, optimize=0,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    except (py_compile.PyCompileError, OSError, ValueError):
        failed.append(source)
json.dump(failed, sys.stdout)
"""


@dataclass(frozen=True)
class Bytecode:
    """What ``compile_tree`` wrote."""

    #: pyc files written
    compiled: int
    #: sources that are not valid Python for this version (shipped as they are, without a pyc)
    failed: tuple[str, ...]


def compile_bytecode(runtime: LambdaRuntime, roots: list[Path], reporter: Reporter) -> int:
    """Unchecked-hash pyc beside every module under ``roots`` (each one the zip's root); the number written.

    On another Python than the runtime's, none: a one-line warning says why.
    """
    reason = skip_reason(runtime)
    if reason:
        reporter.warn(reason)
        return 0
    compiled, failed = 0, 0
    with reporter.step(f"compiling the modules to bytecode for {runtime.identifier}..."):
        for root in roots:
            result = compile_tree(root)
            compiled += result.compiled
            failed += len(result.failed)
    left = f" ({failed} files that are not Python {runtime.python} code left as source only)" if failed else ""
    reporter.info(f"{compiled} modules compiled to bytecode{left}")
    return compiled


def skip_reason(runtime: LambdaRuntime) -> str | None:
    """Why the Python running the export cannot compile bytecode for ``runtime``; None when it can."""
    tag = f"cpython-{runtime.python.replace('.', '')}"
    if sys.implementation.cache_tag == tag:
        return None
    running = f"{sys.implementation.name} {sys.version_info.major}.{sys.version_info.minor}"
    return (
        f"the zip has no bytecode: it is for {runtime.identifier} and this export runs on {running}, whose bytecode "
        f"{runtime.identifier} cannot load, so each cold start compiles every module it imports "
        f"(export with Python {runtime.python} for faster cold starts)"
    )


def pyc_name(relative: str, cache_tag: str | None = None) -> str:
    """The bytecode path Python reads for the module at ``relative`` (``a/b.py`` -> ``a/__pycache__/b.cpython-311.pyc``)."""
    path = PurePosixPath(relative)
    tag = cache_tag or sys.implementation.cache_tag
    return str(path.parent / "__pycache__" / f"{path.name.rpartition('.')[0]}.{tag}.pyc")


def compile_tree(root: Path) -> Bytecode:
    """Compile every ``.py`` under ``root`` (the zip's root, /var/task) next to itself, as unchecked-hash pyc."""
    jobs: list[tuple[str, str, str]] = []
    for directory, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for filename in sorted(filenames):
            source = Path(directory, filename)
            if filename.endswith(".py") and source.is_file():
                relative = source.relative_to(root).as_posix()
                # the pyc path is computed, not cache_from_source's: PYTHONPYCACHEPREFIX must not move it
                jobs.append((str(source), str(root / pyc_name(relative)), f"{TASK_ROOT}/{relative}"))
    if not jobs:
        return Bytecode(0, ())
    size = -(-len(jobs) // _PROCESSES)
    chunks = [jobs[start : start + size] for start in range(0, len(jobs), size)]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}, **_COMPILER_ENV}
    processes = [
        subprocess.Popen(
            [sys.executable, "-S", "-c", _COMPILER],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for _ in chunks
    ]  # fmt: skip
    failed: list[str] = []
    problems: list[str] = []
    for process, chunk in zip(processes, chunks, strict=True):
        out, err = process.communicate(json.dumps(chunk))
        if process.returncode != 0:
            problems.append(err.strip().splitlines()[-1] if err.strip() else f"exit status {process.returncode}")
            continue
        failed += json.loads(out)
    if problems:
        raise ExportError(f"compiling the zip's modules to bytecode failed: {problems[0]}")
    relative_failures = tuple(Path(f).relative_to(root).as_posix() for f in failed)
    return Bytecode(len(jobs) - len(failed), relative_failures)
