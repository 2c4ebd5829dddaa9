"""cloudpickle with reproducible output, recording the modules a pickle refers to.

cloudpickle tags each class it pickles by value (one defined in ``__main__`` or a
notebook) with a random id, so that one process unpickles it once; random ids
would give every build of the same code a new bundle version. Here each id is a
digest of the pickle itself, made first with a fixed id, so the same object gives
the same bytes in any process (as long as its own state does: pydantic models
defined in ``__main__``, for one, carry process-specific references).
"""

from __future__ import annotations

import hashlib
import io
import types
from dataclasses import dataclass
from typing import Any

import cloudpickle

# cloudpickle's builders of a class pickled by value; their arguments end with (tracker id, None).
# Should a cloudpickle release change that, the ids stay random: bundles still work, versions vary.
_SKELETONS = tuple(
    builder
    for builder in (
        getattr(cloudpickle.cloudpickle, "_make_skeleton_class", None),
        getattr(cloudpickle.cloudpickle, "_make_skeleton_enum", None),
    )
    if builder is not None
)


@dataclass(frozen=True)
class Pickled:
    """Pickle bytes, and the modules they refer to by name (so must be importable where they load)."""

    data: bytes
    modules: frozenset[str]


def reproducible_dumps(obj: Any) -> Pickled:
    """``cloudpickle.dumps(obj)``, with the same bytes for the same object in every process."""
    first = _dump(obj, "")
    return _dump(obj, hashlib.sha256(first.data).hexdigest())


def _dump(obj: Any, class_id: str) -> Pickled:
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, class_id)
    pickler.dump(obj)
    return Pickled(buffer.getvalue(), frozenset(pickler.modules))


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
    def __init__(self, file: io.BytesIO, class_id: str) -> None:
        super().__init__(file, protocol=5)
        self.class_id = class_id
        self.modules: set[str] = set()

    def reducer_override(self, obj: Any) -> Any:
        reduced = super().reducer_override(obj)
        if isinstance(obj, type) and isinstance(reduced, tuple) and reduced and reduced[0] in _SKELETONS:
            args = list(reduced[1])
            args[-2] = hashlib.sha256(f"{self.class_id}:{obj.__qualname__}".encode()).hexdigest()[:32]
            reduced = (reduced[0], tuple(args), *reduced[2:])
        return reduced

    def persistent_id(self, obj: Any) -> None:
        """Called for every object pickled: note its module; None pickles it as usual."""
        if isinstance(obj, types.ModuleType):
            self.modules.add(obj.__name__)
        elif isinstance(obj, type | types.FunctionType | types.BuiltinFunctionType):
            self.modules.add(getattr(obj, "__module__", None) or "builtins")
        else:
            self.modules.add(type(obj).__module__)
        return None
