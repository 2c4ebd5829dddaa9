"""Health checks, the OpenAPI document, offline Swagger UI docs and Prometheus metrics."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from fixtures.services.echo import Echo
from fixtures.services.poison import Poisoned
from fixtures.services.slow import Slow
from fixtures.services.typed import Typed
from modelbundle.runtime import ServeConfig

_LINK = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


@pytest.fixture(scope="module", params=[Typed, Echo, Poisoned, Slow], ids=lambda cls: cls.__name__)
def server(request, serve_in_thread):
    with serve_in_thread(request.param, ServeConfig(log_level="critical")) as server:
        yield server


def test_livez_and_readyz_answer_200_once_started(server):
    assert server.get("/livez").json() == {"status": "alive"}
    response = server.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_openapi_is_valid_and_lists_every_api(server):
    response = server.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    validate(spec)
    apis = server.app.service_cls.__apis__
    api_paths = {f"/{name}" for name in apis}
    job_paths = {f"/{name}/jobs{tail}" for name in apis for tail in ("", "/{job_id}", "/{job_id}/result")}
    assert api_paths | job_paths <= set(spec["paths"])  # every API can also run as a job
    for path in set(spec["paths"]) - api_paths - job_paths:  # the server's own endpoints
        assert set(spec["paths"][path]) == {"get"}, path
    for name in apis:
        operation = spec["paths"][f"/{name}"]["post"]
        assert operation["operationId"] == name
        assert "200" in operation["responses"]


def test_docs_are_served_without_any_external_url(server):
    response = server.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    links = _LINK.findall(html)
    assert any(link.endswith(".js") for link in links) and any(link.endswith(".css") for link in links)
    assert "/openapi.json" in html
    with server.client() as client:
        for link in links:
            assert link.startswith("/docs/static/"), link
            asset = client.get(link)
            assert asset.status_code == 200, link
            assert len(asset.content) > 0


def test_metrics_are_prometheus_text_with_api_and_status_labels(serve_in_thread):
    with serve_in_thread(Typed, ServeConfig(log_level="critical")) as server:
        with server.client() as client:
            for n in range(3):
                assert client.post("/rows", json=[[n, 1, 2]]).status_code == 200
            assert client.post("/rows", json=[[1, 2]]).status_code == 422
            assert client.post("/fail", json=13).status_code == 500
            response = client.get("/metrics")

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert "# TYPE modelbundle_requests_total counter" in response.text
        assert "# TYPE modelbundle_request_duration_seconds histogram" in response.text
        scrape = server.scrape()
        assert scrape.value("modelbundle_requests_total", api="rows", status="200") == 3
        assert scrape.value("modelbundle_requests_total", api="rows", status="422") == 1
        assert scrape.value("modelbundle_requests_total", api="fail", status="500") == 1
        assert scrape.value("modelbundle_request_duration_seconds_count", api="rows", status="200") == 3
        assert scrape.value("modelbundle_request_duration_seconds_bucket", api="rows", status="200", le="+Inf") == 3
        assert scrape.value("modelbundle_request_duration_seconds_sum", api="rows", status="200") > 0
        assert scrape.value("modelbundle_in_flight_requests", api="rows") == 0
