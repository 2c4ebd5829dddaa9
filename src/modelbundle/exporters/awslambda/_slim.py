"""What an installed environment carries that a Lambda function never uses, and its removal.

Removed: bytecode caches (the exporter compiles its own afterwards, so that each
pyc matches a shipped source), the ``bin/`` scripts pip writes (their shebangs name the
build machine's Python), ``*.pyi`` stubs, and ``tests``/``test`` packages nested
inside a package -- except the modules of them that code outside the tests imports
(``numpy.testing`` imports ``numpy._core.tests._natype``, so it stays). Kept on
purpose: ``*.dist-info`` (importlib.metadata reads versions from it, and the
artifact loader checks framework versions that way), and data files such as
``.rst`` or ``.txt`` (scikit-learn reads its dataset descriptions at run time).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

_TEST_DIRS = frozenset({"tests", "test"})
#: ``from a.b import c`` / ``import a.b`` / ``from .x import y``, anywhere in a line (imports inside functions too)
_IMPORT = re.compile(r"^\s*(?:from\s+(\.*[\w.]*)\s+import\s+([\w, ]+)|import\s+([\w.]+))", re.M)


def slim(site: Path) -> int:
    """Delete what Lambda never needs from ``site`` (a ``pip install --target`` folder); the bytes freed."""
    freed = 0
    scripts = site / "bin"
    if scripts.is_dir():
        freed += _remove_tree(scripts)
    test_dirs: list[Path] = []
    for directory, dirnames, filenames in os.walk(site):
        here = Path(directory)
        for name in list(dirnames):
            if name == "__pycache__":
                freed += _remove_tree(here / name)
                dirnames.remove(name)
            elif name in _TEST_DIRS and here != site and (here / "__init__.py").is_file():
                test_dirs.append(here / name)
                dirnames.remove(name)
        for name in filenames:
            if name.endswith((".pyi", ".pyc")):
                path = here / name
                freed += path.lstat().st_size
                path.unlink()
    keep = _imported_test_files(site, test_dirs)
    for tests in test_dirs:
        for entry in sorted(tests.rglob("*"), reverse=True):  # children before their folders
            if entry.is_file() and entry not in keep:
                freed += entry.lstat().st_size
                entry.unlink()
            elif entry.is_dir() and not any(entry.iterdir()):
                entry.rmdir()
        if not any(tests.iterdir()):
            tests.rmdir()
    return freed


def _imported_test_files(site: Path, test_dirs: list[Path]) -> set[Path]:
    """Files under ``test_dirs`` that modules outside them import, followed transitively."""
    inside = tuple(str(d) + os.sep for d in test_dirs)
    pending = [p for p in site.rglob("*.py") if not str(p).startswith(inside)]
    scanned: set[Path] = set()
    keep: set[Path] = set()
    while pending:
        source = pending.pop()
        if source in scanned:
            continue
        scanned.add(source)
        try:
            text = source.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if "test" not in text and not str(source).startswith(inside):  # a kept test module's relative imports need no "test"
            continue
        for target in _import_targets(site, source, text):
            if str(target).startswith(inside) and target not in keep:
                keep.update(_with_packages(target, site))
                pending.append(target)
    return keep


def _import_targets(site: Path, source: Path, text: str) -> Iterable[Path]:
    package = source.parent.relative_to(site).parts
    for match in _IMPORT.finditer(text):
        module, names, plain = match.group(1), match.group(2), match.group(3)
        dotted = plain or module or ""
        level = len(dotted) - len(dotted.lstrip("."))
        parts = [p for p in dotted.lstrip(".").split(".") if p]
        if level:
            base = list(package[: len(package) - (level - 1)] if level > 1 else package)
            parts = [*base, *parts]
        if not parts or not any(part in _TEST_DIRS for part in parts):
            continue
        candidates = [parts] + [[*parts, name.strip()] for name in (names or "").split(",") if name.strip()]
        for candidate in candidates:
            module_path = site.joinpath(*candidate)
            for path in (module_path.with_suffix(".py"), module_path / "__init__.py"):
                if path.is_file():
                    yield path


def _with_packages(path: Path, site: Path) -> set[Path]:
    """``path`` and the ``__init__.py`` of each package above it."""
    found = {path}
    for parent in path.parents:
        if parent == site:
            break
        init = parent / "__init__.py"
        if init.is_file():
            found.add(init)
    return found


def _remove_tree(path: Path) -> int:
    size = sum(p.lstat().st_size for p in path.rglob("*") if p.is_file())
    shutil.rmtree(path)
    return size
