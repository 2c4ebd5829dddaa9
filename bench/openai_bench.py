"""OpenAI-compatible serving benchmark: the tinylm example with step batching on and off.

Two ``bundle serve bench/tinylm_endless.py:EndlessTinyLM`` processes on 127.0.0.1 (the
tinylm example's model and step, with texts that never end before ``max_tokens``), the
same service and settings except that one runs with ``--no-step-batching`` (each model
step then advances one generation); both with a per-step overhead of ``--overhead-ms``
(``TINYLM_STEP_OVERHEAD_MS``, like a real model's per-call dispatch). They are measured in
turn, ``--rounds`` times each, by this process as the client (httpx, one kept-alive
connection per stream), in two phases:

- **uniform**: ``--streams`` concurrent streaming chat requests of ``--tokens`` tokens each:
  tokens/s and time to first token p50/p99;
- **mixed**: the same number of streams at once, a quarter of them short (``--short-tokens``)
  and the rest long: each short stream must end before the first long one ends, i.e. no
  stream waits for a longer one (a batch leaves nobody behind once they are done).

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

import httpx

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
@dataclass
class Stream:
    max_tokens: int
    ttft_s: float  # from sending the request to the first token's chunk
    end_s: float  # from the start of the round to the stream's [DONE]
    tokens: int  # content chunks received


async def one_stream(client: httpx.AsyncClient, prompt: str, max_tokens: int, seed: int, round_start: float) -> Stream:
    body = {
        "model": "tinylm", "messages": [{"role": "user", "content": prompt}], "stream": True,
        "max_tokens": max_tokens, "seed": seed, "temperature": 1.0,
    }
    started = time.perf_counter()
    first = 0.0
    tokens = 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            raise SystemExit(f"chat completion failed: {response.status_code} {(await response.aread())[:300]!r}")
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    tokens += 1
                    if not first:
                        first = time.perf_counter() - started
    return Stream(max_tokens, first, time.perf_counter() - round_start, tokens)


async def run_round(client: httpx.AsyncClient, lengths: list[int]) -> tuple[float, list[Stream]]:
    started = time.perf_counter()
    streams = await asyncio.gather(*(
        one_stream(client, PROMPTS[i % len(PROMPTS)], n, i, started) for i, n in enumerate(lengths)
    ))
    return time.perf_counter() - started, list(streams)


def client_for(url: str, streams: int) -> httpx.AsyncClient:
    # one connection per stream, kept alive from the warm-up on: TTFT then measures the server,
    # not 64 TCP handshakes racing on a small machine
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
    return httpx.AsyncClient(base_url=url, timeout=600, limits=limits)


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
    # the mixed phase: when the last short stream ended, and the first long one
    short_last_end_ms: float
    long_first_end_ms: float
    short_tokens: int


async def measure(server: str, client: httpx.AsyncClient, number: int, args: argparse.Namespace) -> Round:
    url = str(client.base_url)
    rows_before, calls_before = await asyncio.to_thread(step_batch_totals, url)
    seconds, streams = await run_round(client, [args.tokens] * args.streams)
    rows_after, calls_after = await asyncio.to_thread(step_batch_totals, url)
    if any(s.tokens != args.tokens for s in streams):
        raise SystemExit(f"{server}: streams of {sorted({s.tokens for s in streams})} tokens, not {args.tokens} each")
    tokens = sum(s.tokens for s in streams)
    ttfts = [s.ttft_s * 1000 for s in streams if s.tokens]

    shorts = args.streams // 4
    mixed_lengths = [args.short_tokens if i % 4 == 0 else args.tokens for i in range(args.streams)]
    _, mixed = await run_round(client, mixed_lengths)
    short = [s for s, n in zip(mixed, mixed_lengths, strict=True) if n == args.short_tokens]
    long = [s for s, n in zip(mixed, mixed_lengths, strict=True) if n != args.short_tokens]
    assert len(short) == shorts
    calls = calls_after - calls_before
    return Round(
        server, number, args.streams, tokens, seconds, tokens / seconds,
        percentile(ttfts, 0.5), percentile(ttfts, 0.99),
        (rows_after - rows_before) / calls if calls else float("nan"),
        max(s.end_s for s in short) * 1000, min(s.end_s for s in long) * 1000, sum(s.tokens for s in short),
    )


async def measure_all(urls: dict[str, str], args: argparse.Namespace, rounds: list[Round]) -> None:
    clients = {server: client_for(url.rstrip("/"), args.streams) for server, url in urls.items()}
    try:
        for client in clients.values():  # warm-up: imports, first steps, and every connection opened
            await run_round(client, [2] * args.streams)
        for number in range(1, args.rounds + 1):
            for server, client in clients.items():
                r = await measure(server, client, number, args)
                rounds.append(r)
                print(
                    f"{server:>17} round {number}: {r.tokens_per_s:8.0f} tokens/s  TTFT p50 {r.ttft_p50_ms:7.1f} ms  "
                    f"p99 {r.ttft_p99_ms:7.1f} ms  step batch {r.mean_step_batch:5.1f}  ({r.tokens} tokens in {r.seconds:.2f} s); "
                    f"mixed: last short end {r.short_last_end_ms:7.0f} ms, first long end {r.long_first_end_ms:7.0f} ms",
                    flush=True,
                )
    finally:
        for client in clients.values():
            await client.aclose()


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
            med("ttft_p99_ms"), med("mean_step_batch"), med("short_last_end_ms"), med("long_first_end_ms"),
            mine[0].short_tokens,
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
    held = [r for r in rounds if r.server == BATCHED and r.short_last_end_ms >= r.long_first_end_ms]
    worst = max((r.short_last_end_ms / r.long_first_end_ms for r in rounds if r.server == BATCHED), default=float("nan"))
    print(
        f"  mixed ({args.streams // 4} streams of {args.short_tokens} tokens among {args.streams - args.streams // 4} of "
        f"{args.tokens}), step batching: the last short stream ended at {worst:.0%} of the time the first long one "
        f"did, at worst: {'ok' if not held else f'MISSED in {len(held)} round(s)'}"
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "openai_bench.json").write_text(json.dumps([asdict(r) for r in rounds], indent=2) + "\n")


if __name__ == "__main__":
    main()
