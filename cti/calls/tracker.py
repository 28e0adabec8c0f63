"""Keeps the call model in step with Asterisk: feeds it AMI events, publishes its changes on
the bus, and reconciles it with ``CoreShowChannels`` after every (re)connect.

``on_ami_event`` runs inside the AMI reader, which must never wait (Asterisk drops a manager
client that reads late), so it only applies the event to the in-memory model and publishes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from cti.bus import EventBus
from cti.calls.model import HANDLED_EVENTS, CallModel, IllegalTransition

__all__ = ["CallTracker", "ListChannels"]

_log = logging.getLogger(__name__)

# Returns the items of a ``CoreShowChannels`` list action (one mapping per live channel).
ListChannels = Callable[[], Awaitable[Sequence[Mapping[str, str]]]]


class CallTracker:
    def __init__(self, model: CallModel, bus: EventBus, clock: Callable[[], float]) -> None:
        self.model = model
        self._bus = bus
        self._clock = clock
        self.resyncs = 0

    def on_ami_event(self, name: str, fields: Mapping[str, str]) -> None:
        if name not in HANDLED_EVENTS:
            return
        try:
            changes = self.model.apply(name, fields, self._clock())
        except IllegalTransition as exc:
            # Refused, model unchanged; the next resync repairs whatever we misread.
            _log.warning("call model refused an event: %s", exc, extra={"ami_event": name})
            return
        for change in changes:
            self._bus.publish(change)

    async def resync(self, list_channels: ListChannels) -> None:
        token = self.model.begin_resync()
        items = await list_channels()
        changes = self.model.finish_resync(token, items, self._clock())
        self.resyncs += 1
        for change in changes:
            self._bus.publish(change)
        summary = changes[-1]
        _log.info("call model resynced: %s", summary)
