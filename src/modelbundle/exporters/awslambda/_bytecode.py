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
running the export is the runtime's (``skip_reason`` says why not otherwise). It adds
about as much as the sources take, and it never makes a zip too big: when not all of
it fits in Lambda's unzipped limit, ``Bytecode.keep_within`` keeps that of the modules
a cold start imports (``_imports.py``) and drops the rest. The bundle's own modules get
none: the handler checks the bundle against its RECORD at init, and refuses extra files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ...bundler import Reporter
from ...errors import ExportError
from ._imports import ImportStatement, import_order, module_name
from ._platform import LambdaRuntime

#: where Lambda unpacks a zip function: the path every module is compiled as
TASK_ROOT = "/var/task"
#: compiler processes per export; fixed rather than the CPU count, so which modules share a
#: process (whose interned strings marshal can see) never depends on the machine
_PROCESSES = 4
#: a fixed hash seed keeps the order of any set marshal writes the same in every run
_COMPILER_ENV = {"PYTHONHASHSEED": "0"}
#: run by ``python -S``: compile each (source, pyc or "" for none, name in /var/task) read from stdin;
#: print the failures and, per module, its imports, each marked whether it runs when the module is imported
_COMPILER = """\
import dis, json, marshal, py_compile, sys
OPTIMIZED = 0x1  # CO_OPTIMIZED: a function's code, which does not run at import time

def imports(code):
    found, pending = [], [(code, True)]
    while pending:
        code, at_import = pending.pop()
        at_import = at_import and not code.co_flags & OPTIMIZED
        pending += [(c, at_import) for c in code.co_consts if hasattr(c, "co_code")]
        ops = list(dis.get_instructions(code))
        for i, op in enumerate(ops):
            if op.opname == "IMPORT_NAME" and i >= 2 and isinstance(ops[i - 2].argval, int):
                found.append([ops[i - 2].argval, op.argval, list(ops[i - 1].argval or ()), at_import])
    return found

failed, graph = [], {}
for source, cfile, dfile in json.load(sys.stdin):
    try:
        if cfile:
            py_compile.compile(
                source, cfile, dfile, doraise=True, optimize=0,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
            with open(cfile, "rb") as f:
                code = marshal.loads(f.read()[16:])
        else:
            with open(source, "rb") as f:
                code = compile(f.read(), dfile, "exec", dont_inherit=True, optimize=0)
    except (py_compile.PyCompileError, SyntaxError, OSError, ValueError):
        failed.append(source)
        continue
    graph[source] = imports(code)
json.dump({"failed": failed, "imports": graph}, sys.stdout)
"""


@dataclass
class Bytecode:
    """The pyc ``compile_bytecode`` wrote, and what each module imports (for ``keep_within``)."""

    #: the zip's name of each module that has a pyc -> that pyc on disk
    pycs: dict[str, Path] = field(default_factory=dict)
    #: module name -> (is a package, the imports that run when it is imported)
    graph: dict[str, tuple[bool, list[ImportStatement]]] = field(default_factory=dict)
    #: sources that are not valid Python for this version (shipped as they are, without a pyc)
    failed: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.pycs.values())

    def keep_within(self, budget: int, roots: Iterable[str]) -> int:
        """Delete pyc until the rest fit in ``budget`` bytes; the number deleted.

        Kept first: the modules that importing ``roots`` imports (what a cold start
        needs), breadth first; then those that their functions import, the same way;
        then the others in path order.
        """
        by_module = {module_name(relative)[0]: relative for relative in self.pycs}
        order: dict[str, None] = {}  # ordered, without repeats
        for names in (import_order(self.graph, roots), import_order(self.graph, roots, in_functions=True), sorted(by_module)):
            order.update((by_module[m], None) for m in names if m in by_module)
        used = 0
        dropped = []
        for relative in order:
            size = self.pycs[relative].stat().st_size
            if used + size <= budget:
                used += size
            else:
                dropped.append(relative)
        for relative in dropped:
            self.pycs.pop(relative).unlink()
        return len(dropped)


def compile_bytecode(
    runtime: LambdaRuntime, roots: list[Path], reporter: Reporter, *, analyse: Sequence[Path] = ()
) -> Bytecode | None:
    """Unchecked-hash pyc beside every module under ``roots`` (each one the zip's root).

    The modules under ``analyse`` (the bundle's src/) get no pyc, but their imports
    are read too. On another Python than the runtime's, nothing: a one-line warning says why.
    """
    reason = skip_reason(runtime)
    if reason:
        reporter.warn(reason)
        return None
    bytecode = Bytecode()
    with reporter.step(f"compiling the modules to bytecode for {runtime.identifier}..."):
        for root in roots:
            compile_tree(root, bytecode)
        for root in analyse:
            compile_tree(root, bytecode, write=False)
    left = f", {len(bytecode.failed)} left as source only (not Python {runtime.python} code)" if bytecode.failed else ""
    reporter.info(f"{len(bytecode.pycs)} modules compiled to bytecode{left}")
    return bytecode


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


def compile_tree(root: Path, into: Bytecode, *, write: bool = True) -> None:
    """Compile every ``.py`` under ``root`` (the zip's root, /var/task) next to itself, as unchecked-hash pyc,
    adding them and the modules' imports to ``into``; with ``write=False`` only the imports."""
    jobs: list[tuple[str, str, str]] = []
    for directory, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for filename in sorted(filenames):
            source = Path(directory, filename)
            if filename.endswith(".py") and source.is_file():
                relative = source.relative_to(root).as_posix()
                # the pyc path is computed, not cache_from_source's: PYTHONPYCACHEPREFIX must not move it
                jobs.append((str(source), str(root / pyc_name(relative)) if write else "", f"{TASK_ROOT}/{relative}"))
    if not jobs:
        return
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
    problems: list[str] = []
    results: list[dict[str, Any]] = []
    for process, chunk in zip(processes, chunks, strict=True):
        out, err = process.communicate(json.dumps(chunk))
        if process.returncode != 0:
            problems.append(err.strip().splitlines()[-1] if err.strip() else f"exit status {process.returncode}")
        else:
            results.append(json.loads(out))
    if problems:
        raise ExportError(f"compiling the zip's modules to bytecode failed: {problems[0]}")
    failed = {f for result in results for f in result["failed"]}
    imports = {source: found for result in results for source, found in result["imports"].items()}
    for path, cfile, _ in jobs:
        relative = Path(path).relative_to(root).as_posix()
        if path in failed:
            into.failed.append(relative)
            continue
        name, is_package = module_name(relative)
        into.graph[name] = (is_package, [(level, module, tuple(names), at_import) for level, module, names, at_import in imports[path]])
        if cfile:
            into.pycs[relative] = Path(cfile)
