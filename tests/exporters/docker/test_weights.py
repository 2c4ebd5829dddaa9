"""Referenced weights in images: baked into their own layer (kept across a code change), or fetched at start."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import pytest

from fixtures.cli import SHARED_CACHE, cli, ok
from fixtures.docker import Image, ImageSession, running
from fixtures.session import PREFIX
from fixtures.weights import WeightedBundles
from modelbundle.bundler import LocalStore, build, resolve_build_options

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


SHARDED = '''\
from modelbundle import Artifact, Service, api


class Sharded(Service):
    """Serves files of a directory it references by URI."""

    shards = Artifact("dir", uri={uri!r})

    @api
    def read(self, name: str) -> str:
        return (self.shards / name).read_text()
'''


def test_a_directory_reference_is_baked_and_assembled_in_the_image(
    session: ImageSession, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A "dir" reference: each file a blob layer; at start the server (not root) assembles the folder from them."""
    project, home = tmp_path_factory.mktemp("sharded-project"), tmp_path_factory.mktemp("sharded-home")
    origin = tmp_path_factory.mktemp("shards-origin")
    files = {"config.json": '{"layers": 2}', "sub/shard-0.txt": os.urandom(8).hex()}
    for name, text in files.items():
        (origin / name).parent.mkdir(parents=True, exist_ok=True)
        (origin / name).write_text(text)
    (project / "service.py").write_text(SHARDED.format(uri=origin.as_uri()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELBUNDLE_CACHE_DIR", str(SHARED_CACHE))
        options = resolve_build_options({"service": f"{project}/service.py:Sharded", "quiet": True, "fetch_digest": True}, project)
        bundle = build(options, LocalStore(home))
    tag = f"{PREFIX}/sharded:baked"
    session.tags.append(tag)
    ok(cli("containerize", bundle.tag, "--base-image", session.base_image, "-t", tag, home=home))
    shutil.rmtree(origin)  # served from the image alone
    with running(session.engine, tag) as container:
        container.wait_ready()
        for name, text in files.items():
            assert container.post("/read", json={"name": name}).text == text
        code, out = container.container.exec_run(["sh", "-c", f"ls {CACHE.removesuffix('/sha256')}/dirs/*/sub"])
        assert code == 0 and out.decode().split() == ["shard-0.txt"], out
