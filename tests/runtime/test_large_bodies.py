"""Bodies above OFFLOAD_BYTES are decoded and answered off the event loop, and still come back whole."""

from __future__ import annotations

import asyncio

import numpy as np

from fixtures.services.typed import Typed
from modelbundle.runtime import ServeConfig, _endpoint


def test_a_large_json_body_takes_the_offloaded_path_and_answers_correctly(serve_in_thread, monkeypatch) -> None:
    calls: list[str] = []
    real_to_thread = asyncio.to_thread

    async def counting_to_thread(func, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(func.__name__)
        return await real_to_thread(func, *args, **kwargs)

    monkeypatch.setattr(_endpoint.asyncio, "to_thread", counting_to_thread)
    rows = np.random.default_rng(7).random((12_000, 3))  # ~700 KB of JSON
    # without jobs, whose store is also used from threads: only the requests' calls are counted
    with serve_in_thread(Typed, ServeConfig(log_level="critical", jobs=False)) as server:
        big = server.post("/rows", json={"x": rows.tolist()})
        small = server.post("/rows", json={"x": rows[:2].tolist()})
    assert big.status_code == 200, big.text
    assert np.allclose(big.json(), rows.sum(axis=1))  # the API sums each row
    assert np.allclose(small.json(), rows[:2].sum(axis=1))
    # setup() and teardown() run on threads too; of the requests, only the big one went there
    assert [c for c in calls if c not in ("setup", "teardown")] == ["decode_request", "_encode"]
