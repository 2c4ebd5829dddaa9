"""OpenAI-compatible serving benchmark: the tinylm example with step batching on and off.

Two ``bundle serve bench/tinylm_endless.py:EndlessTinyLM`` processes on 127.0.0.1 (the
tinylm example's model and step, with texts that never end before ``max_tokens``), the
same service and settings except that one runs with ``--no-step-batching`` (each model
step then advances one generation); both with a per-step overhead of ``--overhead-ms``
(``TINYLM_STEP_OVERHEAD_MS``, like a real model's per-call dispatch). They are measured in
turn, ``--rounds`` times each, by this process as the client (raw asyncio sockets, one
connection per stream), in two phases:

- **uniform**: ``--streams`` concurrent streaming chat requests of ``--tokens`` tokens each:
  tokens/s and time to first token p50/p99;
- **mixed**: the same number of streams at once, a quarter of them short (``--short-tokens``)
  and the rest long: no short stream may take, from its first token to its end, as long as
  a long one does, i.e. no stream waits for a longer one to finish.

Prints each round, the medians over the rounds, the mean step batch size from each
server's ``/metrics``, and the floors from issue 14 (step batching >= 10x the tokens/s,
and no short stream waiting for a long one). It measures, it does not gate: it always
exits 0. Writes ``bench/results/openai_bench.json``.

    .venv/bin/python bench/openai_bench.py [--streams 64] [--tokens 64] [--overhead-ms 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
EXAMPLE = REPO_ROOT / "examples" / "tinylm"
# the example with a walk that never ends by itself, so every stream is max_tokens long (see the module)
TARGET = "bench/tinylm_endless.py:EndlessTinyLM"
HOST = "127.0.0.1"
BATCHED, UNBATCHED = "step-batching", "no-step-batching"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 40.0  # above the server's 30 s graceful timeout
# the floor from the issue
MIN_SPEEDUP = 10.0
PROMPTS = ("the", "a model", "once upon a time", "in the beginning", "we", "it was", "and then", "of the")


# -- servers ---------------------------------------------------------------------------------
def bundle_executable() -> str:
    # the console script of the venv running this file, so both use the same install
    beside_python = Path(sys.executable).with_name("bundle")
    found = str(beside_python) if beside_python.exists() else shutil.which("bundle")
    if found is None:
        sys.exit("cannot find the `bundle` command; run this with the project's venv python")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def ensure_trained() -> None:
    """train.py writes the example's artifacts beside it; run it once when they are missing."""
    if not any(EXAMPLE.glob("*.json")) and not any(EXAMPLE.glob("*.npz")):
        subprocess.run([sys.executable, str(EXAMPLE / "train.py")], cwd=REPO_ROOT, check=True)


@contextmanager
def running(server: str, overhead_ms: float, streams: int) -> Iterator[str]:
    """Serve TinyLM (step batching on or off), yield its base URL once ready, then SIGTERM it."""
    port = free_port()
    command = [
        bundle_executable(), "serve", TARGET, "--host", HOST, "--port", str(port),
        # room for every stream at once (the default is below 64 on a small machine)
        "--max-concurrency", str(max(streams * 2, 64)), "--no-access-log", "--log-level", "warning",
    ]
    if server == UNBATCHED:
        command.append("--no-step-batching")
    env = {**os.environ, "TINYLM_STEP_OVERHEAD_MS": f"{overhead_ms:g}"}
    RESULTS_DIR.mkdir(exist_ok=True)
    log_path = RESULTS_DIR / f"openai-{server}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://{HOST}:{port}"
            deadline = time.monotonic() + READY_TIMEOUT_S
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the {server} server did not start; see {log_path}")
                time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def step_batch_totals(url: str) -> tuple[float, float]:
    """(rows, step calls) so far, from the step batch size histogram on /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    rows = calls = 0.0
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if "step_batch_size_sum" in name:
            rows += float(value)
        elif "step_batch_size_count" in name:
            calls += float(value)
    return rows, calls


# -- the client ------------------------------------------------------------------------------
#: a chunk whose delta carries text (orjson writes no spaces); the first one is the first token
CONTENT = re.compile(rb'"content":"(?!")')


@dataclass
class Stream:
    max_tokens: int
    ttft_s: float  # from sending the request to the first token's chunk
    first_s: float  # from the start of the round to the first token
    end_s: float  # from the start of the round to the end of the stream
    tokens: int  # content chunks received


def dechunk(body: bytes) -> bytes:
    """The payload of an HTTP/1.1 chunked body."""
    out, at = bytearray(), 0
    while True:
        line_end = body.index(b"\r\n", at)
        size = int(body[at:line_end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += body[line_end + 2 : line_end + 2 + size]
        at = line_end + 2 + size + 2


def content_chunks(payload: bytes) -> int:
    """How many SSE events carry text, up to ``data: [DONE]``."""
    count = 0
    for event in payload.split(b"\n\n"):
        if not event.startswith(b"data: ") or event == b"data: [DONE]":
            continue
        chunk = json.loads(event[6:])
        count += sum(1 for choice in chunk.get("choices") or [] if (choice.get("delta") or {}).get("content"))
    return count


async def one_stream(port: int, prompt: str, max_tokens: int, seed: int, round_start: float) -> Stream:
    """One streaming chat completion on a connection of its own (raw asyncio: lighter than any HTTP
    library, so the server is what is measured; httpx's pool took longer than the server did to
    start 64 streams on this machine)."""
    body = json.dumps({
        "model": "tinylm", "messages": [{"role": "user", "content": prompt}], "stream": True,
        "max_tokens": max_tokens, "seed": seed, "temperature": 1.0,
    }).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(request)
    first = 0.0
    received = bytearray()
    while chunk := await reader.read(65536):
        received += chunk
        if not first and CONTENT.search(received, max(0, len(received) - len(chunk) - 16)):
            first = time.perf_counter()
    ended = time.perf_counter()
    writer.close()
    head, _, payload = bytes(received).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"chat completion failed: {bytes(received)[:300]!r}")
    if b"transfer-encoding: chunked" in head.lower():
        payload = dechunk(payload)
    return Stream(max_tokens, first - started, first - round_start, ended - round_start, content_chunks(payload))


async def run_round(port: int, lengths: list[int]) -> tuple[float, list[Stream]]:
    started = time.perf_counter()
    streams = await asyncio.gather(*(
        one_stream(port, PROMPTS[i % len(PROMPTS)], n, i, started) for i, n in enumerate(lengths)
    ))
    return time.perf_counter() - started, list(streams)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


@dataclass
class Round:
    server: str
    round: int
    streams: int
    tokens: int
    seconds: float
    tokens_per_s: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    mean_step_batch: float
    # the mixed phase: the longest a short stream took from its first token to its end, and the
    # shortest a long one took (a short stream that waited for long ones would take as long);
    # and when, from the start, the last short stream and the first long one ended
    short_span_max_ms: float
    long_span_min_ms: float
    short_last_end_ms: float
    long_first_end_ms: float


async def measure(server: str, url: str, number: int, args: argparse.Namespace) -> Round:
    port = int(url.rsplit(":", 1)[1])
    rows_before, calls_before = await asyncio.to_thread(step_batch_totals, url)
    seconds, streams = await run_round(port, [args.tokens] * args.streams)
    rows_after, calls_after = await asyncio.to_thread(step_batch_totals, url)
    if any(s.tokens != args.tokens for s in streams):
        raise SystemExit(f"{server}: streams of {sorted({s.tokens for s in streams})} tokens, not {args.tokens} each")
    tokens = sum(s.tokens for s in streams)
    ttfts = [s.ttft_s * 1000 for s in streams]

    shorts = args.streams // 4
    mixed_lengths = [args.short_tokens if i % 4 == 0 else args.tokens for i in range(args.streams)]
    _, mixed = await run_round(port, mixed_lengths)
    short = [s for s, n in zip(mixed, mixed_lengths, strict=True) if n == args.short_tokens]
    long = [s for s, n in zip(mixed, mixed_lengths, strict=True) if n != args.short_tokens]
    assert len(short) == shorts
    calls = calls_after - calls_before
    return Round(
        server, number, args.streams, tokens, seconds, tokens / seconds,
        percentile(ttfts, 0.5), percentile(ttfts, 0.99),
        (rows_after - rows_before) / calls if calls else float("nan"),
        max(s.end_s - s.first_s for s in short) * 1000, min(s.end_s - s.first_s for s in long) * 1000,
        max(s.end_s for s in short) * 1000, min(s.end_s for s in long) * 1000,
    )


async def measure_all(urls: dict[str, str], args: argparse.Namespace, rounds: list[Round]) -> None:
    for url in urls.values():  # warm-up: imports, first steps
        await run_round(int(url.rsplit(":", 1)[1]), [2] * args.streams)
    for number in range(1, args.rounds + 1):
        for server, url in urls.items():
            r = await measure(server, url, number, args)
            rounds.append(r)
            print(
                f"{server:>17} round {number}: {r.tokens_per_s:8.0f} tokens/s  TTFT p50 {r.ttft_p50_ms:7.1f} ms  "
                f"p99 {r.ttft_p99_ms:7.1f} ms  step batch {r.mean_step_batch:5.1f}  ({r.tokens} tokens in {r.seconds:.2f} s); "
                f"mixed: short streams took {r.short_span_max_ms:5.0f} ms at most, long ones {r.long_span_min_ms:5.0f} ms at least "
                f"(last short end {r.short_last_end_ms:5.0f} ms, first long end {r.long_first_end_ms:5.0f} ms)",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=64, help="max_tokens of each (long) stream")
    parser.add_argument("--short-tokens", type=int, default=8, help="max_tokens of the mixed phase's short streams")
    parser.add_argument("--overhead-ms", type=float, default=2.0, help="TINYLM_STEP_OVERHEAD_MS")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ensure_trained()

    rounds: list[Round] = []
    # both servers up at once (the idle one costs nothing) and rounds taken in turn, so that
    # other load on the machine falls on both alike
    with running(BATCHED, args.overhead_ms, args.streams) as on, running(UNBATCHED, args.overhead_ms, args.streams) as off:
        asyncio.run(measure_all({BATCHED: on, UNBATCHED: off}, args, rounds))

    def medians(server: str) -> Round:
        # each figure's median over the rounds: the machine's other load moves single rounds a lot
        mine = [r for r in rounds if r.server == server]

        def med(field: str) -> float:
            return float(statistics.median(getattr(r, field) for r in mine))

        return Round(
            server, 0, args.streams, mine[0].tokens, med("seconds"), med("tokens_per_s"), med("ttft_p50_ms"),
            med("ttft_p99_ms"), med("mean_step_batch"), med("short_span_max_ms"), med("long_span_min_ms"),
            med("short_last_end_ms"), med("long_first_end_ms"),
        )

    on_r, off_r = medians(BATCHED), medians(UNBATCHED)
    speedup = on_r.tokens_per_s / off_r.tokens_per_s
    print(
        f"\n{args.streams} concurrent streaming chat requests x {args.tokens} tokens, step overhead "
        f"{args.overhead_ms:g} ms (medians over {args.rounds} rounds):"
    )
    for r in (on_r, off_r):
        print(
            f"  {r.server:>17}: {r.tokens_per_s:8.0f} tokens/s  TTFT p50 {r.ttft_p50_ms:7.1f} ms  p99 {r.ttft_p99_ms:7.1f} ms  "
            f"mean step batch {r.mean_step_batch:5.1f}"
        )
    print(f"  tokens/s with step batching: {speedup:.1f}x without (floor {MIN_SPEEDUP:g}x): {'ok' if speedup >= MIN_SPEEDUP else 'MISSED'}")
    # every round, not the median: one short stream held back by a long one is a miss
    held = [r for r in rounds if r.server == BATCHED and r.short_span_max_ms >= r.long_span_min_ms]
    print(
        f"  mixed ({args.streams // 4} streams of {args.short_tokens} tokens among {args.streams - args.streams // 4} of "
        f"{args.tokens}), step batching: a short stream took {on_r.short_span_max_ms:.0f} ms at most from its first "
        f"token to its end, a long one {on_r.long_span_min_ms:.0f} ms at least; the last short stream ended "
        f"{on_r.short_last_end_ms:.0f} ms into the round, the first long one {on_r.long_first_end_ms:.0f} ms: "
        f"{'ok' if not held else f'MISSED in {len(held)} round(s)'}"
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "openai_bench.json").write_text(json.dumps([asdict(r) for r in rounds], indent=2) + "\n")


if __name__ == "__main__":
    main()
