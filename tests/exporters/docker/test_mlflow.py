"""An MLflow model's bundle in a container: built once, answers like mlflow.pyfunc, batches concurrent requests."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.cli import SHARED_CACHE, ok
from fixtures.docker import ImageSession, running
from fixtures.mlflow_models import pyfunc_predict
from fixtures.session import PREFIX
from modelbundle.bundler import LocalStore, build_mlflow, resolve_build_options

from .conftest import IRIS_ROWS


@pytest.fixture(scope="module")
def mlflow_image(session: ImageSession, mlflow_tensor_model):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELBUNDLE_CACHE_DIR", str(SHARED_CACHE))
        options = resolve_build_options({"quiet": True}, session.home)
        bundle = build_mlflow(str(mlflow_tensor_model), options, LocalStore(session.home))
    tag = f"{PREFIX}/{bundle.manifest.name}:{bundle.manifest.version}"
    ok(session.containerize(bundle.tag, tag=tag))
    return tag


def test_the_mlflow_container_answers_like_pyfunc_and_batches(session: ImageSession, mlflow_image, mlflow_tensor_model):
    expected = pyfunc_predict(mlflow_tensor_model, np.array(IRIS_ROWS))
    with running(session.engine, mlflow_image) as container:
        container.wait_ready()
        answer = container.post("/predict", json={"inputs": IRIS_ROWS})
        assert answer.status_code == 200, answer.text
        assert answer.json() == expected
        before = container.scrape()
        responses = container.post_concurrently("/predict", [{"inputs": [IRIS_ROWS[i % 3]]} for i in range(60)])
        assert [r.json() for r in responses] == [[expected[i % 3]] for i in range(60)]
        after = container.scrape()
        rows = after.value("modelbundle_batch_size_sum", api="predict") - before.value("modelbundle_batch_size_sum", api="predict")
        calls = after.value("modelbundle_batch_size_count", api="predict") - before.value("modelbundle_batch_size_count", api="predict")
        assert rows == 60 and calls < 60, (rows, calls)
        # the image carries no mlflow: the model loaded without it
        probe = container.container.exec_run(["/opt/venv/bin/python", "-c", "import importlib.util as u; print(u.find_spec('mlflow'))"])
        assert probe.output.decode().strip() == "None", probe.output
