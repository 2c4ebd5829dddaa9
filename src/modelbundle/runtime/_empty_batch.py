"""An empty batch (no rows) is answered without calling the model.

A batchable API maps N rows to N answers, so no rows have no answers: the reply
is the output type's empty value (``[]``, an array of shape ``(0, ...)``, an
empty table), as BentoML and Cog users expect. Calling the model instead would
make most of them raise (scikit-learn refuses 0 samples), which is no model
failure. An output type that cannot make an empty value (an array of unknown
dtype) makes it a 422. Batching on or off, the answer is the same.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from ..service_base import APIMethod
from ._types import Invoke


def answering_empty_batches(api: APIMethod, invoke: Invoke) -> Invoke:
    """``invoke``, except that a request of no rows is answered here."""
    dim = api.batch_dim

    async def invoke_unless_empty(kwargs: dict[str, Any]) -> Any:
        if not _has_no_rows(api, kwargs):
            return await invoke(kwargs)
        empty = api.output.empty(dim)
        if empty is None:
            raise InvalidInput(
                f"{api.name} got no rows (an empty batch along dimension {dim}), and its output "
                f"({api.output.describe()}) has no empty value; send at least one row"
            )
        return empty

    return invoke_unless_empty


def _has_no_rows(api: APIMethod, kwargs: dict[str, Any]) -> bool:
    """Every batched input given holds no rows (inputs that disagree are the batcher's to refuse)."""
    counts = [p.adapter.rows(kwargs[p.name], api.batch_dim) for p in api.params if p.name in kwargs]
    return bool(counts) and not any(counts)
