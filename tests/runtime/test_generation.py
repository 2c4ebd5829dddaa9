"""Step batching on a live service: generations join the running batch, leave when done or gone.

The service (tests/fixtures/services/counting_lm.py) records the rows of every step call;
tests read them back over ``POST /recorded`` and count rows, never time.
"""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from tests.fixtures.services.counting_lm import CountingLM

from modelbundle.runtime import ServeConfig


@pytest.fixture(scope="module")
def server(serve_in_thread):
    with serve_in_thread(CountingLM, ServeConfig(log_level="warning")) as running:
        yield running


def _steps(server, since: int = 0) -> list[list[str]]:
    return server.post("/recorded", json={"since": since}).json()


def _stream_body(prompt: str, max_tokens: int = 100_000) -> dict:
    return {"model": "counting", "prompt": prompt, "max_tokens": max_tokens, "stream": True}


async def _tokens(lines, count: int) -> list[str]:
    """Read ``count`` text chunks of an open completions stream."""
    texts = []
    async for line in lines:
        if line.startswith("data: {"):
            texts.append(json.loads(line[6:])["choices"][0]["text"])
            if len(texts) == count:
                return texts
    raise AssertionError(f"the stream ended after {len(texts)} chunks")


def test_a_new_request_joins_the_running_batch_and_a_short_one_ends_first(server) -> None:
    async def run() -> None:
        async with server.async_client() as client, client.stream("POST", "/v1/completions", json=_stream_body("forever")) as long:
            long_lines = long.aiter_lines()
            await _tokens(long_lines, 2)  # the long generation is running
            since = len(_steps(server))
            short = await client.post("/v1/completions", json={"model": "counting", "prompt": "count 3"})
            assert short.json()["choices"][0]["text"] == " 1 2 3"
            # the short answer is complete while the long stream still goes on
            assert await _tokens(long_lines, 3) == [" x"] * 3
            joined = [rows for rows in _steps(server, since) if "count 3" in rows]
            assert joined and all(sorted(rows) == ["count 3", "forever"] for rows in joined)

    asyncio.run(run())
    scrape = server.scrape()
    # shared steps show in the histogram: more sequences than steps
    assert scrape.value("modelbundle_step_batch_size_sum", model="counting") > scrape.value("modelbundle_step_batch_size_count", model="counting")


def test_concurrent_streams_share_steps(server) -> None:
    since = len(_steps(server))
    bodies = [{"model": "counting", "prompt": "count 20", "max_tokens": 100} for _ in range(6)]
    responses = server.post_concurrently("/v1/completions", bodies)
    assert [r.json()["choices"][0]["text"] for r in responses] == [" " + " ".join(str(i) for i in range(1, 21))] * 6
    steps = _steps(server, since)
    assert max(len(rows) for rows in steps) > 1
    assert sum(len(rows) for rows in steps) == 6 * 21  # 20 tokens and the step that ends each


def test_a_client_that_disconnects_leaves_the_batch(server) -> None:
    async def run() -> None:
        async with server.async_client() as client, client.stream("POST", "/v1/completions", json=_stream_body("count 100000")) as staying:
            staying_lines = staying.aiter_lines()
            await _tokens(staying_lines, 1)
            async with client.stream("POST", "/v1/completions", json=_stream_body("forever")) as leaving:
                await _tokens(leaving.aiter_lines(), 2)
                since = len(_steps(server))
            # the leaving client is gone; the staying stream keeps getting tokens, and once the
            # departure is seen, no later step carries the departed sequence
            for _ in range(200):
                await _tokens(staying_lines, 1)
                steps = _steps(server, since)
                without = [i for i, rows in enumerate(steps) if rows == ["count 100000"]]
                if without:
                    break
            assert without, "the departed sequence was still in every step"
            assert all("forever" not in rows for rows in steps[without[0] :])
            left_with = sum("forever" in rows for rows in steps)
            assert left_with <= 2  # the step running when it left, and at most the next one already built

    asyncio.run(run())
    scrape = server.scrape()
    assert scrape.value("modelbundle_cancelled_requests_total", api="v1/completions") >= 1


def test_active_generations_return_to_zero(server) -> None:
    server.post("/v1/completions", json={"model": "counting", "prompt": "count 2"})
    assert server.scrape().value("modelbundle_active_generations", model="counting") == 0


def test_without_step_batching_each_step_carries_one_sequence(serve_in_thread) -> None:
    with serve_in_thread(CountingLM, ServeConfig(log_level="warning", step_batching=False)) as alone:
        bodies = [{"model": "counting", "prompt": "count 5"} for _ in range(4)]
        responses = alone.post_concurrently("/v1/completions", bodies)
        assert all(r.json()["choices"][0]["text"] == " 1 2 3 4 5" for r in responses)
        steps = alone.post("/recorded", json={}).json()
        assert steps and all(len(rows) == 1 for rows in steps)
        assert len(steps) == 4 * 6


def test_the_official_client_streams_while_another_generation_runs(server) -> None:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0) as client:
        long = client.completions.create(model="counting", prompt="forever", max_tokens=100_000, stream=True)
        first = next(iter(long))
        assert first.choices[0].text == " x"
        short = list(client.chat.completions.create(model="counting", messages=[{"role": "user", "content": "count 2"}], stream=True))
        assert short[-1].choices[0].finish_reason == "stop"
        assert next(iter(long)).choices[0].text == " x"  # still running after the short one ended
        long.close()


