"""Which job store a server uses, from ``--jobs-url`` / ``--jobs-dir``, and taking a SQLite folder.

``--jobs-url postgresql://...`` -> ``PostgresJobStore(url, blobs=...)`` (``_postgres.py``, imported only then;
large payloads in the ``--jobs-blobs`` blob store when given);
otherwise SQLite in ``--jobs-dir`` or ``$MODELBUNDLE_HOME/jobs/<service name>``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ...bundler import default_home
from ...errors import ServeError, StoreError
from .._config import ServeConfig
from ._lock import DirectoryLock
from ._sqlite import SQLiteJobStore
from ._store import JobStore

#: URL schemes of the shared stores, as "module:class" resolved when chosen
URL_STORES = {
    "postgresql": "modelbundle.runtime.jobs._postgres:PostgresJobStore",
    "postgres": "modelbundle.runtime.jobs._postgres:PostgresJobStore",
}


def jobs_directory(config: ServeConfig, service_name: str) -> Path:
    if config.jobs_dir is not None:
        return Path(config.jobs_dir).expanduser()
    return default_home() / "jobs" / service_name


def prepare_directory(directory: Path) -> None:
    """Create the folder or raise ServeError in one line."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".writable"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ServeError(f"cannot use {directory} as the jobs directory: {exc.strerror or exc}; pick another with --jobs-dir") from None


def lock_directory(directory: Path) -> DirectoryLock:
    """Create and lock the folder (ServeError if another server holds it)."""
    prepare_directory(directory)
    lock = DirectoryLock(directory)
    lock.acquire()
    return lock


def open_store(config: ServeConfig, directory: Path) -> JobStore:
    if config.jobs_url is None:
        prepare_directory(directory)
        try:
            return SQLiteJobStore(directory)
        except Exception as exc:  # sqlite3.Error: a corrupt or foreign file named jobs.sqlite3
            raise ServeError(f"cannot open the job store in {directory}: {exc}") from None
    scheme = config.jobs_url.partition("://")[0].lower()
    target = URL_STORES.get(scheme)
    if target is None:
        raise ServeError(f"--jobs-url takes postgresql://...; {scheme}:// is not a job store")
    module_name, _, class_name = target.partition(":")
    store_cls = getattr(importlib.import_module(module_name), class_name)
    blobs = None
    if config.jobs_blobs is not None:
        from ...stores import open_blob_backend  # the stores package only when asked for

        try:
            blobs = open_blob_backend(config.jobs_blobs)
        except StoreError as exc:
            raise ServeError(f"--jobs-blobs {exc}") from None
    store: JobStore = store_cls(config.jobs_url, blobs=blobs)
    return store
