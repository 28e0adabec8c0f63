"""The ACD's run-time records: a routed call, an agent as the ACD holds them, a channel as
Asterisk shows it. Plain mutable records; the rules that change them live elsewhere (the call's
lifecycle in ``acd.call_state``, the agent's in ``acd.agent_state``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

from acd.agent_state import AgentState, AgentStatus
from acd.call_state import CallEvent, CallState, call_transition
from acd.config import AgentConfig
from acd.model import WaitingCall
from acd.waiting import WaitingState

__all__ = [
    "BUSY",
    "CALLBACK_CONTEXT",
    "DELIVER_CONTEXT",
    "WAIT_CONTEXT",
    "AcdCall",
    "AgentRuntime",
    "ChannelView",
]

WAIT_CONTEXT = "cti-acd-wait"
DELIVER_CONTEXT = "cti-acd-deliver"
CALLBACK_CONTEXT = "cti-acd-callback"

#: Agent states tied to a call.
BUSY = frozenset(
    {AgentStatus.RESERVED, AgentStatus.RINGING, AgentStatus.ON_CALL, AgentStatus.ON_HOLD}
)


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
    #: changed only through ``move`` (the table in ``acd.call_state``)
    state: CallState = CallState.WAITING
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
    #: when the ACD last changed the call (a live event, a repair): a reconciliation whose
    #: channel list is older leaves it alone (live events win)
    changed_at: float = 0.0

    def move(self, event: CallEvent, at: float | None = None) -> CallState:
        """Apply one lifecycle event (``IllegalCallTransition`` if the state refuses it);
        ``at``: when (stamped as ``changed_at``)."""
        self.state = call_transition(self.state, event, self.call_id)
        if at is not None:
            self.changed_at = at
        return self.state

    def waiting_call(self) -> WaitingCall:
        return WaitingCall(
            self.call_id,
            self.queue,
            self.entered_at,
            self.priority,
            self.skills,
            may_overflow=self.kind == "voice",
            kind=self.kind,
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
    #: when the agent answered the call they are on (0: none); saved, for a restart
    answered_at: float = 0.0
    resumed_call: str = ""  # after a restart: the saved call ``answered_at`` belongs to

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
