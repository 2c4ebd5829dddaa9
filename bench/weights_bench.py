"""Fetching referenced weights: throughput of a 1 GB blob from an OCI registry and from S3 (moto), against curl.

Both servers run on 127.0.0.1: Debian's ``docker-registry`` and moto's standalone
server. For each store, in the same run and alternating, ``--runs`` times:

- ``curl -o /dev/null`` of the blob's URL (the registry's ``/v2/<repo>/blobs/<digest>``;
  moto's open bucket, ``http://host/bucket/key``): the network floor;
- the same work with standard tools, ``curl | tee FILE | sha256sum`` and ``sync FILE``:
  what fetching costs beyond the network (hashing and writing);
- ``weights.ensure`` of a reference to it, in a child process with an empty
  ``MODELBUNDLE_HOME``: fetched, hashed, written to the cache and fsynced, renamed. The child
  opens the source once first (imports, the S3 or registry client: a cost paid once per
  process, reported on its own) and times the call itself; it reports its peak RSS (``VmHWM``);
- SHA-256 of the blob already in memory, on one core (``hashlib``, as the fetch hashes):
  the ceiling of any fetch that verifies before use, whatever the network.

``--link-gbit N`` limits what the servers send to N Gbit/s (``tc``, root), so that a network,
not loopback's memory copy, is the bound, as it is off this machine; ``--flow-gbit N`` limits
each connection instead, as S3 and CDNs do, where a fetch in parts over several connections pays.

It prints a row per store with the medians and checks them against issue 19's floors
(at least 80% of curl's throughput, peak RSS under 200 MB), and the fetch against the
SHA-256 ceiling. A benchmark, not a test.

    .venv/bin/python bench/weights_bench.py [--size-mb 1024] [--runs 3] [--link-gbit 5 | --flow-gbit 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from store_bench import registry as registry_server

BUCKET = "weights-bench"
KEY = "models/big.bin"
REPOSITORY = "bench/weights"
THROUGHPUT_FLOOR = 0.80
RSS_FLOOR_MB = 200
#: the child: fetch one reference into an empty cache; print seconds and peak RSS as JSON
CHILD = """
import json, sys, time
from modelbundle import weights
from modelbundle.stores import TransferProgress
uri, digest, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
started = time.perf_counter()
weights.open_source(uri).close()
setup = time.perf_counter() - started
started = time.perf_counter()
weights.ensure([weights.WeightRef("weights", uri, digest, size)], progress=TransferProgress(quiet=True))
seconds = time.perf_counter() - started
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"setup": setup, "seconds": seconds, "peak_rss_kb": int(status["VmHWM"].split()[0])}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int) -> None:
    for _ in range(400):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing answered on 127.0.0.1:{port}")


def make_blob(path: Path, size: int) -> str:
    hasher = hashlib.sha256()
    left = size
    with open(path, "wb") as out:
        while left:
            chunk = os.urandom(min(left, 8 * 1024 * 1024))  # incompressible, like real weights
            hasher.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return hasher.hexdigest()


@contextmanager
def registry(work: Path, blob: Path, digest: str) -> Iterator[tuple[str, str]]:
    """(oci:// URI, curl URL) of ``blob`` pushed to a fresh registry (store_bench's)."""
    from modelbundle.stores import RegistryClient

    with registry_server(work) as store_url:  # oci://127.0.0.1:PORT/bench
        address = store_url.removeprefix("oci://").split("/", 1)[0]
        client = RegistryClient(address, secure=False, credentials=None)
        client.upload_blob(REPOSITORY, blob, f"sha256:{digest}", lambda n: None)
        client.close()
        yield (f"oci://{address}/{REPOSITORY}@sha256:{digest}",
               f"http://{address}/v2/{REPOSITORY}/blobs/sha256:{digest}")


@contextmanager
def moto(work: Path, blob: Path) -> Iterator[tuple[str, str]]:
    """(s3:// URI, curl URL) of ``blob`` uploaded to a fresh moto server (authentication off, as in the tests)."""
    import boto3

    port = _free_port()
    server = Path(sys.executable).with_name("moto_server")
    log = open(work / "moto.log", "wb")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_port(port)
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                              aws_access_key_id="bench", aws_secret_access_key="bench")
        client.create_bucket(Bucket=BUCKET)
        client.upload_file(str(blob), BUCKET, KEY)
        yield f"s3://{BUCKET}/{KEY}", f"http://127.0.0.1:{port}/{BUCKET}/{KEY}"
    finally:
        proc.terminate()
        proc.wait()
        log.close()


#: a flow's class under --flow-gbit: the client port's low bits (16 classes, so that a few connections seldom share one)
FLOW_CLASSES = 16


@contextmanager
def shaped(url: str, link_gbit: float | None, flow_gbit: float | None) -> Iterator[None]:
    """What the server at ``url`` sends on loopback, limited (tc htb, filtered by its source port) to
    ``link_gbit`` in all, or to ``flow_gbit`` per connection (a class per low bits of the client's port)."""
    if link_gbit is None and flow_gbit is None:
        yield
        return
    if "qdisc noqueue" not in subprocess.run(["tc", "qdisc", "show", "dev", "lo"], capture_output=True, text=True).stdout:
        sys.exit("lo already has a queueing discipline: not touching it (tc qdisc show dev lo)")
    port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    rules = ["qdisc add dev lo root handle 1: htb default 1", "class add dev lo parent 1: classid 1:1 htb rate 100gbit"]
    if link_gbit is not None:
        rules += [
            f"class add dev lo parent 1: classid 1:10 htb rate {link_gbit}gbit ceil {link_gbit}gbit",
            f"filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport {port} 0xffff flowid 1:10",
        ]
    else:
        for low in range(FLOW_CLASSES):
            rules += [
                f"class add dev lo parent 1: classid 1:{16 + low} htb rate {flow_gbit}gbit ceil {flow_gbit}gbit",
                f"filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport {port} 0xffff "
                f"match ip dport {low} {FLOW_CLASSES - 1:#x} flowid 1:{16 + low}",
            ]
    try:
        for rule in rules:
            subprocess.run(["tc", *rule.split()], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True)


def children_cpu() -> float:
    """CPU seconds (user + system) of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def curl(url: str, size: int) -> float:
    """Seconds curl takes to read ``url`` to /dev/null (checked: every byte arrived)."""
    out = subprocess.run(
        ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    if int(out[0]) != size:
        sys.exit(f"curl read {out[0]} bytes of {url}, not {size}")
    return float(out[1])


def curl_hashed(url: str, work: Path) -> float:
    """Seconds of the same work with standard tools: ``curl URL | tee FILE | sha256sum``, then ``sync FILE``."""
    target = work / "curl-copy.bin"
    started = time.perf_counter()
    subprocess.run(f"curl -sS --fail '{url}' | tee '{target}' | sha256sum >/dev/null && sync '{target}'",
                   shell=True, check=True)
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def fetch(uri: str, digest: str, size: int, work: Path, env: dict[str, str]) -> dict[str, float]:
    """A fetch into an empty cache, in a child process: seconds of the source's setup and of ensure(), peak RSS."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, uri, digest, str(size)], check=True, capture_output=True, text=True,
            env={**os.environ, **env, "MODELBUNDLE_HOME": str(home)},
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        return {"setup": result["setup"], "seconds": result["seconds"], "peak_rss": result["peak_rss_kb"] * 1024}
    finally:
        shutil.rmtree(home)


def sha256_seconds(blob: Path, size: int) -> float:
    """Seconds to SHA-256 ``size`` bytes already in memory, on one core: a 64 MiB slice of the blob, hashed over and over."""
    with open(blob, "rb") as handle:
        piece = handle.read(64 * 1024 * 1024)
    hasher = hashlib.sha256()
    started = time.perf_counter()
    for _ in range(size // len(piece)):
        hasher.update(piece)
    hasher.update(piece[: size % len(piece)])
    return time.perf_counter() - started


def measure(store: str, uri: str, url: str, digest: str, size: int, runs: int, work: Path, env: dict[str, str]) -> bool:
    curls, hashed, hashes, fetches, setups, peaks = [], [], [], [], [], []
    cpu = {"curl": 0.0, "fetch": 0.0}
    for _ in range(runs):  # alternated, so a change in the machine's load touches all alike
        before = children_cpu()
        curls.append(curl(url, size))
        cpu["curl"] += children_cpu() - before
        hashed.append(curl_hashed(url, work))
        hashes.append(sha256_seconds(work / "big.bin", size))
        before = children_cpu()
        result = fetch(uri, digest, size, work, env)
        cpu["fetch"] += children_cpu() - before
        fetches.append(result["seconds"])
        setups.append(result["setup"])
        peaks.append(result["peak_rss"])
    mb = size / 1e6
    curl_rate, fetch_rate, peak = mb / statistics.median(curls), mb / statistics.median(fetches), max(peaks)
    hashed_rate, sha_rate = mb / statistics.median(hashed), mb / statistics.median(hashes)
    ratio = fetch_rate / curl_rate
    ok = ratio >= THROUGHPUT_FLOOR and peak < RSS_FLOOR_MB * 1e6
    print(f"{store:<6} {curl_rate:>11.0f} {hashed_rate:>15.0f} {sha_rate:>11.0f} {fetch_rate:>12.0f} {ratio:>8.0%} "
          f"{fetch_rate / min(curl_rate, sha_rate):>12.0%} {peak / 1e6:>13.0f}   {'ok' if ok else 'UNDER THE FLOOR'}")
    print(f"       runs (s): curl {_seconds(curls)}; curl|tee|sha256sum {_seconds(hashed)}; sha256 {_seconds(hashes)}; "
          f"fetch {_seconds(fetches)} (after a setup of {_seconds(setups)})")
    gb = size * runs / 1e9
    print(f"       CPU s per GB: curl {cpu['curl'] / gb:.2f}; fetch {cpu['fetch'] / gb:.2f} "
          "(the fetch's child, interpreter start-up and setup included)")
    return ok


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="the blob's size in MiB")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stores", nargs="+", choices=("oci", "s3"), default=["oci", "s3"])
    parser.add_argument("--link-gbit", type=float, default=None,
                        help="shape what the servers send on loopback to this many Gbit/s (tc htb; root), as a "
                             "network would: 5 is one flow between two EC2 instances outside a placement group")
    parser.add_argument("--flow-gbit", type=float, default=None,
                        help="instead, limit each connection to this many Gbit/s, as S3 and CDNs do (about 0.8 for "
                             "one GET from S3): where fetching in parts pays")
    args = parser.parse_args()
    if args.link_gbit is not None and args.flow_gbit is not None:
        parser.error("--link-gbit and --flow-gbit: choose one")
    for tool in ("curl", "docker-registry"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install -y curl docker-registry)")
    size = args.size_mb * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="weights-bench-") as tmp:
        work = Path(tmp)
        blob = work / "big.bin"
        digest = make_blob(blob, size)
        link = (f"servers shaped to {args.link_gbit:g} Gbit/s" if args.link_gbit else
                f"servers shaped to {args.flow_gbit:g} Gbit/s per connection" if args.flow_gbit else "loopback unshaped")
        print(f"blob: {size / 1e6:.0f} MB, sha256:{digest[:12]}...; median of {args.runs} runs; "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; {link}")
        print(f"{'store':<6} {'curl MB/s':>11} {'curl+hash MB/s':>15} {'sha256 MB/s':>11} {'fetch MB/s':>12} "
              f"{'/curl':>8} {'/min(curl,sha)':>12} {'peak RSS MB':>13}")
        results = []
        if "oci" in args.stores:
            with registry(work, blob, digest) as (uri, url), shaped(url, args.link_gbit, args.flow_gbit):
                results.append(measure("oci", uri, url, digest, size, args.runs, work, {}))
        if "s3" in args.stores:
            with moto(work, blob) as (uri, url), shaped(url, args.link_gbit, args.flow_gbit):
                env = {"AWS_ENDPOINT_URL": url.rsplit(f"/{BUCKET}/", 1)[0], "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
                results.append(measure("s3", uri, url, digest, size, args.runs, work, env))
        print(f"floors: fetch >= {THROUGHPUT_FLOOR:.0%} of curl's MB/s, peak RSS < {RSS_FLOOR_MB} MB: "
              f"{'met' if all(results) else 'NOT met'}")
        print("a fetch that verifies before use cannot pass the sha256 column: /min(curl,sha) is its share of what is possible here")


if __name__ == "__main__":
    main()
