"""User mistakes and broken surroundings: one clear line, exit 1, and nothing half-written."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from fixtures.cli import cli, failed
from fixtures.docker import Image, ImageSession
from fixtures.session import PREFIX
from modelbundle.bundler import StoredBundle


def leftovers(home: Path) -> list[str]:
    tmp = home / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else []


def test_unknown_bundle(session: ImageSession) -> None:
    assert "no bundle nosuch:1" in failed(cli("containerize", "nosuch:1", home=session.home))


def test_unsupported_platform(session: ImageSession, mlp_bundle: StoredBundle) -> None:
    error = failed(cli("containerize", mlp_bundle.tag, "--platform", "windows/amd64", home=session.home))
    assert "unsupported platform 'windows/amd64'" in error and "linux/arm64" in error


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--push", "--context-only", "ctx"], "--context-only does not build one"),
        (["-t", "Not A Tag"], "is not an image reference (it is empty or has spaces)"),
        (["--base-image", "UPPER/case"], "(repository names are lowercase)"),
    ],
)
def test_usage_errors(session: ImageSession, mlp_bundle: StoredBundle, args: list[str], message: str) -> None:
    result = cli("containerize", mlp_bundle.tag, *args, home=session.home)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_context_only_refuses_a_folder_with_files(session: ImageSession, mlp_bundle: StoredBundle, tmp_path: Path) -> None:
    folder = tmp_path / "ctx"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep me")
    error = failed(cli("containerize", mlp_bundle.tag, "--context-only", str(folder), home=session.home))
    assert "is not an empty folder" in error
    assert [p.name for p in folder.iterdir()] == ["mine.txt"]


def test_missing_wheels_are_named_before_any_build(
    session: ImageSession, mlp_bundle: StoredBundle, mlp_image: Image, tmp_path: Path
) -> None:
    """Offline, for arm64: the cache has no aarch64 wheels; every compiled pin is named, pure ones are not."""
    # mlp_image: its build put the amd64 wheels, the pure ones among them, in the session's (fresh) wheel cache
    result = cli(
        "containerize", mlp_bundle.tag, "--platform", "linux/arm64", "--offline", "--context-only", str(tmp_path / "ctx"),
        home=session.home,
    )
    error = failed(result)
    assert "no wheel for linux/arm64 and CPython 3.11 in the wheel cache (offline)" in error
    for compiled in ("numpy==", "pydantic-core==", "orjson=="):
        assert compiled in error
    for pure in ("click==", "starlette=="):
        assert pure not in error
    assert not (tmp_path / "ctx").exists()
    assert leftovers(session.home) == []


def test_engine_unreachable(session: ImageSession, mlp_bundle: StoredBundle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert "cannot reach the Docker engine" in failed(cli("containerize", mlp_bundle.tag, home=session.home))


def test_base_image_that_cannot_be_pulled(session: ImageSession, mlp_bundle: StoredBundle) -> None:
    # a registry on a closed loopback port: refused at once, like any pull on this machine
    error = failed(cli("containerize", mlp_bundle.tag, "--base-image", "127.0.0.1:1/nope:1", home=session.home))
    assert "the base image 127.0.0.1:1/nope:1 is not on this machine and could not be pulled" in error
    assert "--base-image" in error


def test_a_failing_build_is_reported_in_one_line(session: ImageSession, mlp_bundle: StoredBundle) -> None:
    """A base image without a shell: the builder's RUN fails; the engine's message reaches the user."""
    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w") as tar:
        info = tarfile.TarInfo("etc")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    base = f"{PREFIX}/no-shell:1"
    session.engine.api.import_image_from_data(empty.getvalue(), repository=base.split(":")[0], tag="1")
    session.tags.append(base)
    result = cli("containerize", mlp_bundle.tag, "--base-image", base, "-t", f"{PREFIX}/broken:1", home=session.home)
    error = failed(result)
    assert error.startswith("error: the image build failed:")
    assert "/bin/sh" in result.stderr or "no such file" in result.stderr.lower()
    assert leftovers(session.home) == []
    # the failed builder stage's finished steps (COPY of the lock and wheels) were removed too
    base_id = session.engine.images.get(base).id
    assert [image["Id"] for image in session.engine.api.images(all=True) if image.get("ParentId") == base_id] == []
