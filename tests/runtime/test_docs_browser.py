"""``/docs`` in a real browser: headless Chromium renders Swagger UI from the server's own files,
lists every API of the OpenAPI 3.1 document, and "Try it out" -> "Execute" on the iris example's
predict API shows the model's prediction, with no request leaving the loopback server. The
streaming example's page lists its streams with both of their media types.

A screenshot of the page is kept as a test artifact (the session's ``artifacts/``; the session's
last line prints where)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.browser import chromium_page
from fixtures.session import ARTIFACTS

IRIS_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "iris"
STREAM_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "stream"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
PREDICT = "#operations-default-predict"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
#: the paths Swagger UI shows, without the zero-width breaks it puts in long ones
SHOWN_PATHS = "[...document.querySelectorAll('.opblock-summary-path')].map(e => e.innerText.replace(/\\u200b/g, ''))"


@pytest.fixture(scope="module")
def iris_server(tmp_path_factory, serve_in_subprocess):
    project = tmp_path_factory.mktemp("iris")
    for name in ("service.py", "train.py"):
        shutil.copyfile(IRIS_EXAMPLE / name, project / name)
    subprocess.run([sys.executable, "train.py"], cwd=project, check=True, capture_output=True)
    with serve_in_subprocess(f"{project / 'service.py'}:IrisClassifier") as server:
        yield server


def _click(selector: str) -> str:
    return f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return false; e.click(); return true; }})()"


async def _try_predict_in_the_page(url: str, profile: Path, screenshot: Path) -> tuple[list[str], int, str, list[str], str]:
    async with chromium_page(profile) as page:
        await page.open(url + "/docs")
        await page.wait_for(f"{SHOWN_PATHS}.includes('/predict')", "Swagger UI listing the APIs")
        shown = await page.evaluate(SHOWN_PATHS)

        await page.wait_for(_click(f"{PREDICT} .opblock-summary-control") + f" || {_click(f'{PREDICT} .opblock-summary')}", "opening predict")
        await page.wait_for(_click(f"{PREDICT} .try-out__btn"), 'clicking "Try it out"')
        textarea = f"{PREDICT} textarea.body-param__text"
        await page.wait_for(f"(() => {{ const t = document.querySelector({json.dumps(textarea)}); if (!t) return false; t.focus(); t.select(); return true; }})()", "the request body editor")
        await page.type_text(json.dumps({"x": ROWS}))
        await page.wait_for(_click(f"{PREDICT} .execute"), 'clicking "Execute"')

        live = f"{PREDICT} .live-responses-table .response"
        status = await page.wait_for(f"document.querySelector({json.dumps(live + ' .response-col_status')})?.innerText.trim()", "the response")
        body = await page.wait_for(f"document.querySelector({json.dumps(live + ' .response-col_description pre')})?.innerText", "the response body")
        await page.screenshot(screenshot)
        error = await page.evaluate("document.body.innerText.includes('Unable to render this definition') ? document.body.innerText : ''")
        return shown, int(status), body, list(page.requests), error


def test_docs_in_chromium_lists_every_api_and_try_it_out_shows_a_prediction(iris_server, tmp_path):
    openapi = iris_server.get("/openapi.json").json()
    expected = iris_server.post("/predict", json={"x": ROWS}).json()
    assert len(set(expected)) > 1  # rows of different species: a prediction that shows the model ran
    screenshot = ARTIFACTS / "docs-iris.png"

    shown, status, body, requests, error = asyncio.run(_try_predict_in_the_page(iris_server.url, tmp_path / "profile", screenshot))
    print(f"screenshot of /docs after Execute: {screenshot}")

    assert error == ""
    # every operation of the document (a path with GET and DELETE is shown twice)
    operations = [path for path, item in openapi["paths"].items() for method in item if method in HTTP_METHODS]
    assert sorted(shown) == sorted(operations)
    assert status == 200
    assert json.loads(body) == expected
    # the page, its scripts and styles, the document and the call: all from the server on loopback
    assert requests, "the page made no request"
    outside = [url for url in requests if not url.startswith(iris_server.url + "/") and not url.startswith("data:")]
    assert outside == [], outside
    assert f"{iris_server.url}/openapi.json" in requests and f"{iris_server.url}/predict" in requests
    assert screenshot.stat().st_size > 10_000  # a rendered page, not a blank one


async def _stream_operations_in_the_page(url: str, profile: Path) -> tuple[list[str], list[str], str]:
    """The paths the page lists, and the media types it offers for generate's answer."""
    generate = "#operations-default-generate"
    async with chromium_page(profile) as page:
        await page.open(url + "/docs")
        await page.wait_for(f"{SHOWN_PATHS}.includes('/generate')", "Swagger UI listing the APIs")
        shown = await page.evaluate(SHOWN_PATHS)
        await page.wait_for(_click(f"{generate} .opblock-summary-control") + f" || {_click(f'{generate} .opblock-summary')}", "opening generate")
        options = f"[...document.querySelectorAll({json.dumps(generate + ' .responses-wrapper select option')})].map(o => o.value)"
        media_types = await page.wait_for(f"(() => {{ const o = {options}; return o.length ? o : false; }})()", "the answer's media types")
        error = await page.evaluate("document.body.innerText.includes('Unable to render this definition') ? document.body.innerText : ''")
        return shown, media_types, error


def test_docs_in_chromium_lists_the_streams_with_both_media_types(serve_in_subprocess, tmp_path):
    with serve_in_subprocess(f"{STREAM_EXAMPLE / 'service.py'}:StreamDemo") as server:
        openapi = server.get("/openapi.json").json()
        shown, media_types, error = asyncio.run(_stream_operations_in_the_page(server.url, tmp_path / "profile"))
    assert error == ""
    operations = [path for path, item in openapi["paths"].items() for method in item if method in HTTP_METHODS]
    assert sorted(shown) == sorted(operations) and {"/generate", "/walk", "/shout"} <= set(shown)
    assert {"text/event-stream", "application/x-ndjson"} <= set(media_types), media_types
