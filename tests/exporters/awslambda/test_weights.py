"""Referenced weights on Lambda: fetched into /tmp at cold start, so refused past /tmp's largest size, with the numbers."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.weights import WeightedBundles
from modelbundle.errors import ExportError
from modelbundle.exporters.awslambda import HANDLER_MODULE, LambdaLimits, export_lambda
from modelbundle.exporters.awslambda._entry import handler_source

MIB = 1024 * 1024


def test_weights_beyond_tmp_are_refused_with_the_numbers_and_the_artifact(weighted_bundles: WeightedBundles, tmp_path: Path) -> None:
    bundle = weighted_bundles.first
    limits = LambdaLimits(ephemeral=MIB)  # below the fixture's 3 MiB of weights, so that the check can be reached cheaply
    output = tmp_path / "function.zip"
    with pytest.raises(ExportError) as refused:
        export_lambda(bundle, output, cache_dir=tmp_path / "cache", limits=limits)
    message = str(refused.value)
    assert "\n" not in message
    assert "artifact 'weights'" in message
    assert f"{weighted_bundles.size / MIB:.1f} MiB" in message and "1.0 MiB" in message
    assert re.search(r"bundle containerize \S+", message)
    assert not output.exists() and not (tmp_path / "cache").exists()  # refused before installing or writing anything


def test_a_cold_start_fetches_the_weights_into_its_home_once(weighted_bundles: WeightedBundles, tmp_path: Path) -> None:
    """The zip's handler module, imported as Lambda's init does (a fresh process): the weights are fetched, verified, served.

    The bundle folder stands in for the zip's copy, so no wheels are installed; ``MODELBUNDLE_HOME`` is a
    folder of this test (the handler's default is /tmp/modelbundle, Lambda's only writable place).
    """
    w = weighted_bundles
    task = tmp_path / "task"
    task.mkdir()
    (task / f"{HANDLER_MODULE}.py").write_text(handler_source(str(w.first.path)))
    home = tmp_path / "lambda-tmp"
    invoke = (
        f"import json, {HANDLER_MODULE} as entry; "
        "print(json.dumps(entry.handler({'api': 'digest', 'input': {'prefix': 'sha256:'}}, None)))"
    )
    env = {**os.environ, "MODELBUNDLE_HOME": str(home), "PYTHONPATH": f"{task}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cold = subprocess.run([sys.executable, "-c", invoke], cwd=task, env=env, capture_output=True, text=True, timeout=300)
    assert cold.returncode == 0, cold.stderr
    assert json.loads(cold.stdout.splitlines()[-1]) == f"sha256:{w.sha256}"
    cached = home / "blobs" / "sha256" / w.sha256
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == w.sha256
    assert "fetching weights 'weights'" in cold.stderr  # the init phase's log says what it fetched
    # a warm sandbox's next init (same /tmp): nothing fetched again, even with the origin gone
    w.source.rename(w.source.with_suffix(".away"))
    try:
        warm = subprocess.run([sys.executable, "-c", invoke], cwd=task, env=env, capture_output=True, text=True, timeout=300)
    finally:
        w.source.with_suffix(".away").rename(w.source)
    assert warm.returncode == 0, warm.stderr
    assert "fetching weights" not in warm.stderr
