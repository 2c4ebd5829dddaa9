"""Train TinyLM: count which word follows which in corpus.txt and save the counts as model.json beside this file."""

from __future__ import annotations

import itertools
import json
import sys
from collections import Counter
from pathlib import Path

# the service's tokenizer: the model is trained on what it will read
from service import END, tokens

HERE = Path(__file__).resolve().parent
CORPUS_PATH = HERE / "corpus.txt"
MODEL_PATH = HERE / "model.json"


def train(corpus: Path = CORPUS_PATH, path: Path = MODEL_PATH) -> Path:
    followers: dict[str, Counter[str]] = {}
    starts: Counter[str] = Counter()
    for line in corpus.read_text(encoding="utf-8").splitlines():
        words = tokens(line)
        if not words:
            continue
        starts[words[0]] += 1
        for first, second in itertools.pairwise([*words, END]):
            followers.setdefault(first, Counter())[second] += 1
    model = {
        "starts": dict(sorted(starts.items())),
        "followers": {word: dict(sorted(after.items())) for word, after in sorted(followers.items())},
    }
    path.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    out = train(path=Path(sys.argv[1]) if len(sys.argv) > 1 else MODEL_PATH)
    print(f"saved {out}")
