"""``Service``: the base class users subclass. It only declares; serving lives in ``runtime``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .. import openai
from ._artifact import PackedService
from ._depends import register, unregister
from ._graph import check_graph
from ._inspect import inspect_apis
from ._method import APIMethod


class Service:
    """Subclass this, load your model in ``setup()``, and mark methods with ``@api``::

        from modelbundle import Service, api

        class MLP(Service):
            def setup(self):
                self.w = np.load("weights.npy")

            @api(batchable=True)
            def predict(self, x: np.ndarray) -> np.ndarray:
                return x @ self.w

    ``setup()`` runs once per server worker before the server reports ready;
    ``teardown()`` runs once when the worker stops. Either may be ``async``.
    The class is checked when it is defined: a wrong hint or option raises
    ``DefinitionError`` naming the method.
    """

    #: the service's name in bundles and in the HTTP docs; defaults to the class name
    name: ClassVar[str] = ""
    #: the checked APIs, filled in when the subclass is defined
    __apis__: ClassVar[Mapping[str, APIMethod]] = {}
    #: the checked ``modelbundle.openai`` declarations, or None when the service serves no /v1 routes
    __openai__: ClassVar[openai.OpenAIDeclarations | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in vars(cls):
            cls.name = cls.__name__
        cls.__apis__ = inspect_apis(cls)
        cls.__openai__ = openai.declarations(cls)
        register(cls)  # before the check, so that depends("ThisClass") elsewhere closes a cycle here
        try:
            check_graph(cls)
        except BaseException:
            unregister(cls)
            raise

    @classmethod
    def pack(cls, **artifacts: Any) -> PackedService:
        """Bind values to the declared artifacts: ``Iris.pack(model=clf).save(name="iris")``."""
        return PackedService(cls, artifacts)

    def setup(self) -> Any:
        """Load models and open resources. Runs once per worker before it serves."""

    def teardown(self) -> Any:
        """Release resources. Runs once per worker after it has finished serving."""
