"""`bundle serve --workers 2`: ready only when both are, both serve, metrics sum over both, a dead worker is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx


def _pids_of_overlapping_requests(server) -> set[int]:
    """Two requests, the second sent while the first blocks its worker's event loop.

    The blocked worker cannot accept, so the second request must go to the other one.
    """

    async def run() -> set[int]:
        async with server.async_client(2) as client:
            first = asyncio.create_task(client.post("/pid", json={"hold": 0.5}))
            await asyncio.sleep(0.15)
            second = await client.post("/pid", json={"hold": 0})
            return {(await first).json(), second.json()}

    return asyncio.run(run())


def test_two_workers_are_ready_together_serve_both_and_share_metrics(serve_in_subprocess, tmp_path):
    env = {"MODELBUNDLE_TEST_DIR": str(tmp_path)}
    with serve_in_subprocess("whoami.py:WhoAmI", "--workers", "2", env=env, ready=False) as server:
        url = server.wait_for_port()
        readiness = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.proc.poll() is None:
            try:
                response = httpx.get(url + "/readyz", timeout=1.0)
            except httpx.TransportError:  # no worker has finished setup() yet
                time.sleep(0.05)
                continue
            readiness.append((response.status_code, response.json()["status"], len(list(tmp_path.glob("ready-*")))))
            if response.status_code == 200:
                break
            time.sleep(0.05)

        # the first worker up says it waits for the other (in setup() for 1 s more)...
        assert (503, "waiting for other workers", 1) in readiness, readiness
        # ...and the first 200 comes once both have finished setup()
        assert readiness[-1] == (200, "ready", 2), readiness

        pids: set[int] = set()
        sent = 0
        while len(pids) < 2 and sent < 20:
            pids |= _pids_of_overlapping_requests(server)
            sent += 2
        assert len(pids) == 2
        assert {int(path.name.split("-")[1]) for path in tmp_path.glob("ready-*")} == pids

        with server.client() as client:
            for _ in range(10):
                assert client.post("/pid", json={"hold": 0}).status_code == 200
        sent += 10
        # each scrape lands on either worker; each must count the requests of both
        for _ in range(6):
            scrape = server.scrape()
            assert scrape.value("modelbundle_requests_total", api="pid", status="200") == sent
            assert scrape.value("modelbundle_request_duration_seconds_count", api="pid") == sent

        assert server.stop() == 0


def _two_pids(server) -> set[int]:
    pids: set[int] = set()
    for _ in range(10):
        pids |= _pids_of_overlapping_requests(server)
        if len(pids) == 2:
            break
    assert len(pids) == 2
    return pids


def test_a_worker_that_dies_is_replaced(serve_in_subprocess, tmp_path):
    env = {"MODELBUNDLE_TEST_DIR": str(tmp_path)}
    with serve_in_subprocess("whoami.py:WhoAmI", "--workers", "2", env=env) as server:
        victim, survivor = sorted(_two_pids(server))

        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while f"(pid {victim}) died" not in server.stderr:
            assert time.monotonic() < deadline, server.stderr
            time.sleep(0.05)
        server.wait_ready()

        pids = _two_pids(server)
        assert survivor in pids and victim not in pids
        (replacement,) = pids - {survivor}
        assert (tmp_path / f"ready-{replacement}").exists()  # it ran setup() before serving
        assert server.post("/pid", json={"hold": 0}).status_code == 200
        assert server.stop() == 0
