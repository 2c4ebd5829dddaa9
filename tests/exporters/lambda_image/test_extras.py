"""Extra requirements of an image target (awslambdaric for lambda-image): resolved with real pip, pinned by wheel digest."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from fixtures.cli import SHARED_CACHE, cli
from modelbundle.bundler import Reporter
from modelbundle.bundler._lockfile import read_lock
from modelbundle.errors import ExportError
from modelbundle.exporters.docker import (
    TARGETS,
    ImageExtras,
    ImagePlatform,
    WheelCache,
    image_lock_text,
    image_target,
    resolve_extras,
)

from .conftest import LambdaImage

PLATFORM = ImagePlatform.parse("linux/amd64", "3.11")


def test_awslambdaric_resolves_against_the_lock_and_is_pinned_by_its_wheel(lambda_image: LambdaImage, tmp_path: Path) -> None:
    lock = lambda_image.bundle.path / "env" / "requirements.lock"
    cache = WheelCache(SHARED_CACHE / "wheels")
    extras = resolve_extras(("awslambdaric",), lock, PLATFORM, cache, Reporter(quiet=True), direct=())
    assert extras.moved == ()  # without --relax-transitive-pins nothing moves
    names = [entry.split("==")[0] for entry in extras.added]
    assert "awslambdaric" in names
    locked = {dist.name for dist in read_lock(lock)}
    assert not locked & set(names)  # only what the lock lacks; the lock's own pins stay as they are

    text = image_lock_text(lock, extras, "lambda-image")
    assert text.startswith(lock.read_text())
    assert "# added for --target lambda-image" in text
    (tmp_path / "image.lock").write_text(text)
    image_pins = {dist.name: dist for dist in read_lock(tmp_path / "image.lock")}
    assert set(image_pins) == locked | set(names)
    # the digest is the one of a wheel in the cache, for the image's platform
    by_digest = cache.by_digest()
    wheel = by_digest[sorted(image_pins["awslambdaric"].hashes)[0]]
    assert wheel.name.startswith("awslambdaric-") and "x86_64" in wheel.name
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() in image_pins["awslambdaric"].hashes


def test_a_target_without_extras_asks_nothing(tmp_path: Path) -> None:
    assert resolve_extras((), tmp_path / "missing.lock", PLATFORM, WheelCache(tmp_path), Reporter(quiet=True), direct=()) == ImageExtras()


def test_extras_that_cannot_be_resolved_fail_before_the_build_naming_them(lambda_image: LambdaImage, tmp_path: Path) -> None:
    lock = lambda_image.bundle.path / "env" / "requirements.lock"
    empty = WheelCache(tmp_path / "wheels")
    with pytest.raises(ExportError, match=r"^cannot resolve awslambdaric for linux/amd64 and CPython 3\.11 in the wheel cache \(offline\)"):
        resolve_extras(("awslambdaric",), lock, PLATFORM, empty, Reporter(quiet=True), direct=(), offline=True)


def test_the_targets_are_found_by_name() -> None:
    assert set(TARGETS) == {"docker", "sagemaker", "lambda-image", "ray"}
    assert [image_target(name).name for name in TARGETS] == list(TARGETS)
    assert image_target("lambda-image").extra_requirements == ("awslambdaric",)
    with pytest.raises(ExportError, match=r"^unknown image target 'kserve'; choose one of docker, sagemaker, lambda-image, ray$"):
        image_target("kserve")


def test_the_context_puts_extras_in_the_venv_layer_and_the_handler_in_the_code_layer(lambda_image: LambdaImage, tmp_path: Path) -> None:
    home = lambda_image.bundle.path.parents[2]
    out = tmp_path / "context"
    result = cli("containerize", lambda_image.bundle.tag, "--target", "lambda-image", "--context-only", str(out), "--offline", home=home)
    assert result.returncode == 0, result.stderr
    dockerfile = (out / "Dockerfile").read_text()
    assert '--require-hashes --no-deps -r /build/requirements.lock' in dockerfile
    assert "awslambdaric==" in (out / "requirements.lock").read_text()
    assert any(path.name.startswith("awslambdaric-") for path in (out / "wheels").iterdir())
    handler = (out / "code" / "var" / "task" / "modelbundle_handler.py").read_text()
    assert '"/opt/bundle"' in handler
    final = dockerfile.split("\n\n", 1)[1]
    assert final.index("COPY --from=builder") < final.index("COPY data/") < final.index("COPY code/")
    assert 'ENTRYPOINT ["/opt/venv/bin/python", "-m", "awslambdaric"]' in final and "WORKDIR /var/task" in final
    assert "EXPOSE" not in final and "HEALTHCHECK" not in final


def test_unknown_target_is_one_line(lambda_image: LambdaImage) -> None:
    home = lambda_image.bundle.path.parents[2]
    result = cli("containerize", lambda_image.bundle.tag, "--target", "kserve", home=home)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: unknown image target 'kserve'; choose one of docker, sagemaker, lambda-image, ray"
    assert isinstance(result, subprocess.CompletedProcess)
