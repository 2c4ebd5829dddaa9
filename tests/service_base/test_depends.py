"""``depends``: the graph is checked when each class is defined; cycles and clashing names are refused."""

from __future__ import annotations

import pytest

from modelbundle import DefinitionError, Service, api, depends
from modelbundle.service_base import service_graph


class Leaf(Service):
    @api
    def echo(self, text: str) -> str:
        return text


def test_the_graph_lists_dependencies_first_and_each_service_once():
    class Middle(Service):
        leaf = depends(Leaf)

    class Top(Service):
        middle = depends(Middle)
        also_leaf = depends(Leaf)

    graph = service_graph(Top)
    assert graph.names() == ["Leaf", "Middle", "Top"]
    assert dict(graph["Top"].dependencies) == {"middle": "Middle", "also_leaf": "Leaf"}
    assert dict(graph["Middle"].dependencies) == {"leaf": "Leaf"}
    assert not service_graph(Leaf).composed


def test_a_two_service_cycle_is_refused_when_it_closes():
    class CycleA(Service):
        b = depends("CycleB")

    with pytest.raises(DefinitionError, match=r"CycleB: its dependencies form a cycle: CycleB -> CycleA -> CycleB"):

        class CycleB(Service):
            a = depends(CycleA)


def test_a_longer_cycle_and_a_self_dependency_are_refused():
    class LoopA(Service):
        b = depends("LoopC")

    class LoopB(Service):
        a = depends(LoopA)

    with pytest.raises(DefinitionError, match=r"LoopC -> LoopB -> LoopA -> LoopC"):

        class LoopC(Service):
            b = depends(LoopB)

    with pytest.raises(DefinitionError, match=r"Selfish -> Selfish"):

        class Selfish(Service):
            me = depends("Selfish")


def test_two_classes_with_one_name_in_a_graph_are_refused():
    class First(Service):
        name = "twin"

    class Second(Service):
        name = "twin"

    with pytest.raises(DefinitionError, match=r"both named 'twin'.*give one a different `name`"):

        class Both(Service):
            first = depends(First)
            second = depends(Second)


def test_bad_targets_are_refused_with_the_rule():
    with pytest.raises(DefinitionError, match="takes a Service subclass"):
        depends(int)
    with pytest.raises(DefinitionError, match="takes a Service subclass"):
        depends(Service)

    class Dangling(Service):
        ghost = depends("NeverDefined")

    with pytest.raises(DefinitionError, match=r"Dangling.ghost = depends\('NeverDefined'\): no Service class named 'NeverDefined'"):
        service_graph(Dangling)


def test_an_instance_made_by_hand_says_its_dependency_is_not_connected():
    class Caller(Service):
        leaf = depends(Leaf)

    with pytest.raises(AttributeError, match=r"Caller\.leaf is a dependency that is not connected"):
        Caller().leaf  # noqa: B018
