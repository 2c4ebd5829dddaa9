"""The acceptance path: train the iris example, build it, list it, rebuild it, freeze its env, serve it from there."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import re
import shutil
import subprocess
from pathlib import Path

import joblib
from sklearn.datasets import load_iris

from modelbundle import __version__
from modelbundle.bundler import verify_record

from ._helpers import (
    Built,
    build_tag,
    bundle_path,
    cli,
    failed,
    manifest,
    ok,
    record_lines,
    serving,
)

LAYOUT = [
    "RECORD",
    "artifacts/model/artifact.json",
    "artifacts/model/model.joblib",
    "bundle.json",
    "env/python_version",
    "env/requirements.in",
    "env/requirements.lock",
    "openapi.json",
    "src/service.py",
]


def _version(distribution: str) -> str:
    return importlib.metadata.version(distribution)


def test_build_stores_the_bundle_under_its_tag(iris: Built) -> None:
    assert re.fullmatch(r"iris:[0-9a-f]{12}", iris.tag)
    assert (iris.home / "bundles" / "iris").is_dir()
    assert [p.name for p in (iris.home / "bundles" / "iris").iterdir()] == [iris.version]
    verify_record(iris.path)


def test_list_shows_it(iris: Built) -> None:
    table = ok(cli("list", home=iris.home)).stdout
    assert re.search(rf"^iris\s+{iris.version}\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\s+[\d.]+ KiB\s+predict\s*$", table, re.M), table

    rows = json.loads(ok(cli("list", "--json", home=iris.home)).stdout)
    assert [(r["name"], r["version"], r["apis"], r["path"]) for r in rows] == [("iris", iris.version, ["predict"], str(iris.path))]
    assert rows[0]["size"] == sum(int(line.rsplit(",", 1)[1]) for line in record_lines(iris.path))


def test_get_prints_the_manifest(iris: Built) -> None:
    data = json.loads(ok(cli("get", "iris", home=iris.home)).stdout)
    assert data == json.loads(ok(cli("get", iris.tag, "--json", home=iris.home)).stdout)
    assert (data["format_version"], data["name"], data["version"]) == (1, "iris", iris.version)
    assert data["service"] == "service:IrisClassifier"
    assert data["python_version"] == platform.python_version()
    [predict] = data["apis"]
    assert (predict["name"], predict["route"], predict["batchable"], predict["max_batch_size"]) == ("predict", "/predict", True, 128)
    [model] = data["artifacts"]
    assert (model["name"], model["kind"], model["framework"], model["framework_version"]) == (
        "model", "sklearn", "scikit-learn", _version("scikit-learn"),
    )
    dependencies = data["dependencies"]
    assert dependencies["requirements"] == [
        f"joblib=={_version('joblib')}",
        f"modelbundle=={__version__}",
        f"numpy=={_version('numpy')}",
        f"scikit-learn=={_version('scikit-learn')}",
    ]
    assert (dependencies["source"], dependencies["optional"], dependencies["unresolved"]) == ("inferred", [], [])
    assert dependencies["locked"] > 10  # the closure: scipy, threadpoolctl, starlette...


def test_layout_matches_the_design(iris: Built) -> None:
    path = iris.path
    assert sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()) == LAYOUT
    assert (path / "src" / "service.py").read_bytes() == (iris.project / "service.py").read_bytes()
    assert (path / "artifacts/model/model.joblib").read_bytes() == (iris.project / "model.joblib").read_bytes()
    artifact = json.loads((path / "artifacts/model/artifact.json").read_text())
    assert (artifact["kind"], artifact["framework"], artifact["framework_version"]) == ("sklearn", "scikit-learn", _version("scikit-learn"))

    env = path / "env"
    assert (env / "requirements.in").read_text().splitlines() == iris.manifest()["dependencies"]["requirements"]
    assert (env / "python_version").read_text() == platform.python_version() + "\n"
    lock = (env / "requirements.lock").read_text()
    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\$", lock, re.M)
    assert len(pins) == iris.manifest()["dependencies"]["locked"]
    # the closure is pinned to what the build ran with, each pin followed by its hashes
    assert dict(pins).items() >= {
        "scikit-learn": _version("scikit-learn"), "scipy": _version("scipy"), "numpy": _version("numpy"),
        "modelbundle": __version__, "starlette": _version("starlette"),
    }.items()
    for block in re.split(r"^(?=[A-Za-z0-9])", lock, flags=re.M)[1:]:
        assert "    --hash=sha256:" in block, block
    openapi = json.loads((path / "openapi.json").read_text())
    assert "/predict" in openapi["paths"]
    assert openapi["info"]["version"] == iris.version  # not "dev"

    lines = record_lines(path)
    assert lines == sorted(lines)
    assert [line.split(",")[0] for line in lines] == [p for p in LAYOUT if p != "RECORD"]
    for line in lines:
        name, digest, size = line.rsplit(",", 2)
        data = (path / name).read_bytes()
        assert (digest, int(size)) == (f"sha256={hashlib.sha256(data).hexdigest()}", len(data))


def test_building_again_gives_the_same_version_and_files(iris: Built, tmp_path: Path, home: Path) -> None:
    # twice into one store: the same tag, one bundle
    # (fresh builds rather than the session's: a change to src/modelbundle in between rightly gives another version)
    target = iris.project / "service.py:IrisClassifier"
    tag = build_tag(target, home=home)
    assert build_tag(target, home=home) == tag
    assert [p.name for p in (home / "bundles" / "iris").iterdir()] == [tag.partition(":")[2]]

    # another checkout of the same project, built from inside it into another store
    elsewhere, other_home = tmp_path / "elsewhere", tmp_path / "other-home"
    shutil.copytree(iris.project, elsewhere)
    assert build_tag("service.py:IrisClassifier", home=other_home, cwd=elsewhere) == tag
    first, second = bundle_path(home, tag), bundle_path(other_home, tag)
    assert record_lines(first, without_manifest=True) == record_lines(second, without_manifest=True)
    manifests = [manifest(h, tag) for h in (home, other_home)]
    assert manifests[0].pop("created_at") and manifests[1].pop("created_at")
    assert manifests[0] == manifests[1]


def test_env_create_refuses_a_folder_in_use(iris: Built, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    error = failed(cli("env", "create", iris.tag, tmp_path / "busy", home=iris.home))
    assert re.search(r"busy exists and is not empty; choose a new folder", error)
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["keep.txt"]


def test_env_create_then_serve_from_that_env_answers_like_the_model(iris: Built, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    created = ok(cli("env", "create", iris.tag, venv, "--quiet", home=iris.home)).stdout
    assert f"serve with: {venv}/bin/bundle serve {iris.tag}" in created
    # a fresh interpreter with modelbundle installed from the lock, not this checkout
    where = ok(subprocess.run(
        [venv / "bin" / "python", "-c", "import modelbundle, sklearn; print(modelbundle.__file__, sklearn.__version__)"],
        capture_output=True, text=True,
    )).stdout.split()
    assert Path(where[0]).is_relative_to(venv) and where[1] == _version("scikit-learn")

    rows = load_iris().data
    expected = joblib.load(iris.project / "model.joblib").predict(rows).tolist()
    assert len(set(expected)) == 3
    with serving([venv / "bin" / "bundle"], iris.tag, iris.home) as server:
        response = server.post("/predict", json={"x": rows.tolist()})
        assert response.status_code == 200, response.text
        assert response.json() == expected
        one = server.post("/predict", json={"x": rows[:1].tolist()})
        assert one.json() == expected[:1]
        assert server.get("/openapi.json").json()["info"]["version"] == iris.version
    assert f"bundle {iris.tag}" in server.stderr
    # the env made from the lock satisfies the lock
    assert "does not match the bundle's requirements.lock" not in server.stderr
