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
from collections.abc import Callable
from typing import Any, Literal, Union

_OPTIONAL = "quaid_optional"
_SCHEMA = "quaid_schema"
_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def info(**schema: Any) -> Any:
    """A required field with extra JSON Schema keywords (``description``, ``pattern``...)."""
    return dataclasses.field(metadata={_SCHEMA: schema})


def optional(**schema: Any) -> Any:
    """A field left out of the answer when it is None (not in ``required``, never ``null``).

    Keyword-only, so a model can add optional fields and still be extended with required ones
    (``SearchedFile`` adds ``file`` to ``SearchAnswer``, ``AddedFile`` extends ``AddAnswer``);
    models are built with keywords only.
    """
    return dataclasses.field(default=None, kw_only=True, metadata={_OPTIONAL: True, _SCHEMA: schema})


class ModelError(TypeError):
    """A value does not fit its model: the service would send something its document denies."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.reason, self.path = reason, path

    def at(self, step: str) -> ModelError:
        """The same error one level up (``step`` is the field or index it was found under)."""
        return ModelError(self.reason, step + self.path)


Converter = Callable[[Any], Any]
_PLAIN = (str, int, float, bool, type(None))


# --- building and sending ------------------------------------------------------------------

def build(model: type, data: Any, where: str = "") -> Any:
    """An instance of dataclass ``model`` from JSON-like ``data``, checked field by field."""
    try:
        return _converter(model)(data)
    except ModelError as exc:
        raise exc.at(where or model.__name__) from None


def dump(value: Any) -> Any:
    """The JSON value of a model instance (optional fields that are None left out)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list or kind is tuple:
        return [dump(v) for v in value]
    if kind is dict:
        return {k: dump(v) for k, v in value.items()}
    spec = _dump_spec(kind)
    if spec is None:
        return value
    out = {}
    for name, is_optional in spec:
        field_value = getattr(value, name)
        if field_value is not None or not is_optional:
            out[name] = dump(field_value)
    return out


@functools.cache
def _dump_spec(kind: type) -> tuple[tuple[str, bool], ...] | None:
    if not dataclasses.is_dataclass(kind):
        return None
    return tuple((f.name, bool(f.metadata.get(_OPTIONAL))) for f in dataclasses.fields(kind))


@functools.cache
def _converter(kind: Any) -> Converter:
    """A function checking and converting one JSON value of type ``kind`` (made once per type:
    answers of a thousand matches are built field by field)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        return _instance_converter(kind)
    if origin in (Union, types.UnionType):
        return _union_converter(args)
    if origin is Literal:
        return _literal_converter(args)
    if origin is list:
        return _list_converter(_converter(args[0]))
    if origin is dict or kind is dict:
        return _dict_converter(_converter(args[1]) if args else None)
    if kind is Any:
        return lambda data: data
    if kind is float:
        return _float
    if kind in _SCALARS:
        return _scalar_converter(kind)
    raise ModelError(f"no rule for type {kind!r}")


def _instance_converter(model: type) -> Converter:
    hints = typing.get_type_hints(model)
    specs = [(f.name, bool(f.metadata.get(_OPTIONAL)), _converter(hints[f.name]))
             for f in dataclasses.fields(model)]
    names = {name for name, _, _ in specs}

    def convert(data: Any) -> Any:
        if isinstance(data, model):
            return data
        _expect(data, dict)
        if not data.keys() <= names:
            raise ModelError(f"unknown field(s) {sorted(set(data) - names)}")
        values = {}
        for name, is_optional, field_converter in specs:
            if name not in data:
                if not is_optional:
                    raise ModelError(f"missing field {name!r}")
                continue
            field_value = data[name]
            try:
                values[name] = None if field_value is None and is_optional else field_converter(field_value)
            except ModelError as exc:
                raise exc.at(f".{name}") from None
        return model(**values)

    return convert


def _union_converter(options: tuple) -> Converter:
    nullable = type(None) in options
    converters = [_converter(o) for o in options if o is not type(None)]

    def convert(data: Any) -> Any:
        if data is None and nullable:
            return None
        errors = []
        for option in converters:
            try:
                return option(data)
            except ModelError as exc:
                errors.append(str(exc))
        raise ModelError(f"fits none of its types ({'; '.join(errors)})")

    return convert


def _literal_converter(allowed: tuple) -> Converter:
    def convert(data: Any) -> Any:
        if type(data) is not type(allowed[0]) or data not in allowed:
            raise ModelError(f"{data!r} is not one of {allowed}")
        return data

    return convert


def _list_converter(item: Converter) -> Converter:
    def convert(data: Any) -> list:
        _expect(data, (list, tuple))
        out = []
        for index, value in enumerate(data):
            try:
                out.append(item(value))
            except ModelError as exc:
                raise exc.at(f"[{index}]") from None
        return out

    return convert


def _dict_converter(inner: Converter | None) -> Converter:
    def convert(data: Any) -> dict:
        _expect(data, dict)
        if inner is None:
            return data
        out = {}
        for key, value in data.items():
            try:
                out[key] = inner(value)
            except ModelError as exc:
                raise exc.at(f".{key}") from None
        return out

    return convert


def _float(data: Any) -> float:
    if type(data) is float:
        return data
    if type(data) is int:
        return float(data)
    raise ModelError(f"expected a number, got {type(data).__name__}")


def _scalar_converter(kind: type) -> Converter:
    def convert(data: Any) -> Any:
        if type(data) is not kind:  # exact type: True is not an integer here
            raise ModelError(f"expected {kind.__name__}, got {type(data).__name__}")
        return data

    return convert


def _expect(data: Any, kind: type | tuple) -> None:
    if not isinstance(data, kind):
        raise ModelError(f"expected {getattr(kind, '__name__', 'a list')}, got {type(data).__name__}")


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
