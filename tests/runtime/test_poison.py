"""One bad input in a merged batch fails alone; its batch-mates still get their answers."""

from __future__ import annotations

import pytest

from fixtures.services.poison import HOLD, POISON, Poisoned
from modelbundle.runtime import ServeConfig

MATES = 10


@pytest.fixture(scope="module")
def server(serve_in_thread):
    with serve_in_thread(Poisoned, ServeConfig(log_level="critical")) as server:
        yield server


def _assert_error(response, status: int, error_type: str, *fragments: str) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"type", "message", "request_id"}
    assert error["type"] == error_type
    assert error["request_id"] == response.headers["x-request-id"]
    for fragment in fragments:
        assert fragment in error["message"]
    return error


@pytest.mark.parametrize(
    ("bad_row", "status", "error_type", "fragment"),
    [
        pytest.param(POISON, 500, "model_error", "predict raised ValueError: poisoned row", id="model-raises"),
        pytest.param(-5.0, 422, "invalid_input", "rows must not be negative", id="invalid-input"),
    ],
)
def test_a_bad_input_fails_alone_and_its_batch_mates_succeed(server, bad_row, status, error_type, fragment):
    calls_before = len(server.service.calls)
    bad = MATES // 2
    bodies = [[[float(i), float(i)]] for i in range(MATES)]
    bodies[bad] = [[float(bad), bad_row]]
    headers = [{} for _ in bodies]
    headers[bad] = {"X-Request-ID": "the-bad-one"}

    hold, responses = server.post_while_held("predict", [[HOLD, 0]], bodies, headers)

    assert hold.json() == [[3 * HOLD, 0]]
    error = _assert_error(responses[bad], status, error_type, fragment)
    assert error["request_id"] == "the-bad-one"
    for i, response in enumerate(responses):
        if i != bad:
            assert response.status_code == 200, response.text
            assert response.json() == [[3.0 * i, 3.0 * i]]
    held, merged, *alone = server.service.calls[calls_before:]
    assert held == [HOLD]
    # all of them queued behind the held call and became one batch, which failed...
    assert sorted(merged) == [float(i) for i in range(MATES)]
    # ...so each request ran alone, and only the bad one failed
    assert sorted(alone) == [[float(i)] for i in range(MATES)]


def test_a_poisoned_request_alone_gets_500_and_the_server_carries_on(server):
    response = server.post("/predict", json=[[1.0, POISON]])
    _assert_error(response, 500, "model_error", "ValueError", "poisoned row")

    response = server.post("/predict", json=[[1.0, 2.0]])
    assert response.status_code == 200
    assert response.json() == [[3.0, 6.0]]


def test_invalid_input_raised_by_a_plain_api_is_a_422(server):
    response = server.post("/check", json={"n": -3})
    _assert_error(response, 422, "invalid_input", "n must be >= 0, got -3")

    assert server.post("/check", json={"n": 3}).json() == 4
