"""Micro-batching on a real server: batches form under load, never without it, and every
caller gets exactly its own rows back."""

from __future__ import annotations

import pytest

from fixtures.services.echo import Echo, expected
from modelbundle.runtime import ServeConfig

CONCURRENCY = 120


@pytest.fixture(scope="module")
def server(serve_in_thread):
    with serve_in_thread(Echo, ServeConfig(log_level="warning")) as server:
        yield server


def _tagged_bodies(count: int) -> list[list[list[float]]]:
    # request i sends 1 to 3 rows [i, j]: distinguishable, and of different sizes
    return [[[float(i), float(j)] for j in range(1 + i % 3)] for i in range(count)]


def _batch_stats(server, api: str) -> tuple[float, float]:
    scrape = server.scrape()
    return scrape.value("modelbundle_batch_size_sum", api=api), scrape.value("modelbundle_batch_size_count", api=api)


@pytest.mark.parametrize("api", ["predict", "apredict"])
def test_concurrent_requests_are_batched_and_answered_with_their_own_rows(server, api):
    rows_before, calls_before = _batch_stats(server, api)
    seen_before = len(server.service.batches[api])
    bodies = _tagged_bodies(CONCURRENCY)

    responses = server.post_concurrently(f"/{api}", bodies)

    assert [r.status_code for r in responses] == [200] * CONCURRENCY
    for body, response in zip(bodies, responses, strict=True):
        assert response.json() == expected(body)
    rows_after, calls_after = _batch_stats(server, api)
    assert rows_after - rows_before == sum(len(b) for b in bodies)
    assert (rows_after - rows_before) / (calls_after - calls_before) > 1
    merged = [tags for tags in server.service.batches[api][seen_before:] if len(set(tags)) > 1]
    assert merged, "no model call ever held rows of more than one request"


def test_list_typed_api_is_batched_and_split_per_caller(server):
    seen_before = len(server.service.batches["shout"])
    bodies = [[f"{i}-{j}" for j in range(1 + i % 2)] for i in range(CONCURRENCY)]

    responses = server.post_concurrently("/shout", bodies)

    assert [r.status_code for r in responses] == [200] * CONCURRENCY
    for body, response in zip(bodies, responses, strict=True):
        assert response.json() == [w.upper() + "!" for w in body]
    calls = server.service.batches["shout"][seen_before:]
    assert any(len(set(tags)) > 1 for tags in calls)
    assert len(calls) < CONCURRENCY


@pytest.mark.parametrize("api", ["predict", "apredict"])
def test_sequential_requests_run_alone(server, api):
    rows_before, calls_before = _batch_stats(server, api)
    seen_before = len(server.service.batches[api])

    with server.client() as client:
        for i in range(20):
            response = client.post(f"/{api}", json=[[i, 0]])
            assert response.status_code == 200
            assert response.json() == [[2 * i, 1]]

    assert server.service.batches[api][seen_before:] == [[float(i)] for i in range(20)]
    rows_after, calls_after = _batch_stats(server, api)
    assert (rows_after - rows_before, calls_after - calls_before) == (20, 20)


def test_a_multi_row_request_is_never_split(server):
    seen_before = len(server.service.batches["predict"])
    bodies = [[[float(i), float(j)] for j in range(20)] for i in range(30)]

    responses = server.post_concurrently("/predict", bodies)

    assert all(r.status_code == 200 for r in responses)
    for body, response in zip(bodies, responses, strict=True):
        assert response.json() == expected(body)
    for tags in server.service.batches["predict"][seen_before:]:
        assert len(tags) <= 64  # max_batch_size
        for tag in set(tags):
            assert tags.count(tag) == 20
