"""``modelbundle.list_bundles()`` and ``modelbundle.load(ref)``: a built bundle, used from Python in this process."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import joblib
import numpy as np
import pytest

import modelbundle
from fixtures.bundles import build_in_process
from modelbundle.errors import BundleNotFound, IntegrityError

from ._helpers import Built, flip_byte, store_state

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.0, 2.9, 4.5, 1.5], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 5.1, 1.8]]

#: setup() is async and loads what the API uses: load() must have run it to the end
ASYNC_SETUP = '''\
import asyncio

from modelbundle import Service, api


class Greeter(Service):
    name = "greeter"

    async def setup(self) -> None:
        await asyncio.sleep(0)
        self.greeting = "hello"

    @api
    def greet(self, who: str) -> str:
        return f"{self.greeting}, {who}"
'''


def test_list_bundles_names_what_the_store_holds(iris_copy: Built) -> None:
    assert [b.tag for b in modelbundle.list_bundles()] == [iris_copy.tag]
    assert [b.tag for b in modelbundle.list_bundles("iris")] == [iris_copy.tag]
    assert modelbundle.list_bundles("other") == []


def test_load_gives_a_service_whose_apis_answer_in_process(iris_copy: Built) -> None:
    service = modelbundle.load("iris")
    assert type(service).__name__ == "IrisClassifier"
    # the same predictions as the model file the bundle was built from, read here with joblib
    expected = joblib.load(iris_copy.project / "model.joblib").predict(np.array(ROWS))
    np.testing.assert_array_equal(service.predict(np.array(ROWS)), expected)
    assert modelbundle.load(iris_copy.tag).predict(np.array(ROWS[:1])).tolist() == expected[:1].tolist()


def test_load_takes_a_bundle_folder(iris_copy: Built, tmp_path: Path) -> None:
    folder = shutil.copytree(iris_copy.path, tmp_path / "copied-bundle")
    assert modelbundle.load(str(folder)).predict(np.array(ROWS)).shape == (len(ROWS),)


def test_load_runs_an_async_setup_even_inside_a_running_event_loop(plain_project: Path, home: Path) -> None:
    (plain_project / "greeter.py").write_text(ASYNC_SETUP)
    build_in_process(f"{plain_project}/greeter.py:Greeter", plain_project, home)
    assert modelbundle.load("greeter").greet("you") == "hello, you"

    async def in_a_notebook() -> str:  # Jupyter runs cells inside its own event loop
        return str(modelbundle.load("greeter").greet("loop"))

    assert asyncio.run(in_a_notebook()) == "hello, loop"


def test_load_of_a_missing_bundle_names_the_store(home: Path) -> None:
    with pytest.raises(BundleNotFound, match=r"^no bundle nothing-here in .*; no bundle named 'nothing-here' \(see bundle list\)$"):
        modelbundle.load("nothing-here")


def test_load_refuses_a_changed_bundle(iris_copy: Built) -> None:
    flip_byte(iris_copy.path / "artifacts" / "model" / "model.joblib")
    before = store_state(iris_copy.home)
    with pytest.raises(IntegrityError, match=r"artifacts/model/model\.joblib"):
        modelbundle.load(iris_copy.tag)
    assert store_state(iris_copy.home) == before
