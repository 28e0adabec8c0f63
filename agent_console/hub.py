"""The live-push hub: one outgoing queue and one writer per page, snapshot then deltas.

Theory of operation
-------------------
Every page holds one websocket. The hub knows each page as a :class:`Subscription`: the topics
it follows ("queues", "agents", "agent:<id>"), a bounded queue of frames waiting to be written,
and the writer loop (:meth:`Subscription.run`) that a transport runs as the page's own task.

* ``Hub.publish(topic, type, data)`` is synchronous. It stamps the next sequence number, turns
  the frame into text ONCE (``json.dumps`` with compact separators) and hands that same ``str``
  object to every subscribed queue with ``put_nowait``. It never awaits, so one page cannot
  delay the publisher or any other page.
* A page whose queue is full is DROPPED at once: its queue is emptied, its writer is stopped
  (even if stuck in a ``send`` that a stalled browser will never finish) and its transport is
  asked to close with :data:`CLOSE_SLOW_CONSUMER`. The page reconnects and resyncs from a fresh
  snapshot, which is cheaper and more correct than letting it lag further.
* Snapshot then deltas, no gap and no duplicate. :meth:`Hub.connect` is synchronous: in one
  step, with no ``await`` in between, it reads the snapshot, reads the current sequence number
  ``S``, queues the snapshot frame (``"seq": S``) and attaches the page to its topics. Asyncio
  runs one thing at a time, so every publish either happened before (its seq <= S, its effect
  is in the snapshot, it is not sent) or after (seq > S, queued behind the snapshot). A page
  therefore sees seq numbers ``S, then strictly increasing values > S``; they are shared by all
  topics, so a page sees gaps that belong to other topics. A page detects a lost frame only by
  its transport closing, and always resyncs then. The snapshot provider must be synchronous for
  that reason: it reads in-memory state (ACD figures, agent states); anything that needs I/O
  (a CRM lookup for a screen-pop) is fetched before it is published.
* Heartbeats are not the hub's business: the aiohttp adapter (agent_console/ws.py) prepares
  its ``WebSocketResponse`` with ``heartbeat=`` so aiohttp pings the browser and closes a dead
  connection, which ends the writer through the transport.

The hub is transport-independent: a writer is given ``send(text)`` and ``close(code, reason)``
callables, so tests drive it with in-memory fakes and the adapter with an aiohttp websocket.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_SLOW_CONSUMER",
    "Close",
    "Hub",
    "HubStats",
    "Send",
    "Snapshot",
    "SnapshotSource",
    "Subscription",
    "agent_topic",
]

log = logging.getLogger(__name__)

# 4000-4999 is the application range of RFC 6455 section 7.4.2: browsers pass it to the page,
# whose script uses it to tell "you were too slow, resync" from a server restart (1001).
CLOSE_SLOW_CONSUMER: Final = 4008
CLOSE_GOING_AWAY: Final = 1001

Send = Callable[[str], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]
Snapshot = Sequence[Mapping[str, Any]]
SnapshotSource = Callable[[], Snapshot] | Snapshot

SNAPSHOT_TYPE: Final = "snapshot"


def agent_topic(agent_id: str) -> str:
    """The topic of one agent's own console (its state, offers, screen-pops)."""
    return f"agent:{agent_id}"


def _dumps(frame: Mapping[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class HubStats:
    clients: int
    dropped: int
    sent: int
    serialisations: int
    published: int


class Subscription:
    """One page: its topics, its bounded queue and its writer loop."""

    def __init__(self, hub: Hub, client_id: str, topics: frozenset[str], queue_size: int) -> None:
        self.client_id = client_id
        self.topics = topics
        self.snapshot_seq = 0
        self.sent = 0
        self._hub = hub
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self._stopped = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""

    @property
    def dropped(self) -> bool:
        return self.close_code == CLOSE_SLOW_CONSUMER

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _offer(self, text: str) -> bool:
        """Queue a frame; False when the queue is full (the caller drops the page)."""
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            return False
        return True

    def offer_reply(self, text: str) -> None:
        """Queue a frame for this page only (an answer to its own message), dropping it if full."""
        if not self._offer(text):
            self._hub._drop(self)

    def stop(self, code: int, reason: str) -> None:
        """Ask the writer to stop and the transport to close with ``code``; idempotent."""
        if self._stopped.is_set():
            return
        self.close_code = code
        self.close_reason = reason
        # Frames still queued are stale for a page that will resync; free them now.
        while not self._queue.empty():
            self._queue.get_nowait()
        self._stopped.set()

    async def run(self, send: Send, close: Close) -> None:
        """Write queued frames with ``send`` until stopped; then ``close`` if we chose to.

        The sending loop is a child task so that a stop can cancel a ``send`` that a stalled
        peer never completes. ``close`` is called only when the hub or the adapter stopped the
        page (dropped, refused input, shutdown), not when the transport failed by itself.
        """
        async with asyncio.TaskGroup() as tasks:
            sender = tasks.create_task(self._send_loop(send))
            await self._stopped.wait()
            sender.cancel()
        self._hub.disconnect(self)
        if self.close_code is not None and self.close_code != _TRANSPORT_GONE:
            try:
                await close(self.close_code, self.close_reason)
            except Exception:  # the transport is going away either way
                log.debug("close of %s failed", self.client_id, exc_info=True)

    async def _send_loop(self, send: Send) -> None:
        while True:
            text = await self._queue.get()
            try:
                await send(text)
            except Exception as exc:  # the peer went away: nothing left to write to
                log.debug("send to %s failed: %r", self.client_id, exc)
                self.stop(_TRANSPORT_GONE, "transport failed")
                return
            self.sent += 1
            self._hub._sent += 1


# Internal marker: the transport failed by itself, so there is nobody to send a close frame to.
_TRANSPORT_GONE: Final = -1


class Hub:
    """Fan-out of published frames to subscribed pages; see the module docstring."""

    def __init__(self, *, queue_size: int = 256) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.queue_size = queue_size
        self._seq = 0
        self._by_topic: dict[str, set[Subscription]] = {}
        self._clients: set[Subscription] = set()
        self._dropped = 0
        self._sent = 0
        self._serialisations = 0
        self._published = 0

    @property
    def seq(self) -> int:
        """The sequence number of the last published frame (0 before any)."""
        return self._seq

    @property
    def stats(self) -> HubStats:
        return HubStats(
            clients=len(self._clients),
            dropped=self._dropped,
            sent=self._sent,
            serialisations=self._serialisations,
            published=self._published,
        )

    def connect(
        self,
        client_id: str,
        topics: Iterable[str],
        snapshot: SnapshotSource,
        *,
        queue_size: int | None = None,
    ) -> Subscription:
        """Attach a page: queue its snapshot and follow its topics, atomically (no await).

        ``client_id`` names the page in logs and for :meth:`close_client` (a session id lets a
        logout close that session's pages); several pages may share one.

        ``snapshot`` is a list of items or a synchronous callable returning one; it is sent as
        ``{"seq": S, "topic": null, "type": "snapshot", "data": [...]}`` where ``S`` is the seq
        it reflects. Only frames with a seq greater than ``S`` follow.
        """
        size = self.queue_size if queue_size is None else queue_size
        # The snapshot frame must always fit, whatever the queue size.
        sub = Subscription(self, client_id, frozenset(topics), max(size, 1))
        items = snapshot() if callable(snapshot) else snapshot
        sub.snapshot_seq = self._seq
        frame = {"seq": self._seq, "topic": None, "type": SNAPSHOT_TYPE, "data": list(items)}
        self._serialisations += 1
        sub._offer(_dumps(frame))
        self._clients.add(sub)
        for topic in sub.topics:
            self._by_topic.setdefault(topic, set()).add(sub)
        return sub

    def disconnect(self, sub: Subscription) -> None:
        """Detach a page (idempotent). Its writer stops if it still runs."""
        self._detach(sub)
        sub.stop(CLOSE_GOING_AWAY, "unsubscribed")

    def _detach(self, sub: Subscription) -> None:
        self._clients.discard(sub)
        for topic in sub.topics:
            subs = self._by_topic.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_topic[topic]

    def publish(self, topic: str, type_: str, data: Any) -> int:
        """Send one frame to every page following ``topic``; returns its seq.

        ``data`` must be JSON-serialisable (TypeError otherwise, raised to the publisher).
        Serialised once; the same ``str`` goes to every queue. Pages whose queue is full are
        dropped (closed with :data:`CLOSE_SLOW_CONSUMER`), the others are not affected.
        """
        self._seq += 1
        self._published += 1
        subs = self._by_topic.get(topic)
        if not subs:
            return self._seq
        text = _dumps({"seq": self._seq, "topic": topic, "type": type_, "data": data})
        self._serialisations += 1
        slow = [sub for sub in subs if not sub._offer(text)]
        for sub in slow:
            self._drop(sub)
        return self._seq

    def _drop(self, sub: Subscription) -> None:
        self._dropped += 1
        log.info("dropping slow page %s (%d frames queued)", sub.client_id, sub.pending)
        sub.stop(CLOSE_SLOW_CONSUMER, "too slow: reconnect and resync")
        self._detach(sub)

    def close_client(
        self, client_id: str, *, code: int = CLOSE_GOING_AWAY, reason: str = "signed out"
    ) -> int:
        """Stop every page of ``client_id`` (its session ended, its rights changed); a count."""
        return self.close_matching(lambda other: other == client_id, code=code, reason=reason)

    def close_matching(
        self,
        match: Callable[[str], bool],
        *,
        code: int = CLOSE_GOING_AWAY,
        reason: str = "signed out",
    ) -> int:
        """Stop every page whose client id ``match`` accepts (all of one user's sessions)."""
        pages = [sub for sub in self._clients if match(sub.client_id)]
        for sub in pages:
            sub.stop(code, reason)
            self._detach(sub)
        return len(pages)

    def close_all(self, reason: str = "server shutting down") -> None:
        """Stop every page (server shutdown); their writers close with 1001."""
        for sub in list(self._clients):
            sub.stop(CLOSE_GOING_AWAY, reason)
            self._detach(sub)
