"""Checks that what a real run put on the bus could have crossed a process boundary."""

from __future__ import annotations

import json
from collections.abc import Iterable

from app.catalogue import CATALOGUE
from cti.bus import EventBus

__all__ = ["assert_catalogued"]


def assert_catalogued(events: Iterable[object], bus: EventBus) -> None:
    """Every event is catalogued and comes back equal from its JSON envelope."""
    assert bus.uncatalogued == set(), f"published but not in app/catalogue.py: {bus.uncatalogued}"
    for event in events:
        wire = json.loads(json.dumps(CATALOGUE.seal(event)))
        assert CATALOGUE.open(wire) == event, event
