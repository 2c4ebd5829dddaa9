"""Find what a service imports: local modules under the import root, and third-party names.

Reads source with ``ast`` (nothing is executed). Follows local imports
recursively; an import inside ``try: ... except ImportError`` is optional.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BuildError

_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


@dataclass
class ImportScan:
    """What the scan found."""

    #: local source files, relative to the import root
    local_files: set[Path] = field(default_factory=set)
    #: top-level third-party import names that are required
    required: set[str] = field(default_factory=set)
    #: top-level third-party import names found only under try/except ImportError
    optional: set[str] = field(default_factory=set)


def scan_imports(root: Path, entry_module: str) -> ImportScan:
    """Scan ``entry_module`` (a dotted name importable from ``root``) and every local module it imports."""
    scan = ImportScan()
    pending = [entry_module]
    seen: set[str] = set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _local_path(root, module)
        if path is None:
            continue
        scan.local_files.add(path.relative_to(root))
        # a package's __init__ files up the chain are needed for the import to work
        for parent in path.relative_to(root).parents:
            init = root / parent / "__init__.py"
            if parent != Path(".") and init.is_file():
                scan.local_files.add(init.relative_to(root))
        for name, optional in _imports_of(path, module, root):
            top = name.split(".")[0]
            if _local_path(root, top) is not None:
                pending.append(name)
                if name != top:
                    pending.append(top)
            elif top in sys.stdlib_module_names or top == "__future__":
                continue
            elif optional:
                scan.optional.add(top)
            else:
                scan.required.add(top)
    scan.optional -= scan.required
    return scan


def _local_path(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports_of(path: Path, module: str, root: Path) -> list[tuple[str, bool]]:
    """(absolute dotted name, optional) for each import statement in ``path``."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        raise BuildError(f"cannot read {path}: syntax error at line {exc.lineno}: {exc.msg}") from None
    is_package = path.name == "__init__.py"
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, optional: bool) -> None:
        if isinstance(node, ast.Try):
            guarded = optional or any(_catches_import_error(h) for h in node.handlers)
            for statement in node.body:
                visit(statement, guarded)
            for other in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(other, optional)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, optional) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - (node.level - 1)] if node.level > 1 else package_parts
                prefix = ".".join([*base, node.module] if node.module else base)
                # "from . import x" may name submodules
                found.extend((f"{prefix}.{a.name}" if prefix else a.name, optional) for a in node.names)
                if prefix:
                    found.append((prefix, optional))
            elif node.module:
                found.append((node.module, optional))
                found.extend((f"{node.module}.{a.name}", optional) for a in node.names if a.name != "*")
        for child in ast.iter_child_nodes(node):
            visit(child, optional)

    visit(tree, False)
    return found


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in _IMPORT_ERRORS for n in names)
