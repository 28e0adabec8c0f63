"""The bus's message catalogue: the stable name and version under which each event type travels.

In one process the bus hands objects from publisher to subscriber and needs no names. Between
processes (one PBX adapter per Asterisk, the ACD, the consoles, the store, joined by a broker)
an event travels as an envelope::

    {"name": "acd.call_queued", "version": 1, "id": "<uuid4 hex>", "data": {...fields...}}

The name says what it is independently of where the class lives (a module can move, the name
stays); the version changes when a field changes meaning or a required field is added, so a
consumer can refuse, or translate, what it does not understand. ``id`` lets a consumer drop a
redelivered message. ``data`` is ``cti.codec``'s form of the dataclass.

The catalogue itself is built by the composition root (``app.catalogue``), which is the only
place that knows every role's event types.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, is_dataclass
from typing import Any

from cti.codec import CodecError, decode, encode

__all__ = ["Catalogue", "Entry", "Envelope"]

Envelope = dict[str, Any]


@dataclass(frozen=True)
class Entry:
    name: str
    version: int
    type: type


class Catalogue:
    """Event type <-> (name, version), and envelopes in both directions."""

    def __init__(self, names: Mapping[str, Any] | None = None) -> None:
        self._by_type: dict[type, Entry] = {}
        self._by_name: dict[tuple[str, int], Entry] = {}
        # Types that annotations name only under TYPE_CHECKING (see cti.codec).
        self._names = dict(names or {})

    def register(self, name: str, version: int, event_type: type) -> None:
        if not is_dataclass(event_type):
            raise TypeError(f"{event_type.__name__} is not a dataclass")
        if not event_type.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            raise TypeError(f"{event_type.__name__} is not frozen: events are immutable")
        if event_type in self._by_type:
            raise ValueError(f"{event_type.__name__} is registered twice")
        if (name, version) in self._by_name:
            raise ValueError(f"{name} v{version} is registered twice")
        entry = Entry(name, version, event_type)
        self._by_type[event_type] = entry
        self._by_name[(name, version)] = entry

    @property
    def names(self) -> Mapping[str, Any]:
        """The types that events' annotations name only under TYPE_CHECKING."""
        return self._names

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._by_type.values())

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._by_type

    def entry(self, event_type: type) -> Entry:
        try:
            return self._by_type[event_type]
        except KeyError:
            raise KeyError(f"{event_type.__name__} is not in the catalogue") from None

    def seal(self, event: object, event_id: str | None = None) -> Envelope:
        """The envelope of ``event`` (JSON-able)."""
        entry = self.entry(type(event))
        return {
            "name": entry.name,
            "version": entry.version,
            "id": event_id or uuid.uuid4().hex,
            "data": encode(event),
        }

    def open(self, envelope: object) -> object:
        """The event in ``envelope``; ``CodecError`` for an unknown name or a bad field."""
        if not isinstance(envelope, dict):
            raise CodecError("an envelope is an object")
        name, version = envelope.get("name"), envelope.get("version")
        entry = None
        if isinstance(name, str) and isinstance(version, int):
            entry = self._by_name.get((name, version))
        if entry is None:
            raise CodecError(f"unknown event {name!r} version {version!r}")
        return decode(entry.type, envelope.get("data"), self._names)
