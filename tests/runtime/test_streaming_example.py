"""examples/stream served by a real uvicorn: token streams over SSE and NDJSON, numpy rows, the
OpenAPI document of streaming (and WebSocket) APIs, and ``curl -N`` reading tokens as they come.

The WebSocket API (``shout``) is only declared here; its wire test belongs to the WebSocket runtime.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from openapi_spec_validator import validate

from modelbundle.runtime import ServeConfig, build_openapi

from ._stream_readers import parse_ndjson, parse_sse, sse_lines

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "stream"
SSE = {"Accept": "text/event-stream"}


def _load_example():
    spec = importlib.util.spec_from_file_location("stream_example_service", EXAMPLE / "service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # before running it, so the Service can resolve its type hints
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    return _load_example()


@pytest.fixture(scope="module")
def server(example, serve_in_thread):
    with serve_in_thread(example.StreamDemo, ServeConfig(log_level="warning")) as running:
        yield running


def _corpus_pairs() -> set[tuple[str, str]]:
    """Every adjacent pair of tokens in the corpus, read here independently of the model."""
    tokens = re.findall(r"[a-z']+|[.,]", (EXAMPLE / "corpus.txt").read_text().lower())
    return set(itertools.pairwise(tokens))


def _tokens(server, body, headers=None) -> list[str]:
    response = server.post("/generate", json=body, headers=headers or {})
    assert response.status_code == 200, response.text
    if headers:
        events = parse_sse(sse_lines(response.text))
        assert events[-1].event == "end"
        return [e.data for e in events if e.event == "message"]
    return parse_ndjson(response.text)


def test_generate_streams_max_tokens_that_follow_each_other_in_the_corpus(server):
    tokens = _tokens(server, {"prompt": "the river", "max_tokens": 40, "seed": 7}, SSE)
    assert len(tokens) == 40
    words = [t.strip() for t in tokens]
    pairs = _corpus_pairs()
    assert ("river", words[0]) in pairs  # the prompt's last word picks the first token
    assert all(pair in pairs for pair in itertools.pairwise(words))


def test_generate_is_the_same_for_a_seed_over_sse_and_ndjson_and_differs_across_seeds(server):
    body = {"prompt": "the miller", "max_tokens": 25, "seed": 3}
    over_sse = _tokens(server, body, SSE)
    assert over_sse == _tokens(server, body)  # NDJSON: JSON strings, leading spaces kept
    assert over_sse == _tokens(server, body, SSE)
    assert any(_tokens(server, {**body, "seed": seed}) != over_sse for seed in range(4, 8))


def test_walk_streams_numpy_rows_as_ndjson(server):
    response = server.post("/walk", json={"steps": 50, "dims": 4, "seed": 1})
    assert response.headers["content-type"] == "application/x-ndjson"
    rows = np.array(parse_ndjson(response.text))
    assert rows.shape == (50, 4)
    steps = np.diff(np.vstack([np.zeros(4), rows]), axis=0)
    assert np.all(np.abs(steps) <= 1.0) and np.any(steps != 0)


def test_walk_refuses_bad_sizes_with_a_422_before_streaming(server):
    response = server.post("/walk", json={"steps": 0})
    assert response.status_code == 422 and "steps must be" in response.json()["error"]["message"]


def test_openapi_documents_both_stream_media_types_with_the_item_schema(server, example):
    spec = server.get("/openapi.json").json()
    validate(spec)
    assert spec == build_openapi(example.StreamDemo)
    generate = spec["paths"]["/generate"]["post"]["responses"]["200"]
    assert set(generate["content"]) == {"text/event-stream", "application/x-ndjson"}
    assert generate["content"]["application/x-ndjson"]["schema"] == {"type": "string"}
    assert "event: end" in generate["description"]
    # the item schema accepts what the server really streams, one item at a time
    walk = spec["paths"]["/walk"]["post"]["responses"]["200"]["content"]["application/x-ndjson"]["schema"]
    for row in parse_ndjson(server.post("/walk", json={"steps": 3}).text):
        jsonschema.validate(row, {**walk, "components": spec["components"]})


def test_openapi_shows_the_websocket_api_as_a_get_upgrade(server):
    spec = server.get("/openapi.json").json()
    shout = spec["paths"]["/shout"]
    assert list(shout) == ["get"] and "101" in shout["get"]["responses"]
    assert shout["get"]["x-websocket"] == {"receives": {"type": "string"}, "sends": {"type": "string"}}
    assert server.post("/shout", json="hi").status_code in (404, 405)  # not a POST API


def test_curl_n_reads_the_tokens_of_the_readme(server):
    body = json.dumps({"prompt": "the river", "max_tokens": 5, "seed": 1})
    result = subprocess.run(
        ["curl", "-sN", f"{server.url}/generate", "-H", "Content-Type: application/json", "-H", "Accept: text/event-stream", "-d", body],
        capture_output=True, text=True, timeout=60, check=True,
    )
    events = parse_sse(sse_lines(result.stdout))
    assert [e.event for e in events] == ["message"] * 5 + ["end"]
    assert [e.data for e in events[:5]] == _tokens(server, json.loads(body))


def test_the_readme_python_client_prints_the_generated_text(server):
    readme = (EXAMPLE / "README.md").read_text()
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0].replace("http://localhost:3000", server.url)
    result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout == "".join(_tokens(server, {"prompt": "the river", "max_tokens": 20, "seed": 2})) + "\n"


def test_the_readme_curl_lines_show_what_the_server_sends(server):
    readme = (EXAMPLE / "README.md").read_text()
    shown = [line.removeprefix("# ") for line in readme.splitlines() if line.startswith("# data: ") or line.startswith("# event: ")]
    tokens = _tokens(server, {"prompt": "the river", "max_tokens": 20, "seed": 2})
    assert shown[:2] == [f"data: {t}" for t in tokens[:2]]
    assert shown[-2:] == ["event: end", 'data: {"items":20}']
