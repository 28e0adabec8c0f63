"""Delivery: the engine's decisions carried out. An ``Offer`` reserves the agent and rings
their phone through the PBX; an ``Overflow`` sends the caller elsewhere (another queue, a
callback, voicemail, a dialplan destination). A PBX that refuses gives the call back to the
line, first in place, without blaming the agent."""

from __future__ import annotations

import asyncio
import logging

from acd.agent_state import AgentEvent, AgentStatus
from acd.call_state import CallEvent
from acd.core import AcdCore
from acd.engine import route
from acd.events import CallOffered, CallOverflowed, CallRequeued
from acd.model import Agent, Offer, Overflow, Snapshot
from acd.ports import DeliveryError
from acd.runtime import AcdCall, AgentRuntime
from acd.waiting import encode_waiting
from ivr.calendar import is_open

__all__ = ["Delivery"]

_log = logging.getLogger("acd.service")


class Delivery(AcdCore):
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
                # The default capacity (one phone item at a time) until acd.yaml gives a
                # capacity per kind; a shared kind (chat) also needs the agent's state to hold
                # several items, which ``acd.agent_state`` does not yet.
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
        call.move(CallEvent.OFFER, now)
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
        offered_at = call.offered_at
        try:
            await self._pbx.deliver(call.channel, endpoint, ring, agent.agent_id)
        except DeliveryError as exc:
            self._delivery_failed(call, agent, str(exc))
            return
        if self._pbx.dial_checks:
            self._spawn(self._watch_dial(call, agent.agent_id, offered_at), self._watches)

    async def _watch_dial(self, call: AcdCall, agent_id: str, offered_at: float) -> None:
        """A Dial that fails at once may come with no event at all (see ``AcdPbx.dial_checks``):
        until the agent's leg is known (DialBegin), ask the PBX how the Dial ended. An end is
        a failed offer like a phone that does not answer: the agent goes not ready "no
        answer" and the call goes to the next agent, keeping its place."""

        def pending() -> bool:
            # Still this very offer, and nothing heard from the phone's side yet.
            return (
                self.calls.get(call.call_id) is call
                and call.state == "offered"
                and call.agent_id == agent_id
                and call.offered_at == offered_at
                and not call.agent_leg
            )

        for delay in self._pbx.dial_checks:
            await asyncio.sleep(delay)
            if not pending():
                return
            try:
                status = await self._pbx.dial_status(call.channel)
            except DeliveryError as exc:
                _log.debug("ACD: cannot ask how %s's Dial ended: %s", call.call_id, exc)
                return  # the channel is gone: its Hangup says the rest
            if status and status not in ("ANSWER", "CANCEL") and pending():
                self.delivery_failures += 1
                self._offer_failed(call, status)
                return

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
        if (
            self.calls.get(call.call_id) is call
            and call.agent_id == agent.agent_id
            and call.state == "offered"
        ):
            call.move(CallEvent.OFFER_FAILED, now)
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
            # A new visit of another queue: the call keeps waiting (no lifecycle change).
            call.queue = decision.target
            call.entered_at = now
            call.visit = self._new_visit(call, now)
            if call.kind == "voice":
                self._spawn(self._store_waiting(call))
            self.kick()
            return
        self._remove(call, CallEvent.LEAVE)
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
