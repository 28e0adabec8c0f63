"""Interaction write-back: each finished interaction's row, sent to an external CRM.

    recorder ─► on_event(timeline event)  (sync, never waits)
                   │  terminal fact, or any later fact about a finished interaction
                   ▼
                pending {key: due time}  (bounded: beyond max_pending the oldest is dropped)
                   │  the write-back task, when a key is due:
                   ▼
                writer.flush()  ─►  read the rows  ─►  sink.send(row)  (HttpCrm in production)

Theory of operation:

- **Finished.** An interaction is finished when the timeline has seen a terminal fact for it:
  ``ended`` (the ACD's end of talk), ``abandoned``, ``call_ended``, ``callback_failed``, or
  ``ivr_finished`` with an outcome other than ``queued`` (the caller left in the IVR). The wrap-up
  is not waited for: a later fact about the same interaction (a disposition, the call model's
  own end after the ACD's) sends the row again. Resending is safe: the sink is given the
  interaction's key as ``Idempotency-Key``. Facts before the first terminal one send nothing.
- **Coalescing.** A key becomes due ``delay`` seconds after the fact that made it pending;
  facts arriving meanwhile join that send (``ended`` and ``call_ended`` of one call are one
  request). A fact arriving *while* its key is being sent marks it dirty: it is sent once more,
  since the row read for the send in flight may predate that fact.
- **Committed first.** Before reading, the task awaits ``writer.flush()`` so the facts it was
  told about are in the row. If the writer does not become idle within ``flush_timeout`` (the
  database is away), the due keys wait another ``delay``; nothing is read half-written.
- **Failures.** ``ExternalCrmError`` keeps the key pending, due again after ``retry_after``.
  When the CRM seems down (no status, or 5xx), the rest of that round is postponed as well
  rather than each key spending the sink's own retries; a 4xx concerns that one row only.
  Pending keys are bounded by ``max_pending``: past it, the key pending longest is dropped and
  counted in ``stats.dropped`` (what keeps a CRM outage of days from eating memory).
- **Never raises into the caller.** ``on_event`` only updates dictionaries; the task logs
  (at most one line per ``_LOG_EVERY`` seconds per kind of trouble) and goes on.

The finished keys are remembered in memory (the last ``remember`` of them): after a restart, a
late fact about an interaction finished before it is not sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.external import ExternalCrmError, InteractionSink
from crm_bridge.schema import Interaction
from crm_bridge.timeline import TimelineEvent, is_interaction
from crm_bridge.writer import InteractionWriter

__all__ = ["TERMINAL_KINDS", "WriteBack", "WriteBackStats", "is_terminal", "row_to_dict"]

_log = logging.getLogger(__name__)

#: seconds between two log lines about the same kind of trouble
_LOG_EVERY = 60.0

TERMINAL_KINDS = frozenset({"ended", "abandoned", "call_ended", "callback_failed"})

_TABLE = Interaction.__table__


def is_terminal(event: TimelineEvent) -> bool:
    """Whether ``event`` finishes its interaction (see the module docstring)."""
    if not is_interaction(event.interaction_key):
        return False
    if event.kind in TERMINAL_KINDS:
        return True
    return event.kind == "ivr_finished" and event.data.get("outcome") != "queued"


def row_to_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    """An ``interactions`` row as a JSON-able dict: every column by name, floats and JSON
    columns as they come from the database (copied, so the sink cannot change our data)."""
    out: dict[str, Any] = {}
    for column in _TABLE.columns:
        value = row[column.name]
        if isinstance(value, dict):
            value = dict(value)
        elif isinstance(value, list):
            value = list(value)
        out[column.name] = value
    return out


@dataclass
class WriteBackStats:
    sent: int = 0  # rows the sink accepted
    failed: int = 0  # sends that raised (ExternalCrmError, or a sink's bug); key kept
    dropped: int = 0  # keys dropped because more than max_pending were waiting
    pending: int = 0  # keys waiting now


@dataclass
class _Pending:
    due: float
    in_flight: bool = False
    dirty: bool = False  # a fact arrived during the send in flight


class WriteBack:
    def __init__(
        self,
        engine: AsyncEngine,
        sink: InteractionSink,
        *,
        writer: InteractionWriter,
        clock: Callable[[], float] = time.monotonic,
        delay: float = 1.0,
        retry_after: float = 30.0,
        max_pending: int = 10_000,
        flush_timeout: float = 10.0,
        remember: int = 100_000,
    ) -> None:
        self._engine = engine
        self._sink = sink
        self._writer = writer
        self._clock = clock
        self.delay = delay
        self.retry_after = retry_after
        self.max_pending = max_pending
        self.flush_timeout = flush_timeout
        self._remember = remember
        self._finished: OrderedDict[str, None] = OrderedDict()
        # Insertion order is the order keys became pending: the first is the one dropped.
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._stats = WriteBackStats()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._logged: dict[str, float] = {}

    @property
    def stats(self) -> WriteBackStats:
        self._stats.pending = len(self._pending)
        return self._stats

    @property
    def pending(self) -> list[str]:
        """The keys waiting to be sent, oldest first."""
        return list(self._pending)

    # -- the caller's side: never waits, never raises ---------------------------------------

    def on_event(self, event: TimelineEvent) -> None:
        key = event.interaction_key
        if is_terminal(event):
            self._finished[key] = None
            self._finished.move_to_end(key)
            while len(self._finished) > self._remember:
                self._finished.popitem(last=False)
        elif key not in self._finished:
            return
        entry = self._pending.get(key)
        if entry is not None:
            # Already due soon (or retrying): that send reads the row as it is then.
            entry.dirty = entry.dirty or entry.in_flight
            return
        while self._pending and len(self._pending) >= self.max_pending:
            dropped, _ = self._pending.popitem(last=False)
            self._stats.dropped += 1
            self._warn(
                "dropped", "write-back: %d dropped so far (last: %s)", self._stats.dropped, dropped
            )
        self._pending[key] = _Pending(self._clock() + self.delay)
        self._wake.set()

    # -- the task ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="crm-writeback")

    async def aclose(self) -> None:
        """Stop the task; keys still pending are left (and counted in ``stats.pending``)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            now = self._clock()
            waiting = [e.due for e in self._pending.values() if not e.in_flight]
            if waiting and min(waiting) <= now:
                await self.send_due()
                continue
            self._wake.clear()
            timeout = (min(waiting) - now) if waiting else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def send_due(self) -> int:
        """Send every key due now; returns how many the sink accepted. (The task's one round,
        public so a test or a shutdown can drive it.)"""
        now = self._clock()
        due = [k for k, e in self._pending.items() if e.due <= now and not e.in_flight]
        if not due:
            return 0
        # In flight from here: a fact arriving during the flush, the read or the send marks
        # its key dirty, so it is sent again with that fact in the row.
        for key in due:
            self._pending[key].in_flight = True
        try:
            await self._writer.flush(self.flush_timeout)
            rows = await self._read(due)
        except Exception as exc:  # TimeoutError (database away), SQLAlchemyError, a driver's own
            self._warn("store", "write-back: rows not readable yet, postponed: %s", exc)
            self._postpone(due, self.delay)
            return 0
        sent = 0
        for index, key in enumerate(due):
            if key not in self._pending:  # dropped meanwhile
                continue
            row = rows.get(key)
            if row is None:
                # Finished but never stored (the writer refused it): nothing to send.
                self._done(key)
                continue
            try:
                await self._sink.send(row)
            except Exception as exc:  # not only ExternalCrmError: a sink's bug must not stop us
                self._stats.failed += 1
                self._warn("sink", "write-back: CRM refused or unreachable, will retry: %r", exc)
                self._postpone([key], self.retry_after)
                status = exc.status if isinstance(exc, ExternalCrmError) else None
                if status is None or status >= 500:
                    # The CRM is down: the others would only spend its retries too.
                    self._postpone(due[index + 1 :], self.retry_after)
                    break
                continue
            self._stats.sent += 1
            sent += 1
            self._done(key)
        return sent

    def _done(self, key: str) -> None:
        entry = self._pending.get(key)
        if entry is None:
            return
        if entry.dirty:
            entry.in_flight = entry.dirty = False
            entry.due = self._clock() + self.delay
            self._wake.set()
        else:
            del self._pending[key]

    def _postpone(self, keys: Iterable[str], seconds: float) -> None:
        due = self._clock() + seconds
        for key in keys:
            entry = self._pending.get(key)
            if entry is not None:
                entry.in_flight = entry.dirty = False
                entry.due = due

    async def _read(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        async with self._engine.connect() as connection:
            result = await connection.execute(select(_TABLE).where(_TABLE.c.key.in_(keys)))
            return {row.key: row_to_dict(row._mapping) for row in result}

    def _warn(self, kind: str, message: str, *args: object) -> None:
        """Log at most one line per ``_LOG_EVERY`` seconds for each kind of trouble."""
        now = self._clock()
        last = self._logged.get(kind)
        if last is None or now - last >= _LOG_EVERY:
            self._logged[kind] = now
            _log.warning(message, *args)
