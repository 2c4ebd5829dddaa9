"""A Service class defined in ``__main__`` (a script or a notebook), captured by value with cloudpickle.

Such a class cannot be imported by name when the bundle is served, so the bundle
carries it as a pickle (``src/modelbundle_main.pkl``) beside a small module that
loads it (``src/modelbundle_main.py``); the manifest's service entry names that
module, and serving needs nothing new. The class's methods, and the functions and
classes of ``__main__`` they use, travel by value; everything they use from other
modules travels by reference, so those modules must be importable where the bundle
is served: third-party ones are in its requirements, local ones (files beside the
script, or under the notebook's folder) are copied into ``src``.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..adapters import reproducible_dumps
from ._imports import ImportScan, scan_imports

#: the module that loads the captured class at serve time, and the pickle beside it
MODULE = "modelbundle_main"
PICKLE_FILE = f"{MODULE}.pkl"
_LOADER = f'''"""Written by modelbundle: {{qualname}}, defined in __main__ when the bundle was built, captured by value."""

import pickle
from pathlib import Path

{{name}} = pickle.loads(Path(__file__).with_name("{PICKLE_FILE}").read_bytes())
'''


def is_main_class(cls: type) -> bool:
    """True for a class defined in ``__main__``: a script run as ``python script.py``, or a notebook."""
    return cls.__module__ == "__main__"


@dataclass
class CapturedClass:
    """What a bundle needs to serve a class defined in ``__main__``."""

    cls: type
    #: the import root: the script's folder, or the current directory in a notebook
    root: Path
    pickle: bytes
    #: local files to copy into src, and third-party imports (for the requirements)
    scan: ImportScan = field(default_factory=ImportScan)

    @property
    def service(self) -> str:
        """The manifest's service entry."""
        return f"{MODULE}:{self.cls.__name__}"

    def write(self, src: Path) -> None:
        src.mkdir(parents=True, exist_ok=True)
        (src / PICKLE_FILE).write_bytes(self.pickle)
        (src / f"{MODULE}.py").write_text(_LOADER.format(qualname=self.cls.__qualname__, name=self.cls.__name__))


def capture_main_class(cls: type) -> CapturedClass:
    """Pickle ``cls`` by value and find what it needs at serve time (local files, third-party imports)."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    script = Path(main_file).resolve() if main_file and main_file.endswith(".py") else None
    root = script.parent if script else Path.cwd().resolve()
    pickled = reproducible_dumps(cls)
    referenced = set(pickled.modules)

    scan = ImportScan()
    if script is not None:  # the script's own imports, as for a service module (the script itself is not copied)
        _merge(scan, scan_imports(root, script.stem))
        scan.local_files.discard(script.relative_to(root))
    else:  # a notebook: what its namespace imported
        referenced |= _namespace_modules(vars(sys.modules["__main__"]))
    for top in sorted({name.split(".")[0] for name in referenced} - {"__main__", "builtins"}):
        local = scan_imports(root, top)  # empty unless ``top`` is a module or package under the root
        _merge(scan, local)
        if not local.local_files and top not in sys.stdlib_module_names:
            scan.required.add(top)
    # the runtime brings these; other libraries the pickle names (pydantic's validators inside the
    # APIs, say) are pinned at the versions that made it, which are the versions that read it best
    scan.required -= {"modelbundle", "cloudpickle"}
    scan.optional -= scan.required
    return CapturedClass(cls, root, pickled.data, scan)


def _merge(into: ImportScan, scan: ImportScan) -> None:
    into.local_files |= scan.local_files
    into.required |= scan.required
    into.optional |= scan.optional


def _namespace_modules(namespace: dict[str, Any]) -> set[str]:
    """The modules a notebook's namespace holds, or holds something from (``import numpy as np``, ``from x import f``)."""
    found = set()
    for name, value in namespace.items():
        if name.startswith("_"):  # IPython's own (_ih, _oh, __builtins__ ...)
            continue
        if isinstance(value, types.ModuleType):
            found.add(value.__name__)
        elif isinstance(value, type | types.FunctionType) and value.__module__ not in ("__main__", None):
            found.add(value.__module__)
    return {name for name in found if not name.startswith("IPython")}
