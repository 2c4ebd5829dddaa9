"""Bundles from Python: list the local store, and load a bundle as a ready service instance.

Kept apart from ``__init__`` so ``import modelbundle`` stays light: the bundler
(pydantic, packaging) is imported when one of these is called.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bundler import StoredBundle
    from .service_base import Service


def list_bundles(name: str | None = None) -> list[StoredBundle]:
    """The bundles in the local store (``$MODELBUNDLE_HOME``), or the versions of ``name``, oldest first.

    Each has ``.tag`` (``name:version``), ``.path`` and ``.manifest`` (what ``bundle get`` shows)::

        [b.tag for b in modelbundle.list_bundles()]      # ['iris:3f2a9c0d1e4b', ...]
    """
    from .bundler import LocalStore

    return LocalStore().list(name)


def load(ref: str) -> Service:
    """A ready instance of a bundle's service: verified, artifacts loaded, ``setup()`` done.

    ``ref`` is ``NAME`` (the latest version), ``NAME:VERSION``, or a folder holding a
    bundle. Call its APIs as methods, in this process, with Python values::

        iris = modelbundle.load("iris")
        iris.predict(np.array([[5.1, 3.5, 1.4, 0.2]]))   # array([0])

    No server and no batching are involved; an ``async`` API returns a coroutine to
    await. Call ``teardown()`` when done if the service releases resources there.
    """
    from .bundler import MANIFEST_FILE, open_bundle, open_bundle_dir
    from .service_base import bind_artifacts

    folder = Path(ref)
    bundle = open_bundle_dir(folder) if (folder / MANIFEST_FILE).is_file() else open_bundle(ref)
    service_cls = bundle.service_class()
    instance = service_cls()
    loaded = bundle.artifact_loader()()
    if bundle.manifest.services:  # composed: its dependencies are set up in this process too
        from .runtime import start_in_background

        start_in_background(service_cls, instance, loaded)
    else:
        bind_artifacts(instance, loaded)
    _run(instance.setup)
    return instance


def _run(hook: Any) -> None:
    """Call a sync or async hook to completion, also from inside a running event loop (a notebook's)."""
    result = hook()
    if not inspect.isawaitable(result):
        return
    import asyncio  # here: asyncio is a third of what `import modelbundle` would cost otherwise
    import concurrent.futures

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop in this thread: run one
        asyncio.run(_await(result))
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # this thread's loop is busy running us
        pool.submit(asyncio.run, _await(result)).result()


async def _await(awaitable: Any) -> None:
    await awaitable
