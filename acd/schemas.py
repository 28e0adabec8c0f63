"""The ACD API's request and response bodies, as pydantic models.

The handlers (``acd.api``, and the console's ``agent_console.api`` which offers the same agent
actions) validate every request body with these models (``cti.http.parse_body``), and
``agent_console.openapi`` generates the description from the same classes, so what is checked
and what is documented cannot drift. The response models describe what the handlers answer;
a test validates real answers against them.

The console's own bodies are in ``agent_console.schemas`` (one layer up: the ACD does not know
the consoles).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from acd.agent_state import AgentStatus

__all__ = [
    "AgentView",
    "Body",
    "LoginBody",
    "NoBody",
    "NotReadyBody",
    "WaitingCallView",
]


class Body(BaseModel):
    """A request body: strict JSON types (no ``"1"`` for 1, no ``1`` for true); keys no
    endpoint knows are ignored unless the endpoint says otherwise (``extra="forbid"``)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class NoBody(Body):
    """No arguments (an empty body, or ``{}``)."""


class LoginBody(Body):
    endpoint: str | None = Field(
        None,
        description="the phone to log in on; the agent's configured one when not given",
        examples=["PJSIP/agent1001"],
    )


class NotReadyBody(Body):
    reason: str = Field(description="one of acd.yaml's not_ready_reasons", examples=["break"])


class _View(BaseModel):
    """A response body: exactly these keys (a test checks real answers against it)."""

    model_config = ConfigDict(extra="forbid")


class AgentView(_View):
    agent_id: str
    name: str
    status: AgentStatus
    reason: str
    since: float
    endpoint: str
    queues: list[str]
    skills: dict[str, int]
    call_id: str | None
    calls_today: int
    wrap_until: float | None


class WaitingCallView(_View):
    position: int = Field(description="1 = offered next; 0 for calls already with an agent")
    call_id: str
    kind: Literal["voice", "callback"]
    queue: str
    priority: int
    entered_at: float
    state: str
    agent_id: str | None
    channel: str
    number: str
    attempts: int
    retry_at: float | None
