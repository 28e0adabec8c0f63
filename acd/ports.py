"""What the ACD service needs from the outside world, as interfaces.

``AcdPbx`` is Asterisk (``acd.asterisk.AsteriskPbx`` over AMI; a fake in unit tests); the
service calls it to carry out the engine's decisions and learns the outcome later, from events
fed back to it (``AcdService.ringing``, ``answered``, ``offer_failed``, ``hangup``...).
``AcdStore`` keeps what Asterisk cannot: agents' log-ins and states, and callbacks (a caller
who asked to be called back has no channel left to carry their place).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["AcdPbx", "AcdStore", "AgentRecord", "CallbackRecord", "DeliveryError"]

from cti.errors import CtiError


class DeliveryError(CtiError):
    """Asterisk could not start what the ACD asked (the channel is gone, AMI is down)."""


class AcdPbx(Protocol):
    async def deliver(
        self, channel: str, endpoint: str, ring_timeout: float, agent_id: str
    ) -> None:
        """Ring ``endpoint`` for the caller on ``channel`` and bridge them on answer; the
        caller keeps hearing music while it rings. Raises ``DeliveryError``."""
        ...

    async def originate_callback(
        self,
        call_id: str,
        endpoint: str,
        agent_id: str,
        number: str,
        ring_timeout: float,
        variables: Mapping[str, str],
    ) -> str:
        """Ring the agent first; once they answer, dial ``number``. Returns the agent leg's
        unique id (known before it rings). Raises ``DeliveryError``."""
        ...

    async def overflow(self, channel: str, kind: str, target: str) -> None:
        """Send a waiting caller to voicemail, a dialplan destination, or (``callback``) a
        goodbye after their callback was recorded. Raises ``DeliveryError``."""
        ...

    async def update_waiting(self, channel: str, state: str) -> None:
        """Store the call's waiting state (``acd.waiting.encode_waiting``) on its channel."""
        ...

    #: After a delivery, when (seconds, one after the other) to ask ``dial_status`` whether
    #: the Dial already ended without ringing anyone: a PBX that reports such a Dial with no
    #: event at all needs asking. Empty: never asked.
    dial_checks: tuple[float, ...] = ()

    async def dial_status(self, channel: str) -> str:
        """How the last Dial on the caller's ``channel`` ended (BUSY, CHANUNAVAIL...), "" while
        it runs. Raises ``DeliveryError``."""
        return ""


@dataclass
class AgentRecord:
    """An agent's durable state: enough to resume after a restart."""

    agent_id: str
    status: str  # AgentStatus value
    reason: str = ""
    since: float = 0.0
    endpoint: str = ""
    idle_since: float = 0.0
    calls_today: int = 0
    day: str = ""
    wrap_until: float | None = None
    #: the call the agent is on and when they answered it: a call found on the agent after a
    #: restart keeps its answer time (its talk time counts from there)
    call_id: str | None = None
    answered_at: float = 0.0


@dataclass
class CallbackRecord:
    call_id: str
    queue: str
    number: str
    entered_at: float
    priority: int = 0
    attempts: int = 0
    not_before: float = 0.0
    last_status: str = ""
    data: dict[str, str] = field(default_factory=dict)


class AcdStore(Protocol):
    def load_agents(self) -> list[AgentRecord]: ...

    def save_agent(self, record: AgentRecord) -> None: ...

    def load_callbacks(self) -> list[CallbackRecord]: ...

    def save_callback(self, record: CallbackRecord) -> None: ...

    def finish_callback(self, call_id: str, *, failed: CallbackRecord | None = None) -> None:
        """Remove a callback that is done; a failed one is kept in the failed list."""
        ...

    def failed_callbacks(self) -> list[CallbackRecord]: ...

    def close(self) -> None:
        """Wait for every write asked for so far (the service's ``aclose``)."""
        ...
