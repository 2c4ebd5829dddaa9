"""``load_service``: 'module:Class' and 'path/file.py:Class', each failure with its own message."""

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from modelbundle import DefinitionError, Service
from modelbundle.errors import ImportTargetError
from modelbundle.service_base import load_service

ECHO = """
from modelbundle import Service, api


class Echo(Service):
    @api
    def echo(self, text: str) -> str:
        return text


class Helper:
    pass


def make():
    return Echo
"""

WriteModule = Callable[[str, str], Path]


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WriteModule:
    """Write ``relative/path.py`` under a fresh cwd; sys.path and sys.modules are restored afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))

    def write(relative: str, source: str) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        parts = Path(relative).with_suffix("").parts
        for depth in range(1, len(parts) + 1):  # every module the file can be imported as
            for start in range(depth):
                name = ".".join(p for p in parts[start:depth] if p != "__init__")
                if name:
                    monkeypatch.delitem(sys.modules, name, raising=False)
        return path

    return write


# -- loading ----------------------------------------------------------------------------


def test_loads_module_colon_class_from_the_cwd(write_module: WriteModule) -> None:
    write_module("echo_service.py", ECHO)
    cls = load_service("echo_service:Echo")
    assert issubclass(cls, Service)
    assert cls.__name__ == "Echo"
    assert cls.__module__ == "echo_service"
    assert list(cls.__apis__) == ["echo"]
    assert str(Path.cwd()) in sys.path


def test_loads_a_dotted_module_of_a_package(write_module: WriteModule) -> None:
    write_module("shop/__init__.py", "")
    write_module("shop/services.py", ECHO)
    cls = load_service("shop.services:Echo")
    assert cls.__module__ == "shop.services"


@pytest.mark.parametrize("absolute", [False, True], ids=["relative", "absolute"])
def test_loads_path_to_file_with_its_folder_as_import_root(write_module: WriteModule, absolute: bool) -> None:
    # the service imports a sibling module, as it would inside its own project
    write_module("project/labels.py", "LABELS = ['neg', 'pos']\n")
    path = write_module(
        "project/app.py",
        """
        from labels import LABELS
        from modelbundle import Service, api


        class Classifier(Service):
            labels = LABELS

            @api
            def predict(self, text: str) -> str:
                return self.labels[len(text) % 2]
        """,
    )
    target = f"{path if absolute else 'project/app.py'}:Classifier"
    cls = load_service(target)
    assert cls.__name__ == "Classifier"
    assert cls.labels == ["neg", "pos"]  # type: ignore[attr-defined]
    assert sys.path[0] == str(path.resolve().parent)


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["echo_service", "echo_service:", ":Echo", ""])
def test_bad_format(target: str) -> None:
    with pytest.raises(ImportTargetError, match=r"must look like 'module:Class', 'path/to/file\.py:Class' or 'path/to/file\.py'$"):
        load_service(target)


def test_missing_file(write_module: WriteModule) -> None:
    with pytest.raises(ImportTargetError, match=r"^target 'nowhere/app\.py:Svc': no such file nowhere/app\.py$"):
        load_service("nowhere/app.py:Svc")


def test_missing_module_names_module_and_search_root(write_module: WriteModule) -> None:
    cwd = str(Path.cwd())
    with pytest.raises(ImportTargetError) as info:
        load_service("no_such_service_module:Svc")
    assert str(info.value) == f"target 'no_such_service_module:Svc': no module named 'no_such_service_module' under {cwd}"


def test_missing_submodule_of_an_existing_package(write_module: WriteModule) -> None:
    write_module("shop/__init__.py", "")
    with pytest.raises(ImportTargetError, match=r"no module named 'shop\.nothing' under "):
        load_service("shop.nothing:Echo")


def test_missing_import_inside_the_module_is_not_reported_as_a_missing_module(write_module: WriteModule) -> None:
    write_module("needs_dep.py", "import not_an_installed_dependency_xyz\n")
    with pytest.raises(
        ImportTargetError,
        match=r"^importing 'needs_dep' failed: ModuleNotFoundError: No module named 'not_an_installed_dependency_xyz' \(.*needs_dep\.py:1\)$",
    ) as info:
        load_service("needs_dep:Svc")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_error_raised_inside_the_module_names_exception_and_line(write_module: WriteModule) -> None:
    write_module(
        "broken.py",
        """\
        import os

        raise RuntimeError("weights.bin not found")
        """,
    )
    with pytest.raises(
        ImportTargetError, match=r"^importing 'broken' failed: RuntimeError: weights\.bin not found \(.*broken\.py:3\)$"
    ) as info:
        load_service("broken.py:Svc")
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "broken" not in sys.modules  # a failed import leaves nothing half-loaded behind


def test_definition_error_in_the_module_surfaces_through_the_loader(write_module: WriteModule) -> None:
    write_module(
        "bad_hints.py",
        """\
        from modelbundle import Service, api


        class Bad(Service):
            @api
            def predict(self, x):
                return x
        """,
    )
    with pytest.raises(
        ImportTargetError,
        match=r"^importing 'bad_hints' failed: DefinitionError: Bad\.predict: parameter 'x' needs a type hint .*bad_hints\.py:4\)$",
    ) as info:
        load_service("bad_hints:Bad")
    assert isinstance(info.value.__cause__, DefinitionError)


def test_a_class_name_typo_gets_a_did_you_mean_and_the_files_services(write_module: WriteModule) -> None:
    write_module("echo_service.py", ECHO)
    with pytest.raises(ImportTargetError) as info:
        load_service("echo_service:Ecko")
    assert str(info.value) == (
        "target 'echo_service:Ecko': module 'echo_service' has no attribute 'Ecko'; did you mean 'Echo'? "
        "its Service classes: Echo"
    )


TWO_SERVICES = """
from modelbundle import Service, api
from imported_service import Imported


class Iris(Service):
    @api
    def predict(self, text: str) -> str:
        return text


class Ticket(Service):
    @api
    def route(self, text: str) -> str:
        return text
"""
IMPORTED = """
from modelbundle import Service, api


class Imported(Service):
    @api
    def echo(self, text: str) -> str:
        return text
"""


def test_a_name_far_from_every_class_lists_the_services_without_a_guess(write_module: WriteModule) -> None:
    write_module("imported_service.py", IMPORTED)
    write_module("two.py", TWO_SERVICES)
    with pytest.raises(ImportTargetError) as info:
        load_service("two.py:Zzz")
    # a Service the file only imports is not one of its own
    assert str(info.value) == "target 'two.py:Zzz': module 'two' has no attribute 'Zzz'; its Service classes: Iris, Ticket"


@pytest.mark.parametrize("attr", ["Helper", "make", "api"])
def test_attribute_that_is_not_a_service_subclass(write_module: WriteModule, attr: str) -> None:
    write_module("echo_service.py", ECHO)
    with pytest.raises(ImportTargetError) as info:
        load_service(f"echo_service:{attr}")
    assert str(info.value) == f"target 'echo_service:{attr}': {attr} is not a modelbundle.Service subclass; its Service classes: Echo"


def test_a_module_without_services_says_so(write_module: WriteModule) -> None:
    write_module("plain.py", "class Irs:\n    pass\n")
    with pytest.raises(ImportTargetError) as info:
        load_service("plain.py:Iris")
    assert str(info.value) == "target 'plain.py:Iris': module 'plain' has no attribute 'Iris'; it defines no modelbundle.Service subclass"


@pytest.mark.parametrize("relative", ["echo_service.py", "pkg/echo_service.py"])
def test_a_file_with_one_service_needs_no_class_name(write_module: WriteModule, relative: str) -> None:
    write_module(relative, ECHO)
    cls = load_service(relative)
    assert cls.__name__ == "Echo" and cls.__module__ == "echo_service"


def test_a_file_with_several_services_must_name_one(write_module: WriteModule) -> None:
    write_module("imported_service.py", IMPORTED)
    write_module("two.py", TWO_SERVICES)
    with pytest.raises(ImportTargetError) as info:
        load_service("two.py")
    assert str(info.value) == "target 'two.py': name the class as two.py:Class; it defines Iris, Ticket"


def test_a_file_with_no_service_cannot_be_served_without_a_class(write_module: WriteModule) -> None:
    write_module("plain.py", "x = 1\n")
    with pytest.raises(ImportTargetError) as info:
        load_service("plain.py")
    assert str(info.value) == "target 'plain.py': plain.py defines no modelbundle.Service subclass"
