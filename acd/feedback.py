"""PBX feedback: what Asterisk tells the ACD about the calls it delivers (fed by
``acd.asterisk.AcdFeed`` from AMI events): the agent's leg began, rings, was answered, did not
answer; holds; hang-ups (an abandon, or the end of a connected call and the agent's wrap-up).
Every change of a call's state goes through ``acd.call_state``."""

from __future__ import annotations

import logging

from acd.agent_state import AgentEvent, AgentStatus
from acd.call_state import CallEvent
from acd.core import AcdCore
from acd.events import (
    CallAbandoned,
    CallAnswered,
    CallbackFailed,
    CallbackScheduled,
    CallEnded,
)
from acd.records import callback_record
from acd.runtime import AcdCall

__all__ = ["PbxFeedback"]

_log = logging.getLogger("acd.service")


class PbxFeedback(AcdCore):
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
        call.move(CallEvent.ANSWER, now)
        call.answered_at = now
        agent.answered_at = now
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
        self._offer_failed(call, status)

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
        now = self._clock()
        if uniqueid:
            self._ended[uniqueid] = now
        call = self._call_by_channel(uniqueid)
        if call is None:
            return
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
        self._remove(call, CallEvent.ABANDON)

    def _end(self, call: AcdCall, now: float) -> None:
        if call.hold_since is not None:
            call.hold_total += now - call.hold_since
        talk = max(0.0, now - call.answered_at - call.hold_total)
        agent_id = call.agent_id
        if call.kind == "callback" and call.last_status != "ANSWER":
            self._remove(call)
            # Clears the call's agent when it schedules a retry: the agent is taken first.
            self._callback_attempt_failed(call, now)
        else:
            self._remove(call, CallEvent.HANGUP)
        if agent_id is None:
            return
        agent = self.agents[agent_id]
        self._publish(
            CallEnded(call.call_id, call.queue, agent.agent_id, talk, call.hold_total, now)
        )
        if agent.call_id == call.call_id:
            agent.call_id = None
            agent.answered_at = 0.0
        if agent.status in (AgentStatus.ON_CALL, AgentStatus.ON_HOLD):
            self._apply(agent, AgentEvent.HANGUP, now)
            wrap = agent.config.wrap_up
            if wrap is None:
                wrap = self._queue(call).wrap_up
            agent.wrap_started = now
            agent.wrap_until = now + wrap
            self._pending_handle[agent.agent_id] = (
                call.call_id,
                call.queue,
                talk,
                call.hold_total,
            )
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
            call.move(CallEvent.HANGUP, now)
            self._store.finish_callback(call.call_id, failed=callback_record(call))
            self._publish(
                CallbackFailed(
                    call.call_id, call.queue, call.number, call.attempts, call.last_status, now
                )
            )
            return
        # Try again later, keeping the place in line.
        call.move(CallEvent.RETRY, now)
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
