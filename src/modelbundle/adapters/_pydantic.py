"""Pydantic models and plain JSON types (dict, list, int, list[str], ...), validated by pydantic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from ._base import Adapter, invalid

_REF_TEMPLATE = "#/components/schemas/{model}"


def _validation_message(field: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False)[:5]:
        # empty parts would show as "q: : msg" or "; .b: msg"
        location = ".".join(str(part) for part in (field, *error["loc"]) if str(part) != "")
        problems.append(f"{location}: {error['msg']}" if location else error["msg"])
    return "; ".join(problems)


class PydanticModel(Adapter):
    """A pydantic ``BaseModel`` subclass, as a JSON object."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model

    def describe(self) -> str:
        return f"a {self.model.__name__} object"

    def describe_json(self) -> str:
        fields = ", ".join(f"'{name}'" for name in self.model.model_fields)
        return f"a {self.model.__name__} object (fields {fields})" if fields else self.describe()

    def from_json(self, value: Any, field: str) -> Any:
        try:
            return self.model.model_validate(value)
        except ValidationError as exc:
            raise invalid(field, _validation_message("", exc).lstrip(".")) from None

    def to_json(self, value: Any) -> Any:
        if not isinstance(value, BaseModel):
            # a dict returned for a model hint: dump_python would pass it through with a warning, unchecked
            value = self.model.model_validate(value)
        return value.model_dump(mode="json")

    def json_schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        schema = self.model.model_json_schema(ref_template=_REF_TEMPLATE)
        defs.update(schema.pop("$defs", {}))
        defs[self.model.__name__] = schema
        return {"$ref": _REF_TEMPLATE.format(model=self.model.__name__)}


class JSONValue(Adapter):
    """Any type pydantic can validate: ``dict``, ``list[float]``, ``int``, ``Optional[str]``..."""

    def __init__(self, annotation: Any) -> None:
        self.annotation = annotation
        self._adapter: TypeAdapter[Any] = TypeAdapter(annotation)
        origin = getattr(annotation, "__origin__", annotation)
        self._is_list = origin is list
        # dict, Any, a union holding dict...: an object may be the value itself
        self._json_object: bool = self._adapter.json_schema().get("type", "object") == "object"

    @property
    def json_object(self) -> bool:  # type: ignore[override]
        return self._json_object

    @property
    def batchable(self) -> bool:  # type: ignore[override]
        return self._is_list

    def describe(self) -> str:
        # list[float].__name__ is just "list"; str() keeps the parameters
        return self.annotation.__name__ if isinstance(self.annotation, type) else str(self.annotation)

    def from_json(self, value: Any, field: str) -> Any:
        try:
            return self._adapter.validate_python(value)
        except ValidationError as exc:
            raise invalid(field, _validation_message("", exc).lstrip(".")) from None

    def to_json(self, value: Any) -> Any:
        return self._adapter.dump_python(value, mode="json")

    def json_schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        schema = self._adapter.json_schema(ref_template=_REF_TEMPLATE)
        defs.update(schema.pop("$defs", {}))
        return schema

    def rows(self, value: Any, dim: int) -> int:
        return len(value)

    def batch(self, values: Sequence[Any], dim: int) -> Any:
        return [item for value in values for item in value]

    def empty(self, dim: int) -> Any:
        return [] if self._is_list else None

    def unbatch(self, value: Any, sizes: Sequence[int], dim: int) -> list[Any]:
        if len(value) != sum(sizes):
            raise ValueError(f"the API returned {len(value)} items for a batch of {sum(sizes)}")
        pieces, start = [], 0
        for size in sizes:
            pieces.append(value[start : start + size])
            start += size
        return pieces
