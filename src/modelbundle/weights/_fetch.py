"""``ensure``: every referenced weight in the cache, fetched in parallel where missing, verified."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from ..errors import ArtifactError
from ._cache import Advance, assemble_dir, blob_path, cached_path, fetch_blob
from ._progress import lines_unless_shown
from ._ref import WeightBlob, WeightRef
from ._sources import open_source

OFFLINE_ENV = "MODELBUNDLE_OFFLINE"
#: blobs fetched at once
FETCH_WORKERS = 4


class Progress(Protocol):
    """What reports bytes: ``stores.TransferProgress`` is one (``with progress.task(label, total) as advance``)."""

    def task(self, description: str, total: int) -> AbstractContextManager[Advance]: ...


def offline_from_env() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def ensure(refs: list[WeightRef], *, progress: Progress | None = None, offline: bool | None = None) -> dict[str, Path]:
    """artifact name -> the verified local path of its weights (a file, or a directory of links for "dir").

    Missing blobs are fetched into the cache, several at once, each reported to ``progress``
    (by default, and when its bars cannot show, a line on stderr as each starts and ends); ``offline`` (default: $MODELBUNDLE_OFFLINE)
    allows only what is cached, and a missing blob is an ArtifactError naming it.
    """
    offline = offline_from_env() if offline is None else offline
    missing = {blob.sha256: blob for ref in refs for blob in ref.blobs() if cached_path(blob.sha256) is None}
    if missing and offline:
        blob = next(iter(missing.values()))
        raise ArtifactError(
            f"artifact '{blob.label}': its weights (sha256:{blob.sha256}, {blob.uri}) are not in the cache "
            f"{blob_path(blob.sha256).parent} and fetching is off ({OFFLINE_ENV}); fetch them once online"
        )
    if missing:
        _fetch_all(list(missing.values()), lines_unless_shown(progress))
    paths = {}
    for ref in refs:
        paths[ref.artifact] = blob_path(ref.sha256) if ref.kind == "file" else assemble_dir(ref.sha256, ref.files)
    return paths


def _fetch_all(blobs: list[WeightBlob], progress: Progress | None) -> None:
    with ThreadPoolExecutor(max_workers=min(FETCH_WORKERS, len(blobs))) as pool:
        # every future is awaited, so no fetch outlives the call; the first error is raised
        futures = [pool.submit(_fetch_one, blob, progress) for blob in blobs]
        errors = [f.exception() for f in futures]
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first


def _fetch_one(blob: WeightBlob, progress: Progress | None) -> Path:
    source = open_source(blob.uri)
    try:
        with _task(progress, f"fetching weights '{blob.label}'", blob.size) as advance:
            return fetch_blob(blob, source, advance)
    finally:
        source.close()


@contextmanager
def _task(progress: Progress | None, description: str, total: int) -> Iterator[Callable[[int], None]]:
    if progress is None:
        yield lambda n: None
        return
    with progress.task(description, total) as advance:
        yield advance
