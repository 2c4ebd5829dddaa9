"""Streaming benchmark: many concurrent SSE streams through modelbundle, beside bare Starlette.

Both servers stream the same bytes: an async generator that waits ``--interval-ms``
before each of ``--items`` items (``data: <i>``), then ``event: end``. modelbundle
serves it as a streaming ``@api``; the floor is a bare Starlette ``StreamingResponse``
over the same generator. Each runs in its own uvicorn process on 127.0.0.1 with the
same settings (loop and http "auto", no access log); they are measured in turn,
``--rounds`` times each. The client (this process, raw asyncio sockets: lighter than any HTTP
library, so the servers are what is measured) opens ``--streams`` streams at once and
records each one's time to first item and the items received.

Prints items/s and time-to-first-item p50/p99 per server and round, the median of each
figure over the rounds, and the floors from issue 13 (>= 80% of bare Starlette's items/s, TTFI p50
within 1 ms of it). It measures, it does not gate: it always exits 0.

    .venv/bin/python bench/stream_bench.py [--streams 256] [--items 200] [--interval-ms 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
HOST = "127.0.0.1"
MODELBUNDLE, BARE = "modelbundle", "bare-starlette"
READY_TIMEOUT_S = 60.0
# the floors from the issue
MIN_SHARE_OF_BARE = 0.80
MAX_TTFI_P50_PENALTY_MS = 1.0


# -- the two servers ---------------------------------------------------------------------------
def _ticks(items: int, interval_s: float) -> AsyncIterator[str]:
    async def ticks() -> AsyncIterator[str]:
        for i in range(items):
            await asyncio.sleep(interval_s)
            yield str(i)

    return ticks()


def modelbundle_app():  # type: ignore[no-untyped-def]
    from modelbundle import Service, api
    from modelbundle.runtime import ServeConfig, create_app

    class StreamBench(Service):
        @api
        async def ticks(self, items: int, interval_ms: float) -> AsyncIterator[str]:
            async for item in _ticks(items, interval_ms / 1000):
                yield item

    # room for every stream at once (the default --max-concurrency is below 256 on some machines)
    return create_app(StreamBench, ServeConfig(max_concurrency=100_000, access_log=False))


def bare_app():  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    async def ticks(request: Request) -> StreamingResponse:
        body = await request.json()

        async def events() -> AsyncIterator[bytes]:
            count = 0
            async for item in _ticks(body["items"], body["interval_ms"] / 1000):
                count += 1
                yield f"data: {item}\n\n".encode()
            yield b'event: end\ndata: {"items":%d}\n\n' % count

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream; charset=utf-8", headers=headers)

    async def readyz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ready"})

    return Starlette(routes=[Route("/ticks", ticks, methods=["POST"]), Route("/readyz", readyz, methods=["GET"])])


def serve(kind: str, port: int) -> None:
    import uvicorn

    app = modelbundle_app() if kind == MODELBUNDLE else bare_app()
    uvicorn.run(app, host=HOST, port=port, access_log=False, log_level="warning", backlog=4096)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(kind: str) -> Iterator[int]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port)])
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the {kind} server did not start")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the client --------------------------------------------------------------------------------
@dataclass
class Round:
    server: str
    round: int
    streams: int
    items: int
    seconds: float
    items_per_s: float
    ttfi_p50_ms: float
    ttfi_p99_ms: float


async def _one_stream(port: int, request: bytes) -> tuple[float, int]:
    """(seconds to the first item, items received) of one stream."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(request)
    first = 0.0
    received = bytearray()
    while chunk := await reader.read(65536):
        if not first and b"data: " in chunk:
            first = time.perf_counter() - started
        received += chunk
    writer.close()
    # every event has one data line; the last one is the end event
    return first, received.count(b"data: ") - 1


async def _run_round(port: int, streams: int, items: int, interval_ms: float) -> tuple[float, list[float], list[int]]:
    body = json.dumps({"items": items, "interval_ms": interval_ms}).encode()
    request = (
        f"POST /ticks HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: text/event-stream\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    started = time.perf_counter()
    results = await asyncio.gather(*(_one_stream(port, request) for _ in range(streams)))
    seconds = time.perf_counter() - started
    return seconds, [r[0] for r in results], [r[1] for r in results]


def _run(coroutine):  # type: ignore[no-untyped-def]
    """On uvloop when it is installed (as the servers are): the client then costs the machine less."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def measure(kind: str, port: int, round_: int, args: argparse.Namespace) -> Round:
    seconds, ttfis, counts = _run(_run_round(port, args.streams, args.items, args.interval_ms))
    if any(count != args.items for count in counts):
        raise SystemExit(f"{kind}: some streams were short: {sorted(set(counts))}")
    ttfis_ms = sorted(t * 1000 for t in ttfis)
    total = sum(counts)
    return Round(
        kind, round_, args.streams, total, seconds, total / seconds,
        statistics.median(ttfis_ms), ttfis_ms[min(len(ttfis_ms) - 1, int(len(ttfis_ms) * 0.99))],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=256)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--interval-ms", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", choices=(MODELBUNDLE, BARE), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return

    rounds: list[Round] = []
    # both servers up at once (the idle one costs nothing) and rounds taken in turn, so that
    # other load on the machine falls on both alike
    with running(BARE) as bare_port, running(MODELBUNDLE) as our_port:
        ports = {BARE: bare_port, MODELBUNDLE: our_port}
        warm_up = argparse.Namespace(**{**vars(args), "streams": 16, "items": 20})
        for kind, port in ports.items():
            measure(kind, port, 0, warm_up)
        for i in range(1, args.rounds + 1):
            for kind, port in ports.items():
                result = measure(kind, port, i, args)
                rounds.append(result)
                print(
                    f"{kind:>15} round {i}: {result.items_per_s:9.0f} items/s  "
                    f"TTFI p50 {result.ttfi_p50_ms:6.2f} ms  p99 {result.ttfi_p99_ms:6.2f} ms  ({result.seconds:.2f} s)",
                    flush=True,
                )

    def medians(kind: str) -> Round:
        # each figure's median over the rounds: the machine's other load moves single rounds a lot
        of_kind = [r for r in rounds if r.server == kind]
        return Round(
            kind, 0, args.streams, of_kind[0].items, statistics.median(r.seconds for r in of_kind),
            statistics.median(r.items_per_s for r in of_kind),
            statistics.median(r.ttfi_p50_ms for r in of_kind), statistics.median(r.ttfi_p99_ms for r in of_kind),
        )

    ours, bare = medians(MODELBUNDLE), medians(BARE)
    share = ours.items_per_s / bare.items_per_s
    penalty = ours.ttfi_p50_ms - bare.ttfi_p50_ms
    print(f"\n{args.streams} streams x {args.items} items, {args.interval_ms:g} ms apart (medians over the rounds):")
    for r in (bare, ours):
        print(f"  {r.server:>15}: {r.items_per_s:9.0f} items/s  TTFI p50 {r.ttfi_p50_ms:6.2f} ms  p99 {r.ttfi_p99_ms:6.2f} ms")
    print(f"  items/s: {share:.0%} of bare Starlette (floor {MIN_SHARE_OF_BARE:.0%}): {'ok' if share >= MIN_SHARE_OF_BARE else 'MISSED'}")
    print(
        f"  TTFI p50: {penalty:+.2f} ms against bare Starlette (floor +{MAX_TTFI_P50_PENALTY_MS:g} ms): "
        f"{'ok' if penalty <= MAX_TTFI_P50_PENALTY_MS else 'MISSED'}"
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "stream_bench.json").write_text(json.dumps([asdict(r) for r in rounds], indent=2) + "\n")


if __name__ == "__main__":
    main()
