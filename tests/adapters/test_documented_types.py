"""The README's table of what an ``@api`` takes is what the code does, and names every adapter.

Each type hint in the table is given to a real ``@api`` method: it must be
accepted, and ``batchable=True`` must be accepted exactly where the table says "yes".
Every adapter class the package defines must be reached by some hint in the table.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas
import PIL.Image
import pydantic
import pytest
from numpy.typing import NDArray

import modelbundle.adapters
from modelbundle import DType, Service, Shape, api
from modelbundle.adapters import Adapter, adapter_for
from modelbundle.errors import DefinitionError

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "### What an `@api` takes and returns"
#: the names the table's hints use
NAMESPACE = {"np": np, "NDArray": NDArray, "Annotated": Annotated, "Shape": Shape, "DType": DType,
             "pandas": pandas, "PIL": PIL, "pydantic": pydantic}


class Point(pydantic.BaseModel):
    x: float


def table_rows() -> list[tuple[str, bool]]:
    """(hint source, batchable) for each type hint the README's table names."""
    text = README.read_text()
    assert SECTION in text, f"the README lost its section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n#", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) != 3 or cells[0] in ("type hint", "---"):
            continue
        batchable = cells[2].split(",")[0]
        assert batchable in ("yes", "no"), line
        for hint in re.findall(r"`([^`]+)`", cells[0]):
            rows.append((hint.replace("\\|", "|"), batchable == "yes"))
    assert len(rows) >= 8, rows
    return rows


ROWS = table_rows()


def hint_of(source: str) -> Any:
    value = eval(source, dict(NAMESPACE))
    # "a pydantic.BaseModel subclass": one subclass stands for all
    return Point if value is pydantic.BaseModel else value


def define(hint: Any, batchable: bool) -> type[Service]:
    """A Service whose one API takes and returns ``hint`` (set as an object: this module's hints are strings)."""

    def call(self: Service, value: Any) -> Any:
        return value

    call.__annotations__ = {"value": hint, "return": hint}
    return type("Probe", (Service,), {"call": api(batchable=batchable)(call)})


@pytest.mark.parametrize(("source", "batchable"), ROWS, ids=[source for source, _ in ROWS])
def test_each_documented_hint_is_accepted_and_batches_as_documented(source: str, batchable: bool) -> None:
    hint = hint_of(source)
    assert define(hint, batchable=False).__apis__["call"].batchable is False
    if batchable:
        assert define(hint, batchable=True).__apis__["call"].batchable is True
    else:
        with pytest.raises(DefinitionError, match=r"batchable=True needs batchable inputs"):
            define(hint, batchable=True)


def _adapter_classes() -> set[type[Adapter]]:
    for info in pkgutil.iter_modules(modelbundle.adapters.__path__, prefix="modelbundle.adapters."):
        importlib.import_module(info.name)
    found: set[type[Adapter]] = set()
    pending = list(Adapter.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("modelbundle.adapters."):
            found.add(cls)
    return found


#: the typed client's stand-in for an API type it cannot rebuild from a schema: no hint selects it
CLIENT_ONLY = {"PlainJSON"}


def test_the_table_reaches_every_adapter_the_package_defines() -> None:
    documented = {type(adapter_for(hint_of(source))) for source, _ in ROWS}
    assert {cls.__name__ for cls in _adapter_classes()} - CLIENT_ONLY == {cls.__name__ for cls in documented}
