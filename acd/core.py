"""What every part of the ACD shares: its state, and the plumbing that keeps the agents'
states, the store, the live figures and the bus in step with it.

``AcdService`` (acd/service.py) is composed of this core and one part per concern: agent
control (acd/agent_control.py), delivery (acd/delivery.py), PBX feedback (acd/feedback.py) and
reconciliation (acd/reconcile.py). The parts share one event loop and one state, so no part
ever sees another half-way through a change: every method runs to completion on the loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from zoneinfo import ZoneInfo

from acd.agent_state import AgentEvent, AgentState, AgentStateChanged, AgentStatus
from acd.call_state import CallEvent
from acd.config import AcdConfig, QueueConfig
from acd.errors import AcdError
from acd.events import (
    CallbackScheduled,
    CallQueued,
    CallRequeued,
    QueueStatsChanged,
    WrapUpEnded,
)
from acd.figures import FiguresTracker
from acd.model import QueueSpec
from acd.ports import AcdPbx, AcdStore
from acd.records import agent_record, callback_record
from acd.runtime import AcdCall, AgentRuntime
from cti.phones import is_dialable

__all__ = ["AcdCore"]

_log = logging.getLogger("acd.service")


class AcdCore:
    def __init__(
        self,
        config: AcdConfig,
        *,
        pbx: AcdPbx,
        store: AcdStore,
        publish: Callable[[object], None],
        clock: Callable[[], float] = time.time,
        tick: float = 1.0,
        retry_delay: float = 2.0,
    ) -> None:
        self._config = config
        self._specs: Mapping[str, QueueSpec] = config.queue_specs()
        self._pbx = pbx
        self._store = store
        self._publish = publish
        self._clock = clock
        self.clock = clock
        self._tick = tick
        self._retry_delay = retry_delay
        self._zone = ZoneInfo(config.timezone)
        self.calls: dict[str, AcdCall] = {}
        self._legs: dict[str, str] = {}  # agent leg Uniqueid -> call_id
        # Channels whose Hangup the ACD saw (Uniqueid -> when), oldest first: a channel list
        # taken before a hang-up must not bring the call back (acd.reconcile).
        self._ended: dict[str, float] = {}
        self.agents: dict[str, AgentRuntime] = {
            agent_id: AgentRuntime(agent, AgentState(agent_id))
            for agent_id, agent in config.agents.items()
        }
        self.figures = FiguresTracker(
            {name: q.service_level for name, q in config.queues.items()},
            timezone=config.timezone,
        )
        self._offer_seq = itertools.count(1)
        self._visits = itertools.count(1)
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._watches: set[asyncio.Task[None]] = set()  # cancelled, not awaited, at close
        self._publish_pending = False
        # agent -> (call, queue, talk, hold) of the call whose wrap-up is running: the handle
        # time is complete (and counted, and logged) only when the wrap-up ends.
        self._pending_handle: dict[str, tuple[str, str, float, float]] = {}
        self.routing_passes = 0
        self.repairs = 0
        self.delivery_failures = 0

    @property
    def config(self) -> AcdConfig:
        return self._config

    @config.setter
    def config(self, config: AcdConfig) -> None:
        # The routing engine's queue specs derive from the configuration: replaced together
        # (a live reload, acd.reconfigure), so no routing pass sees one without the other.
        self._config = config
        self._specs = config.queue_specs()

    def kick(self) -> None:
        """Route now (soon: on the routing task)."""
        self._wake.set()

    def is_agent_leg(self, uniqueid: str) -> bool:
        """Whether ``uniqueid`` is the agent's channel of a call the ACD is delivering (the AMI
        feed asks, to pick the ``Newstate`` events that concern it)."""
        return uniqueid in self._legs

    # -- calls in ------------------------------------------------------------------------------

    def enqueue(
        self,
        call_id: str,
        channel: str,
        queue: str,
        *,
        priority: int = 0,
        skills: Mapping[str, int] | None = None,
        entered_at: float | None = None,
        ani: str = "",
        restored: bool = False,
    ) -> AcdCall:
        """A caller starts waiting (``restored``: found waiting after a restart)."""
        if queue not in self._specs:
            raise AcdError(f"no ACD queue {queue!r}")
        existing = self.calls.get(call_id)
        if existing is not None:
            return existing
        now = self._clock()
        call = AcdCall(
            call_id,
            queue,
            now if entered_at is None else entered_at,
            priority,
            dict(skills or {}),
            channel=channel,
            number=ani,
        )
        self._add(call, now, restored=restored)
        self.kick()
        return call

    def request_callback(
        self,
        number: str,
        queue: str,
        *,
        priority: int = 0,
        entered_at: float | None = None,
        data: Mapping[str, str] | None = None,
    ) -> AcdCall:
        """Record a callback; ``entered_at`` keeps the place of the call it replaces."""
        if queue not in self._specs:
            raise AcdError(f"no ACD queue {queue!r}")
        digits = number.strip()
        if not is_dialable(digits):
            raise AcdError(f"cannot call back {number!r}: not a dialable number")
        now = self._clock()
        call = AcdCall(
            f"cb-{uuid.uuid4().hex[:16]}",
            queue,
            now if entered_at is None else entered_at,
            priority,
            kind="callback",
            number=digits,
            data=dict(data or {}),
        )
        self._save_callback(call)
        self._add(call, now, restored=False)
        self._publish(CallbackScheduled(call.call_id, queue, digits, 0, now, now))
        self.kick()
        return call

    def convert_to_callback(self, call_id: str) -> AcdCall | None:
        """A waiting caller chose to be called back: same place in line, no line held."""
        call = self.calls.get(call_id)
        if call is None or call.kind != "voice" or call.state != "waiting" or not call.number:
            return None
        now = self._clock()
        self.figures.left(call.visit, now, "callback")
        self._remove(call, CallEvent.LEAVE)
        return self.request_callback(
            call.number,
            call.queue,
            priority=call.priority,
            entered_at=call.entered_at,
            data=call.data,
        )

    def _add(self, call: AcdCall, now: float, *, restored: bool) -> None:
        self.calls[call.call_id] = call
        call.changed_at = now
        call.visit = self._new_visit(call, now, restored=restored)
        self._publish(
            CallQueued(
                call.call_id, call.queue, call.kind, call.priority, call.entered_at, now, restored
            )
        )

    def _new_visit(self, call: AcdCall, now: float, *, restored: bool = False) -> str:
        visit = f"{call.call_id}#{next(self._visits)}"
        if restored:
            self.figures.restore_waiting(visit, call.queue, call.entered_at)
        else:
            self.figures.entered(visit, call.queue, now)
        self._figures_changed()
        return visit

    def _remove(self, call: AcdCall, event: CallEvent | None = None) -> None:
        """Forget a call (``event``: how it left, through the call-state table)."""
        if event is not None:
            call.move(event)
        self.calls.pop(call.call_id, None)
        if call.agent_leg:
            self._legs.pop(call.agent_leg, None)

    def _offer_failed(self, call: AcdCall, status: str) -> None:
        """The offered agent did not take the call (no answer, busy, unreachable, a Dial that
        failed at once): not ready "no answer", and the call offered again, same place."""
        assert call.agent_id is not None
        now = self._clock()
        agent = self.agents[call.agent_id]
        self._legs.pop(call.agent_leg, None)
        call.move(CallEvent.OFFER_FAILED, now)
        call.agent_id = None
        call.agent_leg = ""
        agent.call_id = None
        if agent.status in (AgentStatus.RESERVED, AgentStatus.RINGING):
            self._apply(agent, AgentEvent.NO_ANSWER, now)
        _log.info(
            "ACD: %s did not answer %s (%s): not ready, call offered again",
            agent.agent_id,
            call.call_id,
            status,
        )
        self._publish(CallRequeued(call.call_id, call.queue, agent.agent_id, status, now))
        self.kick()

    def _attach(self, call: AcdCall, agent: AgentRuntime, now: float) -> None:
        if agent.call_id and agent.call_id != call.call_id:
            _log.warning(
                "ACD: agent %s found on %s while the ACD had them on %s",
                agent.agent_id,
                call.call_id,
                agent.call_id,
            )
        agent.call_id = call.call_id
        call.agent_id = agent.agent_id

    # -- agent state plumbing ----------------------------------------------------------------

    def _apply(self, agent: AgentRuntime, event: AgentEvent, now: float, reason: str = "") -> None:
        agent.state, changed = agent.state.apply(event, now, reason)
        self._changed(agent, changed)

    def _resync_agent(self, agent: AgentRuntime, status: AgentStatus, now: float) -> None:
        agent.state, changed = agent.state.resync(status, now)
        self._changed(agent, changed)

    def _changed(self, agent: AgentRuntime, changed: AgentStateChanged) -> None:
        self._publish(changed)
        self.figures.agent(agent.agent_id, agent.config.queues, agent.status.value, changed.at)
        self._figures_changed()
        # Transient states are Asterisk's to tell after a restart; saving them too keeps the
        # record honest for the reconciliation (an agent saved on_call whose call is gone).
        self._save(agent)

    def _count_agent(self, agent: AgentRuntime) -> None:
        """The live figures learn a restored agent's state (nothing to publish yet)."""
        self.figures.agent(agent.agent_id, agent.config.queues, agent.status.value, self._clock())

    def _roll_day(self, agent: AgentRuntime, now: float) -> None:
        today = dt.datetime.fromtimestamp(now, self._zone).date().isoformat()
        if agent.day != today:
            agent.day = today
            agent.calls_today = 0

    # -- wrap-up -----------------------------------------------------------------------------

    def _start_wrap_timer(self, agent: AgentRuntime, seconds: float) -> None:
        if agent.timer is not None:
            agent.timer.cancel()
        loop = asyncio.get_running_loop()
        agent.timer = loop.call_later(seconds, self._wrap_done, agent.agent_id)

    def _wrap_done(self, agent_id: str) -> None:
        agent = self.agents[agent_id]
        agent.timer = None
        if agent.status is AgentStatus.WRAP_UP:
            self._leave_wrap(agent, AgentEvent.WRAP_UP_DONE, self._clock())
            self.kick()

    def _leave_wrap(
        self, agent: AgentRuntime, event: AgentEvent, now: float, reason: str = ""
    ) -> None:
        if agent.timer is not None:
            agent.timer.cancel()
            agent.timer = None
        handled = self._pending_handle.pop(agent.agent_id, None)
        if handled is not None:
            call_id, queue, talk, hold = handled
            wrap = max(0.0, now - agent.wrap_started)
            self.figures.handled(queue, talk, hold, wrap, now)
            self._figures_changed()
            self._publish(WrapUpEnded(call_id, queue, agent.agent_id, wrap, now))
        agent.wrap_until = None
        self._apply(agent, event, now, reason)
        if agent.status is AgentStatus.READY:
            agent.idle_since = now

    # -- persistence -------------------------------------------------------------------------

    def _save(self, agent: AgentRuntime) -> None:
        try:
            self._store.save_agent(agent_record(agent))
        except OSError as exc:
            _log.error("ACD: cannot save agent %s: %s", agent.agent_id, exc)

    def _save_callback(self, call: AcdCall) -> None:
        try:
            self._store.save_callback(callback_record(call))
        except OSError as exc:
            _log.error("ACD: cannot save callback %s: %s", call.call_id, exc)

    # -- helpers -----------------------------------------------------------------------------

    def _queue(self, call: AcdCall) -> QueueConfig:
        return self.config.queues[call.queue]

    def _spawn(
        self, coro: Coroutine[object, object, None], into: set[asyncio.Task[None]] | None = None
    ) -> None:
        tasks = self._tasks if into is None else into
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    # -- live figures ------------------------------------------------------------------------

    def _figures_changed(self) -> None:
        if self._publish_pending:
            return
        self._publish_pending = True
        try:
            asyncio.get_running_loop().call_soon(self._publish_figures)
        except RuntimeError:  # no loop (a synchronous unit test): publish at once
            self._publish_figures()

    def _publish_figures(self) -> None:
        self._publish_pending = False
        now = self._clock()
        for queue in sorted(self.figures.take_dirty()):
            self._publish(QueueStatsChanged(self.figures.stats(queue, now), now))

    def _publish_ticking(self) -> None:
        """Figures that change with time alone (the longest wait, and every counter at
        midnight): published once per tick for the queues where someone waits."""
        now = self._clock()
        if self.figures.roll_over(now):
            self._figures_changed()
        busy = {call.queue for call in self.calls.values() if call.state == "waiting"}
        for queue in sorted(busy):
            self._publish(QueueStatsChanged(self.figures.stats(queue, now), now))
