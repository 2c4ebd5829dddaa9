"""The test suites packages ship inside themselves, removed from an installed environment.

A server never runs numpy's or scipy's own tests, and they are a fifth of those
packages' size. Removed: every ``tests``/``test`` package nested inside another
package (a top-level one is left alone: it may be what something imports), except
the modules of them that code outside the tests imports, followed transitively
(``numpy.testing`` imports ``numpy._core.tests._natype``, so that one stays).

Standard library only, and runnable as a script, because the Docker builder runs it
inside the image with the venv's own Python: ``python -m modelbundle._test_packages SITE``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

_TEST_DIRS = frozenset({"tests", "test"})
#: ``from a.b import c`` / ``import a.b`` / ``from .x import y``, anywhere in a line (imports inside functions too)
_IMPORT = re.compile(r"^\s*(?:from\s+(\.*[\w.]*)\s+import\s+([\w, ]+)|import\s+([\w.]+))", re.M)


def prune_test_packages(site: Path) -> int:
    """Delete the nested test packages under ``site`` but what other code imports; the bytes freed."""
    test_dirs: list[Path] = []
    for directory, dirnames, _ in os.walk(site):
        here = Path(directory)
        for name in list(dirnames):
            if name in _TEST_DIRS and here != site and (here / "__init__.py").is_file():
                test_dirs.append(here / name)
                dirnames.remove(name)
    keep = _imported_test_files(site, test_dirs)
    freed = 0
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


if __name__ == "__main__":
    for folder in sys.argv[1:]:
        prune_test_packages(Path(folder))
