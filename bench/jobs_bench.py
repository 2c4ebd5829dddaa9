"""Jobs benchmark: how fast jobs are submitted, and what running a call as a job adds to it.

For each job store (``--store``, repeatable: ``sqlite`` in a temporary ``--jobs-dir``;
``postgresql``, a throwaway cluster of Debian's ``postgresql`` server that the benchmark starts
on 127.0.0.1 in a temporary folder; or a ``postgresql://...`` URL of a running server; the
default is ``sqlite`` and ``postgresql``, so one run compares them), it serves the iris example
with ``bundle serve`` --jobs-dir/--jobs-url in its own process on 127.0.0.1, then measures:

- **submit/s**: ``--jobs`` POSTs to ``/predict/jobs`` from ``--concurrency`` connections at once,
  each answered 202 (the job durably committed: SQLite ``synchronous=FULL``);
- **done/s**: jobs finished per second, from the first submit until every job has succeeded;
- **sync ms** and **job ms**: the median of ``--samples`` one-at-a-time calls of the same body,
  synchronously (``POST /predict``) and as a job (POST, poll ``GET .../jobs/<id>`` every
  ``POLL_S`` until it has succeeded, then ``GET .../result``), and **overhead ms**, their
  difference: what the queue, the store and the polling cost a client. Polling every
  ``POLL_S`` adds up to that much to the job figure; it is what a client that polls pays.

It prints one row per store and always exits 0: it measures, it does not gate.

    .venv/bin/python bench/jobs_bench.py [--jobs 500] [--concurrency 16] [--samples 50]
    .venv/bin/python bench/jobs_bench.py --store sqlite --store postgresql://user@127.0.0.1:5432/jobs

The PostgreSQL rows need psycopg in this Python (``pip install 'modelbundle[postgres]'``) and,
for the throwaway cluster, the server (``apt-get install postgresql``; as root it runs as the
``postgres`` user). The throwaway cluster runs with fsync off, as the tests' does: its figures
are the queue's cost, not the disk's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
IRIS_DIR = REPO_ROOT / "examples" / "iris"
TARGET = str(IRIS_DIR / "service.py") + ":IrisClassifier"
ANNOUNCED = re.compile(r"serving .* on http://127\.0\.0\.1:(\d+)")
READY_TIMEOUT_S = 60.0
FINISH_TIMEOUT_S = 600.0
POLL_S = 0.005
BODY = {"x": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}


class Server:
    """``bundle serve`` of the iris example with the given jobs option, on a free port."""

    def __init__(self, store_args: list[str]) -> None:
        command = [sys.executable, "-m", "modelbundle", "serve", TARGET, "--port", "0",
                   "--no-access-log", *store_args]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_ready()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + READY_TIMEOUT_S
        url = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"the server exited with {self.proc.returncode}:\n{''.join(self.lines)}")
            if not url and (match := ANNOUNCED.search("".join(self.lines))):
                url = f"http://127.0.0.1:{match.group(1)}"
            if url:
                try:
                    if httpx.get(url + "/readyz", timeout=1.0).status_code == 200:
                        return url
                except httpx.TransportError:
                    pass
            time.sleep(0.05)
        sys.exit(f"the server was not ready within {READY_TIMEOUT_S} s:\n{''.join(self.lines)}")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


async def submit_all(url: str, jobs: int, concurrency: int) -> tuple[list[str], float]:
    """Submit ``jobs`` jobs from ``concurrency`` connections; their ids and the seconds it took."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(jobs):
            queue.put_nowait(i)
        ids: list[str] = []

        async def submitter() -> None:
            while not queue.empty():
                queue.get_nowait()
                response = await client.post("/predict/jobs", json=BODY)
                response.raise_for_status()
                ids.append(response.json()["id"])

        started = time.perf_counter()
        await asyncio.gather(*(submitter() for _ in range(concurrency)))
        return ids, time.perf_counter() - started


def wait_all_succeeded(client: httpx.Client, count: int) -> None:
    deadline = time.monotonic() + FINISH_TIMEOUT_S
    while time.monotonic() < deadline:
        done = client.get("/predict/jobs", params={"status": "succeeded", "limit": 1000}).json()["jobs"]
        if len(done) >= min(count, 1000):
            failed = client.get("/predict/jobs", params={"status": "failed", "limit": 1}).json()["jobs"]
            if failed:
                sys.exit(f"a job failed: {failed[0]}")
            queued = client.get("/predict/jobs", params={"status": "queued", "limit": 1}).json()["jobs"]
            running = client.get("/predict/jobs", params={"status": "running", "limit": 1}).json()["jobs"]
            if not queued and not running:
                return
        time.sleep(0.02)
    sys.exit(f"the jobs did not finish within {FINISH_TIMEOUT_S} s")


def one_job(client: httpx.Client) -> float:
    started = time.perf_counter()
    job_id = client.post("/predict/jobs", json=BODY).json()["id"]
    while client.get(f"/predict/jobs/{job_id}").json()["status"] != "succeeded":
        time.sleep(POLL_S)
    client.get(f"/predict/jobs/{job_id}/result").raise_for_status()
    return time.perf_counter() - started


def one_call(client: httpx.Client) -> float:
    started = time.perf_counter()
    client.post("/predict", json=BODY).raise_for_status()
    return time.perf_counter() - started


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL cluster in a temporary folder on 127.0.0.1 (as tests/fixtures/postgres.py makes
    one); its URL. Stopped and removed at the end."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        sys.exit("no PostgreSQL server under /usr/lib/postgresql: apt-get install postgresql, or pass --store postgresql://...")
    bin_dir = Path(found[-1]).parent
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="modelbundle-jobs-bench-pg-"))
    try:
        if run_as:  # PostgreSQL refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(root, user.pw_uid, user.pw_gid)
        data = root / "data"
        subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"],
                       check=True, capture_output=True)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}"
                   " -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o", options,
                        "start"], check=True, capture_output=True)
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(store: str, jobs: int, concurrency: int, samples: int) -> dict[str, Any]:
    if store == "postgresql":
        with throwaway_postgres() as url:
            return measure(url, jobs, concurrency, samples)
    with tempfile.TemporaryDirectory(prefix="modelbundle-jobs-bench-") as tmp:
        args = ["--jobs-dir", tmp] if store == "sqlite" else ["--jobs-url", store]
        server = Server(args)
        try:
            with httpx.Client(base_url=server.url, timeout=60.0) as client:
                client.post("/predict", json=BODY).raise_for_status()  # warm
                started = time.perf_counter()
                ids, submit_seconds = asyncio.run(submit_all(server.url, jobs, concurrency))
                wait_all_succeeded(client, len(ids))
                done_seconds = time.perf_counter() - started
                sync = statistics.median(one_call(client) for _ in range(samples))
                job = statistics.median(one_job(client) for _ in range(samples))
        finally:
            server.stop()
    return {"store": store if store == "sqlite" else "postgresql", "submit/s": len(ids) / submit_seconds,
            "done_seconds": done_seconds, "sync_ms": sync * 1000, "job_ms": job * 1000}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", action="append",
                        help="sqlite, postgresql (a throwaway cluster) or a postgresql:// URL; repeat for several [default: sqlite and postgresql]")
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--samples", type=int, default=50)
    options = parser.parse_args(argv)
    if not (IRIS_DIR / "model.joblib").is_file():
        subprocess.run([sys.executable, str(IRIS_DIR / "train.py")], cwd=REPO_ROOT, check=True)
    stores = options.store or ["sqlite", "postgresql"]
    if any(store.startswith("postgres") for store in stores) and importlib.util.find_spec("psycopg") is None:
        sys.exit("the PostgreSQL rows need psycopg: pip install 'modelbundle[postgres]' (or pass --store sqlite)")
    rows = [measure(store, options.jobs, options.concurrency, options.samples) for store in stores]
    print(f"\n{options.jobs} jobs from {options.concurrency} connections; {options.samples} one-at-a-time samples (iris predict, 2 rows)")
    print(f"{'store':<12} {'submit/s':>9} {'done/s':>8} {'sync ms':>8} {'job ms':>8} {'overhead ms':>12}")
    for row in rows:
        print(f"{row['store']:<12} {row['submit/s']:>9.0f} {options.jobs / row['done_seconds']:>8.0f} "
              f"{row['sync_ms']:>8.2f} {row['job_ms']:>8.2f} {row['job_ms'] - row['sync_ms']:>12.2f}")


if __name__ == "__main__":
    main()
