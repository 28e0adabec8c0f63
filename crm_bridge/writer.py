"""The one writer of the interaction log: batches, group commit, idempotent, never loses an
acknowledged event, rides out a database that goes away.

    submit(event) ─► buffer (bounded) ─► writer task ─► one transaction per batch:
                                                       INSERT events ON CONFLICT DO NOTHING
                                                       RETURNING the keys really inserted,
                                                       apply those to their interactions,
                                                       COMMIT ─► every future of the batch done

- **Acknowledged means committed.** ``submit`` returns a future that completes only after the
  transaction holding the event committed (SQLite: WAL with ``synchronous=FULL``), so what the
  server acknowledged survives ``kill -9``.
- **Group commit.** While one batch is being written, new events wait in the buffer and go in
  the next transaction together (up to ``max_batch``): a burst costs a few commits, not one per
  event. Each transaction is short and does no network waits of its own.
- **Idempotent.** An event whose ``event_key`` is already stored is neither stored nor applied
  again: replaying the same AMI history after a reconnect changes nothing.
- **Database away.** A failed transaction is rolled back and retried with back-off (the batch
  stays first in line, nothing is reordered); meanwhile events keep being buffered up to
  ``max_buffer``; ``available`` is False and the ``unavailable_since`` time is kept for the
  health page and the console. An event submitted to a full buffer fails at once (counted in
  ``stats.rejected``): the bound is what keeps a long outage from eating the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_bridge.schema import Interaction, InteractionEvent
from crm_bridge.timeline import TimelineEvent, apply, is_interaction, new_interaction
from cti.errors import CtiError

__all__ = ["BufferFull", "InteractionWriter", "WriterStats"]

_log = logging.getLogger(__name__)


class BufferFull(CtiError):
    """The database has been away so long that the bounded buffer is full."""


@dataclass
class WriterStats:
    submitted: int = 0
    written: int = 0  # events newly stored
    duplicates: int = 0  # events whose key was already stored
    batches: int = 0
    failures: int = 0  # transactions that failed (and were retried)
    rejected: int = 0  # refused because the buffer was full
    last_batch: int = 0
    last_commit_seconds: float = 0.0


class InteractionWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], float] = time.time,
        max_batch: int = 500,
        max_buffer: int = 100_000,
        retry_min: float = 0.2,
        retry_max: float = 5.0,
    ) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._clock = clock
        self.max_batch = max_batch
        self.max_buffer = max_buffer
        self._retry_min = retry_min
        self._retry_max = retry_max
        self._buffer: deque[tuple[TimelineEvent, asyncio.Future[None]]] = deque()
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.stats = WriterStats()
        self.available = True
        self.unavailable_since: float | None = None
        self.last_error = ""
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def submit(self, event: TimelineEvent) -> asyncio.Future[None]:
        """Queue ``event``; the future completes once it is committed (or was already)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if len(self._buffer) >= self.max_buffer:
            self.stats.rejected += 1
            future.set_exception(
                BufferFull(f"interaction log buffer full ({self.max_buffer} events)")
            )
            return future
        self.stats.submitted += 1
        self._buffer.append((event, future))
        self._idle.clear()
        self._ready.set()
        return future

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="crm-writer")

    async def aclose(self, *, flush_timeout: float = 5.0) -> None:
        """Write what is buffered (within ``flush_timeout``), then stop."""
        with contextlib.suppress(TimeoutError):
            await self.flush(flush_timeout)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def flush(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until everything submitted so far is committed."""
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    async def _run(self) -> None:
        delay = self._retry_min
        while True:
            await self._ready.wait()
            if not self._buffer:
                self._ready.clear()
                self._idle.set()
                continue
            batch = [self._buffer[i] for i in range(min(self.max_batch, len(self._buffer)))]
            try:
                await self.write([event for event, _ in batch])
            except (SQLAlchemyError, OSError) as exc:
                self.stats.failures += 1
                self.last_error = str(exc).splitlines()[0][:300]
                if self.available:
                    self.available = False
                    self.unavailable_since = self._clock()
                    _log.error("interaction log: database unavailable, buffering: %s", exc)
                await asyncio.sleep(delay)
                delay = min(self._retry_max, delay * 2)
                continue
            if not self.available:
                _log.warning(
                    "interaction log: database back after %.1f s; writing %d buffered events",
                    self._clock() - (self.unavailable_since or self._clock()),
                    len(self._buffer),
                )
                self.available = True
                self.unavailable_since = None
            delay = self._retry_min
            for _ in batch:
                _, future = self._buffer.popleft()
                if not future.done():
                    future.set_result(None)

    async def write(self, events: Sequence[TimelineEvent]) -> int:
        """Store ``events`` in one transaction; returns how many were new."""
        if not events:
            return 0
        unique: dict[str, TimelineEvent] = {}
        for event in events:
            unique.setdefault(event.event_key, event)
        now = self._clock()
        started = time.perf_counter()
        async with self._sessions() as session, session.begin():
            fresh_keys = await self._store_events(session, list(unique.values()), now)
            fresh = [e for e in unique.values() if e.event_key in fresh_keys]
            await self._project(session, fresh, now)
        self.stats.last_commit_seconds = time.perf_counter() - started
        self.stats.batches += 1
        self.stats.last_batch = len(events)
        self.stats.written += len(fresh_keys)
        self.stats.duplicates += len(events) - len(fresh_keys)
        return len(fresh_keys)

    async def _store_events(
        self, session: AsyncSession, events: list[TimelineEvent], now: float
    ) -> set[str]:
        rows = [
            {
                "event_key": e.event_key,
                "interaction_key": e.interaction_key,
                "kind": e.kind,
                "at": e.at,
                "data": dict(e.data),
                "written_at": now,
            }
            for e in events
        ]
        statement = (
            self._insert(InteractionEvent)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["event_key"])
            .returning(InteractionEvent.event_key)
        )
        return set((await session.scalars(statement)).all())

    async def _project(
        self, session: AsyncSession, events: list[TimelineEvent], now: float
    ) -> None:
        events = [e for e in events if is_interaction(e.interaction_key)]
        if not events:
            return
        keys = {e.interaction_key for e in events}
        found = await session.scalars(select(Interaction).where(Interaction.key.in_(keys)))
        rows = {row.key: row for row in found}
        for event in sorted(events, key=lambda e: e.at):
            row = rows.get(event.interaction_key)
            if row is None:
                row = new_interaction(event, now)
                session.add(row)
                rows[event.interaction_key] = row
            apply(row, event, now)
