"""What the console publishes on the event bus."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SupervisorAction", "WrapUpRecorded"]


@dataclass(frozen=True)
class SupervisorAction:
    """A supervisor (or admin) acted on an agent: the audit trail the interaction log keeps."""

    username: str
    role: str
    action: str  # login | ready | not-ready | logout | end-wrap-up | listen | whisper | barge
    agent_id: str
    detail: str
    at: float


@dataclass(frozen=True)
class WrapUpRecorded:
    """An agent gave a call its disposition and notes (saved on the interaction)."""

    call_id: str  # the interaction key
    agent_id: str
    username: str
    disposition: str
    notes: str
    at: float
