"""Load a Service from ``module:Class``, ``path/to/file.py:Class`` or ``path/to/file.py`` with precise errors."""

from __future__ import annotations

import difflib
import importlib
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

from ..errors import ImportTargetError
from ._service import Service

# frames inside modelbundle (e.g. the definition checks) are not where the user should look
_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent) + os.sep


def split_target(target: str) -> tuple[str, str]:
    """``(module or file, class name)``; the class name is "" for a bare ``path/to/file.py``.

    The class may be left out only after a ``.py`` file: a bare name is a stored bundle.
    """
    module_part, sep, attr = target.rpartition(":")
    if not sep and target.endswith(".py"):
        return target, ""
    return module_part, attr


def is_file_target(target: str) -> bool:
    """``path/to/file.py[:Class]`` (or any target with a path separator) rather than ``module:Class``.

    The one rule every command uses to tell a file from a module (or a stored bundle).
    """
    module_part = split_target(target)[0]
    return module_part.endswith(".py") or "/" in module_part or "\\" in module_part


def target_root(target: str, root: Path | None = None) -> tuple[Path, str]:
    """The import root and module name of ``target``.

    A file's folder is its import root, so its sibling modules import as they do in
    the project; a ``module:Class`` imports from ``root`` (default: the current directory).
    """
    module_part = split_target(target)[0]
    if is_file_target(target):
        path = Path(module_part)
        return path.resolve().parent, path.stem
    return (root or Path.cwd()).resolve(), module_part


def load_service(target: str, root: Path | None = None, *, fresh: bool = False) -> type[Service]:
    """Import ``target`` and return the Service subclass it names.

    ``root`` is the import root for a ``module:Class`` target (default: the current directory).
    ``fresh`` re-imports modules already loaded from that root, so a long-lived process
    (a notebook, a test session) sees the code as it is on disk now. A ``path/to/file.py``
    target without ``:Class`` serves the one Service class that file defines.
    """
    module_part, attr = split_target(target)
    if not module_part or (not attr and not module_part.endswith(".py")):
        raise ImportTargetError(
            f"target {target!r} must look like 'module:Class', 'path/to/file.py:Class' or 'path/to/file.py'"
        )
    if is_file_target(target) and not Path(module_part).is_file():
        raise ImportTargetError(f"target {target!r}: no such file {module_part}")
    root_path, module_name = target_root(target, root)
    import_root = str(root_path)
    if import_root in sys.path:
        sys.path.remove(import_root)
    sys.path.insert(0, import_root)  # first, so the target's modules win over same-named others
    _forget_if_elsewhere(module_name, import_root)
    if fresh:
        _forget_modules_under(import_root)

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name or module_name.startswith(f"{exc.name}."):
            raise ImportTargetError(f"target {target!r}: no module named {module_name!r} under {import_root}") from None
        raise ImportTargetError(f"importing {module_name!r} failed: {_where(exc)}") from exc
    except Exception as exc:
        raise ImportTargetError(f"importing {module_name!r} failed: {_where(exc)}") from exc

    defined = services_defined_in(module)
    if not attr:
        if len(defined) == 1:
            return defined[0]
        if not defined:
            raise ImportTargetError(f"target {target!r}: {module_part} defines no modelbundle.Service subclass")
        raise ImportTargetError(f"target {target!r}: name the class as {module_part}:Class; it defines {_names(defined)}")
    cls = getattr(module, attr, None)
    if cls is None:
        raise ImportTargetError(f"target {target!r}: module {module_name!r} has no attribute {attr!r}{_hint(attr, defined)}")
    if not (isinstance(cls, type) and issubclass(cls, Service)) or cls is Service:
        raise ImportTargetError(f"target {target!r}: {attr} is not a modelbundle.Service subclass{_hint(attr, defined)}")
    return cls


def services_defined_in(module: ModuleType) -> list[type[Service]]:
    """The Service subclasses a module defines itself (not those it imports), in source order."""
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Service) and value is not Service and value.__module__ == module.__name__
    ]


def _hint(attr: str, defined: list[type[Service]]) -> str:
    """"; did you mean 'Iris'?" and the Service classes the module defines."""
    if not defined:
        return "; it defines no modelbundle.Service subclass"
    close = difflib.get_close_matches(attr, [cls.__name__ for cls in defined], n=1, cutoff=0.6)
    guess = f"; did you mean {close[0]!r}?" if close else ";"
    return f"{guess} its Service classes: {_names(defined)}"


def _names(defined: list[type[Service]]) -> str:
    return ", ".join(cls.__name__ for cls in defined)


def _forget_if_elsewhere(module_name: str, import_root: str) -> None:
    """Drop a cached module of the same name from another folder (two bundles' ``service`` modules)."""
    top = module_name.split(".")[0]
    cached_file = getattr(sys.modules.get(top), "__file__", None)
    if cached_file and not Path(cached_file).resolve().is_relative_to(import_root):
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]


def _forget_modules_under(import_root: str) -> None:
    for name, module in list(sys.modules.items()):
        module_file = getattr(module, "__file__", None)
        if module_file and Path(module_file).resolve().is_relative_to(import_root):
            del sys.modules[name]


def _where(exc: BaseException) -> str:
    """The exception and the user's line that raised it, for a one-line message."""
    frames = traceback.extract_tb(exc.__traceback__)
    user_frames = [f for f in frames if "importlib" not in f.filename and not f.filename.startswith(_PACKAGE_DIR)]
    if user_frames:
        frame = user_frames[-1]
        return f"{type(exc).__name__}: {exc} ({frame.filename}:{frame.lineno})"
    return f"{type(exc).__name__}: {exc}"
