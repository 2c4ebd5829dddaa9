"""Request heads over --max-header-size bytes or --max-headers fields get a 431, and a huge
one being sent does not slow other connections down (a real uvicorn on loopback)."""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import threading
import time

import pytest

SAMPLES = 15
#: what the issue asks of a normal request while the attack runs
MAX_LATENCY_S = 0.100
BODY = b"[[1, 2]]"



def _head(fields: list[tuple[str, str]]) -> bytes:
    """A POST /predict head with exactly Host, Connection, Content-Type, Content-Length and ``fields``."""
    lines = ["POST /predict HTTP/1.1", "Host: x", "Connection: close", "Content-Type: application/json", f"Content-Length: {len(BODY)}"]
    lines += [f"{name}: {value}" for name, value in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _exchange(address: tuple[str, int], request: bytes) -> bytes:
    """Send ``request`` whole, then read until the server closes."""
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_a_head_over_the_size_limit_gets_a_readable_431(serve_in_subprocess):
    with serve_in_subprocess("echo.py:Echo", "--max-header-size", "8KiB") as server:
        address = server.address
        fits = _exchange(address, _head([("X-Pad", "a" * 7000)]) + BODY)
        answers = {size: _exchange(address, _head([("X-Pad", "a" * size)]) + BODY) for size in (9000, 512 << 10)}
        long_url = _exchange(address, b"POST /predict?" + b"q" * 20000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _status(_exchange(address, _head([]) + BODY)) == 200  # and the server is fine
    assert _status(fits) == 200, fits[:200]
    for size, answer in [*answers.items(), ("url", long_url)]:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert _status(answer) == 431, (size, answer[:200])
        assert b"connection: close" in head.lower()
        error = json.loads(body)["error"]
        assert error["type"] == "request_header_fields_too_large"
        assert "8192 bytes (--max-header-size)" in error["message"]


def test_too_many_header_fields_get_a_431(serve_in_subprocess):
    with serve_in_subprocess("echo.py:Echo", "--max-headers", "20") as server:
        address = server.address
        # Host, Connection, Content-Type and Content-Length are four of the fields
        at_limit = _exchange(address, _head([(f"X-{i}", "v") for i in range(16)]) + BODY)
        over = _exchange(address, _head([(f"X-{i}", "v") for i in range(17)]) + BODY)
        flood = _exchange(address, _head([(f"X-{i}", "v") for i in range(100_000)]) + BODY)
    assert _status(at_limit) == 200, at_limit[:200]
    for answer in (over, flood):
        assert _status(answer) == 431, answer[:200]
        assert "more than 20 header fields (--max-headers)" in json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["message"]


def _normal_request(address: tuple[str, int]) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection(*address, timeout=30)
    try:
        conn.request("POST", "/predict", body=BODY, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    return response.status, time.perf_counter() - started


@pytest.mark.parametrize("attackers", [2])
def test_huge_heads_being_sent_do_not_slow_other_requests(serve_in_subprocess, attackers):
    """Connections each pushing a 100 MB header, again and again, while normal requests are timed."""
    chunk = b"a" * (1 << 20)
    stop = threading.Event()
    refused: list[int] = []

    def attack(address: tuple[str, int]) -> None:
        while not stop.is_set():
            with socket.create_connection(address, timeout=30) as sock:
                try:
                    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Huge: ")
                    for _ in range(100):
                        if stop.is_set():
                            return
                        sock.sendall(chunk)
                except OSError:  # refused: the server closed the connection
                    refused.append(1)

    with serve_in_subprocess("echo.py:Echo") as server:
        address = server.address
        assert _normal_request(address)[0] == 200  # warm
        threads = [threading.Thread(target=attack, args=(address,), daemon=True) for _ in range(attackers)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)  # the attack is under way
            samples = [_normal_request(address) for _ in range(SAMPLES)]
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)

    assert refused, "no huge head was refused"
    assert [status for status, _ in samples] == [200] * SAMPLES, samples
    latencies = sorted(seconds for _, seconds in samples)
    assert statistics.median(latencies) < MAX_LATENCY_S, latencies
    assert latencies[-1] < MAX_LATENCY_S, latencies
