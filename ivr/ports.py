"""What the flow engine needs from the world, as interfaces (ports).

The engine (``ivr.engine``) is written against these and nothing else, so it runs the same over
FastAGI (``ivr.agi_control``), against a fake in unit tests, and in the benchmark. Adapters:

- ``CallControl``: the call itself (FastAGI session in production);
- ``PromptResolver``: turns a ``Prompt`` into something Asterisk can play (a sound name, or a
  TTS file rendered and cached by ``ivr.tts``);
- ``CustomerDirectory``: the CRM lookup (``crm_bridge.customers.StoreCustomers`` over the
  store, or ``ivr.services.InMemoryCustomers`` when the CRM is off);
- ``QueueGateway``: the ACD (``acd.gateway.AcdQueueGateway``), or app_queue through the dialplan
  (``ivr.services.AppQueueGateway``) when the ACD is off;
- ``CallbackStore``: where callback requests go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ivr.model import Prompt, SayAs

__all__ = [
    "CallControl",
    "CallInfo",
    "CallbackRequest",
    "CallbackStore",
    "CustomerDirectory",
    "PromptResolver",
    "QueueFigures",
    "QueueGateway",
    "QueueOutcome",
    "QueueRequest",
]


@dataclass(frozen=True)
class CallInfo:
    """Who called what, as the call arrived (FastAGI environment)."""

    ani: str
    dnis: str
    channel: str = ""
    uniqueid: str = ""
    linkedid: str = ""
    caller_name: str = ""


class CallControl(Protocol):
    """Telephony operations on one live call. Every method raises ``cti.errors.AgiHangup``
    once the caller is gone, and ``cti.errors.AgiError`` when Asterisk cannot do it (e.g. a
    prompt file is missing)."""

    async def answer(self) -> None: ...

    async def play(self, playables: Sequence[str], interrupt: str = "") -> str | None:
        """Play in order; return the interrupting key (one of ``interrupt``) or None."""
        ...

    async def wait_digit(self, seconds: float) -> str | None:
        """The next key within ``seconds``, or None."""
        ...

    async def say(self, value: str, say_as: SayAs, interrupt: str = "") -> str | None: ...

    async def exec(self, app: str, *args: str) -> str:
        """Run a dialplan application (Queue, Dial, VoiceMail...); its result."""
        ...

    async def get_variable(self, name: str) -> str | None: ...

    async def set_variable(self, name: str, value: str) -> None: ...

    async def hangup(self) -> None: ...


class PromptResolver(Protocol):
    async def resolve(self, prompt: Prompt, text: str | None) -> str:
        """A name Asterisk can play for ``prompt`` (``text``: the TTS text with templates
        already filled in). Raises ``cti.errors.CtiError`` when it cannot."""
        ...


class CustomerDirectory(Protocol):
    async def find(self, field: str, value: str) -> Mapping[str, object] | None:
        """The customer record whose ``field`` equals ``value``, or None."""
        ...


@dataclass(frozen=True)
class QueueRequest:
    call: CallInfo
    queue: str
    skills: Mapping[str, int] = field(default_factory=dict)
    priority: int = 0
    #: everything the agent's screen-pop shows: IVR variables (sensitive ones masked), the
    #: customer record, the path summary, plus the node's own ``data``
    data: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueOutcome:
    #: answered: an agent took the call (and it has ended); unavailable: the queue would not
    #: take it (closed, full, nobody logged in); timeout: waited too long; abandoned: the
    #: caller hung up while waiting; queued: the ACD took the call over and moved it in the
    #: dialplan, where it waits outside this FastAGI session (which must end without hanging
    #: up: the caller's place no longer depends on the session or on the server)
    status: Literal["answered", "unavailable", "timeout", "abandoned", "queued"]
    detail: str = ""


@dataclass(frozen=True)
class QueueFigures:
    agents_available: int
    estimated_wait: float | None  # seconds; None when unknown


class QueueGateway(Protocol):
    async def enqueue(self, request: QueueRequest, control: CallControl) -> QueueOutcome: ...

    def figures(self, queue: str) -> QueueFigures:
        """Live figures for branch conditions; must answer at once (no I/O)."""
        ...


@dataclass(frozen=True)
class CallbackRequest:
    number: str
    call: CallInfo
    queue: str | None
    requested_at: float
    data: Mapping[str, object] = field(default_factory=dict)


class CallbackStore(Protocol):
    async def add(self, request: CallbackRequest) -> None: ...
