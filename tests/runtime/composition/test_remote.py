"""The HTTP transport to a dependency served in another process (``_composition/_remote.py``)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from fixtures.servers import ProcessServer
from fixtures.services.remote_peer import Peer
from modelbundle.errors import DependencyError, DependencyTimeout, DependencyUnavailable, ServeError
from modelbundle.runtime._composition._remote import RemoteTransport
from modelbundle.runtime._composition._urls import dependency_urls, url_variable


@pytest.fixture(scope="module")
def peer(serve_in_subprocess: Callable[..., Any]) -> Iterator[ProcessServer]:
    with serve_in_subprocess("remote_peer.py:Peer") as server:
        yield server


def run(url: str, work: Callable[[RemoteTransport], Any], *, timeout: float = 30.0, request_id: str | None = None) -> Any:
    """``work(transport)`` on a fresh event loop, the transport closed afterwards."""

    async def main() -> Any:
        transport = RemoteTransport(Peer.name, Peer.__apis__, url, timeout, request_id=lambda: request_id)
        try:
            return await work(transport)
        finally:
            await transport.aclose()

    return asyncio.run(main())


def test_answers_come_back_as_the_dependencys_types_over_pooled_connections(peer: ProcessServer) -> None:
    rows = [np.array([[i, i + 0.5]], dtype=np.float32) for i in range(64)]

    async def work(transport: RemoteTransport) -> list[Any]:
        return list(await asyncio.gather(*(transport.call("double", {"x": row}) for row in rows)))

    answers = run(peer.url, work)
    for row, answer in zip(rows, answers, strict=True):
        assert isinstance(answer, np.ndarray) and answer.dtype == np.float32
        np.testing.assert_array_equal(answer, row * 2)


def test_a_stream_is_read_item_by_item(peer: ProcessServer) -> None:
    async def work(transport: RemoteTransport) -> list[int]:
        items = await transport.stream("count", {"n": 4})
        return [item async for item in items]

    assert run(peer.url, work) == [0, 1, 2, 3]


def test_a_stream_that_fails_after_its_first_items_raises_after_them_naming_the_dependency(peer: ProcessServer) -> None:
    received: list[int] = []

    async def work(transport: RemoteTransport) -> None:
        items = await transport.stream("count", {"n": 2000, "fail_at": 1500})
        async for item in items:
            received.append(item)

    with pytest.raises(DependencyError, match=r"^dependency 'remote-peer' failed in count: .*failed at 1500") as caught:
        run(peer.url, work)
    assert caught.value.status_code == 500
    assert received == list(range(1500))  # every item before the failure, in order, across many chunks


def test_the_entry_requests_id_reaches_the_dependency(peer: ProcessServer) -> None:
    async def work(transport: RemoteTransport) -> str:
        return await transport.call("request_id", {"tag": "t"})  # type: ignore[no-any-return]

    assert run(peer.url, work, request_id="entry-req-7") == "t:entry-req-7"


def test_a_client_error_of_the_dependency_is_passed_on_with_its_status(peer: ProcessServer) -> None:
    async def work(transport: RemoteTransport) -> Any:
        return await transport.call("positive", {"n": -3})

    with pytest.raises(DependencyError) as caught:
        run(peer.url, work)
    assert caught.value.status_code == 422
    assert caught.value.dependency == "remote-peer"
    assert "remote-peer" in caught.value.message and "n must not be negative, got -3" in caught.value.message


def test_a_dependency_slower_than_the_timeout_is_a_504_naming_it(peer: ProcessServer) -> None:
    async def work(transport: RemoteTransport) -> Any:
        return await transport.call("asleep", {"seconds": 30})

    with pytest.raises(DependencyTimeout, match=r"dependency 'remote-peer' timed out after 0.5s") as caught:
        run(peer.url, work, timeout=0.5)
    assert caught.value.status_code == 504


def test_a_killed_dependency_is_a_503_naming_it_not_a_hang(serve_in_subprocess: Callable[..., Any]) -> None:
    with serve_in_subprocess("remote_peer.py:Peer") as doomed:

        async def work(transport: RemoteTransport) -> Any:
            assert await transport.ready()
            assert await transport.call("positive", {"n": 1}) == 1  # a kept-alive connection is in the pool now
            doomed.stop(signal.SIGKILL)
            assert not await transport.ready()
            return await transport.call("positive", {"n": 2})

        with pytest.raises(DependencyUnavailable, match=r"dependency 'remote-peer' is unavailable at http://127\.0\.0\.1") as caught:
            run(doomed.url, work, timeout=30.0)
    assert caught.value.status_code == 503


def test_dependency_urls_come_from_variables_named_after_the_service() -> None:
    assert url_variable("remote-peer") == "MODELBUNDLE_DEPENDENCY_REMOTE_PEER_URL"
    assert url_variable("Embedder") == "MODELBUNDLE_DEPENDENCY_EMBEDDER_URL"
    env = {"MODELBUNDLE_DEPENDENCY_EMBEDDER_URL": "http://embedder:3000/"}
    assert dependency_urls(["Embedder"], env) == {"Embedder": "http://embedder:3000"}
    with pytest.raises(ServeError, match=r"^MODELBUNDLE_DEPENDENCY_REMOTE_PEER_URL is not set: .*'remote-peer'"):
        dependency_urls(["Embedder", "remote-peer"], env)
    with pytest.raises(ServeError, match=r"MODELBUNDLE_DEPENDENCY_EMBEDDER_URL='embedder:3000' is not an http"):
        dependency_urls(["Embedder"], {"MODELBUNDLE_DEPENDENCY_EMBEDDER_URL": "embedder:3000"})
