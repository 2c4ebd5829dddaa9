"""examples/stream's WebSocket API (``shout``) served by ``bundle serve``: its README's Python
client, run as a user pastes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "stream"


def _websocket_snippet() -> str:
    blocks = [block.split("```", 1)[0] for block in (EXAMPLE / "README.md").read_text().split("```python\n")[1:]]
    (snippet,) = [block for block in blocks if "ws://" in block]
    return snippet


def test_the_readme_websocket_client_prints_each_answer(serve_in_subprocess):
    with serve_in_subprocess(str(EXAMPLE / "service.py") + ":StreamDemo") as server:
        snippet = _websocket_snippet().replace("ws://localhost:3000", server.url.replace("http://", "ws://", 1))
        result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["HELLO", "STREAMS IN BOTH DIRECTIONS"]
