"""Referenced weights on Lambda: fetched into /tmp at cold start, so refused past /tmp's largest size, with the numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fixtures.weights import WeightedBundles
from modelbundle.errors import ExportError
from modelbundle.exporters.awslambda import LambdaLimits, export_lambda

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
