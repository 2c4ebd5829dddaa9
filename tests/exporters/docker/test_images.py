"""Images of the iris and mlp examples, run by the real engine: answers, user, health, labels, stop."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from fixtures.docker import REPO, Image, ImageSession, running

from .conftest import IRIS_ROWS


def _mlp_in_process(rows: np.ndarray) -> np.ndarray:
    """The example's own service, called in this process."""
    spec = importlib.util.spec_from_file_location("mlp_example_service", REPO / "examples" / "mlp" / "service.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    service = module.MLP()
    previous = os.environ.get("MLP_CALL_OVERHEAD_MS")
    os.environ["MLP_CALL_OVERHEAD_MS"] = "0"
    try:
        service.setup()
    finally:
        if previous is None:
            del os.environ["MLP_CALL_OVERHEAD_MS"]
        else:
            os.environ["MLP_CALL_OVERHEAD_MS"] = previous
    return np.asarray(service.predict(rows))


def test_iris_container_answers_like_the_model_in_process(session: ImageSession, iris_image: Image, iris_project: Path) -> None:
    expected = joblib.load(iris_project / "model.joblib").predict(np.array(IRIS_ROWS)).tolist()
    with running(session.engine, iris_image.tag) as container:
        container.wait_ready()
        answer = container.post("/predict", json={"x": IRIS_ROWS})
        assert answer.status_code == 200, answer.text
        assert answer.json() == expected
        # the HTTP contract is the one `bundle serve` has: a bad shape is a 422, not a crash
        assert container.post("/predict", json={"x": [[1.0, 2.0]]}).status_code == 422
        assert container.post("/predict", json={"x": IRIS_ROWS}).json() == expected


def test_mlp_container_answers_like_the_service_in_process(session: ImageSession, mlp_image: Image) -> None:
    rows = np.random.default_rng(7).standard_normal((5, 64)).astype(np.float32)
    expected = _mlp_in_process(rows)
    with running(session.engine, mlp_image.tag) as container:
        container.wait_ready()
        answer = container.post("/predict", json={"x": rows.tolist()})
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(np.array(answer.json(), dtype=np.float32), expected, rtol=1e-5, atol=1e-6)
        npy = container.post(
            "/predict", content=_npy(rows), headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"}
        )
        assert npy.headers["content-type"] == "application/x-npy"


def test_runs_as_non_root_becomes_healthy_and_stops_cleanly(session: ImageSession, iris_image: Image) -> None:
    with running(session.engine, iris_image.tag) as container:
        container.wait_healthy()
        config = session.engine.images.get(iris_image.tag).attrs["Config"]
        assert config["User"] == "10001:10001"
        # the server process itself (PID 1, exec-form entrypoint), not just the image's setting
        status = container.container.exec_run(["cat", "/proc/1/status"]).output.decode()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert set(uids) == {"10001"}, status
        assert container.container.exec_run(["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"]).output.decode().startswith(
            "/opt/venv/bin/python /opt/venv/bin/bundle serve /opt/bundle"
        )
        # the bundle and the venv are not writable by the server; its home is
        denied = container.container.exec_run(["sh", "-c", "touch /opt/bundle/x || touch /opt/venv/x || echo denied"])
        assert b"denied" in denied.output
        assert container.container.exec_run(["touch", "/home/bundle/scratch"]).exit_code == 0
        # and so is the directory a jobs volume is mounted on (README: docker run -v NAME:/var/lib/modelbundle/jobs)
        assert container.container.exec_run(["touch", "/var/lib/modelbundle/jobs/scratch"]).exit_code == 0
        code, took = container.stop(grace=20)
        logs = container.logs
    assert code == 0, logs
    assert took < 20, f"docker stop took {took:.1f} s: SIGTERM did not end the server"
    assert "Finished server process" in logs


def test_environment_variables_set_port_and_workers(session: ImageSession, mlp_image: Image) -> None:
    with running(session.engine, mlp_image.tag, port=8080, environment={"MODELBUNDLE_PORT": "8080", "MODELBUNDLE_WORKERS": "2"}) as container:
        container.wait_healthy()  # the health check follows the port too
        assert container.post("/predict", json={"x": [[0.0] * 64]}).status_code == 200
        processes = container.container.exec_run(["sh", "-c", "ls /proc | grep -c '^[0-9]'"]).output
        assert "with 2 workers" in container.logs, container.logs
        assert int(processes) >= 3


def test_labels_name_the_bundle(session: ImageSession, iris_image: Image, mlp_image: Image) -> None:
    labels: dict[str, Any] = session.engine.images.get(iris_image.tag).attrs["Config"]["Labels"]
    manifest = iris_image.bundle.manifest
    record = (iris_image.bundle.path / "RECORD").read_bytes()
    assert labels["ai.modelbundle.bundle.name"] == labels["org.opencontainers.image.title"] == "iris"
    assert labels["ai.modelbundle.bundle.version"] == labels["org.opencontainers.image.version"] == manifest.version
    assert labels["ai.modelbundle.bundle.digest"] == "sha256:" + hashlib.sha256(record).hexdigest()
    assert labels["org.opencontainers.image.created"] == manifest.created_at
    assert labels["org.opencontainers.image.base.name"] == session.base_image
    assert labels["ai.modelbundle.bundle.apis"] == "predict"
    assert labels["ai.modelbundle.image.target"] == "docker"  # what bundle export kubernetes checks
    # the builder stage's labels are not on the image; its images are gone, or tagged when kept (the iris image's)
    assert "ai.modelbundle.stage" not in labels and "ai.modelbundle.builder.for" not in labels
    assert session.engine.images.list(all=True, filters={"label": f"ai.modelbundle.builder.for={mlp_image.tag}"}) == []
    kept = session.engine.images.list(all=True, filters={"label": f"ai.modelbundle.builder.for={iris_image.tag}"})
    assert [image.tags for image in kept] == [[f"{iris_image.tag}-builder"]]
    # what decides the image, so that the same command again only tags it
    assert len(labels["ai.modelbundle.image.key"]) == 64


def test_the_image_holds_exactly_the_bundle_and_its_lock(session: ImageSession, iris_image: Image) -> None:
    """Every bundle file at /opt/bundle, unchanged, and the venv has exactly the locked distributions."""
    script = (
        "import importlib.metadata as m, json; "
        "print(json.dumps(sorted(f'{d.metadata[\"Name\"].lower().replace(\"_\", \"-\")}=={d.version}' for d in m.distributions())))"
    )
    output = session.engine.containers.run(
        iris_image.tag, entrypoint=["/opt/venv/bin/python", "-c", script], remove=True, network_mode="none"
    )
    installed = set(json.loads(output))
    lock = (iris_image.bundle.path / "env" / "requirements.lock").read_text()
    locked = {line.split(" ")[0].lower().replace("_", "-") for line in lock.splitlines() if "==" in line and not line[0].isspace()}
    assert installed == locked
    record = session.engine.containers.run(iris_image.tag, entrypoint=["cat", "/opt/bundle/RECORD"], remove=True)
    assert record == (iris_image.bundle.path / "RECORD").read_bytes()


def test_the_venv_has_unchecked_bytecode_and_no_test_suites_but_what_library_code_imports(
    session: ImageSession, iris_image: Image
) -> None:
    script = """
import importlib.util, json, pathlib, sys, numpy, scipy, sklearn
site = pathlib.Path(numpy.__file__).parents[1]
import numpy.testing
sources = [p for p in site.rglob("*.py")]
flags = set()
for source in sources:
    pyc = pathlib.Path(importlib.util.cache_from_source(str(source)))
    flags.add(int.from_bytes(pyc.read_bytes()[4:8], "little") if pyc.is_file() else -1)
print(json.dumps({
    "flags": sorted(flags),
    "test_dirs": sorted(str(p.relative_to(site)) for p in site.rglob("tests") if p.is_dir()),
    "kept": sorted(str(p.relative_to(site)) for p in site.rglob("tests/*.py")),
}))
"""
    output = session.engine.containers.run(
        iris_image.tag, entrypoint=["/opt/venv/bin/python", "-c", script], remove=True, network_mode="none"
    )
    found = json.loads(output)
    # PEP 552 flags: 1 is an unchecked hash; none is timestamped (0) or checked against its source (3).
    # (-1: no pyc, for a file that is not valid Python 3, which the compiler skips as pip does)
    assert 1 in found["flags"] and not {0, 3} & set(found["flags"]), found["flags"]
    # the suites of numpy, scipy and scikit-learn (hundreds of modules) go; a test folder is left only for a
    # module that library code imports (which ones depends on the versions: scipy.special's data script
    # imports its test_hyp2f1, older numpy.testing imports _core/tests/_natype), and numpy.testing imports
    assert len(found["kept"]) < 10, found["kept"]
    assert all(any(kept.startswith(folder + "/") for kept in found["kept"]) for folder in found["test_dirs"]), found


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
