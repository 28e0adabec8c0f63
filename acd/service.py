"""The ACD at run time: waiting calls, agents, and the routing engine applied as things change.

    IVR queue node ─► enqueue ─┐                       ┌─► AcdPbx.deliver (ring the agent)
    callback request ──────────┼─► AcdService ─ route ─┼─► AcdPbx.overflow / originate_callback
    agent API (login, ready…) ─┤    (one asyncio task) └─► bus: AgentStateChanged, CallOffered…
    AMI feed (ringing, answer, ┘         │
      no answer, hang-up, hold)     AcdStore (agents, callbacks) · FiguresTracker (live figures)

Theory of operation.

- **Routing is event-driven.** Anything that can make a match (a call arrives, an agent becomes
  ready, an offer fails) wakes the routing task at once; it builds a ``Snapshot`` and applies
  ``acd.engine.route``. Rules that depend on time alone (relaxation, aging, maximum wait,
  callbacks coming due) are looked at once per ``tick`` (1 s by default): that is the only
  polling, and no caller waits on it when an agent is free.
- **One offer per agent, one per call.** An offer reserves the agent (``reserved``) and marks the
  call ``offered`` before the PBX is asked to ring, so a routing pass running meanwhile cannot
  hand out either again. If the PBX refuses (``DeliveryError``), the agent is freed (not their
  fault) and the call waits again, first in line as before, retried after ``retry_delay``.
- **The caller's place** is ``entered_at``: the moment the call entered the queue, kept through
  ring-no-answer re-offers, restarts (it is stored on the caller's channel) and a callback that
  replaces the call. An overflow to another queue is a new visit of that queue, with a new
  ``entered_at`` (its maximum wait and relaxation count from there) and the same priority.
- **Ring-no-answer**, busy and unreachable phones, and a Dial that fails at once (Asterisk says
  nothing then: the delivery asks it, acd/delivery.py ``_watch_dial``): the agent goes not
  ready ("no answer") and the call is offered again, to the next agent, same place. A caller
  who hangs up while an agent's phone rings is an abandon; the PBX stops the ringing (Dial is
  cancelled with the caller) and the agent is ready again.
- **Wrap-up** starts when an answered call ends, one per call, for the agent's (or the queue's)
  configured time; the agent may end it early, or choose not ready or log out from it.
- **Restart and drift** (``reconcile``, acd/reconcile.py): the PBX's channels are the truth for
  calls. Calls we do not know are adopted from the waiting state on their channel, calls whose
  channel is gone are dropped, agents whose call vanished are freed, agents found talking are
  put on call (keeping the answer time saved with the agent, so talk time counts from the
  answer); every repair is logged and published as ``AcdRepaired``. Live events win: a channel
  list older than a hang-up or a change the events made is not allowed to undo them. Today's
  figures are seeded from the store's finished calls (``seed_today``, acd/history.py).
- **One module per concern**: waiting-state codec (acd/waiting.py), records (acd/runtime.py),
  the call's lifecycle table (acd/call_state.py), shared state and plumbing (acd/core.py),
  agent control (acd/agent_control.py), delivery (acd/delivery.py), PBX feedback
  (acd/feedback.py), reconciliation (acd/reconcile.py), persistence mapping (acd/records.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from acd.agent_control import AgentControl
from acd.agent_state import AgentStatus
from acd.call_state import CallEvent, CallState, IllegalCallTransition
from acd.delivery import Delivery
from acd.engine import call_order_key
from acd.errors import AcdError, AgentControlError
from acd.feedback import PbxFeedback
from acd.history import PastVisit, seed_figures
from acd.ports import CallbackRecord
from acd.reconcile import Reconciliation
from acd.records import callback_call, restore_agent
from acd.runtime import (
    CALLBACK_CONTEXT,
    DELIVER_CONTEXT,
    WAIT_CONTEXT,
    AcdCall,
    AgentRuntime,
    ChannelView,
)
from acd.waiting import WAITING_VERSION, WaitingState, decode_waiting, encode_waiting

__all__ = [
    "CALLBACK_CONTEXT",
    "DELIVER_CONTEXT",
    "WAITING_VERSION",
    "WAIT_CONTEXT",
    "AcdCall",
    "AcdError",
    "AcdService",
    "AgentControlError",
    "AgentRuntime",
    "CallEvent",
    "CallState",
    "ChannelView",
    "IllegalCallTransition",
    "WaitingState",
    "decode_waiting",
    "encode_waiting",
]

_log = logging.getLogger(__name__)


class AcdService(AgentControl, Delivery, PbxFeedback, Reconciliation):
    """The ACD as one object for the composition root: its parts (one module per concern)
    share the state held by ``acd.core.AcdCore``; this class adds the lifecycle (restore,
    the routing task, close) and the read-only queries the consoles use."""

    _task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def restore(self) -> None:
        """Agents and callbacks as they were saved (before the first ``reconcile``)."""
        now = self._clock()
        for record in self._store.load_agents():
            agent = self.agents.get(record.agent_id)
            if agent is None:
                _log.warning("saved state of agent %s ignored: not configured", record.agent_id)
                continue
            restore_agent(agent, record, now)
            self._count_agent(agent)
        for cb in self._store.load_callbacks():
            if cb.queue not in self._specs:
                _log.error("saved callback %s to %s dropped: no such queue", cb.call_id, cb.queue)
                self._store.finish_callback(cb.call_id, failed=cb)
                continue
            self._add(callback_call(cb), now, restored=True)

    async def start(self) -> None:
        self.restore()
        loop = asyncio.get_running_loop()
        for agent in self.agents.values():
            if agent.status is AgentStatus.WRAP_UP:
                self._start_wrap_timer(agent, max(0.0, (agent.wrap_until or 0) - self._clock()))
        self._task = loop.create_task(self._run(), name="acd-routing")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for agent in self.agents.values():
            if agent.timer is not None:
                agent.timer.cancel()
        for watch in list(self._watches):
            watch.cancel()
        if self._watches:
            await asyncio.gather(*self._watches, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        # Off the loop: the store's writes still pending reach the disk before we return.
        await asyncio.to_thread(self._store.close)

    async def _run(self) -> None:
        while True:
            ticked = False
            try:
                async with asyncio.timeout(self._tick):
                    await self._wake.wait()
            except TimeoutError:
                ticked = True
            self._wake.clear()
            try:
                self.route_once()
                if ticked:
                    self._publish_ticking()
            except Exception:
                # A bug in one pass must not stop routing for everyone; log it loudly.
                _log.exception("ACD routing pass failed")

    def seed_today(self, visits: Iterable[PastVisit]) -> int:
        """Today's figures from the store's finished calls (``acd.history``), before
        ``start``: a restart does not reset offered, answered, abandoned and handle times."""
        counted = seed_figures(
            self.figures, visits, self._clock(), self.config.timezone, self._specs.keys()
        )
        self._figures_changed()
        return counted

    # -- queries -----------------------------------------------------------------------------

    def position(self, call_id: str) -> tuple[int, float | None] | None:
        """(1-based place among the calls of its queue, estimated wait) for a waiting call."""
        call = self.calls.get(call_id)
        if call is None:
            return None
        now = self._clock()
        spec = self._specs[call.queue]
        mine = call_order_key(spec, call.waiting_call(), now)
        ahead = sum(
            1
            for other in self.calls.values()
            if other.queue == call.queue
            and other.state == "waiting"
            and call_order_key(spec, other.waiting_call(), now) < mine
        )
        stats = self.figures.stats(call.queue, now)
        ewt = stats.estimated_wait
        if ewt is not None and stats.waiting:
            ewt = ewt * (ahead + 1) / (stats.waiting + 1)
        return ahead + 1, ewt

    def failed_callbacks(self) -> list[CallbackRecord]:
        return self._store.failed_callbacks()

    def waiting(self, queue: str | None = None) -> list[AcdCall]:
        """Calls not yet with an agent, in the order they will be offered."""
        now = self._clock()
        calls = [
            c
            for c in self.calls.values()
            if c.state == "waiting" and (queue is None or c.queue == queue)
        ]
        calls.sort(key=lambda c: call_order_key(self._specs[c.queue], c.waiting_call(), now))
        return calls
