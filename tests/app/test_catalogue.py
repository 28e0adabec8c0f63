"""The bus catalogue: every event the product publishes can leave the process and come back."""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

import pytest

from app.catalogue import CATALOGUE
from cti.bus import EventBus
from cti.catalogue import Catalogue
from cti.codec import CodecError, type_hints

_NAMES = {entry.type.__name__ for entry in CATALOGUE}


def _sample(tp: Any, depth: int = 0) -> Any:
    """A value of type ``tp`` with every optional part filled, so the round trip sees it all."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return {"free": ["form", 1]}
    if origin is typing.Union or origin is types.UnionType:
        concrete = [a for a in args if a is not type(None)]
        return _sample(concrete[0], depth)
    if origin is typing.Literal:
        return args[-1]
    if tp is bool:
        return True
    if tp is int:
        return 42
    if tp is float:
        return 12.5
    if tp is str:
        return f"text-{depth}"
    if tp is bytes:
        return b"\x00caf\xc3\xa9\xff"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return list(tp)[-1]
    if origin is tuple:
        if args and args[-1] is Ellipsis:
            return (_sample(args[0], depth + 1), _sample(args[0], depth + 2))
        return tuple(_sample(a, depth + 1) for a in args)
    if origin in (dict, Mapping):
        return {"k1": _sample(args[1], depth + 1)}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = type_hints(tp, CATALOGUE.names)
        return tp(**{f.name: _sample(hints[f.name], depth + 1) for f in dataclasses.fields(tp)})
    raise AssertionError(f"no sample for {tp!r}")


@pytest.mark.parametrize("entry", list(CATALOGUE), ids=lambda e: f"{e.name}.v{e.version}")
def test_every_event_round_trips_through_json(entry: Any) -> None:
    event = _sample(entry.type)
    envelope = json.loads(json.dumps(CATALOGUE.seal(event)))
    assert envelope["name"] == entry.name
    assert envelope["version"] == entry.version
    assert len(envelope["id"]) == 32
    assert CATALOGUE.open(envelope) == event


def test_names_are_dotted_lowercase_and_no_event_type_extends_another() -> None:
    # A subscriber to every catalogued type must get each event once: no entry may be a
    # subclass of another, or the bus (which delivers by class and base class) would double it.
    types_ = [entry.type for entry in CATALOGUE]
    for a in types_:
        assert not any(a is not b and issubclass(a, b) for b in types_), a
    for entry in CATALOGUE:
        domain, _, name = entry.name.partition(".")
        assert domain in {"pbx", "ivr", "acd", "console"}
        assert name
        assert name == name.lower()
        assert " " not in name


def test_an_unknown_or_malformed_envelope_is_refused_with_the_reason() -> None:
    with pytest.raises(CodecError, match=r"unknown event 'acd\.nope'"):
        CATALOGUE.open({"name": "acd.nope", "version": 1, "data": {}})
    with pytest.raises(CodecError, match=r"unknown event 'acd\.call_queued' version 9"):
        CATALOGUE.open({"name": "acd.call_queued", "version": 9, "data": {}})
    with pytest.raises(CodecError, match="an envelope is an object"):
        CATALOGUE.open(["acd.call_queued"])
    with pytest.raises(CodecError, match="missing"):
        CATALOGUE.open({"name": "acd.call_queued", "version": 1, "data": {}})


def test_registering_twice_or_a_mutable_type_is_a_programming_error() -> None:
    catalogue = Catalogue()

    @dataclasses.dataclass(frozen=True)
    class Ping:
        at: float

    @dataclasses.dataclass
    class Loose:
        at: float

    catalogue.register("test.ping", 1, Ping)
    with pytest.raises(ValueError, match="twice"):
        catalogue.register("test.ping", 1, Ping)
    with pytest.raises(ValueError, match="twice"):
        catalogue.register("test.ping", 1, type("Other", (Ping,), {}))
    with pytest.raises(TypeError, match="not frozen"):
        catalogue.register("test.loose", 1, Loose)


def test_the_bus_notices_an_uncatalogued_type_and_still_delivers_it() -> None:
    bus = EventBus(CATALOGUE)
    seen: list[object] = []
    everything: list[object] = []
    bus.subscribe(object, seen.append)
    bus.subscribe_catalogue(everything.append)

    @dataclasses.dataclass(frozen=True)
    class Stray:
        at: float

    bus.publish(Stray(1.0))
    bus.publish(Stray(2.0))
    event = _sample(next(iter(CATALOGUE)).type)
    bus.publish(event)
    assert bus.uncatalogued == {Stray}
    assert seen == [Stray(1.0), Stray(2.0), event]
    assert everything == [event]  # catalogue subscribers get each catalogued event once
