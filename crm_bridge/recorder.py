"""The interaction log's ear on the event bus: every event the log keeps goes to the writer.

Subscribed to ``object`` (every event): ``from_bus`` decides what the log keeps, so a new
event type is one case there, not a new subscription here. The handler never waits: it
submits and returns (the AMI reader publishes, and must not be slowed by the database). A
refused event (the buffer is full after a long outage) is counted by the writer and logged
here, rate-limited to one line per ``_LOG_EVERY`` refusals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from crm_bridge.timeline import TimelineEvent, from_bus
from crm_bridge.writer import InteractionWriter

__all__ = ["InteractionRecorder"]

_log = logging.getLogger(__name__)
_LOG_EVERY = 1000


class InteractionRecorder:
    def __init__(
        self,
        writer: InteractionWriter,
        *,
        also: tuple[Callable[[TimelineEvent], None], ...] = (),
    ) -> None:
        self._writer = writer
        self._also = also  # told of every fact after it is submitted (the write-back)
        self.refused = 0

    def on_event(self, event: object) -> None:
        timeline = from_bus(event)
        if timeline is None:
            return
        self._writer.submit(timeline).add_done_callback(self._done)
        for listener in self._also:
            listener(timeline)

    def _done(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self.refused += 1
            if self.refused % _LOG_EVERY == 1:
                _log.error("interaction log: event refused (%d so far): %s", self.refused, error)
