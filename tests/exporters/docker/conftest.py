"""Fixtures for the containerize tests: the real engine, bundles built once, images built once per session.

The engine session and the iris image are in ``tests/exporters/conftest.py`` (the Kubernetes tests use them too).

Images are built with the real ``bundle containerize`` command on the base
image made by ``scripts/build-base-image.sh``. Builds share the session's lock
and wheel cache with the other tests, so each set of requirements is locked once.
Every tag is under the session's ``PREFIX``, so two sessions on one machine never
share an image, and the end of the session removes what is left of them.
"""

from __future__ import annotations

import pytest

from fixtures.bundles import build_in_process
from fixtures.cli import ok
from fixtures.docker import REPO, Image, ImageSession
from fixtures.session import PREFIX
from modelbundle.bundler import StoredBundle

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


@pytest.fixture(scope="session")
def mlp_bundle(session: ImageSession) -> StoredBundle:
    return build_in_process(f"{REPO}/examples/mlp/service.py:MLP", REPO / "examples" / "mlp", session.home)


@pytest.fixture(scope="session")
def mlp_image(session: ImageSession, mlp_bundle: StoredBundle) -> Image:
    tag = f"{PREFIX}/mlp:{mlp_bundle.manifest.version}"
    ok(session.containerize(mlp_bundle.tag, tag=tag))
    return session.image(tag, mlp_bundle)
