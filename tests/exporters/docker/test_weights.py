"""Referenced weights in images: baked into their own layer (kept across a code change), or fetched at start."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fixtures.cli import cli, ok
from fixtures.docker import Image, ImageSession, running
from fixtures.session import PREFIX
from fixtures.weights import WeightedBundles

CACHE = "/var/lib/modelbundle/blobs/sha256"


@dataclass(frozen=True)
class WeightedImages:
    baked: Image
    baked_code_change: Image
    fetch: Image


def _containerize(session: ImageSession, w: WeightedBundles, bundle_tag: str, tag: str, *args: str) -> None:
    session.tags.append(tag)
    ok(cli("containerize", bundle_tag, "--base-image", session.base_image, "-t", tag, *args, home=w.home))


@pytest.fixture(scope="module")
def weighted_images(session: ImageSession, weighted_bundles: WeightedBundles) -> WeightedImages:
    w = weighted_bundles
    tags = [f"{PREFIX}/weighted:{name}" for name in ("baked", "code-change", "fetch")]
    _containerize(session, w, w.first.tag, tags[0])  # the default: 3 MiB is under the threshold, so baked
    _containerize(session, w, w.code_change.tag, tags[1], "--weights", "baked")
    _containerize(session, w, w.first.tag, tags[2], "--weights", "fetch")
    return WeightedImages(session.image(tags[0], w.first), session.image(tags[1], w.code_change), session.image(tags[2], w.first))


def _own(session: ImageSession, image: Image) -> list[str]:
    base = session.base_layers()
    assert image.layers[: len(base)] == base
    return image.layers[len(base):]


def test_baked_weights_are_a_layer_of_their_own_that_a_code_change_keeps(
    session: ImageSession, weighted_images: WeightedImages
) -> None:
    baked, changed, fetch = (_own(session, image) for image in (weighted_images.baked, weighted_images.baked_code_change, weighted_images.fetch))
    assert len(baked) == len(fetch) + 1  # the fetch image is the same but for the weights' layer
    assert baked[0] == fetch[0]  # one venv layer
    assert baked[1] not in fetch  # the weights' layer
    assert changed[:-1] == baked[:-1] and changed[-1] != baked[-1]  # only the code layer differs


def test_baked_image_serves_its_weights_without_their_source(
    session: ImageSession, weighted_images: WeightedImages, weighted_bundles: WeightedBundles
) -> None:
    with running(session.engine, weighted_images.baked.tag) as container:  # the origin file is not mounted
        container.wait_ready()
        assert container.post("/digest", json={"prefix": "sha256:"}).text == f"sha256:{weighted_bundles.sha256}"


def test_fetch_image_fetches_its_weights_at_start_into_the_cache_volume(
    session: ImageSession, weighted_images: WeightedImages, weighted_bundles: WeightedBundles
) -> None:
    w = weighted_bundles
    origin = str(w.source.parent)
    # file:// weights: the origin folder mounted where the URI names it (an S3 or registry URI needs only a network)
    with running(session.engine, weighted_images.fetch.tag, volumes={origin: {"bind": origin, "mode": "ro"}}) as container:
        container.wait_ready()
        assert container.post("/digest", json={"prefix": ""}).text == w.sha256
        code, out = container.container.exec_run(["sha256sum", f"{CACHE}/{w.sha256}"])
        assert code == 0 and out.decode().split()[0] == w.sha256
