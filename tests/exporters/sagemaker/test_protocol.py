"""SageMaker's /ping and /invocations on the runtime: a real uvicorn on loopback, and `bundle serve --sagemaker`."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelbundle.errors import ServeError
from modelbundle.runtime import ServeConfig, create_app
from modelbundle.runtime._sagemaker import api_from_attributes, default_api
from modelbundle.runtime._sagemaker_main import main, sagemaker_flags

from .lengths import Lengths, LengthsAndApi
from .pair import Pair

ROWS = [[1.0, 2.0], [-3.0, 1.0], [0.5, 0.0]]
ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
PAIR = f"{Path(__file__).with_name('pair.py')}:Pair"


@pytest.fixture(scope="module")
def server(serve_in_thread) -> Iterator:
    with serve_in_thread(Pair, ServeConfig(sagemaker=True, log_level="warning")) as running:
        deadline = time.monotonic() + 30
        while running.get("/ping").status_code != 200:  # setup() runs after the server starts
            assert time.monotonic() < deadline
            time.sleep(0.01)
        yield running


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_ping_is_200_with_an_empty_body(server) -> None:
    response = server.get("/ping")
    assert (response.status_code, response.content) == (200, b"")


def test_invocations_call_the_first_api_with_json(server) -> None:
    response = server.post("/invocations", json=ROWS)
    assert response.status_code == 200, response.text
    assert response.json() == [1, 0, 1]
    assert ATTRIBUTES not in response.headers
    assert server.post("/invocations", json={"x": ROWS}).json() == [1, 0, 1]  # the API's own body forms


def test_custom_attributes_choose_the_api_and_come_back(server) -> None:
    attributes = "trace=abc; api=scores, other=1"
    response = server.post("/invocations", json=ROWS, headers={ATTRIBUTES: attributes})
    assert response.status_code == 200, response.text
    assert response.json() == [[3.0], [-2.0], [0.5]]
    assert response.headers[ATTRIBUTES] == attributes
    plain = server.post("/invocations", json=ROWS, headers={ATTRIBUTES: "trace=abc"})
    assert (plain.json(), plain.headers[ATTRIBUTES]) == ([1, 0, 1], "trace=abc")


def test_csv_in_and_out(server) -> None:
    body = b"1,2\n-3,1\n0.5,0\n"
    response = server.post("/invocations", content=body, headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    assert response.status_code == 200, response.text
    assert (response.headers["content-type"], response.content) == ("text/csv", b"1\n0\n1\n")
    scores = server.post(
        "/invocations", content=body, headers={"Content-Type": "text/csv", "Accept": "text/csv", ATTRIBUTES: "api=scores"}
    )
    assert scores.content == b"3.0\n-2.0\n0.5\n"
    assert server.post("/invocations", content=body, headers={"Content-Type": "text/csv"}).json() == [1, 0, 1]


def test_npy_in_and_out(server) -> None:
    response = server.post(
        "/invocations", content=npy(np.array(ROWS)),
        headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"},
    )
    assert response.status_code == 200, response.text
    np.testing.assert_array_equal(np.load(io.BytesIO(response.content)), [1, 0, 1])


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"[[1, 2]", "application/json", 400),
        (b"1,2\nx,y\n", "text/csv", 400),
        (b"not npy", "application/x-npy", 400),
        (b"1,2,3\n", "text/csv", 422),
        (b"1,2", "text/plain", 415),
    ],
)
def test_a_body_that_cannot_be_decoded_is_a_4xx_with_attributes_echoed(server, body: bytes, content_type: str, status: int) -> None:
    response = server.post("/invocations", content=body, headers={"Content-Type": content_type, ATTRIBUTES: "api=label"})
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]
    assert response.headers[ATTRIBUTES] == "api=label"


def test_an_unknown_api_is_a_404_naming_the_apis(server) -> None:
    response = server.post("/invocations", json=ROWS, headers={ATTRIBUTES: "api=nope"})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == (
        f"no API named 'nope' (from {ATTRIBUTES}); the APIs are label, scores"
    )
    assert response.headers[ATTRIBUTES] == "api=nope"


def test_the_native_routes_still_answer(server) -> None:
    assert server.post("/scores", json=ROWS).json() == [[3.0], [-2.0], [0.5]]
    assert server.get("/readyz").status_code == 200


def test_without_sagemaker_there_is_no_ping() -> None:
    app = create_app(Pair, ServeConfig())

    async def run() -> tuple[int, int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return (await client.get("/ping")).status_code, (await client.post("/invocations", json=ROWS)).status_code

    import asyncio

    assert asyncio.run(run()) == (404, 404)


# -- choosing the API -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "api"),
    [(None, None), (b"", None), (b"api=scores", "scores"), (b"a=1;API = scores ", "scores"), (b"scores", None), (b"apix=1", None)],
)
def test_api_from_attributes(header: bytes | None, api: str | None) -> None:
    assert api_from_attributes(header) == api


def test_the_default_api_is_the_first_declared_or_the_configured_one() -> None:
    assert default_api(Pair.__apis__, None) == "label"
    assert default_api(Pair.__apis__, "scores") == "scores"
    with pytest.raises(ServeError, match=r"^--default-api 'nope' is not an API of the service; the APIs are label, scores$"):
        default_api(Pair.__apis__, "nope")


def test_default_api_setting_changes_what_invocations_call(serve_in_thread) -> None:
    with serve_in_thread(Pair, ServeConfig(sagemaker=True, default_api="scores", log_level="warning")) as running:
        deadline = time.monotonic() + 30
        while running.get("/ping").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert running.post("/invocations", json=ROWS).json() == [[3.0], [-2.0], [0.5]]


# -- the entrypoint -----------------------------------------------------------------------------------------
def test_sagemaker_flags_follow_sagemakers_variables(tmp_path: Path) -> None:
    empty = tmp_path / "model"
    assert sagemaker_flags({}, empty) == {"sagemaker": True, "host": "0.0.0.0", "port": 8080}
    env = {"SAGEMAKER_BIND_TO_PORT": "9090", "SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SAGEMAKER_MODEL_SERVER_TIMEOUT": "12.5"}
    flags = sagemaker_flags(env, empty)
    assert (flags["port"], flags["workers"], flags["timeout"]) == (9090, 2, 12.5)
    assert sagemaker_flags({"MODELBUNDLE_PORT": "7000", "MODELBUNDLE_HOST": "127.0.0.1"}, empty) == {"sagemaker": True}
    empty.mkdir()
    assert "model_dir" not in sagemaker_flags({}, empty)  # an empty /opt/ml/model: the bundle's own artifacts
    (empty / "x").write_text("1")
    assert sagemaker_flags({}, empty)["model_dir"] == str(empty)
    with pytest.raises(ServeError, match=r"^SAGEMAKER_BIND_TO_PORT='eighty' is not a number$"):
        sagemaker_flags({"SAGEMAKER_BIND_TO_PORT": "eighty"}, empty)


def test_train_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bundle", "/nowhere", "train"]) == 2
    assert "cannot train" in capsys.readouterr().err
    assert main(["serve", "--port", "1"]) == 2


# -- `bundle serve --sagemaker` ------------------------------------------------------------------------------
def test_ping_answers_503_at_once_while_setup_runs_then_200(serve_in_subprocess) -> None:
    with serve_in_subprocess(PAIR, "--sagemaker", "--port", "0", env={"SETUP_SECONDS": "3"}, ready=False) as server:
        url = server.wait_for_port()
        seen, slowest = [], 0.0
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                # invocations first: readiness only goes one way, so if /ping still says 503
                # afterwards, this invocation too was answered before setup() finished
                invocation = client.post("/invocations", json=ROWS)
                started = time.perf_counter()
                response = client.get("/ping")
                slowest = max(slowest, time.perf_counter() - started)
                seen.append(response.status_code)
                if response.status_code == 200:
                    break
                assert invocation.status_code == 503
                time.sleep(0.05)
        assert seen[0] == 503 and seen[-1] == 200, seen
        print(f"\n/ping while setup() runs: {len(seen) - 1} answers of 503, slowest {slowest * 1000:.1f} ms")
        assert slowest < 0.5


def test_setup_failing_after_the_server_started_exits_non_zero(serve_in_subprocess) -> None:
    with serve_in_subprocess(PAIR, "--sagemaker", "--port", "0", env={"SETUP_RAISES": "1"}, ready=False) as server:
        server.wait_for_port()
        assert server.proc.wait(60) != 0
        assert "no model today" in server.stderr


def test_an_unknown_default_api_stops_the_server_in_one_line(serve_in_subprocess) -> None:
    with serve_in_subprocess(PAIR, "--sagemaker", "--port", "0", "--default-api", "nope", ready=False) as server:
        server.wait_for_port()
        assert server.proc.wait(60) != 0
        assert "Pair did not start: --default-api 'nope' is not an API of the service; the APIs are label, scores" in server.stderr


# -- services with OpenAI declarations -----------------------------------------------------------------------
def test_invocations_answer_the_openai_routes_by_path(serve_in_thread) -> None:
    body = {"model": "lengths", "input": ["one two", "three"]}
    with serve_in_thread(Lengths, ServeConfig(sagemaker=True, log_level="warning")) as running:
        deadline = time.monotonic() + 30
        while running.get("/ping").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # no @api: an OpenAI body goes to the one OpenAI route there is
        default = running.post("/invocations", json=body)
        assert default.status_code == 200, default.text
        assert [item["embedding"] for item in default.json()["data"]] == [[7.0, 2.0], [5.0, 1.0]]
        assert running.post("/v1/embeddings", json=body).json()["data"] == default.json()["data"]
        # an unknown model is OpenAI's 404, through /invocations as on /v1
        unknown = running.post("/invocations", json={**body, "model": "nope"})
        assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "model"

    with serve_in_thread(LengthsAndApi, ServeConfig(sagemaker=True, log_level="warning")) as running:
        deadline = time.monotonic() + 30
        while running.get("/ping").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert running.post("/invocations", json={"text": "hi"}).text == "HI"  # the first API stays the default
        chosen = running.post("/invocations", json=body, headers={ATTRIBUTES: "api=/v1/embeddings"})
        assert chosen.status_code == 200, chosen.text
        assert chosen.json()["data"][1]["embedding"] == [5.0, 1.0]
        assert chosen.headers[ATTRIBUTES] == "api=/v1/embeddings"


def test_the_default_api_may_be_an_openai_route() -> None:
    assert default_api(["/v1/chat/completions", "/v1/completions"], None) == "/v1/chat/completions"
    assert default_api(["shout", "/v1/embeddings"], "/v1/embeddings") == "/v1/embeddings"
    with pytest.raises(ServeError, match=r"^the service declares no API, so /invocations has nothing to call$"):
        default_api([], None)
