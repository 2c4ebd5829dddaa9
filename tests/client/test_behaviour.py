"""What the clients do around a call: retry a 503 as its Retry-After says (and no more often than
allowed), stream items and a stream's failure, and refuse what a server does not serve."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from fixtures.services.jobs import Jobs
from fixtures.services.setup_gate import SetupGate
from fixtures.services.streams import Point, Streams
from modelbundle import AsyncClient, Client
from modelbundle.client import RetryPolicy
from modelbundle.errors import InvalidInput, JobNotFinished, ModelError, Overloaded
from modelbundle.runtime import ServeConfig


class _Seen(logging.Handler):
    """Collects the client's retry messages and tells the test when the first arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.first = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.first.set()


def test_a_503_is_retried_after_its_retry_after_until_the_server_is_ready(tmp_path: Path, serve_in_subprocess: Any) -> None:
    gate = tmp_path / "gate"
    # --sagemaker: the server accepts connections while setup() runs (SageMaker pings it), so an API
    # called before it is ready answers 503 at once instead of waiting in the listen backlog
    target = "setup_gate.py:SetupGate"
    with serve_in_subprocess(target, "--sagemaker", env={"SETUP_GATE": str(gate)}, ready=False) as server:
        server.wait_for_port()
        raw = server.post("/double", json={"n": 1})
        assert raw.status_code == 503 and raw.headers["retry-after"] == "1"  # what the server does while not ready

        # no retries allowed: the server's 503 as the error tree's exception, at once
        with Client(server.url, service=SetupGate, retry=RetryPolicy(retries=0)) as client, pytest.raises(Overloaded, match="not ready"):
            client.double(1)

        seen = _Seen()
        logger = logging.getLogger("modelbundle.client")
        logger.addHandler(seen)
        logger.setLevel(logging.INFO)
        answers: list[Any] = []
        try:
            with Client(server.url, service=SetupGate, retry=RetryPolicy(retries=1000, backoff=0.01)) as client:
                caller = threading.Thread(target=lambda: answers.append(client.double(21)))
                caller.start()
                assert seen.first.wait(60), "the client never saw a 503"
                gate.touch()  # now setup() finishes and the server becomes ready
                caller.join(120)
        finally:
            logger.removeHandler(seen)
        assert answers == [42]
        # the pause is the server's Retry-After (1 s), not the policy's own backoff (0.01 s)
        assert seen.messages and all(m.endswith("not ready); retrying in 1.0 s") for m in seen.messages), seen.messages


def test_the_pause_is_bounded_and_an_http_date_is_understood() -> None:
    policy = RetryPolicy(max_wait=5.0, backoff=0.25)
    assert policy.delay(0, "120") == 5.0
    assert policy.delay(0, "2") == 2.0
    assert policy.delay(2, None) == 1.0  # 0.25 doubled twice
    assert policy.delay(0, "Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: at once
    assert policy.delay(1, "soon") == 0.5  # not a Retry-After: the backoff


@pytest.fixture(scope="module")
def streams(serve_in_thread: Any) -> Any:
    with serve_in_thread(Streams, ServeConfig(log_level="critical")) as server:
        yield server


def test_streams_yield_items_and_raise_the_failure_that_ends_them(streams: Any) -> None:
    with Client(streams.url) as client:
        assert list(client.points(3)) == [{"x": i, "label": f"p{i}"} for i in range(3)]
        assert list(client.lines(["a\nb", "", "c"])) == ["a\nb", "", "c"]
        assert list(client.empty(1)) == []
        items = client.fails_at(2)
        assert [next(items), next(items)] == [0, 1]
        with pytest.raises(ModelError, match="fails_at raised"):
            next(items)
        with pytest.raises(InvalidInput, match="n must not be negative"):
            list(client.refuses(-1))  # refused before the stream began: a plain 422
        with pytest.raises(TypeError, match="points\\(\\): missing a required argument: 'n'"):
            client.points()  # a Python mistake, caught before anything is sent
        with pytest.raises(AttributeError, match=r"serves no API 'nothing'; its APIs are .*points"):
            client.nothing(1)
    with Client(streams.url, service=Streams) as client:
        assert list(client.points(2)) == [Point(x=0, label="p0"), Point(x=1, label="p1")]

    async def through_async_client() -> None:
        async with AsyncClient(streams.url, service=Streams) as client:
            assert [p async for p in client.points(2)] == [Point(x=0, label="p0"), Point(x=1, label="p1")]
            got = []
            with pytest.raises(ModelError):
                async for item in client.fails_at(1):
                    got.append(item)
            assert got == [0]
            with pytest.raises(TypeError, match="streams its answer"):
                await client.count(3)

    asyncio.run(through_async_client())


def test_jobs_through_both_clients_succeed_fail_and_are_found_again(serve_in_thread: Any, tmp_path: Path) -> None:
    config = ServeConfig(log_level="critical", jobs_dir=str(tmp_path / "jobs"))
    with serve_in_thread(Jobs, config) as server:
        with Client(server.url) as client:
            job = client.submit("echo", "hello")
            assert job.wait(timeout=60) == "hello"
            assert client.job("echo", job.id).result() == "hello"  # the same job, by its id
            failing = client.submit("refuse", 3)
            with pytest.raises(ModelError, match="cannot do 3"):
                failing.wait(timeout=60)
            assert failing.status()["status"] == "failed"
            with pytest.raises(InvalidInput, match="must not be negative"):
                client.submit("refuse", -1).wait(timeout=60)  # the API's own InvalidInput, raised as the job ran
            with pytest.raises(InvalidInput, match="n: Input should be a valid integer"):
                client.submit("refuse", "x")  # refused at submit by the API's decoder: never queued
            held = client.submit("steps", 4)
            with pytest.raises(JobNotFinished):
                held.result()
            server.service.gate.set()
            assert held.wait(timeout=60) == 8

        async def through_async_client() -> None:
            async with AsyncClient(server.url) as client:
                job = await client.submit("double", [1.5, 2.0])
                assert await job.wait(timeout=60) == [3.0, 4.0]
                assert (await job.status())["status"] == "succeeded"

        asyncio.run(through_async_client())
