"""Every route of every example, as its OpenAPI document lists them, asks for the API key.

Each example (trained first where it has a train.py) runs under ``bundle serve`` with
MODELBUNDLE_API_KEYS set. The routes come from the server's own /openapi.json (open by
default), so an API, a job route or a /v1 route added later is checked too: without a key
and with a wrong one each answers 401; with the right one, anything but 401.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TARGETS = {"iris": "IrisClassifier", "mlp": "MLP", "stream": "StreamDemo", "text": "TextSentiment", "tinylm": "TinyLM"}
KEY = "examples-key-4c1d"
OPEN = {"/livez", "/readyz", "/metrics", "/docs", "/openapi.json"}


@pytest.mark.parametrize("example", sorted(TARGETS))
def test_every_documented_route_needs_the_key(example: str, tmp_path: Path, serve_in_subprocess: Any) -> None:
    folder = tmp_path / example
    shutil.copytree(EXAMPLES / example, folder)
    if (folder / "train.py").exists():
        subprocess.run([sys.executable, "train.py"], cwd=folder, check=True, capture_output=True, timeout=300)
    target = f"{folder / 'service.py'}:{TARGETS[example]}"
    with serve_in_subprocess(target, "--jobs-dir", str(tmp_path / "jobs"), env={"MODELBUNDLE_API_KEYS": KEY}) as server:
        document = server.get("/openapi.json").json()
        routes = [
            (method.upper(), re.sub(r"\{[^}]+\}", "x", path))
            for path, operations in document["paths"].items()
            for method in operations
            if method in ("get", "post", "delete") and path not in OPEN
        ]
        assert any(method == "POST" for method, _ in routes), routes
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for method, path in routes:
                assert client.request(method, path).status_code == 401, (method, path)
                assert client.request(method, path, headers={"X-API-Key": KEY + "x"}).status_code == 401, (method, path)
                answered = client.request(method, path, headers={"Authorization": f"Bearer {KEY}"}, json={})
                assert answered.status_code != 401, (method, path, answered.text)
