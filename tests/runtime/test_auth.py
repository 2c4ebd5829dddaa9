"""API keys from a hashed key file on streaming, WebSocket and OpenAI routes; CORS; rate limits.

Real servers on loopback (uvicorn in a thread); the OpenAI routes are called with the
official ``openai`` client, which maps a 401 to AuthenticationError and a 429 to RateLimitError.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
import openai
import pytest
from tests.fixtures.services.counting_lm import CountingLM
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from fixtures.services.sockets import Sockets
from fixtures.services.streams import Streams
from modelbundle.runtime import ServeConfig

KEY = "stream-key-5b2e10"
WRONG = "stream-key-5b2e11"
SSE = {"Accept": "text/event-stream"}


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A key file that holds no secret: a name and the SHA-256 of the key."""
    path = tmp_path_factory.mktemp("keys") / "api-keys"
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    path.write_text(f"# who may call\n\nalice:{digest}\n")
    assert KEY not in path.read_text()
    return path


def config(key_file: Path, **extra) -> ServeConfig:
    return ServeConfig(log_level="warning", api_key_file=str(key_file), **extra)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_streaming_api_needs_the_key(serve_in_thread, key_file: Path) -> None:
    with serve_in_thread(Streams, config(key_file)) as server:
        assert server.post("/count", json=3).status_code == 401
        assert server.post("/count", json=3, headers=bearer(WRONG)).status_code == 401
        with server.client() as client, client.stream("POST", "/count", json=3, headers={**SSE, **bearer(KEY)}) as response:
            assert response.status_code == 200
            events = [line for line in response.iter_lines() if line.startswith("data:")]
        assert [line.removeprefix("data:").strip() for line in events[:3]] == ["0", "1", "2"]


def _ws(server, route: str, **kwargs):
    return connect(server.url.replace("http://", "ws://", 1) + route, open_timeout=30, close_timeout=30, **kwargs)


def test_a_websocket_handshake_without_the_key_is_refused_with_401(serve_in_thread, key_file: Path) -> None:
    with serve_in_thread(Sockets, config(key_file)) as server:
        before = server.scrape().value("modelbundle_refused_requests_total", reason="unauthorized")
        for headers in ({}, bearer(WRONG), {"X-API-Key": WRONG}):
            with pytest.raises(InvalidStatus) as refused:
                _ws(server, "/shout", additional_headers=headers)
            assert refused.value.response.status_code == 401
            assert b'"unauthorized"' in refused.value.response.body
        assert server.scrape().value("modelbundle_refused_requests_total", reason="unauthorized") == before + 3
        with _ws(server, "/shout", additional_headers={"X-API-Key": KEY}) as socket:
            socket.send("hi")
            assert socket.recv() == "HI"


def test_openai_routes_answer_the_official_clients_errors(serve_in_thread, key_file: Path) -> None:
    with serve_in_thread(CountingLM, config(key_file)) as server:
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key=WRONG, max_retries=0) as client:
            with pytest.raises(openai.AuthenticationError) as refused:
                client.chat.completions.create(model="counting", messages=[{"role": "user", "content": "count 2"}])
            assert refused.value.code == "invalid_api_key"
            with pytest.raises(openai.AuthenticationError):
                client.models.list()
        answer = httpx.post(f"{server.url}/v1/completions", json={"model": "counting", "prompt": "count 2"})
        assert answer.status_code == 401
        assert set(answer.json()["error"]) == {"message", "type", "param", "code"}  # OpenAI's shape, not ours
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0) as client:
            reply = client.chat.completions.create(model="counting", messages=[{"role": "user", "content": "count 2"}])
            assert reply.choices[0].message.content == " 1 2"


def test_docs_and_metrics_can_be_protected(serve_in_thread, key_file: Path) -> None:
    with serve_in_thread(Streams, config(key_file, protect_docs=True, protect_metrics=True)) as server:
        for path in ("/docs", "/openapi.json", "/metrics"):
            assert server.get(path).status_code == 401, path
            assert server.get(path, headers=bearer(KEY)).status_code == 200, path
        for path in ("/livez", "/readyz"):
            assert server.get(path).status_code == 200, path


# -- CORS ------------------------------------------------------------------------------------
ORIGIN = "https://app.example.test"


def test_cors_is_off_by_default(serve_in_thread) -> None:
    with serve_in_thread(Streams, ServeConfig(log_level="warning")) as server:
        response = server.post("/lines", json=["a"], headers={"Origin": ORIGIN})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers


def test_a_preflight_needs_no_key_and_a_simple_request_is_marked(serve_in_thread, key_file: Path) -> None:
    with serve_in_thread(Streams, config(key_file, cors_origin=(ORIGIN,))) as server, server.client() as client:
        preflight = client.options(
            "/lines",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"},
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        assert int(preflight.headers["access-control-max-age"]) > 0

        stranger = client.options("/lines", headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"})
        assert stranger.status_code == 403
        assert "access-control-allow-origin" not in stranger.headers

        refused = server.post("/lines", json=["a"], headers={"Origin": ORIGIN})
        assert refused.status_code == 401  # a page may read the 401 too
        assert refused.headers["access-control-allow-origin"] == ORIGIN
        answered = server.post("/lines", json=["a"], headers={"Origin": ORIGIN, **bearer(KEY)})
        assert answered.status_code == 200
        assert answered.headers["access-control-allow-origin"] == ORIGIN
        assert "Origin" in answered.headers["vary"]


def test_cors_any_origin(serve_in_thread) -> None:
    with serve_in_thread(Streams, ServeConfig(log_level="warning", cors_origin=("*",))) as server:
        response = server.post("/lines", json=["a"], headers={"Origin": "https://anywhere.test"})
        assert response.headers["access-control-allow-origin"] == "*"


# -- rate limits -----------------------------------------------------------------------------
def _until_limited(send, attempts: int = 50) -> tuple[int, httpx.Response]:
    """Send until a 429 (bounded); how many passed and the 429."""
    for passed in range(attempts):
        response = send()
        if response.status_code == 429:
            return passed, response
        assert response.status_code == 200, response.text
    raise AssertionError(f"no 429 in {attempts} requests")


def test_a_client_over_its_rate_limit_gets_429_and_recovers(serve_in_thread) -> None:
    with serve_in_thread(Streams, ServeConfig(log_level="warning", rate_limit="3/s")) as server, server.client() as client:
        passed, limited = _until_limited(lambda: client.post("/lines", json=["a"]))
        assert passed >= 3  # the burst is the rate's N
        assert limited.json()["error"]["type"] == "rate_limited"
        assert server.scrape().value("modelbundle_refused_requests_total", reason="rate_limited") >= 1
        wait = int(limited.headers["retry-after"])
        assert wait >= 1
        assert client.get("/livez").status_code == 200  # probes are never limited
        time.sleep(wait)
        assert client.post("/lines", json=["a"]).status_code == 200


def test_rate_limits_count_per_key_and_answer_openai_shape_on_v1(serve_in_thread, key_file: Path, tmp_path: Path) -> None:
    second = "second-key-0d9a71"
    keys = tmp_path / "keys"
    keys.write_text(f"{key_file.read_text()}{second}\n")
    with serve_in_thread(CountingLM, ServeConfig(log_level="warning", api_key_file=str(keys), rate_limit="2/m")) as server:
        body = {"model": "counting", "prompt": "count 1"}
        with server.client() as client:
            _until_limited(lambda: client.post("/v1/completions", json=body, headers=bearer(KEY)))
            assert client.post("/v1/completions", json=body, headers=bearer(second)).status_code == 200  # its own bucket
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0) as client, pytest.raises(openai.RateLimitError):
            client.completions.create(**body)
