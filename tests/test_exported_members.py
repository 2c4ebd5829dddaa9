"""The public surface: every ``__all__`` name exists, and top-level names show the public path."""

import __future__

import importlib
import pickle
import types

import pytest

import modelbundle

SUBPACKAGES = [
    "modelbundle.adapters",
    "modelbundle.bundler",
    "modelbundle.cli",
    "modelbundle.client",
    "modelbundle.errors",
    "modelbundle.openai",
    "modelbundle.runtime",
    "modelbundle.service_base",
]
#: public modules users reach from the top level (``from modelbundle import openai``)
PUBLIC_MODULES = {"openai"}


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def test_every_name_in_all_exists() -> None:
    for name in modelbundle.__all__:
        assert getattr(modelbundle, name, None) is not None, name


def test_every_public_member_is_exported() -> None:
    public = {
        name
        for name, value in vars(modelbundle).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and value is not __future__.annotations
    }
    assert public == set(modelbundle.__all__) - {"__version__"} - PUBLIC_MODULES
    for name in PUBLIC_MODULES:
        assert isinstance(getattr(modelbundle, name), types.ModuleType)
        assert getattr(modelbundle, name).__name__ == f"modelbundle.{name}"


@pytest.mark.parametrize("name", [n for n in modelbundle.__all__ if not n.startswith("__") and n not in PUBLIC_MODULES])
def test_exported_names_show_the_public_path(name: str) -> None:
    value = getattr(modelbundle, name)
    assert value.__module__ == "modelbundle"
    # the rewritten path must still lead back to the object, or pickling and docs break
    assert pickle.loads(pickle.dumps(value)) is value


def test_version_is_a_string() -> None:
    assert isinstance(modelbundle.__version__, str)
    assert modelbundle.__version__.count(".") >= 2


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_subpackage_all_names_exist_once_in_order(package: str) -> None:
    module = importlib.import_module(package)
    exported = module.__all__
    for name in exported:
        assert getattr(module, name, None) is not None, f"{package}.{name}"
    assert len(set(exported)) == len(exported)
    assert exported == sorted(exported, key=_isort_key)


def test_top_level_names_are_the_subpackage_objects() -> None:
    from modelbundle import adapters, errors, service_base

    assert modelbundle.Service is service_base.Service
    assert modelbundle.api is service_base.api
    assert modelbundle.Shape is adapters.Shape
    assert modelbundle.DefinitionError is errors.DefinitionError


def test_every_error_derives_from_the_base() -> None:
    from modelbundle import errors

    for name in errors.__all__:
        error = getattr(errors, name)
        assert issubclass(error, errors.ModelbundleError), name
        assert error.__doc__, f"{name} has no docstring saying when it is raised"


def test_the_lazy_bundler_package_knows_a_home_for_every_name_it_exports() -> None:
    import modelbundle.bundler as bundler

    assert set(bundler._HOMES) == set(bundler.__all__)
    for name, home in bundler._HOMES.items():  # each name is defined where the table says
        assert hasattr(importlib.import_module(f"modelbundle.bundler.{home}"), name), (name, home)
