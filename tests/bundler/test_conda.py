"""Conda environments, on a synthetic prefix.

No conda channel is reachable here and conda itself is not installed, so what
is NOT tested: a prefix written by a real ``conda install``, recreating an
environment from ``env/conda.yaml`` with ``conda env create``, and a real
``--conda-pack`` run (conda-pack needs a genuine conda environment to pack).
What is tested: the YAML written from a prefix's ``conda-meta/`` records,
that a build inside a (fake) conda prefix writes it into the bundle, and the
errors ``--conda-pack`` gives outside conda or without conda-pack.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

from modelbundle.bundler import BuildOptions, build
from modelbundle.bundler._conda import conda_prefix, conda_yaml
from modelbundle.errors import BuildError

from ._helpers import Built, cli, failed, store_state

FORGE = "https://conda.anaconda.org/conda-forge"
RECORDS = [
    {"name": "python", "version": "3.11.7", "build": "hab00c5b_1_cpython", "channel": f"{FORGE}/linux-64", "subdir": "linux-64"},
    {"name": "numpy", "version": "1.26.4", "build": "py311h64a7726_0", "channel": f"{FORGE}/linux-64", "subdir": "linux-64"},
    {"name": "tzdata", "version": "2024a", "build": "h0c530f3_0", "channel": f"{FORGE}/noarch", "subdir": "noarch"},
    {"name": "openssl", "version": "3.0.13", "build": "h7f8727e_0", "channel": "https://repo.anaconda.com/pkgs/main/linux-64", "subdir": "linux-64"},
    {"name": "pytorch-mutex", "version": "1.0", "build": "cpu", "channel": "https://conda.anaconda.org/pytorch/noarch", "subdir": "noarch"},
    # installed with pip inside the conda env: belongs under pip:, and "pypi" is no conda channel
    {"name": "requests", "version": "2.31.0", "build": "pypi_0", "channel": "pypi", "subdir": "pypi"},
]


def _prefix(root: Path) -> Path:
    meta = root / "conda-meta"
    meta.mkdir(parents=True)
    for record in RECORDS:
        (meta / f"{record['name']}-{record['version']}-{record['build']}.json").write_text(json.dumps(record))
    (meta / "history").write_text("==> 2024-01-01 00:00:00 <==\n")  # not a record: ignored
    return root


def test_conda_yaml_lists_packages_channels_and_pip_requirements(tmp_path: Path) -> None:
    text = conda_yaml(_prefix(tmp_path / "prefix"), "iris", ["modelbundle==0.1.0", "scikit-learn==1.5.0"])
    assert yaml.safe_load(text) == {
        "name": "iris",
        # short names on anaconda.org, other channels by URL; never the platform subdir
        "channels": ["conda-forge", "https://repo.anaconda.com/pkgs/main", "pytorch"],
        "dependencies": [
            "numpy=1.26.4=py311h64a7726_0",
            "openssl=3.0.13=h7f8727e_0",
            "python=3.11.7=hab00c5b_1_cpython",
            "pytorch-mutex=1.0=cpu",
            "tzdata=2024a=h0c530f3_0",
            "pip",
            {"pip": ["modelbundle==0.1.0", "scikit-learn==1.5.0"]},
        ],
    }


def test_a_broken_record_is_a_build_error(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path / "prefix")
    (prefix / "conda-meta" / "broken-1.0-0.json").write_text("{not json")
    with pytest.raises(BuildError, match=r"broken-1\.0-0\.json is not a conda package record"):
        conda_yaml(prefix, "iris", [])


def test_conda_prefix_is_the_running_prefix_with_conda_meta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if (Path(sys.prefix) / "conda-meta").is_dir():
        pytest.skip("these tests run inside a conda environment")
    assert conda_prefix() is None
    prefix = _prefix(tmp_path / "prefix")
    monkeypatch.setattr(sys, "prefix", str(prefix))
    assert conda_prefix() == prefix


def test_a_build_inside_conda_writes_env_conda_yaml(iris: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = _prefix(tmp_path / "prefix")
    monkeypatch.setattr(sys, "prefix", str(prefix))  # what conda_prefix() reads: "this Python is a conda env"
    bundle = build(BuildOptions(service=f"{iris.project}/service.py:IrisClassifier", name="iris-conda", quiet=True))
    requirements = (bundle.path / "env" / "requirements.in").read_text().splitlines()
    assert (bundle.path / "env" / "conda.yaml").read_text() == conda_yaml(prefix, "iris-conda", requirements)
    assert bundle.manifest.build.conda is True
    assert "env/conda.yaml," in (bundle.path / "RECORD").read_text()

    if importlib.util.find_spec("conda_pack") is None:
        with pytest.raises(BuildError, match=r"--conda-pack needs conda-pack; pip install conda-pack"):
            build(BuildOptions(service=f"{iris.project}/service.py:IrisClassifier", name="iris-packed", conda_pack=True, quiet=True))


def test_conda_pack_outside_conda_is_a_clear_error(iris: Built, home: Path) -> None:
    error = failed(cli("build", iris.project / "service.py:IrisClassifier", "--conda-pack", home=home))
    assert error == "error: --conda-pack needs a conda environment; this Python is not in one"
    assert store_state(home) == ([], [])
