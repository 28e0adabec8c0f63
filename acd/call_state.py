"""A call's lifecycle in the ACD as a table: (state, event) -> next state, and nothing else.

Theory of operation. A routed call (a voice call holding its caller's channel, or a callback
holding only a number) *waits* until the engine picks an agent; the offer makes it *offered*
(the agent is reserved and the PBX asked to ring them). The agent answering makes it
*connected*. An offer that fails (the PBX refused it, the phone did not answer, was busy or
unreachable, or the reconciliation found it lost) puts the call back to *waiting*, keeping its
place (``entered_at`` is not touched here). A callback whose customer did not answer is
*retried*: back to waiting from wherever it was. Every way out of the ACD ends the call:
the caller abandoned, the connected call hung up, the call overflowed or became a callback, or
the reconciliation found its channel gone.

The reconciliation may also *find* a call in a state the events never told us (after a
restart): a waiting call found ringing an agent, a waiting or offered call found talking.
Those are transitions of their own (``found_*``), so the table says which repairs make sense.

Every pair missing from ``TRANSITIONS`` is refused with ``IllegalCallTransition``: the service
checks the state before it acts, so a refusal is a bug, never a normal path.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from cti.errors import CtiError

__all__ = ["TRANSITIONS", "CallEvent", "CallState", "IllegalCallTransition", "call_transition"]


class CallState(StrEnum):
    # A StrEnum: ``call.state == "waiting"`` keeps working for the consoles that compare.
    WAITING = "waiting"
    OFFERED = "offered"
    CONNECTED = "connected"
    ENDED = "ended"  # left the ACD; the record is dropped


class CallEvent(StrEnum):
    OFFER = "offer"  # the engine chose an agent
    OFFER_FAILED = "offer_failed"  # PBX refused, no answer, busy, unreachable, Dial failed
    ANSWER = "answer"
    WITHDRAW = "withdraw"  # reconcile: the offer never reached the phone
    FOUND_RINGING = "found_ringing"  # reconcile: Asterisk shows the agent's phone ringing
    FOUND_CONNECTED = "found_connected"  # reconcile: Asterisk shows the call bridged
    RETRY = "retry"  # a callback tries again later
    ABANDON = "abandon"  # the caller hung up before an agent answered
    HANGUP = "hangup"  # the connected call ended
    LEAVE = "leave"  # overflow out of the ACD, or converted to a callback
    LOST = "lost"  # reconcile: the channel is gone


_S = CallState
_E = CallEvent

TRANSITIONS: Mapping[tuple[CallState, CallEvent], CallState] = MappingProxyType(
    {
        (_S.WAITING, _E.OFFER): _S.OFFERED,
        (_S.WAITING, _E.FOUND_RINGING): _S.OFFERED,
        (_S.WAITING, _E.FOUND_CONNECTED): _S.CONNECTED,
        (_S.WAITING, _E.ABANDON): _S.ENDED,
        (_S.WAITING, _E.LEAVE): _S.ENDED,
        (_S.WAITING, _E.LOST): _S.ENDED,
        (_S.OFFERED, _E.OFFER_FAILED): _S.WAITING,
        (_S.OFFERED, _E.WITHDRAW): _S.WAITING,
        (_S.OFFERED, _E.ANSWER): _S.CONNECTED,
        (_S.OFFERED, _E.FOUND_CONNECTED): _S.CONNECTED,
        (_S.OFFERED, _E.RETRY): _S.WAITING,
        (_S.OFFERED, _E.ABANDON): _S.ENDED,
        (_S.OFFERED, _E.LOST): _S.ENDED,
        (_S.CONNECTED, _E.RETRY): _S.WAITING,
        (_S.CONNECTED, _E.HANGUP): _S.ENDED,
        (_S.CONNECTED, _E.LOST): _S.ENDED,
    }
)


class IllegalCallTransition(CtiError):
    """An event that the call's current state does not accept (e.g. ``answer`` while waiting)."""

    def __init__(self, state: CallState, event: CallEvent, call_id: str = "") -> None:
        self.state = state
        self.event = event
        self.call_id = call_id
        who = f"call {call_id}: " if call_id else ""
        super().__init__(f"{who}event {event.value!r} in state {state.value!r} is not allowed")


def call_transition(state: CallState, event: CallEvent, call_id: str = "") -> CallState:
    """The next state, or ``IllegalCallTransition``."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalCallTransition(state, event, call_id) from None
