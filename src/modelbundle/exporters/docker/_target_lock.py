"""``--target-lock``: a hashed lock of what an image target adds, read and checked against what pip chose."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName, canonicalize_name

from ...bundler import LockedDistribution, read_lock
from ...errors import ExportError, IntegrityError

if TYPE_CHECKING:
    from ._extras import ImageExtras


def read_target_lock(path: Path) -> dict[NormalizedName, LockedDistribution]:
    """The lock's pins by name; ExportError, in one line, for a file that is missing, not text or not hashed."""
    try:
        return {dist.name: dist for dist in read_lock(path)}
    except OSError as exc:
        raise ExportError(f"cannot read the target lock {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ExportError(f"cannot read the target lock {path}: not a text file") from exc
    except IntegrityError as exc:
        raise ExportError(f"the target lock is not a hashed lock (uv pip compile --generate-hashes writes one): {exc}") from exc


def check_target_lock(extras: ImageExtras, target: Mapping[NormalizedName, LockedDistribution], path: Path) -> None:
    """Every wheel added or moved must be one the target lock pins, by name and by digest."""
    for entry in [*extras.added, *(pin.entry for pin in extras.moved)]:
        pin, _, digest = entry.partition(" --hash=sha256:")
        name = canonicalize_name(pin.partition("==")[0])
        if name not in target:
            raise ExportError(
                f"the target lock {path} does not pin {name} (pip chose {pin}); "
                "lock the target's requirements again with the bundle's pins as constraints"
            )
        if digest not in target[name].hashes:
            raise ExportError(
                f"the wheel pip chose for {pin} (sha256:{digest}) is not one the target lock {path} lists for {name}; "
                "lock the target's requirements again, or find where that wheel came from"
            )
