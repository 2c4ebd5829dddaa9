"""The streaming example in its images: SSE read by ``curl -N``, NDJSON, a WebSocket, and SageMaker's /invocations.

What a container must not do is hold a stream back: each test reads the items as
they arrive and checks that the first one came well before the stream ended.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from websockets.sync.client import connect as websockets_connect

from fixtures.bundles import build_in_process
from fixtures.cli import ok
from fixtures.docker import REPO, Image, ImageSession, running
from fixtures.session import PREFIX
from modelbundle.bundler import StoredBundle

EXAMPLE = REPO / "examples" / "stream"
#: a pause per token long enough that a buffered stream is told apart from a streamed one
TOKEN_PAUSE_MS = 300


def _example_module() -> Any:
    spec = importlib.util.spec_from_file_location("stream_example_service", EXAMPLE / "service.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _expected_tokens(prompt: str, seed: int, count: int) -> list[str]:
    """The tokens the example's own model gives, in this process."""
    module = _example_module()
    model = module.BigramModel(module.CORPUS.read_text(encoding="utf-8"))
    tokens = model.tokens(prompt, seed)
    return [next(tokens) for _ in range(count)]


@pytest.fixture(scope="module")
def stream_bundle(session: ImageSession) -> StoredBundle:
    return build_in_process(f"{EXAMPLE}/service.py:StreamDemo", EXAMPLE, session.home)


@pytest.fixture(scope="module")
def stream_image(session: ImageSession, stream_bundle: StoredBundle) -> Image:
    tag = f"{PREFIX}/stream:{stream_bundle.manifest.version}"
    ok(session.containerize(stream_bundle.tag, tag=tag))
    return session.image(tag, stream_bundle)


def _curl_events(url: str, body: dict[str, Any], *headers: str) -> Iterator[tuple[float, str]]:
    """Each non-empty line ``curl -N`` prints, with the time it arrived."""
    command = ["curl", "-sSN", "--fail-with-body", "-X", "POST", url, "-H", "Content-Type: application/json", "-d", json.dumps(body)]
    for header in headers:
        command += ["-H", header]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as curl:
        assert curl.stdout is not None
        for line in curl.stdout:
            if line.strip():
                yield time.monotonic(), line.rstrip("\n")
    assert curl.returncode == 0


def test_curl_reads_the_tokens_as_the_container_makes_them(session: ImageSession, stream_image: Image) -> None:
    request = {"prompt": "the model", "max_tokens": 5, "seed": 3, "delay_ms": TOKEN_PAUSE_MS}
    with running(session.engine, stream_image.tag) as container:
        container.wait_ready()
        events = list(_curl_events(f"{container.url}/generate", request, "Accept: text/event-stream"))
        tokens = [line.removeprefix("data: ") for _, line in events if line.startswith("data: ")][:-1]
        assert tokens == _expected_tokens("the model", 3, 5), events
        assert [line for _, line in events][-2:] == ["event: end", 'data: {"items":5}'], events
        first, last = events[0][0], events[-1][0]
        assert last - first > 2 * TOKEN_PAUSE_MS / 1000, f"the stream was held back: {events}"

        # NDJSON rows of the walk: equal to the example's own computation
        answer = container.post("/walk", json={"steps": 4, "dims": 2, "seed": 5})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/x-ndjson")
        rows = np.array([json.loads(line) for line in answer.text.splitlines()])
        rng = np.random.default_rng(5)
        expected_rows = np.cumsum([rng.uniform(-1.0, 1.0, 2) for _ in range(4)], axis=0)
        np.testing.assert_allclose(rows, expected_rows)

        with websockets_connect(container.url.replace("http://", "ws://") + "/shout", open_timeout=30) as socket:
            for message in ("hello", "streams in a box"):
                socket.send(message)
                assert socket.recv(timeout=30) == message.upper()


def test_sagemaker_invocations_stream_from_the_sagemaker_image(session: ImageSession, stream_bundle: StoredBundle) -> None:
    tag = f"{PREFIX}/stream:{stream_bundle.manifest.version}-sagemaker"
    ok(session.containerize(stream_bundle.tag, "--target", "sagemaker", tag=tag))
    session.image(tag, stream_bundle)
    with running(session.engine, tag, port=8080, command=["serve"]) as container:
        container.wait_ready(path="/ping")
        request = {"prompt": "", "max_tokens": 4, "seed": 1, "delay_ms": TOKEN_PAUSE_MS}
        # the first API (generate) by default, chunked as InvokeEndpointWithResponseStream reads it
        events = list(_curl_events(f"{container.url}/invocations", request, "Accept: text/event-stream"))
        assert [line for _, line in events][-2:] == ["event: end", 'data: {"items":4}'], events
        assert events[-1][0] - events[0][0] > 2 * TOKEN_PAUSE_MS / 1000, f"the stream was held back: {events}"
        # another API by the custom attribute, as NDJSON
        walk = list(_curl_events(
            f"{container.url}/invocations", {"steps": 3, "dims": 1}, "X-Amzn-SageMaker-Custom-Attributes: api=walk"
        ))
        assert len(walk) == 3 and all(len(json.loads(line)) == 1 for _, line in walk)
