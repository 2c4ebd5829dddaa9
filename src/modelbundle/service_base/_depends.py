"""``depends``: one Service declares another as a dependency, as a class attribute.

    class Pipeline(Service):
        embedder = depends(Embedder)

        @api
        async def run(self, texts: list[str]) -> list[float]:
            return await self.embedder.encode(texts)

The runtime (or ``modelbundle.load``) connects each dependency to a handle
before ``setup()``; on an instance the attribute is that handle. A dependency
may also be named by class name, ``depends("Embedder")``: the class of that
name in the same module, resolved when it is defined (this is how two classes
can refer to each other, which the graph check then refuses as a cycle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import DefinitionError

if TYPE_CHECKING:
    from ._service import Service

#: Service classes by (module, class name), so that ``depends("Name")`` can be resolved
_DEFINED: dict[tuple[str, str], type[Service]] = {}


class Dependency:
    """What ``depends(...)`` puts on the class: the target service and the attribute's name."""

    def __init__(self, target: type[Service] | str) -> None:
        self._target = target
        self.attribute = ""
        self.owner: type | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = name
        self.owner = owner

    @property
    def where(self) -> str:
        return f"{self.owner.__name__ if self.owner else '?'}.{self.attribute}"

    def resolve(self) -> type[Service] | None:
        """The dependency's class, or None while a named one is not defined yet."""
        if not isinstance(self._target, str):
            return self._target
        module = self.owner.__module__ if self.owner is not None else ""
        return _DEFINED.get((module, self._target))

    def resolved(self) -> type[Service]:
        """The dependency's class; a clear error when a named one was never defined."""
        target = self.resolve()
        if target is None:
            module = self.owner.__module__ if self.owner is not None else "?"
            raise DefinitionError(
                f"{self.where} = depends({self._target!r}): no Service class named {self._target!r} is defined in module {module}"
            )
        return target

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        # connected handles live in the instance's __dict__, which a non-data descriptor yields to
        raise AttributeError(
            f"{self.where} is a dependency that is not connected: it is connected when the service is served "
            "(bundle serve) or loaded (modelbundle.load), not on an instance made by hand"
        )

    def __repr__(self) -> str:
        target = self._target if isinstance(self._target, str) else self._target.__name__
        return f"depends({target})"


def depends(service: type[Service] | str) -> Any:
    """Declare another Service as a dependency of this one; its APIs become methods of the attribute.

        class Pipeline(Service):
            embedder = depends(Embedder)

    In an ``async`` API, ``await self.embedder.encode(texts)``; in a sync one,
    ``self.embedder.encode(texts)`` (it blocks until the answer). Each dependency
    keeps its own micro-batcher, so concurrent calls to a batchable API merge.
    ``depends("Embedder")`` names a class of the same module that may be defined later.
    """
    from ._service import Service  # here: _service imports this module

    if isinstance(service, str):
        if not service.isidentifier():
            raise DefinitionError(f"depends({service!r}): give a Service class, or the name of one defined in the same module")
        return Dependency(service)
    if not (isinstance(service, type) and issubclass(service, Service)) or service is Service:
        raise DefinitionError(f"depends(...) takes a Service subclass (or the name of one), got {service!r}")
    return Dependency(service)


def declared_dependencies(cls: type) -> dict[str, Dependency]:
    """The ``depends`` attributes of ``cls``, inherited ones included, by attribute name."""
    found: dict[str, Dependency] = {}
    for klass in reversed(cls.__mro__):
        for name, member in vars(klass).items():
            if isinstance(member, Dependency):
                found[name] = member
            elif name in found:  # overridden by something else: no longer a dependency
                del found[name]
    return found


def register(cls: type[Service]) -> None:
    _DEFINED[(cls.__module__, cls.__name__)] = cls


def unregister(cls: type[Service]) -> None:
    if _DEFINED.get((cls.__module__, cls.__name__)) is cls:
        del _DEFINED[(cls.__module__, cls.__name__)]


def bind_dependencies(instance: Service, handles: dict[str, Any]) -> None:
    """Connect each dependency attribute of a live instance to its handle (the runtime's side)."""
    for attribute, handle in handles.items():
        instance.__dict__[attribute] = handle
