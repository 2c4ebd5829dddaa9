"""Layer reuse and reproducibility: what a code change rebuilds, what --no-cache reproduces, --context-only."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest

from fixtures.bundles import build_in_process
from fixtures.cli import cli, ok
from fixtures.docker import Image, ImageSession
from fixtures.session import PREFIX
from modelbundle.bundler import StoredBundle
from modelbundle.exporters.docker import bundle_digest


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
    # and they came from the build cache: the venv image as it was, the artifacts' layer cached; only the code layer was built
    assert "the venv of this lock is built already" in output and "Using cache" in output and "RUN " not in output, output


def test_no_cache_builds_give_the_same_layers_and_leave_no_builder_unless_kept(
    session: ImageSession, mlp_bundle: StoredBundle, mlp_image: Image
) -> None:
    """Twice with --no-cache: every layer the image adds has the same digest, the venv's included.

    The first build removes the builder stage's images (nothing of it is left, dangling or
    not); the second, with --keep-builder, keeps them, tagged TAG-builder and labelled.
    """
    layers = []
    for run, keep in ((1, ()), (2, ("--keep-builder",))):
        tag = f"{PREFIX}/mlp-nocache:{run}"
        dangling_before = _dangling(session)
        output = ok(session.containerize(mlp_bundle.tag, "--no-cache", *keep, tag=tag))
        assert "Using cache" not in output.stderr
        layers.append(_own_layers(session, session.image(tag, mlp_bundle)))
        builders = session.engine.images.list(all=True, filters={"label": f"ai.modelbundle.builder.for={tag}"})
        new_dangling = {image.id: image.labels for image in session.engine.images.list(filters={"dangling": True})
                        if image.id not in dangling_before}
        # this session's only: other sessions on this engine may be building right now
        ours = {image_id: labels for image_id, labels in new_dangling.items()
                if labels.get("ai.modelbundle.builder.for", "").startswith(PREFIX) or labels.get("ai.modelbundle.bundle.digest") == bundle_digest(mlp_bundle)}
        assert ours == {}, output.stderr
        if not keep:
            assert "removed the builder stage's" in output.stderr and builders == []
        else:
            session.tags.append(f"{tag}-builder")
            assert f"kept the builder stage as {tag}-builder" in output.stdout
            assert [image.tags for image in builders] == [[f"{tag}-builder"]]
            assert builders[0].labels["ai.modelbundle.stage"] == "builder"
            # the builder holds the lock and the wheels; the image does not
            ls = session.engine.containers.run(builders[0].id, entrypoint=["ls", "/build"], remove=True, network_mode="none")
            assert ls.split() == [b"requirements.lock", b"wheels"]
    assert len(layers[0]) == 2  # venv, code: the mlp example has no artifacts
    assert layers[0] == layers[1]
    assert layers[0] == _own_layers(session, mlp_image)


def _dangling(session: ImageSession) -> set[str]:
    return {image.id for image in session.engine.images.list(filters={"dangling": True})}


def test_docker_and_sagemaker_images_of_one_bundle_share_the_venv_layer(
    session: ImageSession, iris_image: Image, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sagemaker image is built on the docker image's venv image: its venv step runs nothing."""
    tag = f"{PREFIX}/iris:{iris_image.bundle.manifest.version}-sagemaker"
    started = time.perf_counter()
    output = ok(session.containerize(iris_image.bundle.tag, "--target", "sagemaker", tag=tag)).stderr
    seconds = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nbuilt {tag} (--target sagemaker) after the docker image in {seconds:.1f} s")
    sagemaker = session.image(tag, iris_image.bundle)
    assert "the venv of this lock is built already" in output and "RUN " not in output, output
    base = len(session.base_layers())
    assert sagemaker.layers[base] == iris_image.layers[base], "the venv layers differ"
    # and the bundle's layers too (the sagemaker target adds no files): only the settings differ
    assert sagemaker.layers == iris_image.layers and sagemaker.id != iris_image.id
    assert session.engine.images.get(tag).attrs["Config"]["User"] == ""  # root, as SageMaker expects


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
