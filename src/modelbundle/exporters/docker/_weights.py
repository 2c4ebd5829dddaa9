"""Referenced weights in an image: baked, one layer per blob before the bundle's, or fetched at start.

Baked, each blob is its own ``COPY`` step, sorted by digest, after the venv
layer and before the bundle's data and code layers, to
``/var/lib/modelbundle/blobs/sha256/<hex>``: the weights cache of the image,
whose ``MODELBUNDLE_HOME`` is ``/var/lib/modelbundle``. A code-only change
rebuilds no weight layer, and two images whose weights have the same digests
(on the same venv) share those layers. Fetched, the image holds none of them:
the server fetches them at start into that cache, a volume to keep them
(``-v weights:/var/lib/modelbundle/blobs``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ...bundler import StoredBundle
from ...errors import ExportError

if TYPE_CHECKING:
    from ...weights import WeightBlob

WeightsMode = Literal["baked", "fetch"]
WEIGHTS_MODES = ("baked", "fetch")
#: the image's MODELBUNDLE_HOME when its bundle references weights; the weights cache is its blobs/
WEIGHTS_HOME = "/var/lib/modelbundle"
WEIGHTS_CACHE = f"{WEIGHTS_HOME}/blobs"
#: without --weights: weights up to this total are baked, bigger ones fetched at start
BAKE_LIMIT = 2 * 1024**3
#: context folder of the weight layers: weights/<hex>/sha256/<hex>
WEIGHTS_DIR = "weights"


@dataclass(frozen=True)
class ImageWeights:
    """What an image does with its bundle's referenced weights."""

    mode: WeightsMode | None  # None: the bundle references no weights
    blobs: tuple[WeightBlob, ...] = ()

    @property
    def total(self) -> int:
        return sum(blob.size for blob in self.blobs)

    @property
    def baked(self) -> tuple[str, ...]:
        """The digests baked into layers, in layer order."""
        return tuple(sorted(blob.sha256 for blob in self.blobs)) if self.mode == "baked" else ()


def plan_weights(bundle: StoredBundle, requested: str | None) -> ImageWeights:
    """``--weights``: as asked, or baked when the total is at most BAKE_LIMIT, else fetched."""
    if requested is not None and requested not in WEIGHTS_MODES:
        raise ExportError(f"--weights {requested!r}: choose baked or fetch")
    from ...weights import distinct_blobs, references

    blobs = tuple(distinct_blobs(references(bundle.manifest)))
    if not blobs:
        return ImageWeights(None)
    total = sum(blob.size for blob in blobs)
    mode: WeightsMode = requested if requested is not None else ("baked" if total <= BAKE_LIMIT else "fetch")  # type: ignore[assignment]
    return ImageWeights(mode, blobs)


def write_weight_layers(bundle: StoredBundle, weights: ImageWeights, context: Path, *, link: bool, offline: bool) -> None:
    """Each baked blob at ``weights/<hex>/sha256/<hex>``, from the cache (fetched into it first, verified).

    ``link``: a hard link to the cached blob (the context is only read); else a copy (a folder
    for --context-only, whose files get their modes and times fixed in place).
    """
    if not weights.baked:
        return
    from ...weights import cached_path, ensure, references

    ensure(references(bundle.manifest), offline=offline)
    for digest in weights.baked:
        source = cached_path(digest)
        if source is None:  # ensure verified every blob into the cache: only a concurrent clean-up gets here
            raise ExportError(f"the weights blob sha256:{digest} left the cache during the build; run it again")
        target = context / WEIGHTS_DIR / digest / "sha256" / digest
        target.parent.mkdir(parents=True, exist_ok=True)
        if link:
            try:
                os.link(source, target)
                continue
            except OSError:
                pass  # another filesystem: copy
        shutil.copyfile(source, target)


def weight_layer_steps(digests: tuple[str, ...], user_id: int | None) -> list[str]:
    """One COPY per blob, owned by the server's user so that the cache can also take what is fetched at start."""
    chown = f"--chown={user_id}:{user_id} " if user_id is not None else ""
    return [f"COPY {chown}{WEIGHTS_DIR}/{digest}/ {WEIGHTS_CACHE}/" for digest in digests]
