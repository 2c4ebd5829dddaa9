"""The acceptance path: export the iris bundle as a Lambda zip, run it in a clean container, call every event type.

The container is the local Debian base image with nothing but Python's standard
library (``--network none``); the zip is unpacked into /var/task, and the handler
is imported by a fresh ``python3 -I -S`` whose only path besides the standard
library is /var/task, as Lambda's runtime does, as a user that owns none of the files.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fixtures.session import SESSION_DIR, unique_name
from modelbundle.errors import ExportError
from modelbundle.exporters.awslambda import BUNDLE_DIR, HANDLER_MODULE, LambdaLimits, export_lambda
from modelbundle.exporters.awslambda._bytecode import pyc_name

from .conftest import LambdaIris

BASE_IMAGE = "modelbundle-base:bookworm-py3.11"
EVENTS = Path(__file__).parent / "events"
MIB = 1024 * 1024
WARM_CALLS = 20
#: the flags word of an unchecked-hash pyc (PEP 552: hash-based, source not checked)
UNCHECKED_HASH = (1).to_bytes(4, "little")

#: unpacks the zip as Lambda does, keeping each entry's mode bits
UNPACK = """\
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive:
    for info in archive.infolist():
        path = archive.extract(info, "/var/task")
        os.chmod(path, (info.external_attr >> 16) & 0o7777)
"""

#: the Lambda runtime's part: import the handler module (init), then call handler(event, context) per event;
#: every module Python compiles from source instead of loading its bytecode is recorded
INVOKE = """\
import importlib.machinery, json, sys, time
sys.path[:] = ["/var/task"] + [p for p in sys.path if p and "-packages" not in p]
compiled = []
_source_to_code = importlib.machinery.SourceFileLoader.source_to_code
def _recording(self, data, path, *args, **kwargs):
    compiled.append(path)
    return _source_to_code(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = _recording
started = time.perf_counter()
import modelbundle_handler
init_seconds = time.perf_counter() - started

class Context:
    def __init__(self, request_id):
        self.aws_request_id = request_id

def call(event, request_id):
    try:
        return {"result": modelbundle_handler.handler(event, Context(request_id))}
    except Exception as exc:
        return {"errorType": type(exc).__name__, "errorMessage": str(exc)}

calls = json.load(sys.stdin)
answers = {label: call(event, label) for label, event in calls["events"].items()}
warm = []
for _ in range(calls["warm_calls"]):
    started = time.perf_counter()
    call(calls["events"][calls["warm_event"]], "warm")
    warm.append(time.perf_counter() - started)
import numpy, sklearn
# Lambda kills an environment rather than letting Python exit; a host that exits closes the handler (teardown())
modelbundle_handler._HANDLER.close()
print(json.dumps({
    "init_seconds": init_seconds, "warm_seconds": sorted(warm), "answers": answers,
    "paths": sorted({m.__file__.split("/")[2] for m in (numpy, sklearn, modelbundle_handler)}),
    "sys_path": sys.path,
    "compiled": compiled,
    "loaded": sorted(m.__file__ for m in list(sys.modules.values()) if (getattr(m, "__file__", None) or "").startswith("/var/task/")),
}))
"""


def _docker(*args: str, input: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, input=input, timeout=timeout)
    assert result.returncode == 0, f"docker {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def _docker_ready() -> str | None:
    if shutil.which("docker") is None:
        return "no docker CLI"
    probe = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"no Docker engine or no {BASE_IMAGE} image (scripts/build-base-image.sh builds it): {probe.stderr.strip()[:200]}"
    return None


def _event(name: str, **changes: Any) -> dict[str, Any]:
    """An AWS documentation event with some fields replaced (dotted keys reach into requestContext)."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    for key, value in changes.items():
        target = event
        *parents, last = key.split("__")
        for parent in parents:
            target = target[parent]
        target[last] = value
    return event


def _v1(path: str, body: str, content_type: str = "application/json", **extra: Any) -> dict[str, Any]:
    headers = {"Content-Type": content_type, "Host": "gy415nuibc.execute-api.us-east-1.amazonaws.com"}
    multi = {k: [v] for k, v in headers.items()}
    return _event("apigateway-rest-v1.json", path=path, body=body, headers=headers, multiValueHeaders=multi, **extra)


def _v2(name: str, path: str, body: str, content_type: str = "application/json", **extra: Any) -> dict[str, Any]:
    event = _event(name, rawPath=path, rawQueryString="", body=body, **extra)
    event["headers"] = {"content-type": content_type, **{k: v for k, v in event["headers"].items() if k.lower() != "content-type"}}
    event["requestContext"]["http"]["path"] = path
    return event


def _npy(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def exported(lambda_iris: LambdaIris, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``bundle export lambda`` of the iris bundle, through the CLI; (zip, what it printed)."""
    output = tmp_path_factory.mktemp("lambda-zip") / "iris.zip"
    result = subprocess.run(
        [sys.executable, "-m", "modelbundle", "export", "lambda", lambda_iris.tag, "-o", str(output)],
        capture_output=True, text=True, env=lambda_iris.env(), timeout=900,
    )
    assert result.returncode == 0, result.stderr
    return output, result.stdout + result.stderr


@pytest.fixture(scope="module")
def container_run(exported: tuple[Path, str], lambda_iris: LambdaIris) -> Iterator[dict[str, Any]]:
    """Every event through the handler in one cold container; the parsed answers and timings."""
    reason = _docker_ready()
    if reason:
        pytest.skip(reason)
    rows = lambda_iris.rows
    body = json.dumps({"x": rows})
    npy = base64.b64encode(_npy(np.asarray(rows[:7], dtype=np.float64))).decode()
    events = {
        "rest_v1": _v1("/predict", body),
        "http_v1": _event("apigateway-http-v1.json", path="/predict", httpMethod="POST", body=json.dumps(rows[:5]),
                          headers={"Content-Type": "application/json"}, multiValueHeaders={"Content-Type": ["application/json"]}),
        "http_v2": _v2("apigateway-http-v2.json", "/predict", body),
        "http_v2_stage": _v2("apigateway-http-v2.json", "/prod/predict", json.dumps({"x": rows[:3]}), requestContext__stage="prod"),
        "function_url": _v2("function-url.json", "/predict", body),
        "function_url_npy": _v2(
            "function-url.json", "/predict", npy, content_type="application/x-npy", isBase64Encoded=True,
        ) | {"headers": {"content-type": "application/x-npy", "accept": "application/x-npy"}},
        "rest_v1_base64_json": _v1("/predict", base64.b64encode(body.encode()).decode(), isBase64Encoded=True),
        "bad_json": _v2("function-url.json", "/predict", "{not json"),
        "bad_shape": _v1("/predict", json.dumps({"x": [[1.0, 2.0]]})),
        "unknown_route": _v2("apigateway-http-v2.json", "/nope", body),
        "direct": {"api": "predict", "input": {"x": rows}},
        "direct_bad_input": {"api": "predict", "input": {"x": "three"}},
        "direct_unknown_api": {"api": "train", "input": {}},
        "not_an_event": {"Records": []},
    }
    calls = json.dumps({"events": events, "warm_event": "function_url", "warm_calls": WARM_CALLS})
    zip_path, _ = exported
    name = unique_name("lambda")
    _docker("run", "-d", "--rm", "--network", "none", "--name", name, BASE_IMAGE, "sleep", "infinity")
    try:
        _docker("cp", str(zip_path), f"{name}:/tmp/function.zip")
        _docker("exec", name, "python3", "-I", "-c", UNPACK, "/tmp/function.zip")
        # an unprivileged user that owns none of /var/task, like Lambda's sbx_user1051
        run = _docker("exec", "-i", "--user", "993:990", "-w", "/tmp", name, "python3", "-I", "-S", "-c", INVOKE, input=calls)
        ls = _docker("exec", name, "python3", "-I", "-c", "import sys; print(sys.path)").stdout
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
    report: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    report["stderr"] = run.stderr
    report["system_path"] = ls
    warm = report["warm_seconds"]
    print(
        f"\nlambda iris: cold start (import {HANDLER_MODULE}) {report['init_seconds'] * 1000:.0f} ms; "
        f"warm invoke (Function URL, 150 rows) median {warm[len(warm) // 2] * 1000:.2f} ms, min {warm[0] * 1000:.2f} ms"
    )
    yield report


def test_the_zip_fits_and_is_laid_out_for_lambda(exported: tuple[Path, str], lambda_iris: LambdaIris) -> None:
    zip_path, printed = exported
    with zipfile.ZipFile(zip_path) as archive:
        infos = archive.infolist()
    unzipped = sum(i.file_size for i in infos)
    zipped = zip_path.stat().st_size
    print(f"\nlambda iris zip: {zipped / MIB:.1f} MiB zipped, {unzipped / MIB:.1f} MiB unzipped, {len(infos)} entries")
    assert unzipped < 250 * MIB
    assert f"exported {lambda_iris.tag} to {zip_path}" in printed and "handler modelbundle_handler.handler" in printed
    if zipped > 50 * MIB:
        assert "upload it to S3" in printed
    names = [i.filename for i in infos]
    assert names == sorted(names, key=lambda n: (not n.endswith("/"), n))  # directories, then files, each sorted
    assert f"{HANDLER_MODULE}.py" in names
    assert f"{BUNDLE_DIR}/RECORD" in names and f"{BUNDLE_DIR}/bundle.json" in names
    assert any(n.startswith("numpy/") for n in names) and any(n.startswith("modelbundle/") for n in names)
    assert "sklearn/datasets/descr/iris.rst" in names  # data files that look like docs are kept: load_iris reads them
    assert not [n for n in names if n.endswith(".pyi") or n.startswith("bin/")]
    # bytecode: one unchecked-hash pyc per module outside the bundle, and none without its source
    sources = {n for n in names if n.endswith(".py") and not n.startswith(f"{BUNDLE_DIR}/")}
    pycs = {n for n in names if n.endswith(".pyc")}
    assert pycs <= {pyc_name(n) for n in sources}
    assert {pyc_name(f"{HANDLER_MODULE}.py"), pyc_name("modelbundle/__init__.py"), pyc_name("numpy/__init__.py")} <= pycs
    assert len(pycs) > 500 and all(n.endswith(f".{sys.implementation.cache_tag}.pyc") for n in pycs)
    if len(pycs) < len(sources) - 5:  # a few files are not Python 3.11 code; more missing means the limit left them out
        assert "modules are in the zip without bytecode" in printed and unzipped > 240 * MIB
    with zipfile.ZipFile(zip_path) as archive:
        flags = {archive.read(n)[4:8] for n in pycs}
    assert flags == {UNCHECKED_HASH}
    # the bundle is shipped exactly as RECORD lists it: the handler refuses any file it does not list
    assert not [n for n in names if n.startswith(f"{BUNDLE_DIR}/") and ("__pycache__" in n or n.endswith(".pyc"))]
    # of the test suites, only the modules library code imports are left (numpy.testing needs _natype)
    kept_tests = [n for n in names if "/tests/" in n and not n.endswith("/")]
    assert "numpy/_core/tests/_natype.py" in kept_tests and len(kept_tests) < 10, kept_tests
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    modes = {i.filename: i.external_attr >> 16 for i in infos}
    assert {m for n, m in modes.items() if n.endswith("/")} == {0o40755}
    assert {m for n, m in modes.items() if not n.endswith("/")} <= {0o100644, 0o100755}


def test_every_event_type_answers_like_the_model(container_run: dict[str, Any], lambda_iris: LambdaIris) -> None:
    answers = container_run["answers"]
    expected = lambda_iris.predictions
    assert len(set(expected)) == 3
    for label in ("rest_v1", "http_v2", "function_url", "rest_v1_base64_json"):
        result = answers[label]["result"]
        assert result["statusCode"] == 200, (label, result)
        assert result["isBase64Encoded"] is False
        assert result["headers"]["content-type"].startswith("application/json")
        assert json.loads(result["body"]) == expected, label
    assert json.loads(answers["http_v1"]["result"]["body"]) == expected[:5]
    assert json.loads(answers["http_v2_stage"]["result"]["body"]) == expected[:3]
    assert answers["direct"] == {"result": expected}
    # the request id Lambda gives an invocation becomes the response's X-Request-ID
    assert answers["rest_v1"]["result"]["multiValueHeaders"]["x-request-id"] == ["rest_v1"]


def test_base64_bodies_round_trip(container_run: dict[str, Any], lambda_iris: LambdaIris) -> None:
    result = container_run["answers"]["function_url_npy"]["result"]
    assert result["statusCode"] == 200, result
    assert result["isBase64Encoded"] is True and result["headers"]["content-type"] == "application/x-npy"
    answer = np.load(io.BytesIO(base64.b64decode(result["body"])), allow_pickle=False)
    assert answer.tolist() == lambda_iris.predictions[:7]


def test_errors_are_json_with_the_status_of_bundle_serve(container_run: dict[str, Any]) -> None:
    answers = container_run["answers"]
    for label, status, kind in (("bad_json", 400, "bad_request"), ("bad_shape", 422, "invalid_input"), ("unknown_route", 404, "not_found")):
        result = answers[label]["result"]
        assert result["statusCode"] == status, (label, result)
        error = json.loads(result["body"])["error"]
        assert error["type"] == kind and error["message"] and error["request_id"] == label
    assert "/nope" in json.loads(answers["unknown_route"]["result"]["body"])["error"]["message"]
    assert answers["direct_bad_input"]["errorType"] == "InvalidInput"
    assert answers["direct_unknown_api"] == {"errorType": "NotFound", "errorMessage": "no API named 'train'; the APIs are predict"}
    assert answers["not_an_event"]["errorType"] == "BadRequest"


def test_everything_comes_from_var_task(container_run: dict[str, Any]) -> None:
    assert container_run["paths"] == ["task"]  # /var/task/...
    assert not [p for p in container_run["sys_path"] if "packages" in p]
    assert "Traceback" not in container_run["stderr"], container_run["stderr"]


def test_the_zip_imports_every_module_from_its_bytecode(container_run: dict[str, Any], exported: tuple[Path, str]) -> None:
    """In /var/task, which the function's user cannot write, Python loads the shipped pyc instead of compiling.

    The modules Python compiled are the bundle's own (the service's file: RECORD lists no
    bytecode) and those the size limit left without; a zip without bytecode, or with
    bytecode Python ignores, compiles every module here.
    """
    with zipfile.ZipFile(exported[0]) as archive:
        shipped = {f"/var/task/{n}" for n in archive.namelist() if n.endswith(".pyc")}
    compiled = set(container_run["compiled"])
    assert f"/var/task/{BUNDLE_DIR}/src/service.py" in compiled
    assert not [p for p in compiled if f"/var/task/{pyc_name(p.removeprefix('/var/task/'))}" in shipped]
    from_bytecode = [p for p in container_run["loaded"] if p not in compiled]
    assert len(from_bytecode) > 300 and f"/var/task/{HANDLER_MODULE}.py" in from_bytecode
    assert len(from_bytecode) > 2 * len(compiled), (len(from_bytecode), len(compiled))


def test_the_same_bundle_gives_the_same_zip(exported: tuple[Path, str], lambda_iris: LambdaIris, tmp_path: Path) -> None:
    again = export_lambda(lambda_iris.bundle, tmp_path / "again.zip", cache_dir=lambda_iris.cache)
    assert again.bytecode_files > 500
    assert again.path.read_bytes() == exported[0].read_bytes()


def test_a_zip_over_the_limit_is_refused_and_nothing_is_written(lambda_iris: LambdaIris, tmp_path: Path) -> None:
    output = tmp_path / "out" / "iris.zip"
    # export_lambda works in a tempfile.TemporaryDirectory: here, the session's own temp dir, where nothing else runs
    scratch = Path(tempfile.gettempdir())
    assert scratch.is_relative_to(SESSION_DIR)
    before = set(scratch.glob("modelbundle-lambda-*"))
    with pytest.raises(ExportError, match=r"is \d+\.\d MiB unzipped, above Lambda's 10\.0 MiB limit .*--target lambda-image") as info:
        export_lambda(lambda_iris.bundle, output, cache_dir=lambda_iris.cache, limits=LambdaLimits(unzipped=10 * MIB))
    assert "\n" not in str(info.value) and re.search(r"largest: \w+ \d", str(info.value))
    assert not output.parent.exists()  # not even the folder
    assert set(scratch.glob("modelbundle-lambda-*")) <= before


def test_a_lock_without_wheels_for_the_runtime_is_one_clear_error(lambda_iris: LambdaIris, tmp_path: Path) -> None:
    # scipy 1.16 has no wheels for Python 3.10; pip names the first such pin, and a lock made today
    # may hold one before it (annotated-doc 0.0.7 needs Python 3.11), so any pin of the lock will do
    result = subprocess.run(
        [sys.executable, "-m", "modelbundle", "export", "lambda", lambda_iris.tag, "-o", str(tmp_path / "f.zip"), "--python", "3.10"],
        capture_output=True, text=True, env=lambda_iris.env(), timeout=600,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    named = re.search(r"^error: (\S+==\S+) has no wheel for python3\.10 x86_64 \(Amazon Linux 2, glibc 2\.26\)", line)
    assert named, line
    lock = (lambda_iris.bundle.path / "env" / "requirements.lock").read_text()
    assert re.search(rf"^{re.escape(named.group(1))} ", lock, re.M), named.group(1)
    assert list(tmp_path.iterdir()) == []
