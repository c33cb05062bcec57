"""Typed answer models: build them strictly, send them as JSON, describe them as JSON Schema.

Why: the API's answers and its OpenAPI document must not drift apart. Each answer
body is a dataclass of :mod:`engine.service.models`; the same class

* is built from what the engine returns with :func:`build`, which refuses a missing
  field, an unknown field or a value of the wrong type (a drift is a 500 in the
  tests, never a silent lie to a client),
* is sent with :func:`dump`, and
* is described in the OpenAPI document by :func:`json_schema` (JSON Schema 2020-12,
  the dialect of OpenAPI 3.1).

Field conventions: ``X | None`` is sent as ``null`` when empty (required, nullable);
a field declared with :func:`optional` is left out when empty. Schema keywords
(``description``, ``pattern``, ``minimum``...) go in the field's metadata via
:func:`info`.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Literal, Union

_OPTIONAL = "quaid_optional"
_SCHEMA = "quaid_schema"
_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def info(**schema: Any) -> Any:
    """A required field with extra JSON Schema keywords (``description``, ``pattern``...)."""
    return dataclasses.field(metadata={_SCHEMA: schema})


def optional(**schema: Any) -> Any:
    """A field left out of the answer when it is None (not in ``required``, never ``null``)."""
    return dataclasses.field(default=None, metadata={_OPTIONAL: True, _SCHEMA: schema})


class ModelError(TypeError):
    """A value does not fit its model: the service would send something its document denies."""


# --- building and sending ------------------------------------------------------------------

def build(model: type, data: Any, where: str = "") -> Any:
    """An instance of dataclass ``model`` from JSON-like ``data``, checked field by field."""
    return _value(model, data, where or model.__name__)


def dump(instance: Any) -> Any:
    """The JSON value of a model instance (optional fields that are None left out)."""
    if dataclasses.is_dataclass(instance):
        out = {}
        for f in dataclasses.fields(instance):
            value = getattr(instance, f.name)
            if value is None and f.metadata.get(_OPTIONAL):
                continue
            out[f.name] = dump(value)
        return out
    if isinstance(instance, (list, tuple)):
        return [dump(v) for v in instance]
    if isinstance(instance, dict):
        return {k: dump(v) for k, v in instance.items()}
    return instance


def _value(kind: Any, data: Any, where: str) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        return _instance(kind, data, where)
    if origin in (Union, types.UnionType):
        return _union(args, data, where)
    if origin is Literal:
        if data not in args:
            raise ModelError(f"{where}: {data!r} is not one of {args}")
        return data
    if origin is list:
        _expect(data, (list, tuple), where)
        return [_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(data)]
    if origin is dict or kind is dict:
        _expect(data, dict, where)
        inner = args[1] if args else Any
        return {k: _value(inner, v, f"{where}.{k}") for k, v in data.items()}
    if kind is Any:
        return data
    if kind is float:
        _expect(data, (int, float), where, no_bool=True)
        return float(data)
    if kind in _SCALARS:
        _expect(data, kind, where, no_bool=kind is not bool)
        return data
    raise ModelError(f"{where}: no rule for type {kind!r}")


def _instance(model: type, data: Any, where: str) -> Any:
    if isinstance(data, model):
        return data
    _expect(data, dict, where)
    hints, fields = _hints(model), _fields(model)
    unknown = set(data) - set(fields)
    if unknown:
        raise ModelError(f"{where}: unknown field(s) {sorted(unknown)}")
    values = {}
    for name, f in fields.items():
        if name in data:
            empty_ok = f.metadata.get(_OPTIONAL) and data[name] is None
            values[name] = None if empty_ok else _value(hints[name], data[name], f"{where}.{name}")
        elif not f.metadata.get(_OPTIONAL):
            raise ModelError(f"{where}: missing field {name!r}")
    return model(**values)


@functools.cache
def _hints(model: type) -> dict[str, Any]:
    return typing.get_type_hints(model)


@functools.cache
def _fields(model: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(model)}


def _union(options: tuple, data: Any, where: str) -> Any:
    if data is None and type(None) in options:
        return None
    errors = []
    for option in (o for o in options if o is not type(None)):
        try:
            return _value(option, data, where)
        except ModelError as exc:
            errors.append(str(exc))
    raise ModelError(f"{where}: fits none of its types ({'; '.join(errors)})")


def _expect(data: Any, kind: type | tuple, where: str, no_bool: bool = False) -> None:
    if not isinstance(data, kind) or (no_bool and isinstance(data, bool)):
        raise ModelError(f"{where}: expected {kind}, got {type(data).__name__}")


# --- describing --------------------------------------------------------------------------------

def json_schema(model: type, ref: str = "#/components/schemas/{}") -> dict:
    """The JSON Schema of dataclass ``model``; nested models are ``$ref`` to ``ref``."""
    hints = typing.get_type_hints(model)
    properties, required = {}, []
    for f in dataclasses.fields(model):
        kind = _without_none(hints[f.name]) if f.metadata.get(_OPTIONAL) else hints[f.name]
        properties[f.name] = {**_type_schema(kind, ref), **f.metadata.get(_SCHEMA, {})}
        if not f.metadata.get(_OPTIONAL):
            required.append(f.name)
    schema = {"type": "object", "properties": properties, "required": required,
              "additionalProperties": False}
    if model.__doc__:
        schema["description"] = " ".join(model.__doc__.split())
    return schema


def models_in(model: type) -> list[type]:
    """``model`` and every model its fields refer to, each once."""
    found: list[type] = []

    def walk(kind: Any) -> None:
        if dataclasses.is_dataclass(kind):
            if kind in found:
                return
            found.append(kind)
            for hint in typing.get_type_hints(kind).values():
                walk(hint)
        for arg in typing.get_args(kind):
            walk(arg)

    walk(model)
    return found


def _without_none(kind: Any) -> Any:
    """``X`` of ``X | None``: an optional field is left out when empty, never sent as null."""
    if typing.get_origin(kind) in (Union, types.UnionType):
        options = tuple(o for o in typing.get_args(kind) if o is not type(None))
        return options[0] if len(options) == 1 else Union[options]  # noqa: UP007
    return kind


def _type_schema(kind: Any, ref: str) -> dict:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        return {"$ref": ref.format(kind.__name__)}
    if origin in (Union, types.UnionType):
        options = [o for o in args if o is not type(None)]
        schemas = [_type_schema(o, ref) for o in options]
        nullable = len(options) < len(args)
        if len(schemas) == 1 and "type" in schemas[0] and nullable:
            schema = {**schemas[0], "type": [schemas[0]["type"], "null"]}
            if "enum" in schema:
                schema["enum"] = [*schema["enum"], None]
            return schema
        return {"oneOf": schemas + ([{"type": "null"}] if nullable else [])}
    if origin is Literal:
        return {"type": _SCALARS[type(args[0])], "enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0], ref)}
    if origin is dict or kind is dict:
        inner = args[1] if args else Any
        return {"type": "object"} if inner is Any else \
            {"type": "object", "additionalProperties": _type_schema(inner, ref)}
    if kind in _SCALARS:
        return {"type": _SCALARS[kind]}
    if kind is Any:
        return {}
    raise ModelError(f"no schema rule for type {kind!r}")
