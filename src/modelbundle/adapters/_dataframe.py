"""``pandas.DataFrame``: JSON records (or columns) and text/csv bodies; batchable along rows."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..errors import BadRequest
from ._base import JSON, Adapter, invalid

CSV = "text/csv"


class DataFrame(Adapter):
    """A pandas DataFrame: a JSON list of records, an object of columns, or a CSV body."""

    media_types = (JSON, CSV)
    batchable = True

    def __init__(self, columns: Sequence[str] | None = None) -> None:
        self.columns = list(columns) if columns is not None else None

    def describe(self) -> str:
        return "a table (a list of records)"

    def _check(self, frame: pd.DataFrame, field: str) -> pd.DataFrame:
        if self.columns is not None:
            missing = [c for c in self.columns if c not in frame.columns]
            if missing:
                raise invalid(field, f"missing columns {missing}")
        return frame

    def from_python(self, value: Any, field: str) -> Any:
        if isinstance(value, pd.DataFrame):
            return self._check(value, field)
        return self.from_json(value, field)

    def from_json(self, value: Any, field: str) -> Any:
        if isinstance(value, list) and all(isinstance(row, dict) for row in value):
            return self._check(pd.DataFrame.from_records(value), field)
        if isinstance(value, dict) and all(isinstance(col, list) for col in value.values()):
            try:
                return self._check(pd.DataFrame(value), field)
            except ValueError as exc:
                raise invalid(field, str(exc)) from None
        raise invalid(field, "expected a list of records or an object of equal-length columns")

    def from_body(self, body: bytes, media_type: str, field: str) -> Any:
        try:
            return self._check(pd.read_csv(io.BytesIO(body)), field)
        except (ValueError, pd.errors.ParserError) as exc:
            raise BadRequest(f"{field}: not a CSV table ({exc})") from None

    def to_json(self, value: Any) -> Any:
        return value.to_dict(orient="records")

    def to_body(self, value: Any, media_type: str) -> bytes:
        return str(value.to_csv(index=False)).encode("utf-8")

    def json_schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "object"}, "description": self.describe()}

    def body_schema(self, media_type: str) -> dict[str, Any]:
        # pandas refuses a CSV body with no header line
        return {"type": "string", "pattern": r"\S", "description": "a CSV table with a header line"}

    def rows(self, value: Any, dim: int) -> int:
        return len(value)

    def batch(self, values: Sequence[Any], dim: int) -> Any:
        return pd.concat(values, ignore_index=True)

    def empty(self, dim: int) -> Any:
        return pd.DataFrame(columns=self.columns or [])

    def unbatch(self, value: Any, sizes: Sequence[int], dim: int) -> list[Any]:
        if len(value) != sum(sizes):
            raise ValueError(f"the API returned {len(value)} rows for a batch of {sum(sizes)}")
        pieces, start = [], 0
        for size in sizes:
            pieces.append(value.iloc[start : start + size].reset_index(drop=True))
            start += size
        return pieces
