"""``bundle push/pull --with-weights``: referenced weights stay out of a bundle's blobs, move by digest on request."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fixtures.cli import cli, ok
from fixtures.weights import WeightedBundles

from ._moto_fixture import MotoS3, moto_s3_fixture  # noqa: F401 - the fixture is used by name
from ._registry_fixture import Registry, registry_fixture  # noqa: F401 - the fixture is used by name


def _pull_into_fresh_home(ref: str, home: Path) -> str:
    return ok(cli("pull", "--with-weights", "--quiet", ref, home=home)).stdout


def test_file_store_push_sends_weights_only_with_the_flag_once_and_pull_fills_the_cache(
    weighted_bundles: WeightedBundles, tmp_path: Path
) -> None:
    w = weighted_bundles
    root = tmp_path / "store"
    store = f"file://{root}"
    blob = root / "blobs" / "sha256" / w.sha256
    ok(cli("push", w.first.tag, store, home=w.home))
    assert root.joinpath("bundles").is_dir() and not blob.exists()  # the bundle, without its weights
    pushed = ok(cli("push", "--with-weights", w.first.tag, store, home=w.home)).stdout
    assert "weights: 1 blob(s) sent" in pushed
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == w.sha256
    sent_once = blob.stat().st_mtime_ns
    # another bundle with the same weights: its own blobs go, the weights blob is not written again
    again = ok(cli("push", "--with-weights", w.code_change.tag, store, home=w.home)).stdout
    assert "weights: 0 blob(s) sent" in again and "1 already there" in again
    assert blob.stat().st_mtime_ns == sent_once
    # the bundle itself still names the weights' own URI: nothing was rewritten
    assert w.source.as_uri() in (w.first.path / "bundle.json").read_text()

    fresh = tmp_path / "fresh-home"
    out = ok(cli("pull", "--with-weights", f"{store}/{w.first.manifest.name}:{w.first.manifest.version}", home=fresh)).stdout
    assert "weights: 1 blob(s) fetched" in out
    cached = fresh / "blobs" / "sha256" / w.sha256
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == w.sha256
    # a store blob that does not hash to its digest is refused and nothing reaches the cache
    blob.write_bytes(b"tampered" + blob.read_bytes()[8:])
    other = tmp_path / "other-home"
    result = cli("pull", "--with-weights", f"{store}/{w.first.manifest.name}:{w.first.manifest.version}", home=other)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"expected sha256:{w.sha256}" in result.stderr
    assert not (other / "blobs" / "sha256" / w.sha256).exists()


def test_registry_keeps_weights_in_one_repository_and_sends_them_once(
    weighted_bundles: WeightedBundles, registry: Registry, tmp_path: Path
) -> None:
    w = weighted_bundles
    store = registry.url()
    ok(cli("push", w.first.tag, store, home=w.home))
    assert f"sha256:{w.sha256}" not in registry.blob_digests()
    ok(cli("push", "--with-weights", w.first.tag, store, home=w.home))
    ok(cli("push", "--with-weights", w.code_change.tag, store, home=w.home))
    uploads = [r for r in registry.requests("PUT") if "/weights/sha256/blobs/uploads/" in r.path and w.sha256 in r.path]
    assert len(uploads) == 1  # the second bundle's push found the blob there
    assert w.sha256 in registry.tags("models/weights/sha256")  # a manifest keeps the blob from garbage collection
    # the bundles' listing does not show the weights' repository
    listed = ok(cli("list", "--remote", store, home=w.home)).stdout
    assert "weights" not in listed
    fresh = tmp_path / "fresh-home"
    w.source.rename(w.source.with_suffix(".away"))  # from the registry, not from the URI
    try:
        _pull_into_fresh_home(f"{store}/{w.first.manifest.name}:{w.first.manifest.version}", fresh)
    finally:
        w.source.with_suffix(".away").rename(w.source)
    assert hashlib.sha256((fresh / "blobs" / "sha256" / w.sha256).read_bytes()).hexdigest() == w.sha256


def test_s3_store_keeps_weights_by_digest_sends_them_once_and_pull_takes_them_from_there(
    weighted_bundles: WeightedBundles, moto_s3: MotoS3, tmp_path: Path
) -> None:
    w = weighted_bundles
    store = moto_s3.url("team")
    env = {"AWS_ENDPOINT_URL": moto_s3.endpoint_url}
    weights_key = f"team/blobs/sha256/{w.sha256}"
    ok(cli("push", w.first.tag, store, home=w.home, env=env))
    assert weights_key not in set(moto_s3.keys())  # a plain push leaves the weights out
    assert "weights: 1 blob(s) sent" in ok(cli("push", "--with-weights", w.first.tag, store, home=w.home, env=env)).stdout
    again = ok(cli("push", "--with-weights", w.code_change.tag, store, home=w.home, env=env)).stdout
    assert "weights: 0 blob(s) sent" in again and "1 already there" in again
    body = moto_s3.client().get_object(Bucket=moto_s3.bucket, Key=weights_key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == w.sha256

    fresh = tmp_path / "fresh-home"
    w.source.rename(w.source.with_suffix(".away"))  # from the bucket, not from the URI
    try:
        out = ok(cli("pull", "--with-weights", f"{store}/{w.first.manifest.name}:{w.first.manifest.version}", home=fresh, env=env)).stdout
    finally:
        w.source.with_suffix(".away").rename(w.source)
    assert "weights: 1 blob(s) fetched" in out
    assert hashlib.sha256((fresh / "blobs" / "sha256" / w.sha256).read_bytes()).hexdigest() == w.sha256
