"""Layer reuse and reproducibility: what a code change rebuilds, what --no-cache reproduces, --context-only."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from fixtures.bundles import build_in_process
from fixtures.cli import cli, ok
from fixtures.docker import Image, ImageSession
from fixtures.session import PREFIX
from modelbundle.bundler import StoredBundle


def _own_layers(session: ImageSession, image: Image) -> list[str]:
    """The layers the image adds to its base: venv, [data], code."""
    base = session.base_layers()
    assert image.layers[: len(base)] == base
    return image.layers[len(base):]


def test_a_code_change_rebuilds_only_the_code_layer(
    session: ImageSession, iris_image: Image, iris_project: Path, tmp_path: Path
) -> None:
    project = tmp_path / "iris"
    project.mkdir()
    for name in ("service.py", "model.joblib"):
        (project / name).write_bytes((iris_project / name).read_bytes())
    source = (project / "service.py").read_text()
    changed_source = source.replace('"""The predicted class id of each row."""', '"""Class ids, one per row."""')
    assert changed_source != source
    (project / "service.py").write_text(changed_source)
    changed = build_in_process(f"{project}/service.py:IrisClassifier", project, session.home)
    assert changed.manifest.version != iris_image.bundle.manifest.version
    lock = "env/requirements.lock"
    assert (changed.path / lock).read_text() == (iris_image.bundle.path / lock).read_text(), (
        "the lock changed: modelbundle's own source changed during the session, so its wheel (in the lock) did too"
    )

    tag = f"{PREFIX}/iris:{changed.manifest.version}"
    output = ok(session.containerize(changed.tag, tag=tag)).stderr
    image = session.image(tag, changed)

    before, after = _own_layers(session, iris_image), _own_layers(session, image)
    assert len(before) == len(after) == 3  # venv, artifacts, code
    assert after[:2] == before[:2], "the venv and artifact layers were not reused"
    assert after[2] != before[2]
    # and they came from the build cache: only the code layer was built
    assert output.count("Using cache") >= 4, output


def test_no_cache_builds_give_the_same_layers(session: ImageSession, mlp_bundle: StoredBundle, mlp_image: Image) -> None:
    """Twice with --no-cache: every layer the image adds has the same digest, the venv's included."""
    layers = []
    for run in (1, 2):
        tag = f"{PREFIX}/mlp-nocache:{run}"
        output = ok(session.containerize(mlp_bundle.tag, "--no-cache", tag=tag)).stderr
        assert "Using cache" not in output
        layers.append(_own_layers(session, session.image(tag, mlp_bundle)))
    assert len(layers[0]) == 2  # venv, code: the mlp example has no artifacts
    assert layers[0] == layers[1]
    assert layers[0] == _own_layers(session, mlp_image)


def test_context_only_writes_a_context_that_builds_the_same_image(
    session: ImageSession, iris_image: Image, tmp_path: Path
) -> None:
    context = tmp_path / "context"
    output = ok(
        cli("containerize", iris_image.bundle.tag, "--base-image", session.base_image, "--context-only", str(context), home=session.home)
    ).stdout
    assert f"docker build -t {iris_image.bundle.tag} {context.resolve()}" in output
    names = sorted(p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file())
    assert "Dockerfile" in names and "requirements.lock" in names
    assert any(n.startswith("wheels/numpy-") for n in names)
    assert "data/opt/bundle/artifacts/model/model.joblib" in names
    assert "code/opt/bundle/bundle.json" in names and "code/opt/bundle/RECORD" in names

    # the classic builder reads the folder itself (mtimes and modes as written on disk)
    image, _logs = session.engine.images.build(path=str(context), tag=f"{PREFIX}/iris-context:1", network_mode="none", rm=True, forcerm=True)
    session.tags.append(f"{PREFIX}/iris-context:1")
    assert image.attrs["RootFS"]["Layers"] == iris_image.layers
    assert image.attrs["Config"]["Labels"] == session.engine.images.get(iris_image.tag).attrs["Config"]["Labels"]


def test_the_code_layer_has_fixed_times_owners_and_modes(session: ImageSession, iris_image: Image) -> None:
    """Read the image's last layer back from the engine: the bundle at /opt/bundle, nothing of this host."""
    saved = b"".join(session.engine.images.get(iris_image.tag).save(named=False))
    with tarfile.open(fileobj=io.BytesIO(saved)) as image_tar:
        members = {m.name: m for m in image_tar.getmembers()}
        layer_files = [name for name in members if name.endswith("layer.tar")]
        assert layer_files
        code_layer = _layer_with(image_tar, layer_files, "opt/bundle/bundle.json")
    with tarfile.open(fileobj=io.BytesIO(code_layer)) as layer:
        entries = [m for m in layer.getmembers() if m.name.startswith("opt/bundle")]
    assert entries
    assert {m.mtime for m in entries} == {315532800}
    assert {(m.uid, m.gid) for m in entries} == {(0, 0)}
    assert {m.mode & 0o777 for m in entries if m.isfile()} == {0o644}
    assert not any(m.name.startswith("opt/bundle/artifacts") for m in entries), "artifacts belong to their own layer"


def _layer_with(image_tar: tarfile.TarFile, layer_files: list[str], path: str) -> bytes:
    for name in layer_files:
        data = image_tar.extractfile(name)
        assert data is not None
        content = data.read()
        with tarfile.open(fileobj=io.BytesIO(content)) as layer:
            if path in layer.getnames():
                return content
    pytest.fail(f"no layer holds {path}")
