"""The local store: delete (asking first), NAME means the latest, helpful misses, concurrent builds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelbundle.bundler import BundleManifest, LocalStore, verify_record
from modelbundle.cli import main
from modelbundle.errors import BundleNotFound, StoreError

from ._helpers import Built, build_tag, bundle_path, cli, failed, store_state


def test_delete_with_yes_removes_the_bundle(iris_copy: Built, home: Path) -> None:
    result = CliRunner().invoke(main, ["delete", iris_copy.tag, "-y"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"deleted {iris_copy.tag}"
    assert not (home / "bundles" / "iris").exists()  # the empty name folder goes too
    assert store_state(home) == ([], [])
    assert LocalStore().list() == []


def test_delete_asks_first(iris_copy: Built, home: Path) -> None:
    runner = CliRunner()
    kept = runner.invoke(main, ["delete", iris_copy.tag], input="n\n")
    assert kept.exit_code == 1
    assert f"delete {iris_copy.tag} ({iris_copy.path})? [y/N]" in kept.output
    verify_record(iris_copy.path)

    gone = runner.invoke(main, ["delete", iris_copy.tag], input="y\n")
    assert gone.exit_code == 0, gone.output
    assert not iris_copy.path.exists()


def test_delete_without_a_terminal_says_to_add_yes(iris_copy: Built) -> None:
    # CliRunner's stdin is no terminal; empty input is what a script or CI gives
    result = CliRunner().invoke(main, ["delete", iris_copy.tag], input="")
    assert result.exit_code == 1
    assert "Aborted!" not in result.output
    assert result.stderr.splitlines()[-1] == (
        f"error: delete {iris_copy.tag} ({iris_copy.path}): no answer, as stdin is not a terminal; add -y to delete {iris_copy.tag}"
    )
    verify_record(iris_copy.path)


def test_delete_needs_a_version(iris_copy: Built) -> None:
    result = CliRunner().invoke(main, ["delete", "iris", "-y"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: delete needs NAME:VERSION, got 'iris' (bundle list iris shows its versions)"
    verify_record(iris_copy.path)


def _add_version(bundle: Built, version: str, created_at: str) -> None:
    """Another version of the bundle with its own creation time (a copy with an edited manifest)."""
    path = bundle.home / "bundles" / "iris" / version
    shutil.copytree(bundle.path, path)
    data = BundleManifest.model_validate_json((path / "bundle.json").read_bytes())
    (path / "bundle.json").write_bytes(data.model_copy(update={"version": version, "created_at": created_at}).dump())


def test_a_name_alone_means_the_latest_version(iris_copy: Built) -> None:
    # the newest sorts first by version string, the oldest last: only the time can pick the right one
    _add_version(iris_copy, "aaa-newest", "2099-01-01T00:00:00+00:00")
    _add_version(iris_copy, "zzz-oldest", "2001-01-01T00:00:00+00:00")
    store = LocalStore()
    assert [b.manifest.version for b in store.list("iris")] == ["zzz-oldest", iris_copy.version, "aaa-newest"]
    assert store.get("iris").manifest.version == "aaa-newest"
    assert store.get(iris_copy.tag).manifest.version == iris_copy.version
    result = CliRunner().invoke(main, ["get", "iris"])
    assert json.loads(result.stdout)["version"] == "aaa-newest"


def test_the_latest_of_two_builds_in_a_row_is_the_second(iris_project: Path, home: Path) -> None:
    # "b-first" sorts after "a-second": if both builds share a created_at, the older one would win
    build_tag("service.py:IrisClassifier", "--version", "b-first", home=home, cwd=iris_project)
    build_tag("service.py:IrisClassifier", "--version", "a-second", "--label", "n=2", home=home, cwd=iris_project)
    assert LocalStore().get("iris").manifest.version == "a-second"


def test_an_unknown_bundle_is_a_helpful_error(iris_copy: Built) -> None:
    store = LocalStore()
    with pytest.raises(BundleNotFound, match=r"^no bundle nope in .*/bundles; no bundle named 'nope' \(see bundle list\)$"):
        store.get("nope")
    with pytest.raises(BundleNotFound, match=rf"^no bundle iris:0000 in .*; versions of iris: {iris_copy.version}$"):
        store.get("iris:0000")
    with pytest.raises(StoreError, match=r"^'iris:' is not a bundle reference; use NAME or NAME:VERSION$"):
        store.get("iris:")
    error = failed(cli("get", "nope", home=iris_copy.home))
    assert error.endswith("no bundle named 'nope' (see bundle list)")
    assert "no bundles yet; make one with: bundle build module:Class" in cli("list", home=iris_copy.home / "empty").stdout


def test_concurrent_builds_of_the_same_service_leave_one_intact_bundle(iris_project: Path, home: Path) -> None:
    command = [sys.executable, "-m", "modelbundle", "build", "service.py:IrisClassifier", "-o", "tag"]
    env = {**os.environ, "MODELBUNDLE_HOME": str(home)}
    procs = [
        subprocess.Popen(command, cwd=iris_project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [(proc.communicate(timeout=600), proc.returncode) for proc in procs]
    assert [code for _, code in results] == [0, 0, 0], results
    tags = {out.strip() for (out, _), _ in results}
    assert len(tags) == 1
    [tag] = tags
    assert [p.name for p in (home / "bundles" / "iris").iterdir()] == [tag.partition(":")[2]]
    verify_record(bundle_path(home, tag))
    assert store_state(home)[1] == []  # every staging folder cleaned up
