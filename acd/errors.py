"""What the ACD refuses, and why.

    CtiError
     +-- AcdError                  a request the ACD cannot carry out
          +-- AgentControlError    an agent request refused (the base the HTTP layer maps)
               +-- UnknownAgent          no such agent
               +-- AgentConflict         not possible in the agent's state (phone in use, ...)
               +-- InvalidAgentRequest   the request itself is wrong (bad endpoint, reason ...)

The subclass says why; the HTTP layer alone decides which status that is.
"""

from __future__ import annotations

from cti.errors import CtiError

__all__ = [
    "AcdError",
    "AgentConflict",
    "AgentControlError",
    "InvalidAgentRequest",
    "UnknownAgent",
]


class AcdError(CtiError):
    """A request the ACD cannot carry out (unknown queue, bad number...)."""


class AgentControlError(AcdError):
    """An agent request refused; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class UnknownAgent(AgentControlError):
    """No agent by that id."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 404)


class AgentConflict(AgentControlError):
    """Not possible in the agent's (or the phone's) present state."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 409)


class InvalidAgentRequest(AgentControlError):
    """The request itself is wrong: a malformed endpoint, an unknown reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 422)
