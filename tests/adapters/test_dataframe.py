"""``DataFrame``: records or columns in JSON, CSV bodies, required columns, batching along rows."""

import io
from typing import Any

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from modelbundle.adapters import DataFrame, adapter_for
from modelbundle.errors import BadRequest, InvalidInput

CSV = "text/csv"
JSON = "application/json"


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"age": [31, 45, 27], "income": [52.5, 61.0, 38.25], "city": ["Oslo", "Lima", "Pune"]})


def test_records_json_round_trip(frame: pd.DataFrame) -> None:
    adapter = DataFrame(columns=["age", "income"])
    records = frame.to_dict(orient="records")
    decoded = adapter.from_json(records, "table")
    assert_frame_equal(decoded, frame)
    assert adapter.to_json(decoded) == records


def test_columns_json_is_accepted(frame: pd.DataFrame) -> None:
    decoded = DataFrame().from_json(frame.to_dict(orient="list"), "table")
    assert_frame_equal(decoded, frame)


def test_csv_body_round_trip(frame: pd.DataFrame) -> None:
    adapter = DataFrame()
    body = adapter.to_body(frame, CSV)
    assert_frame_equal(pd.read_csv(io.BytesIO(body)), frame)
    assert_frame_equal(adapter.from_body(frame.to_csv(index=False).encode(), CSV, "table"), frame)


def test_missing_columns_are_invalid_input(frame: pd.DataFrame) -> None:
    adapter = DataFrame(columns=["age", "income", "score", "zone"])
    with pytest.raises(InvalidInput, match=r"^table: missing columns \['score', 'zone'\]$"):
        adapter.from_json(frame.to_dict(orient="records"), "table")
    with pytest.raises(InvalidInput, match=r"^table: missing columns \['score', 'zone'\]$"):
        adapter.from_body(frame.to_csv(index=False).encode(), CSV, "table")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"a": [1, 2], "b": [3]}, r"^table: All arrays must be of the same length$"),
        ([{"a": 1}, 2], r"^table: expected a list of records or an object of equal-length columns$"),
        ({"a": 1}, r"^table: expected a list of records or an object of equal-length columns$"),
        ("a,b\n1,2", r"^table: expected a list of records or an object of equal-length columns$"),
    ],
)
def test_bad_json_is_invalid_input(value: Any, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        DataFrame().from_json(value, "table")


@pytest.mark.parametrize("body", [b"", b'a,b\n"1,2\n'])
def test_bad_csv_is_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest, match=r"^table: not a CSV table \("):
        DataFrame().from_body(body, CSV, "table")


def test_batch_unbatch_and_rows(frame: pd.DataFrame) -> None:
    adapter = DataFrame()
    parts = [frame.iloc[:1].reset_index(drop=True), frame.iloc[1:].reset_index(drop=True), frame.iloc[:2]]
    batched = adapter.batch(parts, 0)
    assert_frame_equal(batched, pd.concat(parts, ignore_index=True))
    sizes = [adapter.rows(part, 0) for part in parts]
    assert sizes == [len(part) for part in parts]
    assert adapter.rows(batched, 0) == sum(sizes)
    scored = batched.assign(score=batched["age"] * 2)
    for piece, part in zip(adapter.unbatch(scored, sizes, 0), parts, strict=True):
        assert_frame_equal(piece, part.reset_index(drop=True).assign(score=part["age"].to_numpy() * 2))


def test_unbatch_refuses_a_row_count_mismatch(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"^the API returned 3 rows for a batch of 4$"):
        DataFrame().unbatch(frame, [2, 2], 0)


def test_media_types_and_schema() -> None:
    adapter = DataFrame()
    assert adapter.batchable
    assert adapter.response_media_type("") == JSON
    assert adapter.response_media_type(CSV) == CSV
    assert adapter.json_schema({})["items"] == {"type": "object"}


def test_adapter_for_dataframe() -> None:
    adapter = adapter_for(pd.DataFrame)
    assert isinstance(adapter, DataFrame)
    assert adapter.columns is None
