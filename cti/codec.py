"""Bus events to JSON and back, driven by their type hints: what lets an event leave the process.

The bus carries frozen dataclasses (``CallQueued``, ``AgentStateChanged``, ``CallStarted`` with
its ``Call`` snapshot...). In one process they travel as objects; between processes (the
broker of the scale-out issue) they travel as JSON. Rather than a hand-written ``to_dict`` per
event, which drifts from the fields, the codec walks the dataclass fields and their annotations:

    str int float bool None     as themselves (an int is accepted where a float is declared)
    bytes                       base64 text (the FastAGI environment keeps raw bytes)
    Enum                        its value
    tuple[X, ...], tuple[X, Y]  a list
    list[X], frozenset[X]       a list
    dict[str, X], Mapping[str, X]   an object (keys must be strings)
    X | None, X | Y             the first alternative that decodes
    Literal["a", "b"]           the value, checked
    a frozen dataclass          an object of its fields
    Any / object                as it is (must already be JSON)

Decoding checks every value against the annotation and raises ``CodecError`` naming the path
(``call.channels[1].state``): a peer's malformed message is its mistake, reported, never a
half-built event. Annotations may name types imported only under ``TYPE_CHECKING``; the caller
passes those in ``names`` (see ``app.catalogue``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import sys
import types
import typing
from collections.abc import Mapping
from typing import Any

from cti.errors import RemoteProtocolError

__all__ = ["CodecError", "decode", "encode", "type_hints"]

Json = Any


class CodecError(RemoteProtocolError):
    """A message does not fit the event type it claims to be."""


def encode(value: object) -> Json:
    """A JSON-able form of ``value`` (a dataclass, enum, tuple... as the table above says)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return encode(value.value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list | frozenset | set):
        items = sorted(value, key=repr) if isinstance(value, frozenset | set) else value
        return [encode(item) for item in items]
    if isinstance(value, Mapping):
        out: dict[str, Json] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"mapping key {key!r} is not a string")
            out[key] = encode(item)
        return out
    raise TypeError(f"cannot encode {type(value).__name__} for the bus")


def decode(tp: Any, data: Json, names: Mapping[str, Any] | None = None) -> Any:
    """Rebuild a value of type ``tp`` from ``encode``'s output; ``CodecError`` if it won't fit."""
    return _decode(tp, data, dict(names or {}), "")


def type_hints(cls: type, names: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The resolved annotations of a dataclass, ``names`` filling in TYPE_CHECKING imports."""
    module = sys.modules[cls.__module__]
    try:
        return typing.get_type_hints(cls, globalns=vars(module), localns=dict(names or {}))
    except NameError as exc:
        raise TypeError(f"{cls.__name__}: {exc} (pass it in names)") from exc


def _where(path: str) -> str:
    return path or "the message"


def _decode(tp: Any, data: Json, names: dict[str, Any], path: str) -> Any:
    if tp is Any or tp is object:
        return data
    if tp is type(None) or tp is None:
        if data is not None:
            raise CodecError(f"{_where(path)}: expected null, got {data!r}")
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        problems = []
        for alternative in args:
            try:
                return _decode(alternative, data, names, path)
            except CodecError as exc:
                problems.append(str(exc))
        raise CodecError(f"{_where(path)}: fits none of {tp}: " + "; ".join(problems))
    if origin is typing.Literal:
        if data not in args:
            raise CodecError(f"{_where(path)}: expected one of {list(args)}, got {data!r}")
        return data
    if tp is bool:
        if not isinstance(data, bool):
            raise CodecError(f"{_where(path)}: expected true or false, got {data!r}")
        return data
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise CodecError(f"{_where(path)}: expected an integer, got {data!r}")
        return data
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise CodecError(f"{_where(path)}: expected a number, got {data!r}")
        return float(data)
    if tp is str:
        if not isinstance(data, str):
            raise CodecError(f"{_where(path)}: expected a string, got {data!r}")
        return data
    if tp is bytes:
        if not isinstance(data, str):
            raise CodecError(f"{_where(path)}: expected base64 text, got {data!r}")
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise CodecError(f"{_where(path)}: not base64: {exc}") from exc
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(data)
        except ValueError as exc:
            raise CodecError(f"{_where(path)}: {data!r} is not a {tp.__name__}") from exc
    if origin in (tuple, list, frozenset, set) or tp in (tuple, list):
        if not isinstance(data, list):
            raise CodecError(f"{_where(path)}: expected a list, got {type(data).__name__}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(data):
                raise CodecError(f"{_where(path)}: expected {len(args)} items, got {len(data)}")
            return tuple(
                _decode(a, item, names, f"{path}[{i}]")
                for i, (a, item) in enumerate(zip(args, data, strict=True))
            )
        item_type = args[0] if args else Any
        items = [_decode(item_type, item, names, f"{path}[{i}]") for i, item in enumerate(data)]
        container = origin or tp
        return container(items)
    if origin in (dict, Mapping):
        if not isinstance(data, dict):
            raise CodecError(f"{_where(path)}: expected an object, got {type(data).__name__}")
        value_type = args[1] if len(args) == 2 else Any
        return {k: _decode(value_type, v, names, f"{path}.{k}") for k, v in data.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise CodecError(f"{_where(path)}: expected an object, got {type(data).__name__}")
        hints = type_hints(tp, names)
        kwargs: dict[str, Any] = {}
        for field in dataclasses.fields(tp):
            if not field.init:
                continue
            sub = f"{path}.{field.name}" if path else field.name
            if field.name not in data:
                has_default = (
                    field.default is not dataclasses.MISSING
                    or field.default_factory is not dataclasses.MISSING
                )
                if has_default:
                    continue
                raise CodecError(f"{sub}: missing")
            kwargs[field.name] = _decode(hints[field.name], data[field.name], names, sub)
        return tp(**kwargs)
    raise TypeError(f"{_where(path)}: the codec does not handle {tp!r}")
