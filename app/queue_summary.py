"""Live queue figures for IVR branch conditions, from Asterisk's app_queue over AMI.

Until the project's own ACD lands, app_queue holds the queues. ``QueueSummary`` (app_queue.c,
manager_queues_summary) gives per queue ``Available`` (members logged in, not paused, not in
use) and ``HoldTime`` (the queue's average hold time, which is also what app_queue announces as
the expected wait). Rather than polling on a timer, the feed asks again when a queue or member
event says something changed, at most once per ``min_interval``, and after every (re)connect.
The AMI reader only sets a flag; the asking happens in the feed's own task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cti.ami import AmiClient, Event
from cti.errors import AmiError
from ivr.ports import QueueFigures

__all__ = ["QUEUE_EVENTS", "QueueSummaryFeed"]

_log = logging.getLogger(__name__)

#: Events after which the figures may have changed (apps/app_queue.c).
QUEUE_EVENTS = frozenset(
    {
        "QueueCallerJoin",
        "QueueCallerLeave",
        "QueueCallerAbandon",
        "QueueMemberStatus",
        "QueueMemberAdded",
        "QueueMemberRemoved",
        "QueueMemberPause",
        "AgentConnect",
        "AgentComplete",
    }
)


class QueueSummaryFeed:
    def __init__(
        self,
        ami: AmiClient,
        sink: Callable[[str, QueueFigures], None],
        *,
        min_interval: float = 0.5,
    ) -> None:
        self._ami = ami
        self._sink = sink
        self._min_interval = min_interval
        self._dirty = asyncio.Event()
        self.refreshes = 0

    def on_event(self, event: Event) -> None:
        if event.name in QUEUE_EVENTS:
            self._dirty.set()

    async def resync(self, _client: AmiClient) -> None:
        await self.refresh()

    async def refresh(self) -> None:
        result = await self._ami.action("QueueSummary")
        for item in result.events:
            queue = item.get("Queue")
            if not queue:
                continue
            hold = _number(item.get("HoldTime"))
            self._sink(
                queue,
                QueueFigures(
                    agents_available=int(_number(item.get("Available")) or 0),
                    # 0 means "no call answered yet": no basis for an estimate.
                    estimated_wait=hold if hold else None,
                ),
            )
        self.refreshes += 1

    async def run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.refresh()
            except AmiError as exc:
                # Not connected, or the action failed: the next (re)connect refreshes anyway.
                _log.debug("queue summary not refreshed: %s", exc)
            await asyncio.sleep(self._min_interval)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
