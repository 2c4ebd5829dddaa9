"""``bundle build``: a versioned bundle in the local store, or the one these very inputs built last time.

The work of building is in ``_assemble``, imported only when there is work to do:
a build whose inputs did not change never imports the service, the resolver or
the wheel machinery.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import BuildError
from ..service_base import PackedService, load_service
from . import _build_cache
from ._options import BuildOptions
from ._report import Reporter
from ._store import LocalStore, StoredBundle


def build(options: BuildOptions, store: LocalStore | None = None, *, force: bool = False) -> StoredBundle:
    """Build the service named by ``options.service`` (artifacts from declared paths).

    When nothing the last build of these options read has changed, that bundle is
    the answer (``force`` builds again all the same).
    """
    if not options.service:
        raise BuildError("no service to build: pass TARGET (module:Class or path/file.py:Class) or set service in [tool.modelbundle]")
    store = store or LocalStore()
    cache_entry = _build_cache.entry_path(options, store)
    unchanged = None if force else _build_cache.lookup(cache_entry, options, store)
    if unchanged is not None:
        Reporter(options.quiet).info(f"{unchanged.tag}: nothing changed since it was built (--force builds again)")
        return unchanged
    from ._assemble import Target, assemble

    target = Target(options.service, Path(options.project_dir or Path.cwd()))
    service_cls = load_service(options.service, root=target.root, fresh=True)
    target.class_name = service_cls.__qualname__  # path/file.py alone names the file's one Service
    read: list[Path] = []
    bundle = assemble(service_cls, target, {}, options, store, read)
    _build_cache.record(cache_entry, options, bundle, read)
    return bundle


def build_packed(packed: PackedService, options: BuildOptions, store: LocalStore | None = None) -> StoredBundle:
    """Build from ``Service.pack(...)``: artifact values come from the call."""
    from ._assemble import Target, assemble
    from ._by_value import capture_main_class, is_main_class

    cls = packed.service_cls
    if is_main_class(cls):  # a script or a notebook: the class travels by value
        captured = capture_main_class(cls)
        return assemble(cls, Target(captured.service, captured.root, captured), packed.values, options, store, [])
    module = sys.modules.get(cls.__module__)
    module_file = getattr(module, "__file__", None)
    if module_file is None:
        raise BuildError(
            f"{cls.__name__} is defined in module {cls.__module__!r}, which has no file; define the Service class "
            "in a module file, in the script you run, or in a notebook"
        )
    module_path = Path(module_file).resolve()
    depth = cls.__module__.count(".")
    root = module_path.parents[depth] if module_path.name != "__init__.py" else module_path.parents[depth + 1]
    target = Target(f"{cls.__module__}:{cls.__qualname__}", root)
    return assemble(cls, target, packed.values, options, store, [])
