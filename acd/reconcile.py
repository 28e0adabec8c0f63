"""Reconciliation: make the ACD agree with Asterisk's channels (after a restart, a reconnect,
and periodically).

Theory of operation. The PBX's channels are the truth for calls. ``plan_repairs`` is a pure
function: from a snapshot of the channels (``ChannelView``), the facts the ACD holds about its
calls and agents, and the time, it returns the repairs to make, in order. ``Reconciliation``
(mixed into ``AcdService``) gathers the facts, applies the plan and publishes every repair as
``AcdRepaired``.

1. Channels in the ACD's contexts carrying a waiting state the ACD does not know are adopted;
   a caller found bridged with an agent's leg is connected to that agent; a caller found in
   ``Dial`` is ringing the agent. An offer whose caller is back in the wait loop well after the
   offer (``OFFER_GRACE``) never reached the phone (or we missed its end): it is withdrawn.
   A callback's agent leg found up connects the callback.
2. Calls whose channel is gone are removed (a callback goes back to waiting: its customer has
   no channel to lose).
3. Agents tied to a call that no longer exists are freed.

Live events win over the snapshot: listing the channels takes a few AMI round trips, and a
caller may hang up meanwhile (the Hangup is handled at once; the list still shows the channel
bridged to the agent). So the plan never adopts or connects a channel whose hang-up the service
saw (``ended``), and leaves alone every call and agent the service changed since the list was
asked for (``taken_at``): what the event stream said after the snapshot is newer than it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from acd.agent_state import AgentStatus
from acd.call_state import CallEvent, CallState
from acd.core import AcdCore
from acd.events import AcdRepaired
from acd.runtime import (
    BUSY,
    CALLBACK_CONTEXT,
    DELIVER_CONTEXT,
    WAIT_CONTEXT,
    AcdCall,
    ChannelView,
)

__all__ = [
    "OFFER_GRACE",
    "AgentFacts",
    "CallFacts",
    "Reconciliation",
    "Repair",
    "RepairKind",
    "plan_repairs",
]

_log = logging.getLogger("acd.service")

#: How long an offer may take to show in Asterisk (Setvar + Redirect + Dial) before the
#: reconciliation may call it lost.
OFFER_GRACE = 5.0
#: A callback's agent leg exists only once it was originated: give the originate this long.
CALLBACK_GRACE = 10.0
#: How long a hang-up is remembered against channel lists taken before it.
ENDED_MEMORY = 120.0

RepairKind = Literal[
    "call adopted",
    "call on agent found",
    "ringing agent found",
    "lost offer withdrawn",
    "callback on agent found",
    "lost call removed",
    "agent freed",
]


@dataclass(frozen=True)
class CallFacts:
    call_id: str
    kind: Literal["voice", "callback"]
    state: CallState
    agent_id: str | None = None
    agent_leg: str = ""
    offered_at: float = 0.0
    changed_at: float = 0.0  # the last change the service made (a live event, a repair)


@dataclass(frozen=True)
class AgentFacts:
    agent_id: str
    status: AgentStatus
    call_id: str | None = None
    since: float = 0.0  # when the agent's state last changed


@dataclass(frozen=True)
class Repair:
    kind: RepairKind
    call_id: str = ""
    agent_id: str = ""
    detail: str = ""
    view: ChannelView | None = None  # the channel adopted
    leg: str = ""  # the agent's leg found


def plan_repairs(
    views: Iterable[ChannelView],
    calls: Mapping[str, CallFacts],
    agents: Mapping[str, AgentFacts],
    queues: Collection[str],
    now: float,
    ended: Collection[str] = (),
    taken_at: float | None = None,
) -> list[Repair]:
    """The repairs that make ``calls`` and ``agents`` agree with ``views`` (see the module's
    docstring). ``ended``: channels whose hang-up the service already saw; ``taken_at``: when
    the channel list was asked for (None: it is newer than anything the service knows)."""
    views = [v for v in views if v.uniqueid not in ended]
    # Newer than the snapshot: the event stream won, the snapshot has nothing to say on them.
    live = (
        set()
        if taken_at is None
        else {c.call_id for c in calls.values() if c.changed_at >= taken_at}
        | {a.agent_id for a in agents.values() if a.since >= taken_at}
    )
    mine = {key: call for key, call in calls.items() if key not in live}
    staff = {key: agent for key, agent in agents.items() if key not in live}
    plan: list[Repair] = []
    present = {view.uniqueid for view in views}
    bridges: dict[str, list[ChannelView]] = {}
    for view in views:
        if view.bridge_id:
            bridges.setdefault(view.bridge_id, []).append(view)

    def attach(call: CallFacts, agent_id: str, status: AgentStatus, **changes: object) -> None:
        mine[call.call_id] = replace(call, agent_id=agent_id, **changes)  # type: ignore[arg-type]
        staff[agent_id] = replace(staff[agent_id], status=status, call_id=call.call_id)

    # 1. Channels in the ACD's contexts that we do not know (or know wrongly).
    for view in views:
        if view.context not in (WAIT_CONTEXT, DELIVER_CONTEXT) or view.waiting is None:
            continue
        if view.waiting.queue not in queues:
            continue
        if view.uniqueid in live:
            continue
        call = mine.get(view.uniqueid)
        if call is None:
            call = CallFacts(view.uniqueid, "voice", CallState.WAITING)
            mine[call.call_id] = call
            detail = f"{view.waiting.queue}, {view.context}"
            plan.append(Repair("call adopted", call.call_id, "", detail, view=view))
        if view.context != DELIVER_CONTEXT or not view.agent_id or view.agent_id not in staff:
            continue
        others = [v for v in bridges.get(view.bridge_id, ()) if v.uniqueid != view.uniqueid]
        if view.bridge_id and others:
            if call.state != CallState.CONNECTED:
                leg = others[0].uniqueid
                found = Repair("call on agent found", call.call_id, view.agent_id, view.channel)
                plan.append(replace(found, leg=leg))
                attach(call, view.agent_id, AgentStatus.ON_CALL, state=CallState.CONNECTED)
        elif call.state == CallState.WAITING and view.application == "Dial":
            plan.append(Repair("ringing agent found", call.call_id, view.agent_id, view.channel))
            attach(
                call, view.agent_id, AgentStatus.RINGING, state=CallState.OFFERED, offered_at=now
            )

    # Offers that never reached the phone or whose end we missed: the caller is back in the
    # wait loop (not dialing) well after the offer was made.
    for view in views:
        call = mine.get(view.uniqueid)
        if (
            view.context != WAIT_CONTEXT
            or call is None
            or call.state != CallState.OFFERED
            or now - call.offered_at < OFFER_GRACE
        ):
            continue
        agent_id = call.agent_id or ""
        plan.append(Repair("lost offer withdrawn", call.call_id, agent_id, view.channel))
        mine[call.call_id] = replace(call, state=CallState.WAITING, agent_id=None, agent_leg="")
        holder = staff.get(agent_id)
        if holder is not None and holder.call_id == call.call_id:
            staff[agent_id] = replace(holder, call_id=None)

    # Callback agent legs.
    for view in views:
        if view.context != CALLBACK_CONTEXT or not view.callback_id:
            continue
        call = mine.get(view.callback_id)
        if call is None or view.agent_id not in staff or call.state == CallState.CONNECTED:
            continue
        plan.append(
            Repair(
                "callback on agent found",
                call.call_id,
                view.agent_id,
                view.channel,
                leg=view.uniqueid,
            )
        )
        connected = CallState.CONNECTED
        attach(call, view.agent_id, AgentStatus.ON_CALL, state=connected, agent_leg=view.uniqueid)

    # 2. Calls whose channel is gone.
    for call in list(mine.values()):
        if call.kind == "voice":
            gone = call.call_id not in present
        else:
            gone = (
                call.state != CallState.WAITING
                and call.agent_leg not in present
                and now - call.offered_at > CALLBACK_GRACE
            )
        if not gone:
            continue
        plan.append(
            Repair("lost call removed", call.call_id, call.agent_id or "", call.state.value)
        )
        del mine[call.call_id]
        if call.kind == "callback":
            mine[call.call_id] = replace(call, state=CallState.WAITING, agent_id=None, agent_leg="")

    # 3. Agents tied to a call that no longer exists.
    for agent in staff.values():
        if agent.status not in BUSY:
            continue
        key = agent.call_id or ""
        held = calls.get(key) if key in live else mine.get(key)
        if held is not None and held.agent_id == agent.agent_id:
            continue
        plan.append(Repair("agent freed", "", agent.agent_id, f"was {agent.status.value}"))
    return plan


class Reconciliation(AcdCore):
    def reconcile(
        self, channels: Iterable[ChannelView], *, taken_at: float | None = None
    ) -> list[AcdRepaired]:
        """Make the ACD agree with Asterisk's channels; returns (and publishes) what was
        repaired. ``taken_at``: the service's clock when the channel list was asked for."""
        now = self._clock()
        calls = {
            c.call_id: CallFacts(
                c.call_id, c.kind, c.state, c.agent_id, c.agent_leg, c.offered_at, c.changed_at
            )
            for c in self.calls.values()
        }
        agents = {
            a.agent_id: AgentFacts(a.agent_id, a.status, a.call_id, a.state.since)
            for a in self.agents.values()
        }
        views = list(channels)
        plan = plan_repairs(
            views, calls, agents, self._specs.keys(), now, self._ended_channels(now), taken_at
        )
        repairs = [self._repair(step, now) for step in plan]
        self.kick()
        return repairs

    def _ended_channels(self, now: float) -> Collection[str]:
        """The hang-ups seen lately (older ones forgotten: no channel list takes that long)."""
        while self._ended:
            oldest, at = next(iter(self._ended.items()))
            if now - at <= ENDED_MEMORY:
                break
            del self._ended[oldest]
        return self._ended.keys()

    def _repair(self, step: Repair, now: float) -> AcdRepaired:
        call = self.calls.get(step.call_id)
        agent = self.agents.get(step.agent_id)
        if step.kind == "call adopted":
            assert step.view is not None
            assert step.view.waiting is not None
            state = step.view.waiting
            call = AcdCall(
                step.call_id,
                state.queue,
                state.entered_at,
                state.priority,
                dict(state.skills),
                channel=step.view.channel,
                number=state.ani,
            )
            self._add(call, now, restored=True)
        elif step.kind in ("call on agent found", "callback on agent found"):
            assert call is not None
            assert agent is not None
            # Answered before a restart: the saved answer time, so talk time counts from it.
            resumed = agent.answered_at if agent.resumed_call == call.call_id else 0.0
            self._attach(call, agent, now)
            call.move(CallEvent.FOUND_CONNECTED, now)
            if step.kind == "call on agent found":
                call.answered_at = call.answered_at or resumed or now
                self.figures.answered(call.visit, now)
            else:
                call.answered_at = resumed or now
            agent.answered_at = call.answered_at
            agent.resumed_call = ""
            call.agent_leg = step.leg
            self._legs[step.leg] = call.call_id
            self._resync_agent(agent, AgentStatus.ON_CALL, now)
        elif step.kind == "ringing agent found":
            assert call is not None
            assert agent is not None
            self._attach(call, agent, now)
            call.move(CallEvent.FOUND_RINGING, now)
            call.offered_at = now
            self._resync_agent(agent, AgentStatus.RINGING, now)
        elif step.kind == "lost offer withdrawn":
            assert call is not None
            call.move(CallEvent.WITHDRAW, now)
            call.agent_id = None
            self._legs.pop(call.agent_leg, None)
            call.agent_leg = ""
            if agent is not None and agent.call_id == call.call_id:
                agent.call_id = None
        elif step.kind == "lost call removed":
            assert call is not None
            self.figures.left(call.visit, now, "other")
            self._figures_changed()
            if call.kind == "callback":
                self._remove(call)
                call.move(CallEvent.RETRY, now)
                call.agent_id = None
                call.agent_leg = ""
                self.calls[call.call_id] = call
                call.visit = self._new_visit(call, now, restored=True)
            else:
                self._remove(call, CallEvent.LOST)
        elif step.kind == "agent freed":
            assert agent is not None
            agent.call_id = None
            agent.answered_at = 0.0
            agent.resumed_call = ""
            agent.idle_since = now
            self._resync_agent(agent, AgentStatus.READY, now)
        repair = AcdRepaired(step.kind, step.call_id, step.agent_id, step.detail, now)
        self.repairs += 1
        _log.warning(
            "ACD repair: %s (call %s, agent %s): %s",
            step.kind,
            step.call_id,
            step.agent_id,
            step.detail,
        )
        self._publish(repair)
        return repair
