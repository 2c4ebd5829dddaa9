"""Streaming APIs on Lambda: refused without --buffer-streams (at export and at init), answered whole with it;
WebSocket APIs left out; the Lambda image refuses streams. In-process handlers over the real runtime app, and one real bundle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.bundles import build_in_process
from modelbundle.bundler import Reporter, StoredBundle
from modelbundle.errors import ExportError, ModelError, ServeError
from modelbundle.exporters.awslambda import LambdaHandler, export_lambda
from modelbundle.exporters.awslambda._entry import handler_source
from modelbundle.runtime import ServeConfig, create_app

from ._streaming_services import OnlySocket, Streams, WithSocket
from .test_handler import event

SERVICES = Path(__file__).parent / "_streaming_services.py"


def _handler(service_cls: type, buffer_streams: bool) -> LambdaHandler:
    made = LambdaHandler(create_app(service_cls, ServeConfig(batching=False, access_log=False)), buffer_streams=buffer_streams)
    made.start()
    return made


@pytest.fixture(scope="module")
def handler() -> Iterator[LambdaHandler]:
    made = _handler(Streams, buffer_streams=True)
    yield made
    made.close()


def _post(handler: LambdaHandler, path: str, body: Any, accept: str | None = None) -> dict[str, Any]:
    extra = {"accept": accept} if accept else {}
    return handler(event("apigateway-http-v2.json", path, json.dumps(body), "application/json", **extra))  # type: ignore[no-any-return]


def test_str_items_are_joined_into_one_answer(handler: LambdaHandler) -> None:
    answer = _post(handler, "/tokens", "one two three")
    assert (answer["statusCode"], answer["body"]) == (200, "ONE TWO THREE ")
    assert answer["headers"]["content-type"].startswith("text/plain")
    assert handler.app.service.closed[-1] == "tokens"  # the generator ran to its end
    as_json = _post(handler, "/tokens", "a b", accept="application/json")
    assert json.loads(as_json["body"]) == "A B "


def test_other_items_are_one_json_array(handler: LambdaHandler) -> None:
    answer = _post(handler, "/squares", 4)
    assert answer["statusCode"] == 200 and answer["headers"]["content-type"] == "application/json"
    assert json.loads(answer["body"]) == [{"i": i, "square": i * i} for i in range(4)]
    assert json.loads(_post(handler, "/countdown", 3)["body"]) == [3, 2, 1]
    assert json.loads(_post(handler, "/squares", 0)["body"]) == []


def test_direct_invocations_get_the_collected_stream(handler: LambdaHandler) -> None:
    assert handler({"api": "countdown", "input": 2}) == [2, 1]
    assert handler({"api": "tokens", "input": "x y"}) == "X Y "
    assert handler({"api": "plain", "input": 1}) == 2  # the other APIs are untouched


def test_a_stream_that_fails_midway_is_one_model_error(handler: LambdaHandler) -> None:
    answer = _post(handler, "/breaks", 5)
    assert answer["statusCode"] == 500
    error = json.loads(answer["body"])["error"]
    assert error["type"] == "model_error" and "RuntimeError: broke after 5" in error["message"]
    with pytest.raises(ModelError, match="broke after 2"):
        handler({"api": "breaks", "input": 2})


def test_bad_input_to_a_stream_is_the_runtimes_error(handler: LambdaHandler) -> None:
    answer = _post(handler, "/squares", "many")
    assert (answer["statusCode"], json.loads(answer["body"])["error"]["type"]) == (422, "invalid_input")


def test_a_streaming_api_is_refused_at_init_without_buffer_streams() -> None:
    with pytest.raises(ServeError, match=r"^Streams: tokens streams its answer, .*--buffer-streams") as info:
        LambdaHandler(create_app(Streams, ServeConfig(batching=False)))
    assert "\n" not in str(info.value)


def test_a_websocket_api_is_answered_501_and_the_others_work() -> None:
    handler = _handler(WithSocket, buffer_streams=False)
    try:
        answer = _post(handler, "/echo", "hi")
        error = json.loads(answer["body"])["error"]
        assert answer["statusCode"] == 501 and error["type"] == "not_implemented" and "echo is a WebSocket API" in error["message"]
        assert handler({"api": "plain", "input": 1}) == 2
    finally:
        handler.close()
    with pytest.raises(ServeError, match=r"every API is a WebSocket API \(echo\)"):
        LambdaHandler(create_app(OnlySocket, ServeConfig(batching=False)))


def test_the_handler_module_passes_the_choice_on() -> None:
    assert "buffer_streams=True" in handler_source(buffer_streams=True)
    assert "buffer_streams=False" in handler_source()
    compile(handler_source(buffer_streams=True), "modelbundle_handler.py", "exec")


# -- a real bundle: the manifest says which APIs stream ---------------------------------------
@pytest.fixture(scope="module")
def streams_bundle(tmp_path_factory: pytest.TempPathFactory) -> StoredBundle:
    project, home = tmp_path_factory.mktemp("streams-project"), tmp_path_factory.mktemp("streams-home")
    shutil.copy(SERVICES, project / "streaming_services.py")
    return build_in_process(f"{project}/streaming_services.py:Streams", project, home)


def test_export_refuses_a_streaming_bundle_in_one_line_and_writes_nothing(streams_bundle: StoredBundle, tmp_path: Path) -> None:
    streaming = [api.name for api in streams_bundle.manifest.apis if api.streaming]
    assert sorted(streaming) == ["breaks", "countdown", "squares", "tokens"]
    with pytest.raises(ExportError, match=rf"^{streams_bundle.tag}: {streaming[0]} streams its answer, .*--buffer-streams"):
        export_lambda(streams_bundle, tmp_path / "f.zip", cache_dir=tmp_path / "cache", reporter=Reporter(quiet=True))
    assert list(tmp_path.iterdir()) == []


def test_the_cli_says_why_in_one_line(streams_bundle: StoredBundle, tmp_path: Path) -> None:
    home = streams_bundle.path.parents[2]  # <home>/bundles/<name>/<version>
    result = subprocess.run(
        [sys.executable, "-m", "modelbundle", "export", "lambda", streams_bundle.tag, "-o", str(tmp_path / "f.zip")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "MODELBUNDLE_HOME": str(home)},
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    first = next(api.name for api in streams_bundle.manifest.apis if api.streaming)
    assert result.stderr.strip().splitlines() == [f"error: {streams_bundle.tag}: {first} streams its answer, and a Lambda zip "
                                                  "answers each event with one response; pass --buffer-streams to answer "
                                                  "with the whole stream at once"]
    assert not (tmp_path / "f.zip").exists()


def test_a_handler_from_the_bundle_answers_with_whole_streams(streams_bundle: StoredBundle) -> None:
    handler = LambdaHandler.from_bundle(streams_bundle.path, buffer_streams=True)
    try:
        assert handler({"api": "tokens", "input": "from the bundle"}) == "FROM THE BUNDLE "
        assert handler({"api": "squares", "input": 2}) == [{"i": 0, "square": 0}, {"i": 1, "square": 1}]
    finally:
        handler.close()



def test_the_lambda_image_refuses_a_streaming_bundle_before_building(streams_bundle: StoredBundle) -> None:
    from modelbundle.exporters.awslambda._image import lambda_image_recipe

    first = next(api.name for api in streams_bundle.manifest.apis if api.streaming)
    with pytest.raises(ExportError, match=rf"^{streams_bundle.tag}: {first} streams its answer, .*--buffer-streams.*default image"):
        lambda_image_recipe(streams_bundle, "python:3.11-slim")
