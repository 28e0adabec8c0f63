"""A typed, in-process event bus.

Layers talk through it instead of holding references to each other: the call model publishes
``CallStarted``; the CRM log and the consoles subscribe. ``subscribe(EventType, handler)``
returns an unsubscribe callable. Delivery is by class, including base classes, so a handler for
``object`` sees everything (useful for tracing and tests).

Handlers run synchronously, in subscription order, inside ``publish``: they must be quick (the
AMI reader publishes and must never wait on application work). A handler that needs I/O
returns a coroutine; the bus runs it as a task that it owns and awaits in ``aclose`` (nothing
is fire-and-forget). A handler that raises is logged and neither breaks the bus nor stops the
other handlers.

Given a ``Catalogue`` (``cti.catalogue``), the bus also notices any published type that the
catalogue lacks: such an event could not cross a process boundary. It is still delivered in
process, logged once, and kept in ``uncatalogued`` for tests to assert on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from cti.catalogue import Catalogue

__all__ = ["EventBus", "Handler", "Unsubscribe"]

E = TypeVar("E")
Handler = Callable[[E], Awaitable[None] | None]
Unsubscribe = Callable[[], None]

_log = logging.getLogger(__name__)


class EventBus:
    def __init__(self, catalogue: Catalogue | None = None) -> None:
        self._handlers: dict[type[Any], list[Callable[[Any], Awaitable[None] | None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._catalogue = catalogue
        self.uncatalogued: set[type[Any]] = set()

    def subscribe_catalogue(self, handler: Callable[[Any], Awaitable[None] | None]) -> Unsubscribe:
        """Subscribe ``handler`` to every catalogued event type (the store, the webhooks)."""
        if self._catalogue is None:
            raise RuntimeError("this bus has no catalogue")
        unsubscribers = [self.subscribe(entry.type, handler) for entry in self._catalogue]

        def unsubscribe() -> None:
            for undo in unsubscribers:
                undo()

        return unsubscribe

    def subscribe(
        self, event_type: type[E], handler: Callable[[E], Awaitable[None] | None]
    ) -> Unsubscribe:
        handlers = self._handlers.setdefault(event_type, [])
        handlers.append(handler)

        def unsubscribe() -> None:
            # Idempotent: unsubscribing twice is harmless.
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def publish(self, event: object) -> None:
        if self._closed:
            _log.warning("event published after bus closed: %r", event)
            return
        if (
            self._catalogue is not None
            and type(event) not in self._catalogue
            and type(event) not in self.uncatalogued
        ):
            self.uncatalogued.add(type(event))
            _log.error("%s is not in the bus catalogue", type(event).__qualname__)
        for cls in type(event).__mro__:
            # Copy: a handler may unsubscribe itself (or others) while we iterate.
            for handler in tuple(self._handlers.get(cls, ())):
                try:
                    result = handler(event)
                except Exception:
                    _log.exception("event handler %r failed on %r", handler, event)
                    continue
                if result is not None:
                    self._spawn(result, handler, event)

    def _spawn(self, awaitable: Awaitable[None], handler: object, event: object) -> None:
        async def run() -> None:
            try:
                await awaitable
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("async event handler %r failed on %r", handler, event)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every async handler task started so far has finished."""
        while self._tasks:
            await asyncio.gather(*tuple(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop accepting events and wait for the async handlers still running."""
        self._closed = True
        await self.drain()
