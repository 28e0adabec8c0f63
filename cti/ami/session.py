"""One manager session of the client: its socket, its protocol core, its actions in flight.

Internal to ``cti.ami.client``. Kept apart so the client module reads as the session loop only.
A ``Session`` is never reused: each TCP connection gets a fresh one (and a fresh
``AmiProtocol``), so no future, ActionID or half-read message can leak from one connection
into the next. When it closes, every action still in flight fails with ``AmiConnectionLost``
and is never re-sent.
"""

from __future__ import annotations

import asyncio

from cti.ami.actions import Action
from cti.ami.config import AmiStats
from cti.ami.protocol import ActionResult, AmiProtocol
from cti.errors import AmiConnectionLost, AmiNotConnected

__all__ = ["Session"]


class Session:
    """One TCP session: the core, its writer, and the futures of its actions in flight.
    Never reused: a new session gets a new one, so nothing from before can leak into it."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        protocol: AmiProtocol,
        stats: AmiStats,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = protocol
        self._stats = stats
        self._futures: dict[str, tuple[str, asyncio.Future[ActionResult]]] = {}
        self.greeted = asyncio.Event()
        self.closed = asyncio.Event()
        self.logged_in = False
        self.reason = ""

    def send(self, action: Action) -> tuple[str, asyncio.Future[ActionResult]]:
        if self.closed.is_set():
            raise AmiNotConnected(f"{action.name}: connection closed ({self.reason})")
        action_id, data = self.protocol.send_action(action)
        future: asyncio.Future[ActionResult] = asyncio.get_running_loop().create_future()
        # Mark any exception as retrieved: the waiter may have been cancelled in the same
        # loop iteration, and "exception was never retrieved" would be noise, not news.
        future.add_done_callback(_retrieve)
        self._futures[action_id] = (action.name, future)
        self.writer.write(data)
        return action_id, future

    async def drain(self, name: str) -> None:
        try:
            await self.writer.drain()
        except (OSError, RuntimeError) as exc:
            raise AmiConnectionLost(f"{name}: connection lost while sending ({exc!r})") from exc

    def resolve(self, result: ActionResult) -> None:
        entry = self._futures.pop(result.action_id, None)
        if entry is not None and not entry[1].done():
            entry[1].set_result(result)

    def forget(self, action_id: str) -> None:
        """The waiter is done with ``action_id``; if still unanswered, tell the core."""
        if self._futures.pop(action_id, None) is not None and not self.closed.is_set():
            self.protocol.abandon(action_id)

    def set_reason(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason

    def abort(self, reason: str) -> None:
        """Close now; the reader sees the end and finishes the job."""
        self.set_reason(reason)
        self.writer.transport.abort()

    def mark_closed(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.set_reason(reason)
        self.closed.set()
        self.greeted.set()
        self.writer.transport.abort()
        for name, future in self._futures.values():
            if not future.done():
                self._stats.actions_lost += 1
                future.set_exception(
                    AmiConnectionLost(
                        f"{name}: connection lost before the answer ({self.reason}); not re-sent"
                    )
                )
        self._futures.clear()


def _retrieve(future: asyncio.Future[ActionResult]) -> None:
    if not future.cancelled():
        future.exception()
