"""examples/tinylm trained and served by ``bundle serve`` (a subprocess), called as its README shows:
the curl lines, and the ``openai`` client lines. Expected words come from the corpus, read here."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import openai
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tinylm"
README_URL = "http://127.0.0.1:3000"


@pytest.fixture(scope="module")
def server(tmp_path_factory, serve_in_subprocess):
    folder = tmp_path_factory.mktemp("tinylm")
    for name in ("service.py", "train.py", "corpus.txt"):
        shutil.copy(EXAMPLE / name, folder / name)
    subprocess.run([sys.executable, str(folder / "train.py")], check=True, capture_output=True, timeout=120)
    with serve_in_subprocess(f"{folder / 'service.py'}:TinyLM") as running:
        yield running


def _corpus_pairs() -> set[tuple[str, str]]:
    words = re.findall(r"[a-z']+|[.,;:!?]", (EXAMPLE / "corpus.txt").read_text().lower())
    return set(itertools.pairwise(words))


def _readme_block(language: str) -> str:
    return (EXAMPLE / "README.md").read_text().split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_generated_words_follow_each_other_in_the_corpus(server) -> None:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0) as client:
        answer = client.completions.create(model="tinylm", prompt="the keeper", max_tokens=12, seed=5)
        again = client.completions.create(model="tinylm", prompt="the keeper", max_tokens=12, seed=5)
    text = answer.choices[0].text
    assert text == again.choices[0].text  # the same seed, the same words
    words = ["keeper", *re.findall(r"[a-z']+|[.,;:!?]", text)]
    assert set(itertools.pairwise(words)) <= _corpus_pairs()
    assert answer.usage is not None and answer.usage.completion_tokens == len(words) - 1


def test_the_readme_curl_lines(server) -> None:
    lines = _readme_block("bash").replace("\\\n", " ").splitlines()
    curls = [line.split("#")[0].replace(README_URL, server.url) for line in lines if line.startswith("curl")]
    outputs = [subprocess.run(["bash", "-c", c], capture_output=True, text=True, timeout=60, check=True).stdout for c in curls]
    models, chat, stream, embeddings = outputs
    assert {m["id"] for m in json.loads(models)["data"]} == {"tinylm", "tinylm-embed"}
    assert json.loads(chat)["object"] == "chat.completion"
    assert stream.rstrip().endswith("data: [DONE]")
    assert [len(d["embedding"]) for d in json.loads(embeddings)["data"]] == [8, 8]


def test_the_readme_python_lines(server) -> None:
    snippet = _readme_block("python").replace(README_URL, server.url)
    result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.splitlines()[-1] == "64"
    assert "CompletionUsage" in result.stdout.splitlines()[0]
