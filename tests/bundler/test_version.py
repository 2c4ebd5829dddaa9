"""The version is a digest of the content; --version overrides it and never overwrites other content."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from modelbundle.bundler import BuildOptions, build, verify_record
from modelbundle.errors import StoreError

from ._helpers import build_tag, bundle_path, cli, failed, flip_byte, manifest, store_state

DOCSTRING = '"""The predicted class id of each row."""'


def _edit(project: Path, new_docstring: str) -> None:
    service = project / "service.py"
    text = service.read_text()
    assert DOCSTRING in text
    service.write_text(text.replace(DOCSTRING, new_docstring))


def test_changing_one_line_of_the_source_changes_the_version(iris_project: Path, home: Path) -> None:
    before = build_tag("service.py:IrisClassifier", home=home, cwd=iris_project)
    _edit(iris_project, '"""The class id of each row: 0, 1 or 2."""')
    tag = build_tag("service.py:IrisClassifier", home=home, cwd=iris_project)
    assert tag.startswith("iris:") and tag != before
    assert "0, 1 or 2" in (bundle_path(home, tag) / "src" / "service.py").read_text()
    assert sorted(p.name for p in (home / "bundles" / "iris").iterdir()) == sorted(t.partition(":")[2] for t in (before, tag))


def test_changing_the_model_changes_the_version(iris_project: Path, home: Path) -> None:
    before = build_tag("service.py:IrisClassifier", home=home, cwd=iris_project)
    flip_byte(iris_project / "model.joblib", offset=-5)
    assert build_tag("service.py:IrisClassifier", home=home, cwd=iris_project) != before


def test_an_explicit_version_overrides_the_digest(iris_project: Path, home: Path) -> None:
    assert build_tag("service.py:IrisClassifier", "--version", "v1", home=home, cwd=iris_project) == "iris:v1"
    # the same content again: the same bundle, nothing new
    before = store_state(home)
    assert build_tag("service.py:IrisClassifier", "--version", "v1", home=home, cwd=iris_project) == "iris:v1"
    assert store_state(home) == before


def test_an_explicit_version_is_never_overwritten_with_other_content(iris_project: Path, home: Path, tmp_path: Path) -> None:
    first = build(BuildOptions(service=f"{iris_project}/service.py:IrisClassifier", version="v1", quiet=True))
    other = tmp_path / "changed"
    shutil.copytree(iris_project, other)
    _edit(other, '"""Changed."""')
    before = store_state(home)

    with pytest.raises(StoreError, match=r"^iris:v1 already exists with different content; delete it \(bundle delete iris:v1\) or choose another --version$"):
        build(BuildOptions(service=f"{other}/service.py:IrisClassifier", version="v1", quiet=True))
    assert store_state(home) == before
    verify_record(first.path)
    assert (first.path / "src" / "service.py").read_bytes() == (iris_project / "service.py").read_bytes()

    # the CLI says the same on one line
    error = failed(cli("build", "service.py:IrisClassifier", "--version", "v1", home=home, cwd=other))
    assert "iris:v1 already exists with different content; delete it (bundle delete iris:v1) or choose another --version" in error


def test_labels_land_in_the_manifest_and_are_part_of_the_content(iris_project: Path, home: Path) -> None:
    unlabelled = build_tag("service.py:IrisClassifier", home=home, cwd=iris_project)
    tag = build_tag("service.py:IrisClassifier", "--label", "team=ml", "--label", "stage=dev", home=home, cwd=iris_project)
    assert manifest(home, tag)["labels"] == {"stage": "dev", "team": "ml", "ai.modelbundle.secret-scan": "clean"}
    assert tag != unlabelled  # otherwise the labels would be dropped as "the same content"

    assert build_tag("service.py:IrisClassifier", "--version", "v2", "--label", "stage=dev", home=home, cwd=iris_project) == "iris:v2"
    # another label under the same explicit version is other content, not "already in the store"
    error = failed(cli("build", "service.py:IrisClassifier", "--version", "v2", "--label", "stage=prod", home=home, cwd=iris_project))
    assert "iris:v2 already exists with different content" in error
    assert manifest(home, "iris:v2")["labels"] == {"stage": "dev", "ai.modelbundle.secret-scan": "clean"}


def test_bad_names_versions_and_labels_are_refused(iris_project: Path, home: Path) -> None:
    error = failed(cli("build", "service.py:IrisClassifier", "--version", "not/a tag", home=home, cwd=iris_project))
    assert re.search(r"bundle version 'not/a tag' must be 1-128 letters, digits", error)
    error = failed(cli("build", "service.py:IrisClassifier", "--name", "Iris Model", home=home, cwd=iris_project))
    assert re.search(r"bundle name 'Iris Model' must be 1-63 characters of lowercase letters", error)
    result = cli("build", "service.py:IrisClassifier", "--label", "novalue", home=home, cwd=iris_project)
    assert result.returncode == 2 and "'novalue' is not KEY=VALUE" in result.stderr
    assert store_state(home)[0] == []
