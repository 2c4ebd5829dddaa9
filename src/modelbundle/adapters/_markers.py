"""Light markers users put in ``Annotated[...]`` hints; importing them loads no framework."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, init=False)
class Shape:
    """The expected shape of an array; -1 or None means any size along that dimension.

    ``x: Annotated[NDArray[np.float32], Shape(-1, 64)]`` accepts rows of 64 floats.
    """

    dims: tuple[int, ...]

    def __init__(self, *dims: int | None) -> None:
        for dim in dims:
            if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or dim < -1):
                raise TypeError(f"Shape takes ints >= 0, or -1/None for any size; got {dim!r}")
        object.__setattr__(self, "dims", tuple(-1 if d is None else d for d in dims))


@dataclass(frozen=True)
class DType:
    """The expected dtype of an array, for hints that cannot carry it: ``Annotated[np.ndarray, DType("float32")]``."""

    name: str
