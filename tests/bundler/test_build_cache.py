"""A build whose inputs did not change is the bundle built last time, found without importing the service.

The service below counts its imports in a file named by an environment variable
the build does not read, so each test can tell a real build (one more import)
from a build that found its bundle again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ._helpers import cli, manifest, ok

SERVICE = '''\
import os
from pathlib import Path

from helpers import GREETING
from modelbundle import Artifact, Service, api

with open(os.environ["IMPORT_LOG"], "a") as log:
    log.write("imported\\n")


class Greeter(Service):
    name = "greeter"
    words = Artifact("file", path="words.txt")
    lexicon = Artifact("dir", path="lexicon")

    @api
    def greet(self, who: str) -> str:
        return f"{GREETING}, {who}"
'''


class Project:
    """A small project with a local module, a file and a folder artifact, and its own import log."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root, self.home = root, home
        self.log = root.parent / "imports.log"
        root.mkdir()
        (root / "service.py").write_text(SERVICE)
        (root / "helpers.py").write_text('GREETING = "hello"\n')
        (root / "words.txt").write_text("one\n")
        (root / "lexicon").mkdir()
        (root / "lexicon" / "a.txt").write_text("a\n")

    def build(self, *args: str, env: dict[str, str] | None = None) -> tuple[str, str]:
        """(tag, stderr) of ``bundle build service.py:Greeter ARGS``."""
        result = ok(cli(
            "build", "service.py:Greeter", *args, "-o", "tag", home=self.home, cwd=self.root,
            env={"IMPORT_LOG": str(self.log), **(env or {})},
        ))
        return result.stdout.strip(), result.stderr

    def imports(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0


@pytest.fixture
def project(tmp_path: Path, home: Path, prebuilt: object) -> Project:  # prebuilt: the plain lock is warm
    return Project(tmp_path / "greeter", home)


def test_an_unchanged_build_is_the_same_bundle_without_importing_the_service(project: Project) -> None:
    tag, _ = project.build()
    assert project.imports() == 1
    again, stderr = project.build("-q")
    assert again == tag and project.imports() == 1
    assert stderr == ""  # -q: nothing but the tag
    result = ok(cli("build", "service.py:Greeter", home=project.home, cwd=project.root, env={"IMPORT_LOG": str(project.log)}))
    assert f"{tag}: nothing changed since it was built (--force builds again)" in result.stderr
    assert f"built {tag}" in result.stdout and "POST /greet" in result.stdout  # the same summary as a real build
    assert project.imports() == 1


def _edit(path: Path, text: str) -> None:
    path.write_text(text)


CHANGES: dict[str, Callable[[Path], None]] = {
    "the service's source": lambda root: _edit(root / "service.py", SERVICE.replace("who: str", "who:  str")),
    "a local module it imports": lambda root: _edit(root / "helpers.py", 'GREETING = "hi"\n'),
    "the file artifact": lambda root: _edit(root / "words.txt", "two\n"),
    "a file in the folder artifact": lambda root: _edit(root / "lexicon" / "a.txt", "b\n"),
    "a file added to the folder artifact": lambda root: _edit(root / "lexicon" / "b.txt", "b\n"),
    "pyproject.toml appearing": lambda root: _edit(root / "pyproject.toml", '[tool.modelbundle]\nlabels = {team = "x"}\n'),
    "a .bundleignore appearing": lambda root: _edit(root / ".bundleignore", "*.log\n"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_changed_input_builds_again(project: Project, change: str) -> None:
    project.build()
    CHANGES[change](project.root)
    _, stderr = project.build()
    assert project.imports() == 2, f"{change} did not build again"
    assert "nothing changed" not in stderr


def test_a_changed_local_module_changes_the_bundle(project: Project) -> None:
    tag, _ = project.build()
    CHANGES["a local module it imports"](project.root)
    again, _ = project.build()
    assert again != tag
    assert (project.home / "bundles" / "greeter" / again.partition(":")[2] / "src" / "helpers.py").read_text() == 'GREETING = "hi"\n'


def test_other_options_force_a_deleted_bundle_and_a_new_file_for_include_build_again(project: Project) -> None:
    project.build()
    project.build("--label", "stage=dev")
    assert project.imports() == 2  # other options: another entry
    project.build("--force")
    assert project.imports() == 3
    tag, _ = project.build()
    ok(cli("delete", tag, "-y", home=project.home))
    again, _ = project.build()
    assert again == tag and project.imports() == 4  # the same content, stored again
    project.build("--include", "data/*.csv")
    assert project.imports() == 5
    (project.root / "data").mkdir()
    (project.root / "data" / "x.csv").write_text("1\n")
    with_data, _ = project.build("--include", "data/*.csv")
    assert project.imports() == 6
    assert "src/data/x.csv" in (project.home / "bundles" / "greeter" / with_data.partition(":")[2] / "RECORD").read_text()


def test_a_changed_pip_or_uv_setting_builds_again(project: Project) -> None:
    project.build()
    project.build(env={"PIP_DEFAULT_TIMEOUT": "61"})  # any PIP_ or UV_ variable may change the lock
    assert project.imports() == 2
    project.build(env={"PIP_DEFAULT_TIMEOUT": "61"})
    assert project.imports() == 2
    project.build(env={"UV_NO_PROGRESS": "1"})
    assert project.imports() == 3


def test_code_the_service_imports_from_outside_the_project_is_watched(project: Project, tmp_path: Path) -> None:
    # a library outside the project (not copied into the bundle) decides the API's schema: changing it must show
    library = tmp_path / "lib"
    library.mkdir()
    (library / "greetlib.py").write_text("Who = str\n")
    service = SERVICE.replace("from helpers import GREETING", "from helpers import GREETING\nfrom greetlib import Who")
    (project.root / "service.py").write_text(service.replace("who: str", "who: Who"))
    env = {"PYTHONPATH": str(library)}
    first, _ = project.build(env=env)
    (library / "greetlib.py").write_text("Who = list[str]\n")
    second, _ = project.build(env=env)
    assert project.imports() == 2
    schemas = [json.dumps(manifest(project.home, tag)["apis"][0]["input_schema"]) for tag in (first, second)]
    assert '"array"' not in schemas[0] and '"array"' in schemas[1]
