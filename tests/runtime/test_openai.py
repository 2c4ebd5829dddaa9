"""The /v1 routes on a real uvicorn, called with OpenAI's official client (``openai``).

The service is tests/fixtures/services/counting_lm.py, whose prompts say what it generates,
so every expected text below follows from that rule, not from the runtime's code.
"""

from __future__ import annotations

import base64
import struct
import time

import httpx
import openai
import pytest
from openapi_spec_validator import validate
from tests.fixtures.services.counting_lm import CountingLM

from modelbundle.runtime import ServeConfig


@pytest.fixture(scope="module")
def server(serve_in_thread):
    with serve_in_thread(CountingLM, ServeConfig(log_level="warning")) as running:
        yield running


@pytest.fixture
def client(server):
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0) as c:
        yield c


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_chat_completion_whole_answer(client) -> None:
    answer = client.chat.completions.create(model="counting", messages=_user("count 3"))
    assert answer.object == "chat.completion"
    assert answer.model == "counting"
    [choice] = answer.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == " 1 2 3"
    assert choice.finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (2, 3)  # "count 3": two words
    assert answer.usage.total_tokens == 5


def test_completion_stops_at_max_tokens_with_length(client) -> None:
    answer = client.completions.create(model="counting", prompt="forever", max_tokens=4)
    [choice] = answer.choices
    assert choice.text == " x x x x"
    assert choice.finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 4


def test_chat_max_completion_tokens_is_the_newer_name_of_max_tokens(client) -> None:
    answer = client.chat.completions.create(model="counting", messages=_user("count 9"), max_completion_tokens=2)
    assert answer.choices[0].message.content == " 1 2"
    assert answer.choices[0].finish_reason == "length"


def test_chat_stream_chunks_and_usage_match(client) -> None:
    stream = client.chat.completions.create(
        model="counting", messages=_user("count 5"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    deltas = [c.choices[0].delta.content for c in chunks[:-1] if c.choices[0].delta.content]
    assert "".join(deltas) == " 1 2 3 4 5"
    assert len(deltas) == usage_chunk.usage.completion_tokens == 5  # one chunk per token streamed
    assert [c.choices[0].finish_reason for c in chunks[:-1]][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-2])


def test_stream_without_include_usage_has_no_usage_chunk(client) -> None:
    chunks = list(client.completions.create(model="counting", prompt="count 2", stream=True))
    assert all(c.choices for c in chunks)
    assert "".join(c.choices[0].text for c in chunks) == " 1 2"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_the_stream_ends_with_done(server) -> None:
    body = {"model": "counting", "prompt": "count 1", "stream": True}
    response = server.post("/v1/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line for line in response.text.split("\n\n") if line]
    assert events[-1] == "data: [DONE]"


def test_a_stop_sequence_ends_the_text_and_is_not_sent(client) -> None:
    stream = client.completions.create(model="counting", prompt="say hello world", stop=["o w", "zz"], stream=True)
    pieces = [c.choices[0].text for c in stream]
    assert "".join(pieces) == "hell"
    answer = client.chat.completions.create(model="counting", messages=_user("say abcabc"), stop="ca")
    assert answer.choices[0].message.content == "ab"
    assert answer.choices[0].finish_reason == "stop"


def test_n_choices_and_more_than_the_model_allows(client) -> None:
    answer = client.chat.completions.create(model="counting", messages=_user("count 2"), n=3)
    assert [c.index for c in answer.choices] == [0, 1, 2]
    assert {c.message.content for c in answer.choices} == {" 1 2"}
    assert answer.usage is not None and answer.usage.completion_tokens == 6
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="counting", messages=_user("count 2"), n=4)
    assert caught.value.body["param"] == "n"  # type: ignore[index]


def test_user_and_seed_are_accepted(client) -> None:
    answer = client.completions.create(model="counting", prompt="count 1", user="someone", seed=7, temperature=0.5, top_p=0.9)
    assert answer.choices[0].text == " 1"


def test_embeddings_float_and_base64(client) -> None:
    texts = ["ab", "a b c"]
    expected = [[2.0, 0.0, 0.5], [5.0, 2.0, 0.5]]  # counting_lm: length, spaces, 0.5
    floats = client.embeddings.create(model="counting-embed", input=texts, encoding_format="float")
    assert [d.embedding for d in floats.data] == expected
    assert [d.index for d in floats.data] == [0, 1]
    assert floats.usage.prompt_tokens == 4  # "ab" + "a b c": 1 + 3 words
    raw = client.embeddings.create(model="counting-embed", input="a b c", encoding_format="base64")
    encoded = raw.data[0].embedding
    assert isinstance(encoded, str)
    assert list(struct.unpack("<3f", base64.b64decode(encoded))) == expected[1]
    # the client asks for base64 by default and decodes it itself
    assert client.embeddings.create(model="counting-embed", input="ab").data[0].embedding == expected[0]


def test_dimensions_refused_by_a_model_without_them(client) -> None:
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="counting-embed", input="ab", dimensions=2)


def test_concurrent_embedding_requests_are_merged(server) -> None:
    since = len(server.post("/embed_sizes", json={}).json())
    bodies = [{"model": "counting-embed", "input": [f"text {i}", "b"], "encoding_format": "float"} for i in range(12)]
    responses = server.post_concurrently("/v1/embeddings", bodies)
    assert all(r.status_code == 200 for r in responses)
    assert [r.json()["data"][0]["embedding"][0] for r in responses] == [float(len(f"text {i}")) for i in range(12)]
    sizes = server.post("/embed_sizes", json={"since": since}).json()
    assert sum(sizes) == 24 and max(sizes) <= 16
    assert len(sizes) < 12  # some calls carried more than one request


def test_models_list_and_retrieve(client) -> None:
    models = {m.id: m for m in client.models.list()}
    assert set(models) == {"counting", "counting-embed"}
    assert client.models.retrieve("counting").id == "counting"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-nothing")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.chat.completions.create(model="other", messages=_user("count 1")), openai.NotFoundError),
        (lambda c: c.completions.create(model="other", prompt="count 1"), openai.NotFoundError),
        (lambda c: c.embeddings.create(model="counting", input="x"), openai.NotFoundError),
        (lambda c: c.chat.completions.create(model="counting", messages=_user("count 1"), temperature=3), openai.BadRequestError),
        (lambda c: c.chat.completions.create(model="counting", messages=[]), openai.BadRequestError),
        (lambda c: c.completions.create(model="counting", prompt="x", stop=["a", "b", "c", "d", "e"]), openai.BadRequestError),
        (lambda c: c.chat.completions.create(model="counting", messages=_user("refuse")), openai.UnprocessableEntityError),
        (lambda c: c.chat.completions.create(model="counting", messages=_user("fail")), openai.InternalServerError),
        (lambda c: c.completions.create(model="counting", prompt="fail", stream=True), openai.InternalServerError),
    ],
    ids=["chat-model", "completion-model", "embed-model", "temperature", "no-messages", "five-stops", "refused", "step-raises", "stream-step-raises"],
)
def test_each_error_maps_to_the_clients_exception(client, call, error) -> None:
    with pytest.raises(error) as caught:
        result = call(client)
        list(result) if isinstance(result, openai.Stream) else result
    assert caught.value.message


def test_error_bodies_have_openais_shape(server) -> None:
    response = server.post("/v1/chat/completions", json={"model": "nope", "messages": _user("x")})
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert response.json()["error"]["param"] == "model"
    not_json = server.post("/v1/completions", content=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["error"]["type"] == "invalid_request_error"
    unknown = server.get("/v1/nothing")
    assert unknown.status_code == 404 and "/v1/models" in unknown.json()["error"]["message"]


def test_overload_is_a_rate_limit_error(serve_in_thread) -> None:
    config = ServeConfig(log_level="warning", max_concurrency=1)
    with serve_in_thread(CountingLM, config) as busy, openai.OpenAI(base_url=f"{busy.url}/v1", api_key="unused", max_retries=0) as c:
        stream = c.completions.create(model="counting", prompt="forever", max_tokens=100_000, stream=True)
        next(iter(stream))  # the stream holds the one slot
        with pytest.raises(openai.RateLimitError):
            c.completions.create(model="counting", prompt="count 1")
        stream.close()


def test_the_services_other_routes_keep_working(server) -> None:
    assert server.post("/recorded", json={"since": 0}).status_code == 200
    assert server.get("/livez").status_code == 200
    document = server.get("/openapi.json").json()
    validate(document)
    assert {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/v1/models/{model}"} <= set(document["paths"])
    assert "/recorded" in document["paths"]
    metrics = server.get("/metrics").text
    assert "modelbundle_generated_tokens_total" in metrics and "modelbundle_time_to_first_token_seconds" in metrics


def test_v1_is_reserved_for_the_openai_routes() -> None:
    from modelbundle import Service, api
    from modelbundle.errors import DefinitionError

    with pytest.raises(DefinitionError, match="/v1"):

        class Clash(Service):
            @api(route="/v1/chat/completions")
            def chat(self, x: int) -> int:
                return x


def test_a_request_error_has_no_traceback_in_httpx(server) -> None:
    response = httpx.post(f"{server.url}/v1/completions", json={"model": "counting"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "prompt"


def test_timeout_bounds_a_whole_answer_and_frees_its_sequence(serve_in_thread) -> None:
    """--timeout applies to /v1 as to every API: a whole answer past it is a 504, and its generation stops."""
    config = ServeConfig(log_level="warning", timeout=0.5)
    with serve_in_thread(CountingLM, config) as slow, openai.OpenAI(base_url=f"{slow.url}/v1", api_key="unused", max_retries=0) as c:
        with pytest.raises(openai.InternalServerError) as raised:
            c.completions.create(model="counting", prompt="forever", max_tokens=100_000)
        assert raised.value.status_code == 504 and "0.5 s" in raised.value.message
        seen = len(slow.post("/recorded", json={}).json())
        # the timed-out sequence left the batch: steps stop being taken for it
        time.sleep(0.3)
        assert len(slow.post("/recorded", json={"since": seen}).json()) == 0
        # in a stream each delta is under the deadline, not the whole stream
        stream = c.completions.create(model="counting", prompt="forever", max_tokens=200, stream=True)
        assert sum(1 for _ in stream) >= 200  # 200 steps of 10 ms: longer than the 0.5 s timeout
