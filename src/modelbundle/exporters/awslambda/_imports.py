"""Which modules a cold start imports first: the closure of the module-level imports of its entry points.

When the zip cannot hold the bytecode of every module, the bytecode of these goes
in first, then that of what their functions import. The imports are read from each
module's compiled code (an ``import`` at top level, in a class body, a ``try`` or an
``if`` block runs at import time; one in a function body runs when it is called), so
nothing is executed. Imports made by name at run time (``importlib.import_module``,
unpickling a model) are not seen: the exporter adds the model frameworks' packages as
entry points for that reason, and a lazily loaded submodule may still miss out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

#: one import statement as compiled code holds it: (level, module, names of a ``from ... import``,
#: whether it runs when its module is imported rather than in a function)
ImportStatement = tuple[int, str, Sequence[str], bool]


def module_name(relative: str) -> tuple[str, bool]:
    """``a/b/c.py`` -> ("a.b.c", False); ``a/b/__init__.py`` -> ("a.b", True)."""
    parts = relative.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def imported_modules(name: str, is_package: bool, statement: ImportStatement, known: Mapping[str, object]) -> list[str]:
    """The modules of ``known`` that ``statement`` in module ``name`` runs: each package on the way, and the module."""
    level, target, names, _ = statement
    if level:
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[: len(base) - (level - 1)] if level > 1 else base
        target = ".".join([*base, target] if target else base)
    parts = target.split(".")
    found = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    found += [f"{target}.{n}" for n in names if n != "*"]
    return [m for m in found if m in known]


def import_order(
    graph: Mapping[str, tuple[bool, Iterable[ImportStatement]]], roots: Iterable[str], *, in_functions: bool = False
) -> list[str]:
    """The modules of ``graph`` (name -> (is package, its imports)) that importing ``roots`` imports, breadth first;
    with ``in_functions``, also those their functions would import once called."""
    order: list[str] = []
    seen: set[str] = set()
    queue = deque(r for r in roots if r in graph)
    while queue:
        name = queue.popleft()
        if name in seen:
            continue
        seen.add(name)
        order.append(name)
        is_package, statements = graph[name]
        for statement in statements:
            if not (statement[3] or in_functions):
                continue
            queue.extend(m for m in imported_modules(name, is_package, statement, graph) if m not in seen)
    return order
