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
- **Ring-no-answer**, busy and unreachable phones: the agent goes not ready ("no answer") and the
  call is offered again. A caller who hangs up while an agent's phone rings is an abandon; the
  PBX stops the ringing (Dial is cancelled with the caller) and the agent is ready again.
- **Wrap-up** starts when an answered call ends, one per call, for the agent's (or the queue's)
  configured time; the agent may end it early, or choose not ready or log out from it.
- **Restart and drift** (``reconcile``): the PBX's channels are the truth for calls. Calls we do
  not know are adopted from the waiting state on their channel, calls whose channel is gone are
  dropped, agents whose call vanished are freed, agents found talking are put on call; every
  repair is logged and published as ``AcdRepaired``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import math
import time
import urllib.parse
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from acd.agent_state import (
    AgentEvent,
    AgentState,
    AgentStateChanged,
    AgentStatus,
    IllegalAgentTransition,
)
from acd.config import AcdConfig, AgentConfig, QueueConfig
from acd.engine import call_order_key, route
from acd.errors import (
    AcdError,
    AgentConflict,
    AgentControlError,
    InvalidAgentRequest,
    UnknownAgent,
)
from acd.events import (
    AcdRepaired,
    CallAbandoned,
    CallAnswered,
    CallbackFailed,
    CallbackScheduled,
    CallEnded,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallRequeued,
    QueueStatsChanged,
)
from acd.figures import FiguresTracker
from acd.model import Agent, Offer, Overflow, QueueSpec, Snapshot, WaitingCall
from acd.ports import AcdPbx, AcdStore, AgentRecord, CallbackRecord, DeliveryError
from ivr.calendar import is_open

__all__ = [
    "AcdCall",
    "AcdError",
    "AcdService",
    "AgentControlError",
    "AgentRuntime",
    "ChannelView",
    "decode_waiting",
    "encode_waiting",
]

_log = logging.getLogger(__name__)

_BUSY = frozenset(
    {AgentStatus.RESERVED, AgentStatus.RINGING, AgentStatus.ON_CALL, AgentStatus.ON_HOLD}
)
# How long an offer may take to show in Asterisk (Setvar + Redirect + Dial) before the
# reconciliation may call it lost.
_OFFER_GRACE = 5.0
_ENDPOINT_SHAPE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-/@:")


# -- the waiting state kept on the caller's channel ------------------------------------------

WAITING_VERSION = "1"


def encode_waiting(call: AcdCall) -> str:
    """The call's place as one channel variable value (``CTI_ACD``), URL-encoded so that no
    comma, quote or pipe in it can split a dialplan argument list."""
    skills = ",".join(f"{skill}:{level}" for skill, level in sorted(call.skills.items()))
    return urllib.parse.urlencode(
        {
            "v": WAITING_VERSION,
            "queue": call.queue,
            "entered": f"{call.entered_at:.3f}",
            "priority": str(call.priority),
            "skills": skills,
            "ani": call.number,
        }
    )


@dataclass(frozen=True)
class WaitingState:
    queue: str
    entered_at: float
    priority: int
    skills: Mapping[str, int]
    ani: str


def decode_waiting(text: str | None) -> WaitingState | None:
    """``encode_waiting`` reversed; None for anything that is not a complete, valid value."""
    if not text:
        return None
    try:
        data = dict(urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True))
        if data.get("v") != WAITING_VERSION or not data.get("queue"):
            return None
        skills: dict[str, int] = {}
        for item in filter(None, data.get("skills", "").split(",")):
            name, _, level = item.partition(":")
            skills[name] = int(level)
        entered = float(data["entered"])
        if not math.isfinite(entered):
            return None
        return WaitingState(
            queue=data["queue"],
            entered_at=entered,
            priority=int(data.get("priority", "0")),
            skills=skills,
            ani=data.get("ani", ""),
        )
    except (KeyError, ValueError):
        return None


# -- run-time records ---------------------------------------------------------------------


@dataclass
class AcdCall:
    call_id: str  # the caller channel's Uniqueid, or "cb-..." for a callback
    queue: str
    entered_at: float
    priority: int = 0
    skills: dict[str, int] = field(default_factory=dict)
    kind: Literal["voice", "callback"] = "voice"
    channel: str = ""  # the caller's channel name (voice calls)
    number: str = ""  # the caller's number (ANI), the number to call back for a callback
    state: Literal["waiting", "offered", "connected"] = "waiting"
    agent_id: str | None = None
    agent_leg: str = ""  # Uniqueid of the agent's channel once known
    offered_at: float = 0.0
    answered_at: float = 0.0
    hold_since: float | None = None
    hold_total: float = 0.0
    retry_at: float = 0.0  # not offered before this (a failed delivery, a callback's retry)
    attempts: int = 0  # callbacks: customer dial attempts made
    last_status: str = ""
    data: dict[str, str] = field(default_factory=dict)
    visit: str = ""  # the figures' id for this queue visit

    def waiting_call(self) -> WaitingCall:
        return WaitingCall(
            self.call_id,
            self.queue,
            self.entered_at,
            self.priority,
            self.skills,
            may_overflow=self.kind == "voice",
        )


@dataclass
class AgentRuntime:
    config: AgentConfig
    state: AgentState
    endpoint: str = ""
    idle_since: float = 0.0
    calls_today: int = 0
    day: str = ""
    last_offer: int = 0
    call_id: str | None = None
    wrap_until: float | None = None
    wrap_started: float = 0.0
    timer: asyncio.TimerHandle | None = None

    @property
    def agent_id(self) -> str:
        return self.config.agent_id

    @property
    def status(self) -> AgentStatus:
        return self.state.status

    def view(self) -> dict[str, object]:
        return {
            "agent_id": self.agent_id,
            "name": self.config.name,
            "status": self.status.value,
            "reason": self.state.reason,
            "since": self.state.since,
            "endpoint": self.endpoint,
            "queues": sorted(self.config.queues),
            "skills": dict(self.config.skills),
            "call_id": self.call_id,
            "calls_today": self.calls_today,
            "wrap_until": self.wrap_until,
        }


@dataclass(frozen=True)
class ChannelView:
    """One channel as Asterisk shows it (``CoreShowChannel`` plus the ACD's variables)."""

    uniqueid: str
    channel: str
    context: str
    bridge_id: str = ""
    state_desc: str = ""
    application: str = ""  # what the channel runs now (Dial while an agent's phone rings)
    waiting: WaitingState | None = None  # CTI_ACD, decoded
    agent_id: str = ""  # CTI_ACD_AGENT
    callback_id: str = ""  # CTI_ACD_CALLBACK (an agent leg of a callback)


WAIT_CONTEXT = "cti-acd-wait"
DELIVER_CONTEXT = "cti-acd-deliver"
CALLBACK_CONTEXT = "cti-acd-callback"


class AcdService:
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
        self.config = config
        self._pbx = pbx
        self._store = store
        self._publish = publish
        self._clock = clock
        self.clock = clock
        self._tick = tick
        self._retry_delay = retry_delay
        self._zone = ZoneInfo(config.timezone)
        self._specs: Mapping[str, QueueSpec] = config.queue_specs()
        self.calls: dict[str, AcdCall] = {}
        self._legs: dict[str, str] = {}  # agent leg Uniqueid -> call_id
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
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._publish_pending = False
        # agent -> (queue, talk, hold) of the call whose wrap-up is running: the handle time
        # is complete (and counted) only when the wrap-up ends.
        self._pending_handle: dict[str, tuple[str, float, float]] = {}
        self.routing_passes = 0
        self.repairs = 0
        self.delivery_failures = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def restore(self) -> None:
        """Agents and callbacks as they were saved (before the first ``reconcile``)."""
        now = self._clock()
        for record in self._store.load_agents():
            agent = self.agents.get(record.agent_id)
            if agent is None:
                _log.warning("saved state of agent %s ignored: not configured", record.agent_id)
                continue
            try:
                status = AgentStatus(record.status)
            except ValueError:
                status = AgentStatus.LOGGED_OUT
            agent.state = AgentState(agent.agent_id, status, record.reason, record.since)
            agent.endpoint = record.endpoint
            agent.idle_since = record.idle_since
            agent.calls_today = record.calls_today
            agent.day = record.day
            if status is AgentStatus.WRAP_UP:
                agent.wrap_until = record.wrap_until or now
                agent.wrap_started = record.since
            self._count_agent(agent)
        for cb in self._store.load_callbacks():
            if cb.queue not in self._specs:
                _log.error("saved callback %s to %s dropped: no such queue", cb.call_id, cb.queue)
                self._store.finish_callback(cb.call_id, failed=cb)
                continue
            call = AcdCall(
                cb.call_id,
                cb.queue,
                cb.entered_at,
                cb.priority,
                kind="callback",
                number=cb.number,
                attempts=cb.attempts,
                retry_at=cb.not_before,
                last_status=cb.last_status,
                data=dict(cb.data),
            )
            self._add(call, now, restored=True)

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
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def kick(self) -> None:
        """Route now (soon: on the routing task)."""
        self._wake.set()

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

    def _publish_ticking(self) -> None:
        """Figures that change with time alone (the longest wait, and every counter at
        midnight): published once per tick for the queues where someone waits."""
        now = self._clock()
        if self.figures.roll_over(now):
            self._figures_changed()
        busy = {call.queue for call in self.calls.values() if call.state == "waiting"}
        for queue in sorted(busy):
            self._publish(QueueStatsChanged(self.figures.stats(queue, now), now))

    # -- routing -----------------------------------------------------------------------------

    def snapshot(self, now: float) -> Snapshot:
        calls = tuple(
            call.waiting_call()
            for call in self.calls.values()
            if call.state == "waiting" and call.retry_at <= now and self._may_route(call, now)
        )
        agents = tuple(
            Agent(
                agent.agent_id,
                agent.config.skills,
                agent.config.queues,
                available=agent.status is AgentStatus.READY,
                logged_in=True,
                idle_since=agent.idle_since,
                calls_today=agent.calls_today,
                last_offer=agent.last_offer,
            )
            for agent in self.agents.values()
            if agent.status is not AgentStatus.LOGGED_OUT
        )
        return Snapshot(self._specs, calls, agents)

    def _may_route(self, call: AcdCall, now: float) -> bool:
        if call.kind != "callback":
            return True
        hours = self.config.callbacks.hours
        return hours is None or is_open(hours, now)

    def route_once(self) -> None:
        now = self._clock()
        self.routing_passes += 1
        for decision in route(self.snapshot(now), now):
            call = self.calls.get(decision.call_id)
            if call is None or call.state != "waiting":
                continue
            if isinstance(decision, Offer):
                self._offer(call, self.agents[decision.agent_id], now)
            elif isinstance(decision, Overflow):
                self._overflow(call, decision, now)

    def _offer(self, call: AcdCall, agent: AgentRuntime, now: float) -> None:
        self._roll_day(agent, now)
        self._apply(agent, AgentEvent.OFFER, now)
        agent.last_offer = next(self._offer_seq)
        agent.call_id = call.call_id
        call.state = "offered"
        call.agent_id = agent.agent_id
        call.offered_at = now
        endpoint = agent.endpoint or agent.config.endpoint
        self._publish(CallOffered(call.call_id, call.queue, agent.agent_id, endpoint, now))
        ring = self._queue(call).ring_timeout
        if call.kind == "voice":
            self._spawn(self._deliver(call, agent, endpoint, ring))
        else:
            self._spawn(self._deliver_callback(call, agent, endpoint, ring))

    async def _deliver(
        self, call: AcdCall, agent: AgentRuntime, endpoint: str, ring: float
    ) -> None:
        try:
            await self._pbx.deliver(call.channel, endpoint, ring, agent.agent_id)
        except DeliveryError as exc:
            self._delivery_failed(call, agent, str(exc))

    async def _deliver_callback(
        self, call: AcdCall, agent: AgentRuntime, endpoint: str, ring: float
    ) -> None:
        try:
            leg = await self._pbx.originate_callback(
                call.call_id, endpoint, agent.agent_id, call.number, ring, call.data
            )
        except DeliveryError as exc:
            self._delivery_failed(call, agent, str(exc))
            return
        if self.calls.get(call.call_id) is call and call.agent_id == agent.agent_id:
            call.agent_leg = leg
            self._legs[leg] = call.call_id

    def _delivery_failed(self, call: AcdCall, agent: AgentRuntime, why: str) -> None:
        self.delivery_failures += 1
        now = self._clock()
        _log.warning("ACD: offering %s to %s failed: %s", call.call_id, agent.agent_id, why)
        if self.calls.get(call.call_id) is call and call.agent_id == agent.agent_id:
            call.state = "waiting"
            call.agent_id = None
            call.retry_at = now + self._retry_delay
            self._publish(CallRequeued(call.call_id, call.queue, agent.agent_id, why, now))
        if agent.call_id == call.call_id and agent.status in (
            AgentStatus.RESERVED,
            AgentStatus.RINGING,
        ):
            # Not the agent's fault: they stay first in line (idle_since unchanged).
            agent.call_id = None
            self._apply(agent, AgentEvent.CALLER_ABANDONED, now)
        self.kick()

    def _overflow(self, call: AcdCall, decision: Overflow, now: float) -> None:
        self._publish(
            CallOverflowed(
                call.call_id, call.queue, decision.kind, decision.target, decision.reason, now
            )
        )
        _log.info(
            "ACD: %s overflows from %s to %s %s (%s)",
            call.call_id,
            call.queue,
            decision.kind,
            decision.target,
            decision.reason,
        )
        if decision.kind == "callback" and not call.number:
            # Nobody to call back: a callback would strand the caller. The queue's overflow
            # cannot serve them; they keep waiting (and the admin hears about it).
            _log.error(
                "ACD: %s cannot overflow to a callback: the caller's number is unknown",
                call.call_id,
            )
            call.retry_at = now + self._retry_delay
            return
        self.figures.left(call.visit, now, "overflow")
        if decision.kind == "queue":
            call.queue = decision.target
            call.entered_at = now
            call.visit = self._new_visit(call, now)
            if call.kind == "voice":
                self._spawn(self._store_waiting(call))
            self.kick()
            return
        self._remove(call)
        if decision.kind == "callback":
            self.request_callback(
                call.number,
                decision.target or call.queue,
                priority=call.priority,
                entered_at=call.entered_at,
                data=call.data,
            )
        self._spawn(self._send_away(call, decision.kind, decision.target))

    async def _send_away(self, call: AcdCall, kind: str, target: str) -> None:
        try:
            await self._pbx.overflow(call.channel, kind, target)
        except DeliveryError as exc:
            # The caller may have hung up meanwhile; if not, the dialplan's own fallback
            # (no heartbeat from us for this call) takes them within fallback_after.
            _log.warning("ACD: sending %s to %s %s failed: %s", call.call_id, kind, target, exc)

    async def _store_waiting(self, call: AcdCall) -> None:
        try:
            await self._pbx.update_waiting(call.channel, encode_waiting(call))
        except DeliveryError as exc:
            _log.warning("ACD: could not store the waiting state of %s: %s", call.call_id, exc)

    # -- calls in -----------------------------------------------------------------------------

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

    def _add(self, call: AcdCall, now: float, *, restored: bool) -> None:
        self.calls[call.call_id] = call
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
        if not digits or not all(c.isdigit() or c in "+*#" for c in digits):
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
        self._remove(call)
        return self.request_callback(
            call.number,
            call.queue,
            priority=call.priority,
            entered_at=call.entered_at,
            data=call.data,
        )

    # -- what the PBX tells us ---------------------------------------------------------------

    def _call_by_channel(self, uniqueid: str) -> AcdCall | None:
        call = self.calls.get(uniqueid)
        if call is not None and call.kind == "voice":
            return call
        found = self._legs.get(uniqueid)
        return self.calls.get(found) if found else None

    def dial_began(self, caller_uniqueid: str, agent_leg: str) -> None:
        call = self.calls.get(caller_uniqueid)
        if call is not None and call.state == "offered" and agent_leg:
            call.agent_leg = agent_leg
            self._legs[agent_leg] = call.call_id

    def ringing(self, uniqueid: str) -> None:
        call = self._call_by_channel(uniqueid)
        if call is None or call.state != "offered" or call.agent_id is None:
            return
        agent = self.agents[call.agent_id]
        if agent.status is AgentStatus.RESERVED:
            self._apply(agent, AgentEvent.RING, self._clock())

    def answered(self, uniqueid: str) -> None:
        """The agent picked up (voice: Dial answered; callback: the agent leg is up)."""
        call = self._call_by_channel(uniqueid)
        if call is None or call.state != "offered" or call.agent_id is None:
            return
        now = self._clock()
        agent = self.agents[call.agent_id]
        call.state = "connected"
        call.answered_at = now
        agent.calls_today += 1
        if agent.status in (AgentStatus.RESERVED, AgentStatus.RINGING):
            self._apply(agent, AgentEvent.ANSWER, now)
        wait = now - call.entered_at
        self.figures.answered(call.visit, now)
        self._figures_changed()
        self._publish(CallAnswered(call.call_id, call.queue, agent.agent_id, wait, now))

    def offer_failed(self, uniqueid: str, status: str) -> None:
        """The agent's phone did not answer, was busy or unreachable (DIALSTATUS)."""
        call = self._call_by_channel(uniqueid)
        if call is None or call.state != "offered" or call.agent_id is None:
            return
        if status == "CANCEL":
            return  # the caller hung up: the Hangup that follows is the abandon
        now = self._clock()
        agent = self.agents[call.agent_id]
        self._legs.pop(call.agent_leg, None)
        call.state = "waiting"
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

    def callback_dialed(self, agent_leg: str, status: str) -> None:
        """The customer leg of a callback ended dialing (DIALSTATUS on the agent's leg)."""
        call = self._call_by_channel(agent_leg)
        if call is None or call.kind != "callback":
            return
        call.attempts += 1
        call.last_status = status
        if status == "ANSWER":
            self._store.finish_callback(call.call_id)
            return
        self._save_callback(call)

    def hold(self, uniqueid: str, on: bool) -> None:
        call = self._call_by_channel(uniqueid)
        if call is None or call.state != "connected" or call.agent_id is None:
            return
        now = self._clock()
        agent = self.agents[call.agent_id]
        if on and agent.status is AgentStatus.ON_CALL:
            call.hold_since = now
            self._apply(agent, AgentEvent.HOLD, now)
        elif not on and agent.status is AgentStatus.ON_HOLD:
            if call.hold_since is not None:
                call.hold_total += now - call.hold_since
            call.hold_since = None
            self._apply(agent, AgentEvent.UNHOLD, now)

    def hangup(self, uniqueid: str) -> None:
        """A channel is gone: the caller's (abandon or end of call) or an agent leg."""
        call = self._call_by_channel(uniqueid)
        if call is None:
            return
        now = self._clock()
        caller_side = call.kind == "voice" and uniqueid == call.call_id
        if call.state == "connected":
            self._end(call, now)
        elif call.state == "offered" and call.kind == "callback":
            # The agent's leg ended before it was answered: nobody picked up.
            self.offer_failed(uniqueid, "NOANSWER")
        elif caller_side:
            self._abandon(call, now)
        self.kick()

    def _abandon(self, call: AcdCall, now: float) -> None:
        ringing = call.agent_id if call.state == "offered" else None
        self._publish(CallAbandoned(call.call_id, call.queue, now - call.entered_at, ringing, now))
        self.figures.abandoned(call.visit, now)
        self._figures_changed()
        if ringing is not None:
            agent = self.agents[ringing]
            agent.call_id = None
            if agent.status in (AgentStatus.RESERVED, AgentStatus.RINGING):
                self._apply(agent, AgentEvent.CALLER_ABANDONED, now)
        self._remove(call)

    def _end(self, call: AcdCall, now: float) -> None:
        if call.hold_since is not None:
            call.hold_total += now - call.hold_since
        talk = max(0.0, now - call.answered_at - call.hold_total)
        self._remove(call)
        agent_id = call.agent_id
        if call.kind == "callback" and call.last_status != "ANSWER":
            # Clears the call's agent when it schedules a retry: the agent is taken first.
            self._callback_attempt_failed(call, now)
        if agent_id is None:
            return
        agent = self.agents[agent_id]
        self._publish(
            CallEnded(call.call_id, call.queue, agent.agent_id, talk, call.hold_total, now)
        )
        if agent.call_id == call.call_id:
            agent.call_id = None
        if agent.status in (AgentStatus.ON_CALL, AgentStatus.ON_HOLD):
            self._apply(agent, AgentEvent.HANGUP, now)
            wrap = agent.config.wrap_up
            if wrap is None:
                wrap = self._queue(call).wrap_up
            agent.wrap_started = now
            agent.wrap_until = now + wrap
            self._pending_handle[agent.agent_id] = (call.queue, talk, call.hold_total)
            self._save(agent)
            self._start_wrap_timer(agent, wrap)

    def _callback_attempt_failed(self, call: AcdCall, now: float) -> None:
        policy = self.config.callbacks
        if call.attempts == 0:
            call.attempts = 1  # ended before the customer was dialed at all
        if call.attempts >= policy.attempts:
            _log.warning(
                "ACD: callback %s to %s failed after %d attempts (%s)",
                call.call_id,
                call.number,
                call.attempts,
                call.last_status or "no answer",
            )
            self._store.finish_callback(call.call_id, failed=self._callback_record(call))
            self._publish(
                CallbackFailed(
                    call.call_id, call.queue, call.number, call.attempts, call.last_status, now
                )
            )
            return
        # Try again later, keeping the place in line.
        call.state = "waiting"
        call.agent_id = None
        call.agent_leg = ""
        call.retry_at = now + policy.retry_after
        self.calls[call.call_id] = call
        self._save_callback(call)
        self._publish(
            CallbackScheduled(
                call.call_id, call.queue, call.number, call.attempts, call.retry_at, now
            )
        )

    def _remove(self, call: AcdCall) -> None:
        self.calls.pop(call.call_id, None)
        if call.agent_leg:
            self._legs.pop(call.agent_leg, None)

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
            queue, talk, hold = handled
            self.figures.handled(queue, talk, hold, max(0.0, now - agent.wrap_started), now)
            self._figures_changed()
        agent.wrap_until = None
        self._apply(agent, event, now, reason)
        if agent.status is AgentStatus.READY:
            agent.idle_since = now

    # -- agent control (the API) -------------------------------------------------------------

    def _agent(self, agent_id: str) -> AgentRuntime:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(f"no agent {agent_id!r}")
        return agent

    def login(self, agent_id: str, endpoint: str | None = None) -> AgentRuntime:
        agent = self._agent(agent_id)
        phone = (endpoint or agent.config.endpoint).strip()
        tech, _, resource = phone.partition("/")
        if not tech or not resource or not set(phone) <= _ENDPOINT_SHAPE:
            raise InvalidAgentRequest(f"phone endpoint {phone!r} is not like PJSIP/agent1001")
        taken = [
            other.agent_id
            for other in self.agents.values()
            if other is not agent
            and other.status is not AgentStatus.LOGGED_OUT
            and (other.endpoint or other.config.endpoint) == phone
        ]
        if taken:
            raise AgentConflict(f"phone {phone} is in use by agent {taken[0]}")
        self._control(agent, AgentEvent.LOGIN)
        agent.endpoint = phone
        self._save(agent)
        return agent

    def ready(self, agent_id: str) -> AgentRuntime:
        agent = self._agent(agent_id)
        now = self._clock()
        if agent.status is AgentStatus.WRAP_UP:
            return self.end_wrap_up(agent_id)
        self._control(agent, AgentEvent.READY)
        agent.idle_since = now
        self._save(agent)
        self.kick()
        return agent

    def not_ready(self, agent_id: str, reason: str) -> AgentRuntime:
        agent = self._agent(agent_id)
        if reason not in self.config.not_ready_reasons:
            known = ", ".join(self.config.not_ready_reasons)
            raise InvalidAgentRequest(f"unknown not-ready reason {reason!r} (one of: {known})")
        if agent.status is AgentStatus.WRAP_UP:
            self._leave_wrap(agent, AgentEvent.NOT_READY, self._clock(), reason)
            self._save(agent)
            return agent
        self._control(agent, AgentEvent.NOT_READY, reason)
        return agent

    def logout(self, agent_id: str) -> AgentRuntime:
        agent = self._agent(agent_id)
        if agent.status is AgentStatus.WRAP_UP:
            self._leave_wrap(agent, AgentEvent.LOGOUT, self._clock())
            self._save(agent)
            return agent
        self._control(agent, AgentEvent.LOGOUT)
        return agent

    def end_wrap_up(self, agent_id: str) -> AgentRuntime:
        agent = self._agent(agent_id)
        if agent.status is not AgentStatus.WRAP_UP:
            raise AgentConflict(f"agent {agent_id} is {agent.status.value}, not in wrap-up")
        self._leave_wrap(agent, AgentEvent.END_WRAP_UP_EARLY, self._clock())
        self._save(agent)
        self.kick()
        return agent

    def _control(self, agent: AgentRuntime, event: AgentEvent, reason: str = "") -> None:
        try:
            self._apply(agent, event, self._clock(), reason)
        except IllegalAgentTransition as exc:
            raise AgentConflict(str(exc)) from exc
        self._save(agent)

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

    def _save(self, agent: AgentRuntime) -> None:
        try:
            self._store.save_agent(
                AgentRecord(
                    agent.agent_id,
                    agent.status.value,
                    agent.state.reason,
                    agent.state.since,
                    agent.endpoint,
                    agent.idle_since,
                    agent.calls_today,
                    agent.day,
                    agent.wrap_until,
                )
            )
        except OSError as exc:
            _log.error("ACD: cannot save agent %s: %s", agent.agent_id, exc)

    def _callback_record(self, call: AcdCall) -> CallbackRecord:
        return CallbackRecord(
            call.call_id,
            call.queue,
            call.number,
            call.entered_at,
            call.priority,
            call.attempts,
            call.retry_at,
            call.last_status,
            dict(call.data),
        )

    def _save_callback(self, call: AcdCall) -> None:
        try:
            self._store.save_callback(self._callback_record(call))
        except OSError as exc:
            _log.error("ACD: cannot save callback %s: %s", call.call_id, exc)

    def _roll_day(self, agent: AgentRuntime, now: float) -> None:
        today = dt.datetime.fromtimestamp(now, self._zone).date().isoformat()
        if agent.day != today:
            agent.day = today
            agent.calls_today = 0

    def _queue(self, call: AcdCall) -> QueueConfig:
        return self.config.queues[call.queue]

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

    # -- reconciliation ----------------------------------------------------------------------

    def reconcile(self, channels: Iterable[ChannelView]) -> list[AcdRepaired]:
        """Make the ACD agree with Asterisk's channels (after a restart, a reconnect, and
        periodically); returns (and publishes) what was repaired."""
        now = self._clock()
        repairs: list[AcdRepaired] = []

        def repaired(what: str, call_id: str, agent_id: str, detail: str) -> None:
            repair = AcdRepaired(what, call_id, agent_id, detail, now)
            repairs.append(repair)
            self.repairs += 1
            _log.warning("ACD repair: %s (call %s, agent %s): %s", what, call_id, agent_id, detail)
            self._publish(repair)

        views = list(channels)
        present = {view.uniqueid for view in views}
        bridges: dict[str, list[ChannelView]] = {}
        for view in views:
            if view.bridge_id:
                bridges.setdefault(view.bridge_id, []).append(view)

        # 1. Channels in the ACD's contexts that we do not know (or know wrongly): adopt.
        for view in views:
            if view.context not in (WAIT_CONTEXT, DELIVER_CONTEXT) or view.waiting is None:
                continue
            state = view.waiting
            if state.queue not in self._specs:
                continue
            call = self.calls.get(view.uniqueid)
            if call is None:
                call = AcdCall(
                    view.uniqueid,
                    state.queue,
                    state.entered_at,
                    state.priority,
                    dict(state.skills),
                    channel=view.channel,
                    number=state.ani,
                )
                self._add(call, now, restored=True)
                repaired("call adopted", call.call_id, "", f"{state.queue}, {view.context}")
            if view.context != DELIVER_CONTEXT or not view.agent_id:
                continue
            agent = self.agents.get(view.agent_id)
            if agent is None:
                continue
            others = [v for v in bridges.get(view.bridge_id, ()) if v.uniqueid != view.uniqueid]
            if view.bridge_id and others:
                if call.state != "connected":
                    self._attach(call, agent, now)
                    call.state = "connected"
                    call.answered_at = call.answered_at or now
                    call.agent_leg = others[0].uniqueid
                    self._legs[call.agent_leg] = call.call_id
                    self.figures.answered(call.visit, now)
                    self._resync_agent(agent, AgentStatus.ON_CALL, now)
                    repaired("call on agent found", call.call_id, agent.agent_id, view.channel)
            elif call.state == "waiting" and view.application == "Dial":
                self._attach(call, agent, now)
                call.state = "offered"
                call.offered_at = now
                self._resync_agent(agent, AgentStatus.RINGING, now)
                repaired("ringing agent found", call.call_id, agent.agent_id, view.channel)

        # Offers that never reached the phone or whose end we missed: the caller is back in
        # the wait loop (not dialing) well after the offer was made.
        for view in views:
            call = self.calls.get(view.uniqueid)
            if (
                view.context != WAIT_CONTEXT
                or call is None
                or call.state != "offered"
                or now - call.offered_at < _OFFER_GRACE
            ):
                continue
            agent_id = call.agent_id or ""
            call.state = "waiting"
            call.agent_id = None
            self._legs.pop(call.agent_leg, None)
            call.agent_leg = ""
            agent = self.agents.get(agent_id)
            if agent is not None and agent.call_id == call.call_id:
                agent.call_id = None
            repaired("lost offer withdrawn", call.call_id, agent_id, view.channel)

        # Callback agent legs.
        for view in views:
            if view.context != CALLBACK_CONTEXT or not view.callback_id:
                continue
            call = self.calls.get(view.callback_id)
            agent = self.agents.get(view.agent_id)
            if call is None or agent is None or call.state == "connected":
                continue
            self._attach(call, agent, now)
            call.state = "connected"
            call.answered_at = now
            call.agent_leg = view.uniqueid
            self._legs[view.uniqueid] = call.call_id
            self._resync_agent(agent, AgentStatus.ON_CALL, now)
            repaired("callback on agent found", call.call_id, agent.agent_id, view.channel)

        # 2. Calls whose channel is gone.
        for call in list(self.calls.values()):
            if call.kind == "voice":
                gone = call.call_id not in present
            else:
                # A callback's leg exists only once it was originated; give the originate a
                # moment before calling it lost.
                gone = (
                    call.state != "waiting"
                    and call.agent_leg not in present
                    and now - call.offered_at > 10.0
                )
            if not gone:
                continue
            self._remove(call)
            self.figures.left(call.visit, now, "other")
            self._figures_changed()
            repaired("lost call removed", call.call_id, call.agent_id or "", call.state)
            if call.kind == "callback":
                call.state = "waiting"
                call.agent_id = None
                call.agent_leg = ""
                self.calls[call.call_id] = call
                call.visit = self._new_visit(call, now, restored=True)

        # 3. Agents tied to a call that no longer exists.
        for agent in self.agents.values():
            if agent.status not in _BUSY:
                continue
            call = self.calls.get(agent.call_id or "")
            if call is not None and call.agent_id == agent.agent_id:
                continue
            agent.call_id = None
            agent.idle_since = now
            self._resync_agent(agent, AgentStatus.READY, now)
            repaired("agent freed", "", agent.agent_id, f"was {agent.status.value}")
        self.kick()
        return repairs

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
