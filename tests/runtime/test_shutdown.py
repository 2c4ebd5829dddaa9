"""SIGTERM under load: every accepted request gets its full answer, new connections are
refused at once (not left hanging), and the server exits 0."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest

REQUESTS = 80


async def _until_all_accepted(server, count: int) -> None:
    """Wait until every request has reached the app (answered or in flight), and some are in flight."""
    deadline = asyncio.get_running_loop().time() + 30.0
    while True:
        scrape = await asyncio.to_thread(server.scrape)
        in_flight = scrape.value("modelbundle_in_flight_requests", api="predict")
        answered = scrape.value("modelbundle_requests_total", api="predict")
        if in_flight + answered >= count:
            # the model does 4 rows per 0.2 s, so most are still waiting: the drain is real
            assert in_flight > 0
            return
        assert asyncio.get_running_loop().time() < deadline, f"only {in_flight + answered} requests arrived"
        await asyncio.sleep(0.02)


async def _until_refused(url: str) -> None:
    """Poll with fresh connections until one is refused; a try that hangs fails the test."""
    deadline = asyncio.get_running_loop().time() + 30.0
    while asyncio.get_running_loop().time() < deadline:
        try:
            # shorter than the drain (4 s): a connection queued for no one would time out here; longer
            # than a SYN's first retry (1 s), which a try made as the listener stops may need
            async with httpx.AsyncClient(timeout=2.5) as client:
                await client.get(url + "/livez")  # answered: the signal is not handled yet
        except httpx.ConnectError:
            return
        except httpx.TimeoutException:
            pytest.fail("a connection made after SIGTERM hung instead of being refused")
        except httpx.TransportError:
            pass  # reset: it raced a worker closing its listener; try again
        await asyncio.sleep(0.02)
    pytest.fail("new connections were still accepted 30 s after SIGTERM")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_under_load_answers_every_accepted_request_and_exits_0(serve_in_subprocess, workers):
    with serve_in_subprocess("slow.py:Slow", "--workers", workers) as server:

        async def run() -> list[httpx.Response]:
            async with server.async_client(REQUESTS) as client:
                requests = [asyncio.create_task(client.post("/predict", json=[[i]])) for i in range(REQUESTS)]
                try:
                    await _until_all_accepted(server, REQUESTS)
                    server.proc.send_signal(signal.SIGTERM)
                    await _until_refused(server.url)
                    assert not all(task.done() for task in requests), "nothing was left to drain"
                    return await asyncio.gather(*requests)
                finally:
                    for task in requests:
                        task.cancel()
                    await asyncio.gather(*requests, return_exceptions=True)

        responses = asyncio.run(run())

        for i, response in enumerate(responses):
            assert response.status_code == 200, response.text
            assert response.json() == [[10 * i]]
        assert server.wait() == 0, server.stderr
        assert "Traceback" not in server.stderr
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/livez", timeout=5.0)
