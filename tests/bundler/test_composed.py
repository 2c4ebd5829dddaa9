"""A composed service (``depends``) built into one bundle: the pipeline example, and a graph with artifacts.

The example is built with the real ``bundle build`` (its lock: modelbundle and
numpy), then loaded in Python, then served by ``bundle serve`` in a child
process; the second project spreads a graph over two modules whose services
both declare an artifact called ``model``, and needs modelbundle alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import modelbundle
from modelbundle.bundler import verify_record

from ._helpers import REPO, Built, build_tag, bundle_path, manifest, ok, record_lines, serving

PIPELINE_EXAMPLE = REPO / "examples" / "pipeline"
#: the example README's request and the label it documents
SAMPLE = [6.7, 3.0, 5.2, 2.3]

LEXICON = '''\
from pathlib import Path

from modelbundle import Artifact, Service, api


class Lexicon(Service):
    model = Artifact("file", path="words.txt")  # beside this module, not the project's root

    @api
    def lookup(self, word: str) -> int:
        return Path(self.model).read_text().split().index(word)
'''

READER = '''\
from pathlib import Path

from modelbundle import Artifact, Service, api, depends
from stages.lexicon import Lexicon


class Reader(Service):
    name = "reader"
    model = Artifact("file", path="greeting.txt")
    lexicon = depends(Lexicon)

    @api
    async def read(self, word: str) -> str:
        return f"{Path(self.model).read_text().strip()} {await self.lexicon.lookup(word)}"
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The pipeline example, built once with the real CLI from a copy of its folder."""
    root = tmp_path_factory.mktemp("pipeline")
    project = shutil.copytree(PIPELINE_EXAMPLE, root / "project")
    home = root / "home"
    return Built(home, project, build_tag("service.py:Pipeline", home=home, cwd=project))


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A two-module graph whose services both have an artifact named ``model``."""
    project = tmp_path_factory.mktemp("reader")
    (project / "stages").mkdir()
    (project / "stages" / "__init__.py").write_text("")
    (project / "stages" / "lexicon.py").write_text(LEXICON)
    (project / "stages" / "words.txt").write_text("zero one two three\n")
    (project / "app.py").write_text(READER)
    (project / "greeting.txt").write_text("hello\n")
    home = project.parent / f"{project.name}-home"
    return Built(home, project, build_tag("app.py:Reader", home=home, cwd=project))


def test_the_bundle_records_the_graph_beside_the_entry_services_fields(pipeline: Built) -> None:
    data = pipeline.manifest()
    # the entry's fields are those of any bundle: old readers see the entry service
    assert (data["name"], data["service"]) == ("pipeline", "service:Pipeline")
    assert [api["name"] for api in data["apis"]] == ["classify"]
    services = {service["name"]: service for service in data["services"]}
    assert [service["name"] for service in data["services"]][-1] == "pipeline"  # dependencies first, the entry last
    assert set(services) == {"Standardizer", "Classifier", "pipeline"}
    assert {name: service["entry"] for name, service in services.items()} == {
        "Standardizer": "service:Standardizer", "Classifier": "service:Classifier", "pipeline": "service:Pipeline",
    }
    assert services["pipeline"]["dependencies"] == {"standardizer": "Standardizer", "classifier": "Classifier"}
    assert services["Standardizer"]["dependencies"] == services["Classifier"]["dependencies"] == {}
    [predict] = services["Classifier"]["apis"]
    assert (predict["name"], predict["batchable"], predict["max_batch_size"]) == ("predict", True, 64)
    assert [api["name"] for api in services["Standardizer"]["apis"]] == ["standardize"]
    assert services["pipeline"]["apis"] == data["apis"]

    # the requirements of every service: numpy comes from Classifier's module, pinned and hashed in the lock
    assert any(line.startswith("numpy==") for line in data["dependencies"]["requirements"])
    lock = (pipeline.path / "env" / "requirements.lock").read_text()
    assert re.search(r"^numpy==\S+ \\\n    --hash=sha256:", lock, re.M)
    assert (pipeline.path / "src" / "service.py").read_bytes() == (PIPELINE_EXAMPLE / "service.py").read_bytes()
    verify_record(pipeline.path)


def test_every_services_sources_and_artifacts_are_packed_under_their_own_names(reader: Built) -> None:
    data = reader.manifest()
    assert [service["name"] for service in data["services"]] == ["Lexicon", "reader"]
    assert data["services"][0]["entry"] == "stages.lexicon:Lexicon"
    assert sorted(artifact["name"] for artifact in data["artifacts"]) == ["Lexicon.model", "model"]
    path = reader.path
    assert (path / "src" / "stages" / "lexicon.py").read_text() == LEXICON
    assert (path / "artifacts" / "Lexicon.model" / "words.txt").read_text() == "zero one two three\n"
    assert (path / "artifacts" / "model" / "greeting.txt").read_text() == "hello\n"

    # RECORD names every file of the bundle but itself, each with its digest and size
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() and p.name != "RECORD")
    lines = record_lines(path)
    assert [line.split(",")[0] for line in lines] == files
    for line in lines:
        name, digest, size = line.rsplit(",", 2)
        content = (path / name).read_bytes()
        assert (digest, int(size)) == (f"sha256={hashlib.sha256(content).hexdigest()}", len(content))

    # loaded from Python, each service reads its own `model` (the dependency's from beside its module)
    service = modelbundle.load(str(path))
    assert asyncio.run(service.read("two")) == "hello 2"


def test_building_again_gives_the_same_version(pipeline: Built, tmp_path: Path, home: Path) -> None:
    # two fresh builds from two copies into two stores (not the module's build: a change to
    # src/modelbundle in between rightly gives another version)
    elsewhere, other_home = shutil.copytree(pipeline.project, tmp_path / "elsewhere"), tmp_path / "other-home"
    tag = build_tag("service.py:Pipeline", home=home, cwd=pipeline.project)
    assert build_tag("service.py:Pipeline", home=other_home, cwd=elsewhere) == tag
    assert record_lines(bundle_path(other_home, tag), without_manifest=True) == record_lines(
        bundle_path(home, tag), without_manifest=True
    )
    manifests = [manifest(h, tag) for h in (home, other_home)]
    assert manifests[0].pop("created_at") and manifests[1].pop("created_at")
    assert manifests[0] == manifests[1]
    assert manifests[0]["services"] == pipeline.manifest()["services"]


def test_a_one_service_bundle_has_no_services_key(iris: Built) -> None:
    assert "services" not in iris.manifest()
    assert "services" not in json.loads((iris.path / "bundle.json").read_text())


def test_load_answers_like_the_server_also_inside_a_notebooks_loop(pipeline: Built) -> None:
    service = modelbundle.load(str(pipeline.path))
    label = asyncio.run(service.classify(SAMPLE))
    assert label.label == "virginica"  # what the example's README documents

    async def in_a_notebook() -> list[object]:
        # the same loaded service, on a loop that is not the dependencies' (Jupyter runs cells on its own)
        again = await service.classify(SAMPLE)
        several = await asyncio.gather(*(service.classify(row) for row in ([5.1, 3.5, 1.4, 0.2], SAMPLE)))
        return [again, *several]

    again, setosa, virginica = asyncio.run(in_a_notebook())
    assert again == virginica == label
    assert setosa.label == "setosa"


def test_serving_the_bundle_answers_the_documented_request(pipeline: Built) -> None:
    with serving((sys.executable, "-m", "modelbundle"), "pipeline", pipeline.home) as server:
        response = server.post("/classify", json={"measurements": SAMPLE})
        assert response.status_code == 200, response.text
        answer = response.json()
        loaded = asyncio.run(modelbundle.load(str(pipeline.path)).classify(SAMPLE))
        assert answer == loaded.model_dump()
        assert 0.34 < answer["confidence"] <= 1.0

        # a measurement too few: the preprocessing service raised, and the answer names it
        refused = server.post("/classify", json={"measurements": SAMPLE[:3]})
        assert refused.status_code == 500
        assert refused.json()["error"]["message"] == (
            "dependency 'Standardizer' failed in standardize: ValueError: expected 4 measurements, got 3"
        )
        # the model's calls are counted under its own name
        assert server.scrape().value("modelbundle_requests_total", api="Classifier.predict", status="200") == 1
        assert server.scrape().value("modelbundle_batch_size_count", api="Classifier.predict") == 1


def test_the_examples_readme_commands_run_as_written(home: Path, tmp_path: Path) -> None:
    blocks = re.findall(r"```bash\n(.*?)```", (PIPELINE_EXAMPLE / "README.md").read_text(), re.DOTALL)
    assert blocks and all("127.0.0.1:3000" in block or "bundle serve" not in block for block in blocks)
    port = free_port()
    script = "\n".join(blocks).replace("127.0.0.1:3000", f"127.0.0.1:{port}")
    # the reader's shell: `bundle` on the PATH, in the repository's folder; -e: every line must succeed
    env = {
        **os.environ, "MODELBUNDLE_PORT": str(port), "MODELBUNDLE_HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["bash", "-c", f"set -e -o pipefail -x\n{script}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
        start_new_session=True,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr[-6000:]}"
    assert re.search(r'^\{"label":"virginica","confidence":[0-9.]+\}$', result.stdout, re.M), result.stdout
    assert [b.tag.partition(":")[0] for b in modelbundle.list_bundles()] == ["pipeline"]  # what the build line made

    # the Python block, on what the build line made
    [python] = re.findall(r"```python\n(import .*?)```", (PIPELINE_EXAMPLE / "README.md").read_text(), re.DOTALL)
    loaded = ok(subprocess.run([sys.executable, "-c", python], cwd=tmp_path, env=env, capture_output=True, text=True))
    assert re.fullmatch(r"label='virginica' confidence=[0-9.]+\n", loaded.stdout), loaded.stdout
