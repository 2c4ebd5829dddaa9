"""No module reaches into another package's private modules or names: packages meet at their ``__init__``.

A module may import the private modules and names of its own package and of
the packages above it (``modelbundle._version`` from anywhere; ``exporters._image_reference``
from ``exporters.docker``), never those of a sibling (``exporters.docker`` from
``bundler._lock``, or ``bundler._lock._last_lines``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelbundle

SOURCE = Path(modelbundle.__file__).parent


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SOURCE.rglob("*.py")):
        parts = ["modelbundle", *path.relative_to(SOURCE).with_suffix("").parts]
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if node.level == 0:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _owner(target: str) -> str | None:
    """The package whose privacy ``target`` (a module, or a module.name) belongs to: the parent of its first private part."""
    parts = target.split(".")
    for index, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:index])
    return None


def _inside(package: str, owner: str) -> bool:
    return package == owner or package.startswith(owner + ".")


def crossings(module: str, path: Path) -> list[str]:
    """``module: from X import Y`` for each private module or name of a package ``module`` is not inside."""
    package = _package_of(module, path)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            target = _absolute(node, package)
            targets = [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for name in targets:
            owner = _owner(name)
            if name.startswith("modelbundle") and owner is not None and not _inside(package, owner):
                found.append(f"{module}: {name}")
    return found


def test_the_check_sees_a_crossing(tmp_path: Path) -> None:
    exporter = tmp_path / "_wheels.py"
    exporter.write_text("from ...bundler._lock import _last_lines\nfrom ...bundler import Reporter\nfrom .._image_reference import x\n")
    assert crossings("modelbundle.exporters.docker._wheels", exporter) == [
        "modelbundle.exporters.docker._wheels: modelbundle.bundler._lock._last_lines"
    ]
    private_name = tmp_path / "_extras.py"
    private_name.write_text("from ...bundler import _uv\nfrom ..._version import __version__\n")
    assert crossings("modelbundle.exporters.docker._extras", private_name) == ["modelbundle.exporters.docker._extras: modelbundle.bundler._uv"]


@pytest.mark.parametrize(("module", "path"), list(_modules()), ids=[module for module, _ in _modules()])
def test_no_module_imports_another_packages_private_names(module: str, path: Path) -> None:
    assert crossings(module, path) == []
