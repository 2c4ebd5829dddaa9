"""The tinylm example in its images, called with the official ``openai`` client: /v1 in the Docker image, /v1 and /invocations in SageMaker's.

One image per target, built once for the module. What the containers answer is
checked against the bundle's own model run in this process (``modelbundle.load``):
the same seed gives the same words in the box and out of it.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest

import modelbundle
from fixtures.bundles import build_in_process
from fixtures.cli import ok
from fixtures.docker import REPO, Container, Image, ImageSession, running
from fixtures.session import PREFIX
from modelbundle.bundler import StoredBundle

EXAMPLE = REPO / "examples" / "tinylm"
ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
QUESTION = "Tell me about the keeper and the lamp"


@pytest.fixture(scope="module")
def tinylm_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained copy of the example (train.py writes model.json beside the service)."""
    root = tmp_path_factory.mktemp("tinylm-example")
    for name in ("service.py", "train.py", "corpus.txt"):
        shutil.copy(EXAMPLE / name, root / name)
    subprocess.run([sys.executable, "train.py"], cwd=root, check=True, capture_output=True)
    return root


@pytest.fixture(scope="module")
def tinylm_bundle(session: ImageSession, tinylm_project: Path) -> StoredBundle:
    return build_in_process(f"{tinylm_project}/service.py:TinyLM", tinylm_project, session.home)


@pytest.fixture(scope="module")
def tinylm_image(session: ImageSession, tinylm_bundle: StoredBundle) -> Image:
    tag = f"{PREFIX}/tinylm:{tinylm_bundle.manifest.version}"
    ok(session.containerize(tinylm_bundle.tag, tag=tag))
    return session.image(tag, tinylm_bundle)


@pytest.fixture(scope="module")
def local_model(session: ImageSession, tinylm_bundle: StoredBundle) -> Iterator[Any]:
    """The bundle's service, set up in this process: what the containers must agree with."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELBUNDLE_HOME", str(session.home))
        yield modelbundle.load(tinylm_bundle.tag)


def expected_words(model: Any, prompt: str, seed: int, max_tokens: int) -> tuple[str, str, int]:
    """(text, finish reason, tokens) of one generation, stepping the model's own step function one sequence at a time."""
    sequence = modelbundle.openai.Sequence(prompt, temperature=1.0, seed=seed, max_tokens=max_tokens)
    while len(sequence.tokens) < max_tokens:
        (token,) = model.step([sequence])
        if token is None:
            return sequence.text, "stop", len(sequence.tokens)
        sequence.tokens.append(token)
    return sequence.text, "length", len(sequence.tokens)


def chat_prompt(model: Any, content: str) -> str:
    return str(model.render([modelbundle.openai.Message("user", content)]))


def client_of(container: Container, path: str = "/v1") -> openai.OpenAI:
    return openai.OpenAI(base_url=container.url + path, api_key="unused", max_retries=0, timeout=60)


def test_the_docker_image_serves_the_openai_routes(session: ImageSession, tinylm_image: Image, local_model: Any) -> None:
    with running(session.engine, tinylm_image.tag) as container:
        container.wait_ready()
        client = client_of(container)

        assert {model.id for model in client.models.list()} == {"tinylm", "tinylm-embed"}
        assert client.models.retrieve("tinylm").id == "tinylm"

        # not streaming: the words the model gives in this process, for the same seed
        want, reason, count = expected_words(local_model, chat_prompt(local_model, QUESTION), seed=11, max_tokens=6)
        answer = client.chat.completions.create(
            model="tinylm", messages=[{"role": "user", "content": QUESTION}], max_tokens=6, seed=11, temperature=1.0
        )
        assert answer.choices[0].message.content == want
        assert answer.choices[0].finish_reason == reason
        assert answer.usage is not None and answer.usage.completion_tokens == count

        # streaming, with usage: the chunks add up to the same text, and the usage counts them
        stream = client.chat.completions.create(
            model="tinylm", messages=[{"role": "user", "content": QUESTION}], max_tokens=6, seed=11, temperature=1.0,
            stream=True, stream_options={"include_usage": True},
        )
        chunks = list(stream)
        pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
        assert "".join(pieces) == want
        assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [reason]
        usage = chunks[-1].usage
        assert usage is not None and not chunks[-1].choices
        assert usage.completion_tokens == sum(1 for piece in pieces if piece) == answer.usage.completion_tokens

        # legacy completions: a prompt text straight to the model
        want_text, _, _ = expected_words(local_model, "the keeper", seed=4, max_tokens=5)
        completion = client.completions.create(model="tinylm", prompt="the keeper", max_tokens=5, seed=4, temperature=1.0)
        assert completion.choices[0].text == want_text

        # embeddings: floats and base64 (little-endian float32) agree with the model's own vectors
        texts = ["the lamp turned slowly", "boats came home"]
        want_vectors = np.asarray(local_model.embed(texts, None))
        floats = client.embeddings.create(model="tinylm-embed", input=texts)
        np.testing.assert_allclose([item.embedding for item in floats.data], want_vectors, rtol=1e-6)
        raw = httpx.post(
            f"{container.url}/v1/embeddings",
            json={"model": "tinylm-embed", "input": texts[0], "encoding_format": "base64", "dimensions": 8},
            timeout=60,
        )
        assert raw.status_code == 200, raw.text
        packed = np.frombuffer(base64.b64decode(raw.json()["data"][0]["embedding"]), dtype="<f4")
        np.testing.assert_allclose(packed, np.asarray(local_model.embed(texts[:1], 8))[0], rtol=1e-5)

        # errors reach the client as its exception classes
        with pytest.raises(openai.NotFoundError) as unknown:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert "gpt-4o" in str(unknown.value)
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="tinylm", messages=[{"role": "user", "content": "hi"}], n=9)

        # the service's native routes are still there beside /v1
        assert container.get("/livez").status_code == 200
        assert "modelbundle_step_batch_size_count" in container.get("/metrics").text
        assert "/v1/chat/completions" in container.get("/openapi.json").json()["paths"]


def test_the_sagemaker_image_serves_v1_and_answers_openai_bodies_on_invocations(
    session: ImageSession, tinylm_bundle: StoredBundle, local_model: Any
) -> None:
    tag = f"{PREFIX}/tinylm:{tinylm_bundle.manifest.version}-sagemaker"
    ok(session.containerize(tinylm_bundle.tag, "--target", "sagemaker", tag=tag))
    with running(session.engine, tag, port=8080, command=["serve"]) as container:
        container.wait_ready(path="/ping")
        want, reason, _ = expected_words(local_model, chat_prompt(local_model, QUESTION), seed=5, max_tokens=4)
        body = {"model": "tinylm", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 4, "seed": 5, "temperature": 1.0}

        # /v1 on port 8080, as on the Docker image's 3000
        answer = client_of(container).chat.completions.create(**body)
        assert answer.choices[0].message.content == want

        # /invocations: a service with no @api takes chat completion bodies by default (as InvokeEndpoint sends them)
        invoked = container.post("/invocations", json=body, timeout=60)
        assert invoked.status_code == 200, invoked.text
        assert invoked.json()["object"] == "chat.completion"
        assert invoked.json()["choices"][0]["message"]["content"] == want
        assert invoked.json()["choices"][0]["finish_reason"] == reason

        # streamed, as InvokeEndpointWithResponseStream reads it: SSE chunks ending with [DONE]
        with httpx.stream("POST", f"{container.url}/invocations", json={**body, "stream": True}, timeout=60) as streamed:
            assert streamed.status_code == 200
            assert streamed.headers["content-type"].startswith("text/event-stream")
            data = [line.removeprefix("data: ") for line in streamed.iter_lines() if line.startswith("data: ")]
        assert data[-1] == "[DONE]"
        chunks = [json.loads(item) for item in data[:-1]]
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == want

        # another route by the custom attribute, echoed back; an unknown one is a 404 that names the choices
        attributes = "api=/v1/embeddings"
        vectors = container.post("/invocations", json={"model": "tinylm-embed", "input": "the lamp"}, headers={ATTRIBUTES: attributes})
        assert vectors.status_code == 200, vectors.text
        assert vectors.headers[ATTRIBUTES] == attributes
        np.testing.assert_allclose(vectors.json()["data"][0]["embedding"], np.asarray(local_model.embed(["the lamp"], None))[0], rtol=1e-6)
        nowhere = container.post("/invocations", json=body, headers={ATTRIBUTES: "api=predict"})
        assert nowhere.status_code == 404 and "/v1/chat/completions" in nowhere.text
