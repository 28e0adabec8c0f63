"""Agent states as a table: (state, event) -> next state, and nothing else.

Theory of operation. An agent logs in *not ready* (reason "login") and says when they are
ready; the engine only offers calls to ``ready`` agents. An offer reserves the agent
(``reserved``) while the ACD dials the phone; ``ring`` says the phone rings, ``answer`` that the
agent picked up (an auto-answer phone may answer before a ring is seen, hence reserved ->
on_call). A phone that does not answer in time, is busy or unreachable gives ``no_answer``: the
agent goes not ready with reason "no answer" so the next call is not offered to an absent
agent. A caller who hangs up during the offer (``caller_abandoned``) puts the agent back to
ready. ``hangup`` of the connected call starts wrap-up; wrap-up ends with the timer
(``wrap_up_done``) or early at the agent's request, back to ready; the agent may also choose
not ready or log out from wrap-up.

Wrap-up is one per call, whatever the number of queues the agent serves: the agent's state is
one value, not one per queue, and a second ``hangup`` for the same call (seen e.g. through
another queue's leg) is an illegal transition from ``wrap_up``, not a second wrap-up. The
service decides whether to log and ignore it.

Every pair missing from ``TRANSITIONS`` is refused with ``IllegalAgentTransition``; the service
publishes an ``AgentStateChanged`` (cause and timestamp included) for each accepted one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType

from cti.errors import CtiError

__all__ = [
    "LOGIN_REASON",
    "NO_ANSWER_REASON",
    "TRANSITIONS",
    "AgentEvent",
    "AgentState",
    "AgentStateChanged",
    "AgentStatus",
    "IllegalAgentTransition",
    "transition",
]

NO_ANSWER_REASON = "no answer"
LOGIN_REASON = "login"


class AgentStatus(StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    RESERVED = "reserved"  # a call is being offered; no other offer until it resolves
    RINGING = "ringing"
    ON_CALL = "on_call"
    ON_HOLD = "on_hold"
    WRAP_UP = "wrap_up"
    NOT_READY = "not_ready"  # with a reason code from configuration


class AgentEvent(StrEnum):
    LOGIN = "login"
    READY = "ready"
    NOT_READY = "not_ready"
    LOGOUT = "logout"
    OFFER = "offer"
    RING = "ring"
    ANSWER = "answer"
    NO_ANSWER = "no_answer"
    HOLD = "hold"
    UNHOLD = "unhold"
    HANGUP = "hangup"
    WRAP_UP_DONE = "wrap_up_done"
    END_WRAP_UP_EARLY = "end_wrap_up_early"
    CALLER_ABANDONED = "caller_abandoned"
    #: Not a transition (never in ``TRANSITIONS``): the ACD set the state from Asterisk's
    #: truth after a restart or a reconciliation (``AgentState.resync``).
    RESYNC = "resync"


_S = AgentStatus
_E = AgentEvent

TRANSITIONS: Mapping[tuple[AgentStatus, AgentEvent], AgentStatus] = MappingProxyType(
    {
        (_S.LOGGED_OUT, _E.LOGIN): _S.NOT_READY,
        (_S.NOT_READY, _E.READY): _S.READY,
        # A new reason code replaces the old one (e.g. "break" -> "training").
        (_S.NOT_READY, _E.NOT_READY): _S.NOT_READY,
        (_S.NOT_READY, _E.LOGOUT): _S.LOGGED_OUT,
        (_S.READY, _E.NOT_READY): _S.NOT_READY,
        (_S.READY, _E.LOGOUT): _S.LOGGED_OUT,
        (_S.READY, _E.OFFER): _S.RESERVED,
        (_S.RESERVED, _E.RING): _S.RINGING,
        (_S.RESERVED, _E.ANSWER): _S.ON_CALL,
        (_S.RESERVED, _E.NO_ANSWER): _S.NOT_READY,  # busy or unreachable phone
        (_S.RESERVED, _E.CALLER_ABANDONED): _S.READY,
        (_S.RINGING, _E.ANSWER): _S.ON_CALL,
        (_S.RINGING, _E.NO_ANSWER): _S.NOT_READY,
        (_S.RINGING, _E.CALLER_ABANDONED): _S.READY,
        (_S.ON_CALL, _E.HOLD): _S.ON_HOLD,
        (_S.ON_CALL, _E.HANGUP): _S.WRAP_UP,
        (_S.ON_HOLD, _E.UNHOLD): _S.ON_CALL,
        (_S.ON_HOLD, _E.HANGUP): _S.WRAP_UP,
        (_S.WRAP_UP, _E.WRAP_UP_DONE): _S.READY,
        (_S.WRAP_UP, _E.END_WRAP_UP_EARLY): _S.READY,
        (_S.WRAP_UP, _E.NOT_READY): _S.NOT_READY,
        (_S.WRAP_UP, _E.LOGOUT): _S.LOGGED_OUT,
    }
)


class IllegalAgentTransition(CtiError):
    """An event that the agent's current state does not accept (e.g. ``answer`` while ready)."""

    def __init__(
        self, state: AgentStatus, event: AgentEvent, agent_id: str = "", detail: str = ""
    ) -> None:
        self.state = state
        self.event = event
        self.agent_id = agent_id
        who = f"agent {agent_id}: " if agent_id else ""
        why = detail or "is not allowed"
        super().__init__(f"{who}event {event.value!r} in state {state.value!r} {why}")


def transition(state: AgentStatus, event: AgentEvent) -> AgentStatus:
    """The next state, or ``IllegalAgentTransition``."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalAgentTransition(state, event) from None


@dataclass(frozen=True)
class AgentStateChanged:
    """Published on the event bus for every accepted transition."""

    agent_id: str
    old: AgentStatus
    new: AgentStatus
    cause: AgentEvent
    at: float
    reason: str = ""  # the not-ready reason code when ``new`` is NOT_READY


@dataclass(frozen=True)
class AgentState:
    """One agent's state as a value: ``apply`` returns the next value and the event to publish."""

    agent_id: str
    status: AgentStatus = AgentStatus.LOGGED_OUT
    reason: str = ""
    since: float = 0.0

    def apply(
        self, event: AgentEvent, at: float, reason: str = ""
    ) -> tuple[AgentState, AgentStateChanged]:
        """``reason`` is required with ``not_ready`` (a configured reason code) and ignored
        otherwise: ``no_answer`` and ``login`` bring their own."""
        try:
            new = transition(self.status, event)
        except IllegalAgentTransition as exc:
            raise IllegalAgentTransition(self.status, event, self.agent_id) from exc
        if event is AgentEvent.NOT_READY:
            if not reason:
                raise IllegalAgentTransition(
                    self.status, event, self.agent_id, "needs a reason code"
                )
            new_reason = reason
        elif event is AgentEvent.NO_ANSWER:
            new_reason = NO_ANSWER_REASON
        elif event is AgentEvent.LOGIN:
            new_reason = LOGIN_REASON
        else:
            new_reason = ""
        changed = AgentStateChanged(self.agent_id, self.status, new, event, at, new_reason)
        return replace(self, status=new, reason=new_reason, since=at), changed

    def resync(
        self, status: AgentStatus, at: float, reason: str = ""
    ) -> tuple[AgentState, AgentStateChanged]:
        """Set the state Asterisk shows (an agent found talking after a restart, an agent
        whose call vanished while the server was away), outside the table on purpose: the
        table says what may happen next, this says what *has* happened. Published with cause
        ``resync`` so nobody mistakes it for an agent's action."""
        changed = AgentStateChanged(
            self.agent_id, self.status, status, AgentEvent.RESYNC, at, reason
        )
        return replace(self, status=status, reason=reason, since=at), changed
