"""Every example's APIs called through ``Client`` and ``AsyncClient`` give the answers raw HTTP
gives, on the example served by ``bundle serve`` (trained first where it has a train.py). The
clients learn the APIs from the server's /openapi.json, as a user's script would. (tinylm is not
here: it serves only OpenAI routes, no API of its own; an OpenAI client library calls those.)"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from pydantic import BaseModel

from modelbundle import AsyncClient, Client
from modelbundle.errors import InvalidInput

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TARGETS = {"iris": "IrisClassifier", "mlp": "MLP", "stream": "StreamDemo", "text": "TextSentiment"}
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def _calls(example: str, document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(API, JSON arguments) to call on ``example``: what both the clients and raw HTTP send."""
    if example == "iris":
        return [("predict", {"x": IRIS_ROWS})]
    if example == "mlp":
        # the width of a row, from the adapter hint the client itself reads
        width = document["paths"]["/predict"]["post"]["x-modelbundle"]["params"][0]["adapter"]["shape"][1]
        return [("predict", {"x": np.random.default_rng(7).uniform(-1, 1, (3, width)).tolist()})]
    if example == "text":
        return [("sentiment", {"review": {"text": "great and fast, but the manual is awful"}})]
    return [
        ("generate", {"request": {"prompt": "the", "max_tokens": 6, "seed": 3}}),
        ("walk", {"steps": 4, "dims": 2, "seed": 5}),
        ("walk", {"steps": 3}),  # the defaults are the server's
        ("walk", {"steps": np.int64(2), "dims": 1}),  # a numpy scalar for an int travels as the number
    ]


@pytest.fixture(params=sorted(TARGETS))
def served(request: pytest.FixtureRequest, tmp_path: Path, serve_in_subprocess: Any) -> Any:
    example = request.param
    folder = tmp_path / example
    shutil.copytree(EXAMPLES / example, folder)
    if (folder / "train.py").exists():
        subprocess.run([sys.executable, "train.py"], cwd=folder, check=True, capture_output=True, timeout=300)
    target = f"{folder / 'service.py'}:{TARGETS[example]}"
    with serve_in_subprocess(target, "--jobs-dir", str(tmp_path / "jobs")) as server:
        yield example, folder, server


def _raw(server: Any, api: str, arguments: dict[str, Any], streaming: bool) -> Any:
    response = server.post(f"/{api}", content=orjson.dumps(arguments, option=orjson.OPT_SERIALIZE_NUMPY), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    if streaming:
        return [orjson.loads(line) for line in response.text.splitlines() if line]
    return response.json()


def _same(value: Any, raw: Any) -> bool:
    """The client's value is the one the raw JSON answer holds (arrays in the client's dtype)."""
    if isinstance(value, list) and isinstance(raw, list) and len(value) == len(raw):
        return all(_same(v, r) for v, r in zip(value, raw, strict=True))
    if isinstance(value, np.ndarray):
        return bool(np.array_equal(value, np.asarray(raw, dtype=value.dtype)))
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return bool(value == raw)


def test_every_api_answers_through_both_clients_as_over_raw_http(served: Any) -> None:
    example, folder, server = served
    document = server.get("/openapi.json").json()
    calls = _calls(example, document)
    with Client(server.url) as client:
        assert sorted(client.apis) == sorted(
            op["operationId"] for item in document["paths"].values() for op in item.values() if "x-modelbundle" in op
        )
        for api, arguments in calls:
            streaming = client.apis[api].streaming
            raw = _raw(server, api, arguments, streaming)
            answer = getattr(client, api)(**arguments)
            assert _same(list(answer) if streaming else answer, raw), (api, arguments)

    async def through_async_client() -> None:
        async with AsyncClient(server.url) as client:
            for api, arguments in calls:
                streaming = client.apis[api].streaming
                raw = _raw(server, api, arguments, streaming)
                call = getattr(client, api)(**arguments)
                answer = [item async for item in call] if streaming else await call
                assert _same(answer, raw), (api, arguments)

    asyncio.run(through_async_client())

    if example == "iris":  # served with --jobs-dir: the same call run as a job
        with Client(server.url) as client:
            job = client.submit("predict", x=np.asarray(IRIS_ROWS))
            assert _same(job.wait(timeout=120), _raw(server, "predict", {"x": IRIS_ROWS}, False))
            assert job.status()["status"] == "succeeded"
            with pytest.raises(InvalidInput, match="expected shape"):
                client.predict(x=[[1.0, 2.0]])
    if example == "text":  # given the Service class, the client answers with its pydantic models
        module = _load(folder / "service.py")
        with Client(server.url, service=module.TextSentiment) as client:
            review = module.Review(text="a terrible, slow and ugly day")
            answer = client.sentiment(review)
            assert isinstance(answer, module.Sentiment)
            assert _same(answer, _raw(server, "sentiment", {"review": review.model_dump()}, False))
            # the model's own check refuses it before sending, with the server's words (InvalidInput) ...
            message = "review: text: String should have at least 1 character"
            with pytest.raises(InvalidInput, match=message):
                client.sentiment({"text": ""})
        with Client(server.url) as client, pytest.raises(InvalidInput, match=message):
            client.sentiment({"text": ""})  # ... which the server says too (422), to a client without the class


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"client_example_{path.parent.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # before running it, so the Service can resolve its type hints
    spec.loader.exec_module(module)
    return module
