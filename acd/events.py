"""What the ACD publishes on the event bus, besides ``acd.agent_state.AgentStateChanged``.

Every event carries the time it happened (``at``, seconds since the epoch on the server's
clock) and enough to be understood alone: the consoles and the interaction log subscribe and
never ask the ACD back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from acd.figures import QueueStats

__all__ = [
    "AcdRepaired",
    "CallAbandoned",
    "CallAnswered",
    "CallEnded",
    "CallOffered",
    "CallOverflowed",
    "CallQueued",
    "CallRequeued",
    "CallbackFailed",
    "CallbackScheduled",
    "QueueStatsChanged",
    "WrapUpEnded",
]


@dataclass(frozen=True)
class CallQueued:
    call_id: str
    queue: str
    kind: Literal["voice", "callback"]
    priority: int
    entered_at: float
    at: float
    restored: bool = False  # rebuilt from the PBX after a restart, not a new arrival


@dataclass(frozen=True)
class CallOffered:
    call_id: str
    queue: str
    agent_id: str
    endpoint: str
    at: float


@dataclass(frozen=True)
class CallAnswered:
    call_id: str
    queue: str
    agent_id: str
    wait: float  # seconds from entering the queue to the agent answering
    at: float


@dataclass(frozen=True)
class CallRequeued:
    """The agent did not take the offer (no answer, busy, unreachable): the call is offered
    again, keeping its place."""

    call_id: str
    queue: str
    agent_id: str
    status: str  # DIALSTATUS or the delivery error
    at: float


@dataclass(frozen=True)
class CallAbandoned:
    call_id: str
    queue: str
    wait: float
    while_ringing: str | None  # the agent whose phone rang, if it did
    at: float


@dataclass(frozen=True)
class CallOverflowed:
    call_id: str
    queue: str
    kind: str  # queue | voicemail | callback | dialplan
    target: str
    reason: str  # max_wait | no_agents
    at: float


@dataclass(frozen=True)
class CallEnded:
    """A call an agent answered has ended; the agent is in wrap-up."""

    call_id: str
    queue: str
    agent_id: str
    talk: float
    hold: float
    at: float


@dataclass(frozen=True)
class CallbackScheduled:
    call_id: str
    queue: str
    number: str
    attempt: int  # attempts made so far
    not_before: float
    at: float


@dataclass(frozen=True)
class CallbackFailed:
    """A callback given up on after its last attempt (reported; kept for the worklist)."""

    call_id: str
    queue: str
    number: str
    attempts: int
    last_status: str
    at: float


@dataclass(frozen=True)
class AcdRepaired:
    """Reconciliation (or a restart) found the ACD's view and Asterisk's apart and repaired it."""

    what: str  # e.g. "ghost call removed", "call adopted", "agent freed"
    call_id: str
    agent_id: str
    detail: str
    at: float


@dataclass(frozen=True)
class QueueStatsChanged:
    """Live figures of one queue (``acd.figures.QueueStats``), published when they change."""

    stats: QueueStats
    at: float


@dataclass(frozen=True)
class WrapUpEnded:
    """The agent's wrap-up after a call ended (timer, early end, not ready or log-out)."""

    call_id: str
    queue: str
    agent_id: str
    wrap: float  # seconds from the call's end
    at: float
