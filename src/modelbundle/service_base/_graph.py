"""The graph of services an entry service depends on, in dependency order.

Checked when each Service class is defined: a cycle is refused with the cycle
named (``A -> B -> A``), and so are two different classes with one name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import DefinitionError
from ._depends import declared_dependencies

if TYPE_CHECKING:
    from ._service import Service


@dataclass(frozen=True)
class ServiceNode:
    """One service of a graph: its name, class and dependencies (attribute -> service name)."""

    name: str
    cls: type[Service]
    dependencies: Mapping[str, str]


@dataclass(frozen=True)
class Graph:
    """Every service reachable from an entry, dependencies first, the entry last."""

    services: tuple[ServiceNode, ...]

    @property
    def entry(self) -> ServiceNode:
        return self.services[-1]

    @property
    def composed(self) -> bool:
        """True when the entry has dependencies (a one-service graph is served as always)."""
        return len(self.services) > 1

    def __getitem__(self, name: str) -> ServiceNode:
        for node in self.services:
            if node.name == name:
                return node
        raise KeyError(name)

    def names(self) -> list[str]:
        return [node.name for node in self.services]


def service_graph(entry: type[Service]) -> Graph:
    """The graph of ``entry``: every service it reaches, dependencies first.

    Raises ``DefinitionError`` for a cycle, a name two classes share, or a
    ``depends("Name")`` that names no class.
    """
    return Graph(tuple(_walk(entry, strict=True)))


def check_graph(cls: type[Service]) -> None:
    """The definition-time check: what ``cls`` reaches has no cycle and no name twice.

    Dependencies named by a class not yet defined are skipped: the check runs again
    when each class is defined, and any cycle closes at the definition of one of its members.
    """
    _walk(cls, strict=False)


def _walk(entry: type[Service], *, strict: bool) -> list[ServiceNode]:
    order: list[ServiceNode] = []
    done: set[type[Service]] = set()
    by_name: dict[str, type[Service]] = {}

    def visit(cls: type[Service], path: list[type[Service]]) -> None:
        if cls in done:
            return
        if cls in path:
            cycle = [*path[path.index(cls) :], cls]
            raise DefinitionError(
                f"{entry.__name__}: its dependencies form a cycle: {' -> '.join(c.__name__ for c in cycle)}; "
                "a service cannot depend on itself, directly or through others"
            )
        other = by_name.get(cls.name)
        if other is not None and other is not cls:
            raise DefinitionError(
                f"{cls.__module__}.{cls.__qualname__} and {other.__module__}.{other.__qualname__} are both named "
                f"{cls.name!r} in the graph of {entry.__name__}: give one a different `name`"
            )
        by_name[cls.name] = cls
        edges: dict[str, str] = {}
        for attribute, dependency in declared_dependencies(cls).items():
            target = dependency.resolved() if strict else dependency.resolve()
            if target is None:
                continue
            visit(target, [*path, cls])
            edges[attribute] = target.name
        done.add(cls)
        order.append(ServiceNode(cls.name, cls, edges))

    visit(entry, [])
    return order
