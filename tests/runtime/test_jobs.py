"""Jobs over HTTP against a real uvicorn: submit, status, result, cancel, list, progress, refusals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.services.jobs import Jobs
from modelbundle.runtime import ServeConfig

POLL_LIMIT_S = 30.0


def wait_for(server: Any, path: str, predicate: Any) -> dict[str, Any]:
    """GET ``path`` until ``predicate(document)`` holds; the document (fails after POLL_LIMIT_S)."""
    deadline = time.monotonic() + POLL_LIMIT_S
    while True:
        response = server.get(path)
        document = response.json() if response.status_code == 200 else {"http_status": response.status_code}
        if predicate(document):
            return document
        assert time.monotonic() < deadline, f"{path} never got there; last: {document}"
        time.sleep(0.02)


def finished(document: dict[str, Any]) -> bool:
    return document.get("status") in ("succeeded", "failed", "cancelled")


@pytest.fixture
def server(serve_in_thread: Any, tmp_path: Path) -> Iterator[Any]:
    config = ServeConfig(log_level="warning", jobs_dir=str(tmp_path / "jobs"), job_concurrency=8)
    with serve_in_thread(Jobs, config) as running:
        yield running


def delete(server: Any, path: str) -> Any:
    with server.client() as client:
        return client.delete(path)


def submit(server: Any, api: str, body: Any, **kwargs: Any) -> dict[str, Any]:
    response = server.post(f"/{api}/jobs", json=body, **kwargs)
    assert response.status_code == 202, response.text
    document = response.json()
    assert response.headers["location"] == f"/{api}/jobs/{document['id']}"
    return document


def test_a_job_runs_and_its_result_is_the_apis_answer(server: Any) -> None:
    accepted = submit(server, "double", {"x": [1.5, 2]})
    assert accepted["status"] == "queued" and accepted["created_at"].endswith("Z")
    done = wait_for(server, f"/double/jobs/{accepted['id']}", finished)
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1 and done["progress"] == 1 and done["error"] is None
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]
    result = server.get(f"/double/jobs/{accepted['id']}/result")
    synchronous = server.post("/double", json={"x": [1.5, 2]})
    assert result.status_code == 200
    assert result.content == synchronous.content
    assert result.headers["content-type"] == synchronous.headers["content-type"]


def test_a_job_knows_it_is_one_and_a_request_does_not(server: Any) -> None:
    job = submit(server, "where", {"n": 1})
    wait_for(server, f"/where/jobs/{job['id']}", finished)
    assert server.get(f"/where/jobs/{job['id']}/result").text == f"job {job['id']} attempt 1"
    assert server.post("/where", json={"n": 1}).text == "request"


def test_progress_is_visible_while_it_runs(server: Any) -> None:
    job = submit(server, "steps", {"n": 21})
    running = wait_for(server, f"/steps/jobs/{job['id']}", lambda d: d.get("progress") == 0.5)
    assert running["status"] == "running" and running["message"] == "half of 21"
    assert server.get(f"/steps/jobs/{job['id']}/result").status_code == 409
    server.service.gate.set()
    done = wait_for(server, f"/steps/jobs/{job['id']}", finished)
    assert done["status"] == "succeeded" and done["progress"] == 1
    assert server.get(f"/steps/jobs/{job['id']}/result").json() == 42


def test_result_before_success_is_409_with_the_status_and_unknown_ids_404(server: Any) -> None:
    job = submit(server, "held", {"tag": "a"})
    assert server.service.started.wait(30)
    early = server.get(f"/held/jobs/{job['id']}/result")
    assert early.status_code == 409
    assert early.json()["error"]["type"] == "job_not_finished" and "running" in early.json()["error"]["message"]
    for path in ("/held/jobs/nope", "/held/jobs/nope/result", f"/steps/jobs/{job['id']}"):
        response = server.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["type"] == "not_found"
    with server.client() as client:
        assert client.delete("/held/jobs/nope").status_code == 404
    server.service.gate.set()
    wait_for(server, f"/held/jobs/{job['id']}", finished)
    result = server.get(f"/held/jobs/{job['id']}/result")
    synchronous = server.post("/held", json={"tag": "a"})
    assert result.text == synchronous.text == "A"
    assert result.headers["content-type"] == synchronous.headers["content-type"]


def test_a_failed_job_says_why(server: Any) -> None:
    crashed, refused = submit(server, "refuse", {"n": 3}), submit(server, "refuse", {"n": -1})
    crashed_doc = wait_for(server, f"/refuse/jobs/{crashed['id']}", finished)
    refused_doc = wait_for(server, f"/refuse/jobs/{refused['id']}", finished)
    assert crashed_doc["status"] == "failed" and crashed_doc["error"] == "refuse raised ValueError: cannot do 3"
    assert refused_doc["status"] == "failed" and refused_doc["error"] == "invalid_input: n must not be negative"
    assert server.get(f"/refuse/jobs/{crashed['id']}/result").status_code == 409


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({"x": "nope"}, {}, 422),
        ({"y": [1]}, {}, 422),
        (b"{not json", {"content-type": "application/json"}, 400),
        (b"x=1", {"content-type": "application/x-www-form-urlencoded"}, 415),
        ({"x": [1]}, {"x-callback-url": "ftp://example.invalid/hook"}, 400),
        ({"x": [1]}, {"idempotency-key": "k" * 256}, 400),
    ],
)
def test_a_body_the_api_refuses_is_refused_at_submit_and_never_queued(
    server: Any, body: Any, headers: dict[str, str], status: int
) -> None:
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = server.post("/double/jobs", headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"type", "message", "request_id"}
    if isinstance(body, dict) and not headers:  # the same refusal as the API's own route
        assert server.post("/double", json=body).json()["error"]["message"] == response.json()["error"]["message"]
    assert server.get("/double/jobs").json() == {"jobs": []}


def test_the_same_idempotency_key_returns_the_same_job(server: Any) -> None:
    first = server.post("/double/jobs", json={"x": [1]}, headers={"idempotency-key": "order-7"})
    again = server.post("/double/jobs", json={"x": [1]}, headers={"idempotency-key": "order-7"})
    other = server.post("/double/jobs", json={"x": [1]}, headers={"idempotency-key": "order-8"})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    assert other.json()["id"] != first.json()["id"]
    assert len(server.get("/double/jobs").json()["jobs"]) == 2


def test_listing_is_newest_first_and_filters_by_status(server: Any) -> None:
    ids = [submit(server, "double", {"x": [float(i)]})["id"] for i in range(5)]
    for job_id in ids:
        wait_for(server, f"/double/jobs/{job_id}", finished)
    held = submit(server, "held", {"tag": "x"})
    listed = server.get("/double/jobs").json()["jobs"]
    assert [job["id"] for job in listed] == ids[::-1]
    assert [job["id"] for job in server.get("/double/jobs?limit=2").json()["jobs"]] == ids[::-1][:2]
    assert server.get("/double/jobs?status=failed").json() == {"jobs": []}
    assert [job["id"] for job in server.get("/held/jobs?status=queued&limit=5").json()["jobs"] +
            server.get("/held/jobs?status=running").json()["jobs"]] == [held["id"]]
    assert server.get("/double/jobs?status=done").status_code == 400
    assert server.get("/double/jobs?limit=0").status_code == 400
    server.service.gate.set()


def test_cancelling_a_queued_job_means_it_never_starts(serve_in_thread: Any, tmp_path: Path) -> None:
    config = ServeConfig(log_level="warning", jobs_dir=str(tmp_path / "jobs"), job_concurrency=1)
    with serve_in_thread(Jobs, config) as server:
        first = submit(server, "held", {"tag": "first"})
        assert server.service.started.wait(30)
        second, third = submit(server, "held", {"tag": "second"}), submit(server, "held", {"tag": "third"})
        cancelled = delete(server, f"/held/jobs/{second['id']}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        server.service.gate.set()
        for job in (first, third):  # the third was queued behind the second: the second's turn came and went
            assert wait_for(server, f"/held/jobs/{job['id']}", finished)["status"] == "succeeded"
        assert server.service.seen == ["first", "third"]
        assert server.get(f"/held/jobs/{second['id']}").json()["status"] == "cancelled"
        assert server.get(f"/held/jobs/{second['id']}/result").status_code == 409


def test_cancelling_a_running_async_job_stops_it(server: Any) -> None:
    job = submit(server, "held", {"tag": "a"})
    assert server.service.started.wait(30)
    response = delete(server, f"/held/jobs/{job['id']}")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert server.service.cancelled.wait(30)  # the coroutine itself was cancelled
    assert server.get(f"/held/jobs/{job['id']}").json()["status"] == "cancelled"
    # cancelling again changes nothing
    assert delete(server, f"/held/jobs/{job['id']}").json()["status"] == "cancelled"


def test_cancelling_a_running_sync_job_discards_its_result(server: Any) -> None:
    job = submit(server, "steps", {"n": 5})
    assert server.service.started.wait(30)
    assert delete(server, f"/steps/jobs/{job['id']}").json()["status"] == "cancelled"
    server.service.gate.set()
    assert server.service.finished.wait(30)  # the thread ran to its end...
    after = submit(server, "where", {"n": 0})  # ...and the runner has moved on
    wait_for(server, f"/where/jobs/{after['id']}", finished)
    document = server.get(f"/steps/jobs/{job['id']}").json()
    assert document["status"] == "cancelled" and document["progress"] < 1  # ...but its result was dropped
    assert server.get(f"/steps/jobs/{job['id']}/result").status_code == 409


def test_concurrent_jobs_of_a_batchable_api_share_its_batcher(server: Any) -> None:
    holder = submit(server, "double", {"x": [-1]})
    wait_for(server, f"/double/jobs/{holder['id']}", lambda d: d.get("status") == "running")
    others = [submit(server, "double", {"x": [float(i)]}) for i in range(5)]
    deadline = time.monotonic() + POLL_LIMIT_S
    while server.scrape().value("modelbundle_queue_depth", api="double") < 5:
        assert time.monotonic() < deadline, "the jobs never queued at the batcher"
        time.sleep(0.01)
    server.service.gate.set()
    for i, job in enumerate(others):
        wait_for(server, f"/double/jobs/{job['id']}", finished)
        assert server.get(f"/double/jobs/{job['id']}/result").json() == [2.0 * i]
    assert server.service.batches == [1, 5]


def test_job_routes_are_in_the_openapi_document(server: Any) -> None:
    document = server.get("/openapi.json").json()
    assert {"/double/jobs", "/double/jobs/{job_id}", "/double/jobs/{job_id}/result"} <= set(document["paths"])
    submit_op = document["paths"]["/double/jobs"]["post"]
    assert submit_op["requestBody"] == document["paths"]["/double"]["post"]["requestBody"]
    assert set(document["paths"]["/double/jobs/{job_id}"]) == {"parameters", "get", "delete"}
    assert "JobStatus" in document["components"]["schemas"]


def test_ttl_purges_finished_jobs_and_their_files(serve_in_thread: Any, tmp_path: Path) -> None:
    jobs_dir = tmp_path / "jobs"
    config = ServeConfig(log_level="warning", jobs_dir=str(jobs_dir), job_ttl=3.0)  # long enough to read the result first, even on a busy machine
    with serve_in_thread(Jobs, config) as server:
        big = {"text": "abc" * 30_000}  # above the inline limit: body and result are files beside the database
        job = submit(server, "echo", big)
        assert wait_for(server, f"/echo/jobs/{job['id']}", finished)["status"] == "succeeded"
        assert server.get(f"/echo/jobs/{job['id']}/result").text == big["text"]
        assert {p.name for p in (jobs_dir / "payloads").iterdir()} == {f"{job['id']}.body", f"{job['id']}.result"}
        wait_for(server, f"/echo/jobs/{job['id']}", lambda d: d.get("http_status") == 404)
        assert list((jobs_dir / "payloads").iterdir()) == []
