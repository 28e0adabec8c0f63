"""The caller's path through the IVR: what the agent's screen-pop and the reports read.

Every node the call visits is a ``Step`` with its timing and what the caller did (keys are
masked for ``sensitive`` inputs: the record never holds a secret, so nothing downstream can leak
one). The engine publishes ``IvrStarted``, one ``IvrStepped`` per node and ``IvrFinished`` with the
whole ``CallerPath`` on the event bus.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ivr.ports import CallInfo

__all__ = [
    "MASK",
    "CallerPath",
    "IvrFinished",
    "IvrStarted",
    "IvrStepped",
    "Outcome",
    "Step",
]

MASK = "*"

#: How a flow ended.
Outcome = Literal[
    "queued",  # handed to the ACD (see queue_status)
    "transferred",
    "voicemail",
    "callback",  # a callback was requested and the flow then ended
    "hangup",  # the flow hung up (goodbye)
    "caller_hangup",  # the caller hung up in the IVR
    "error",  # an error with no exit; the call was sent to the fallback
]


@dataclass(frozen=True)
class Step:
    flow: str
    node: str
    kind: str
    started_at: float
    duration: float
    keys: str = ""  # what the caller pressed here (masked when sensitive)
    result: str = ""  # e.g. the option taken, "no_input", "invalid", "found", "error: ..."


@dataclass(frozen=True)
class CallerPath:
    call: CallInfo
    flow: str
    version: str
    started_at: float
    ended_at: float
    outcome: Outcome
    steps: tuple[Step, ...]
    variables: Mapping[str, str] = field(default_factory=dict)  # sensitive ones masked
    customer: Mapping[str, object] | None = None
    #: the last node's detail: queue name and status, transfer target, error text ...
    detail: str = ""
    #: the ACD took the call over: it waits in the dialplan, the session ends without hang-up
    handed_over: bool = False

    @property
    def keys(self) -> str:
        """Every key pressed, in order (masked where sensitive)."""
        return "".join(step.keys for step in self.steps)


@dataclass(frozen=True)
class IvrStarted:
    call: CallInfo
    flow: str
    version: str
    at: float


@dataclass(frozen=True)
class IvrStepped:
    call: CallInfo
    step: Step


@dataclass(frozen=True)
class IvrFinished:
    path: CallerPath
