"""Dependency inference, on small projects in tmp_path: no build, no lock."""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path

import pytest

from modelbundle import __version__
from modelbundle.bundler import BuildOptions, Reporter
from modelbundle.bundler._assemble import _requirements
from modelbundle.bundler._imports import scan_imports
from modelbundle.bundler._manifest import ArtifactInfo
from modelbundle.bundler._requirements import (
    apply_explicit,
    infer_requirements,
    read_requirements_file,
)
from modelbundle.errors import BuildError

PROJECT = {
    "service.py": """
        from __future__ import annotations

        import json
        import os.path

        import numpy as np

        import helper
        from pkg import sub

        try:
            import yaml
        except ImportError:
            yaml = None

        try:  # guarded here, but imported for real above: stays required
            import numpy
        except ModuleNotFoundError:
            numpy = None

        import surely_not_installed_xyz


        def later():
            import click  # an import inside a function is still needed at serve time
    """,
    "helper.py": """
        import rich.console
    """,
    "pkg/__init__.py": """
        from . import sub
    """,
    "pkg/sub.py": """
        from .inner.deep import VALUE
        import packaging.version
    """,
    "pkg/inner/__init__.py": "",
    "pkg/inner/deep.py": """
        from .. import sub  # a cycle back up
        VALUE = 1
    """,
    "unused.py": """
        import pandas  # never imported by the service
    """,
}


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def _installed(distribution: str) -> str:
    return f"{distribution}=={importlib.metadata.version(distribution)}"


def test_scan_follows_local_modules_and_sorts_third_party_imports(tmp_path: Path) -> None:
    scan = scan_imports(_write(tmp_path, PROJECT), "service")
    assert sorted(p.as_posix() for p in scan.local_files) == [
        "helper.py", "pkg/__init__.py", "pkg/inner/__init__.py", "pkg/inner/deep.py", "pkg/sub.py", "service.py",
    ]
    # stdlib (json, os) and __future__ are dropped; local modules are not third-party
    assert scan.required == {"numpy", "rich", "packaging", "surely_not_installed_xyz", "click"}
    assert scan.optional == {"yaml"}


def test_scan_of_a_module_inside_a_package(tmp_path: Path) -> None:
    _write(tmp_path, {
        "app/__init__.py": "",
        "app/service.py": "from .models import Model\nfrom app import settings\n",
        "app/models.py": "import numpy\n",
        "app/settings.py": "try:\n    import orjson as json\nexcept ImportError:\n    import json\n",
    })
    scan = scan_imports(tmp_path, "app.service")
    assert sorted(p.as_posix() for p in scan.local_files) == ["app/__init__.py", "app/models.py", "app/service.py", "app/settings.py"]
    assert (scan.required, scan.optional) == ({"numpy"}, {"orjson"})


def test_a_local_module_that_does_not_parse_is_a_build_error(tmp_path: Path) -> None:
    _write(tmp_path, {"service.py": "import broken\n", "broken.py": "x = 1\ndef (:\n"})
    with pytest.raises(BuildError, match=r"cannot read .*broken\.py: syntax error at line 2"):
        scan_imports(tmp_path, "service")


def test_inference_pins_installed_versions_and_reports_the_rest(tmp_path: Path) -> None:
    scan = scan_imports(_write(tmp_path, PROJECT), "service")
    result = infer_requirements(scan.required, scan.optional, [])
    assert result.requirements == {
        "click": _installed("click"),
        "modelbundle": f"modelbundle=={__version__}",
        "numpy": _installed("numpy"),
        "packaging": _installed("packaging"),
        "rich": _installed("rich"),
    }
    assert result.lines() == sorted(result.requirements.values(), key=str.lower)
    assert result.unresolved == ["surely_not_installed_xyz"]
    assert result.optional == ["PyYAML"]  # recorded, not required


def test_an_optional_import_of_a_required_distribution_is_not_listed_as_optional() -> None:
    # yaml and _yaml both come from PyYAML: required through one name, so not optional through the other
    result = infer_requirements({"yaml"}, {"_yaml"}, [])
    assert result.requirements["pyyaml"] == _installed("PyYAML")
    assert result.optional == []


@pytest.mark.parametrize(
    ("kinds", "added"),
    [
        (["sklearn"], ["joblib", "scikit-learn"]),
        (["joblib"], ["joblib"]),
        (["pickle", "file", "dir"], []),  # cloudpickle comes with modelbundle itself
    ],
)
def test_artifact_kinds_add_their_frameworks(kinds: list[str], added: list[str]) -> None:
    result = infer_requirements([], [], kinds)
    assert result.requirements == {
        "modelbundle": f"modelbundle=={__version__}", **{name: _installed(name) for name in added},
    }
    assert result.unresolved == []


def test_a_kind_whose_framework_is_not_installed_is_unresolved() -> None:
    try:
        importlib.metadata.distribution("xgboost")
        pytest.skip("xgboost is installed here")
    except importlib.metadata.PackageNotFoundError:
        pass
    result = infer_requirements([], [], ["xgboost"])
    assert result.unresolved == ["xgboost"]
    assert "xgboost" not in result.requirements


def test_explicit_requirements_win_with_their_extras_and_pins() -> None:
    result = infer_requirements(["numpy", "sklearn"], [], [])
    assert result.requirements["numpy"] == _installed("numpy")
    apply_explicit(result, ["numpy[foo]>=1.0", "", "   # a comment", "Scikit_Learn[alldeps]==1.0 ; python_version >= '3'"], "requirements.txt")
    assert result.requirements["numpy"] == "numpy[foo]>=1.0"
    assert result.requirements["scikit-learn"] == 'Scikit_Learn[alldeps]==1.0; python_version >= "3"'
    assert "numpy[foo]>=1.0" in result.lines() and _installed("numpy") not in result.lines()

    with pytest.raises(BuildError, match=r"^requirements\.txt: 'numpy>>1' is not a valid requirement"):
        apply_explicit(result, ["numpy>>1"], "requirements.txt")


def _sklearn_artifact() -> ArtifactInfo:
    return ArtifactInfo(name="model", kind="sklearn", python_version="3.11.7")


def test_a_requirements_file_replaces_inference(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pinned by hand\nrich==13.0.0  # the console\n\nclick>=8\n")
    options = BuildOptions(requirements=str(requirements), python_packages=["rich[jupyter]==13.7.1"])
    resolved, source = _requirements({"numpy", "yaml"}, {"orjson"}, [_sklearn_artifact()], options, Reporter(quiet=True))
    assert source == "requirements-file"
    # numpy and yaml were imported but the file says what to install; the runtime and the model's framework stay
    assert resolved.requirements == {
        "click": "click>=8",
        "rich": "rich[jupyter]==13.7.1",  # --python-package wins over the file too
        "modelbundle": f"modelbundle=={__version__}",
        "scikit-learn": _installed("scikit-learn"),
        "joblib": _installed("joblib"),
    }
    assert resolved.optional == []


def test_inference_with_python_packages_on_top(tmp_path: Path) -> None:
    options = BuildOptions(python_packages=["numpy[extra]==1.26.4"])
    resolved, source = _requirements({"numpy", "rich"}, set(), [], options, Reporter(quiet=True))
    assert source == "inferred"
    assert resolved.lines() == ["modelbundle==" + __version__, "numpy[extra]==1.26.4", _installed("rich")]


def test_requirements_files_hold_requirements_only(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("numpy\n-r base.txt\n")
    with pytest.raises(BuildError, match=r"requirements\.txt: options such as -r are not supported; list requirements only"):
        read_requirements_file(str(path))
    with pytest.raises(BuildError, match=r"cannot read --requirements .*missing\.txt: No such file or directory"):
        read_requirements_file(str(tmp_path / "missing.txt"))
    path.write_text("numpy==1.26.4  # pinned\n# a comment\n\nrich\n")
    assert read_requirements_file(str(path)) == ["numpy==1.26.4", "rich"]
