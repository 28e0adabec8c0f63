"""What the consoles publish on the event bus: supervisor actions, wrap-ups, call control.

The store (``crm_bridge``) and the live layer read them; keeping them in the ground lets any
role subscribe without importing the consoles."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CallControlled", "SupervisorAction", "WrapUpRecorded"]


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


@dataclass(frozen=True)
class CallControlled:
    """An agent (or supervisor, for spy) had Asterisk do something to a call."""

    agent_id: str
    call_id: str
    action: str  # hold | resume | hangup | transfer | transfer-complete | transfer-cancel
    #              | dial | spy
    mode: str  # transfer: blind | attended; spy: listen | whisper | barge; else ""
    kind: str  # transfer: agent | queue | number; dial: number; else ""
    target: str  # the number, agent id, queue name or supervisor endpoint; else ""
    at: float
