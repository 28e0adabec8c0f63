"""What the ACD refuses, and why.

    CtiError
     +-- AcdError                  a request the ACD cannot carry out
          +-- AgentControlError    an agent request refused (the base the HTTP layer maps)
               +-- UnknownAgent          no such agent
               +-- AgentConflict         not possible in the agent's state (phone in use, ...)
               +-- InvalidAgentRequest   the request itself is wrong (bad endpoint, reason ...)

The subclass says why; the HTTP layer alone decides which status that is, in one table
(``agent_console.http``).
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
    """An agent request refused; the subclass says why (the HTTP layer maps it to a status)."""


class UnknownAgent(AgentControlError):
    """No agent by that id."""


class AgentConflict(AgentControlError):
    """Not possible in the agent's (or the phone's) present state."""


class InvalidAgentRequest(AgentControlError):
    """The request itself is wrong: a malformed endpoint, an unknown reason."""
