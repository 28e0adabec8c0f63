"""Connection states of the manager client, as a transition table.

Theory of operation: the client starts DISCONNECTED. ``run()`` moves to CONNECTING for each
attempt (TCP connect, greeting, login). A login that succeeds is CONNECTED; one that Asterisk
refuses is AUTH_FAILED (kept apart from DISCONNECTED so /healthz can say "wrong secret"
instead of "Asterisk down"); any other failure, or a drop later on, is DISCONNECTED. After
the back-off delay the next attempt is CONNECTING again. Cancelling ``run()`` ends in
DISCONNECTED from wherever it was.

A transition not in the table is a bug in the client, so it raises.
"""

from __future__ import annotations

import enum

__all__ = ["ConnectionState", "IllegalTransition", "check_transition"]


class ConnectionState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    """Logged in: actions may be sent."""
    AUTH_FAILED = "auth_failed"


_S = ConnectionState

TRANSITIONS: dict[ConnectionState, frozenset[ConnectionState]] = {
    _S.DISCONNECTED: frozenset({_S.CONNECTING}),
    _S.CONNECTING: frozenset({_S.CONNECTED, _S.AUTH_FAILED, _S.DISCONNECTED}),
    _S.CONNECTED: frozenset({_S.DISCONNECTED}),
    _S.AUTH_FAILED: frozenset({_S.CONNECTING, _S.DISCONNECTED}),
}


class IllegalTransition(RuntimeError):
    """The client tried a state change the table does not allow (a bug, not a peer error)."""


def check_transition(current: ConnectionState, new: ConnectionState) -> ConnectionState:
    """Return ``new`` if ``current -> new`` is allowed, else raise ``IllegalTransition``."""
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"AMI connection state {current.name} -> {new.name}")
    return new
