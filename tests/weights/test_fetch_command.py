"""``bundle weights fetch``: what a Kubernetes init container runs, used on its own."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fixtures.cli import cli, failed, ok
from fixtures.weights import WeightedBundles


def test_fetch_fills_an_empty_cache_from_a_bundle_folder_once(weighted_bundles: WeightedBundles, tmp_path: Path) -> None:
    w = weighted_bundles
    home = tmp_path / "home"
    cached = home / "blobs" / "sha256" / w.sha256
    first = ok(cli("weights", "fetch", "--quiet", w.first.path, home=home))
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == w.sha256
    assert f"1 referenced weights of {w.first.tag}" in first.stdout and str(home / "blobs") in first.stdout
    fetched_at = cached.stat().st_mtime_ns
    # again, with the origin gone: the cache is enough, and nothing is written again
    w.source.rename(w.source.with_suffix(".away"))
    try:
        ok(cli("weights", "fetch", "--quiet", w.first.path, home=home))
    finally:
        w.source.with_suffix(".away").rename(w.source)
    assert cached.stat().st_mtime_ns == fetched_at


def test_fetch_reports_progress_in_bytes_and_takes_a_name(weighted_bundles: WeightedBundles, tmp_path: Path) -> None:
    """Without --quiet and without a terminal: a line as the blob starts, one as it ends; NAME:VERSION from the local store."""
    w = weighted_bundles
    result = ok(cli("weights", "fetch", w.first.path, home=tmp_path / "home"))
    mib = f"{w.size / 2**20:.1f} MiB"
    assert f"fetching weights 'weights': {mib}\n" in result.stderr
    assert re.search(rf"fetching weights 'weights': {mib} in [0-9.]+ s \([0-9.]+ [KMG]iB/s\), verified", result.stderr)
    by_name = ok(cli("weights", "fetch", "--quiet", w.first.tag, home=w.home))
    assert f"1 referenced weights of {w.first.tag}" in by_name.stdout
    assert hashlib.sha256((w.home / "blobs" / "sha256" / w.sha256).read_bytes()).hexdigest() == w.sha256


def test_offline_without_the_blob_and_an_unknown_bundle_are_one_line_errors(weighted_bundles: WeightedBundles, tmp_path: Path) -> None:
    w = weighted_bundles
    home = tmp_path / "home"
    offline = failed(cli("weights", "fetch", w.first.path, home=home, env={"MODELBUNDLE_OFFLINE": "1"}))
    assert "artifact 'weights'" in offline and "not in the cache" in offline and "MODELBUNDLE_OFFLINE" in offline
    assert not (home / "blobs" / "sha256" / w.sha256).exists()
    unknown = failed(cli("weights", "fetch", "no-such-bundle:1", home=home))
    assert "no-such-bundle" in unknown
