"""A Service class defined in ``__main__`` (a script, or a notebook) builds: the class is captured by value.

The script below is what a notebook user writes: a helper function and a constant
in ``__main__``, a function from a module beside it, a model object whose class
is also defined in ``__main__``, and ``Service.pack(...).save()``. A fresh process
then serves the bundle with ``bundle serve NAME`` and answers over HTTP.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from modelbundle.errors import BuildError

from ._helpers import PLAIN_SERVICE, bundle_path, manifest, ok, serving, store_state

#: a module beside the script: the class refers to it by name, so the bundle must carry it
HELPERS = '''\
def shout(text: str) -> str:
    return text.upper() + "!"
'''

SCRIPT = '''\
import sys

from helpers import shout
from modelbundle import Artifact, Service, api

SUFFIX = " (from __main__)"


def decorate(text: str) -> str:
    return shout(text) + SUFFIX


class Repeater:
    """The model: its class lives in __main__ too, so the artifact is a cloudpickle."""

    def __init__(self, times: int) -> None:
        self.times = times

    def run(self, text: str) -> str:
        return " ".join([text] * self.times)


class Shouter(Service):
    name = "shouter"
    model = Artifact("pickle")

    @api
    def shout(self, text: str) -> str:
        return decorate(self.model.run(text))


print(Shouter.pack(model=Repeater(int(sys.argv[1]))).save())
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "notebook-project"
    folder.mkdir()
    (folder / "helpers.py").write_text(HELPERS)
    (folder / "build_shouter.py").write_text(SCRIPT)
    return folder


def run_script(project: Path, home: Path, times: int, *, notebook: bool = False) -> str:
    """Run the script as a file (``python build_shouter.py``), or from stdin: like a notebook, its
    ``__main__`` then has no file, and the modules it uses are found from what it refers to."""
    command = [sys.executable, "-" if notebook else "build_shouter.py", str(times)]
    result = ok(subprocess.run(
        command, input=SCRIPT if notebook else None, cwd=project, capture_output=True, text=True,
        env={**os.environ, "MODELBUNDLE_HOME": str(home)}, timeout=600,
    ))
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("notebook", [False, True], ids=["script", "no-file"])
def test_a_service_defined_in_main_builds_and_serves_in_a_fresh_process(project: Path, home: Path, notebook: bool) -> None:
    tag = run_script(project, home, times=2, notebook=notebook)
    data = manifest(home, tag)
    assert data["service"] == "modelbundle_main:Shouter"
    src = bundle_path(home, tag) / "src"
    # the local module the class uses is carried; the script itself is not (its top level builds the bundle)
    assert sorted(p.name for p in src.iterdir()) == ["helpers.py", "modelbundle_main.pkl", "modelbundle_main.py"]
    assert [r.split("==")[0] for r in data["dependencies"]["requirements"]] == ["modelbundle"]

    with serving([sys.executable, "-m", "modelbundle"], "shouter", home) as server:
        response = server.post("/shout", json={"text": "hey"})
        assert response.status_code == 200, response.text
        assert response.text == "HEY HEY! (from __main__)"  # a str answers text/plain
        assert "bundle " + tag in server.stderr


def test_building_the_same_script_again_gives_the_same_version(project: Path, home: Path) -> None:
    first = run_script(project, home, times=3)
    assert run_script(project, home, times=3) == first  # a new process: same content, same version
    changed = run_script(project, home, times=4)  # another model value: another bundle
    assert changed.split(":")[0] == first.split(":")[0] and changed != first


def test_a_built_main_service_loads_in_python(project: Path, home: Path, tmp_path: Path) -> None:
    tag = run_script(project, home, times=1)
    code = f"import modelbundle\nprint(modelbundle.load({tag!r}).shout('a'))\n"
    result = ok(subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "MODELBUNDLE_HOME": str(home)}, timeout=120,
    ))
    assert result.stdout == "A! (from __main__)\n"


def test_a_service_in_a_module_without_a_file_is_a_clear_error(home: Path) -> None:
    module = types.ModuleType("made_in_memory")
    exec(PLAIN_SERVICE, vars(module))
    sys.modules[module.__name__] = module
    try:
        with pytest.raises(BuildError, match=r"^Plain is defined in module 'made_in_memory', which has no file; "):
            module.Plain.pack().save()
    finally:
        del sys.modules[module.__name__]
    assert store_state(home) == ([], [])
