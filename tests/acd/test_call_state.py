"""The call state table: every edge walked, every missing pair refused, and the service's own
paths seen to go through it."""

from __future__ import annotations

import itertools

import pytest
from support.fake_acd import acd_config, agent, make_harness, queue

from acd.call_state import (
    TRANSITIONS,
    CallEvent,
    CallState,
    IllegalCallTransition,
    call_transition,
)
from acd.runtime import AcdCall
from cti.errors import CtiError

S = CallState
E = CallEvent

# Written out independently of the module's table.
EXPECTED: dict[tuple[CallState, CallEvent], CallState] = {
    (S.WAITING, E.OFFER): S.OFFERED,
    (S.WAITING, E.FOUND_RINGING): S.OFFERED,
    (S.WAITING, E.FOUND_CONNECTED): S.CONNECTED,
    (S.WAITING, E.ABANDON): S.ENDED,
    (S.WAITING, E.LEAVE): S.ENDED,
    (S.WAITING, E.LOST): S.ENDED,
    (S.OFFERED, E.OFFER_FAILED): S.WAITING,
    (S.OFFERED, E.WITHDRAW): S.WAITING,
    (S.OFFERED, E.ANSWER): S.CONNECTED,
    (S.OFFERED, E.FOUND_CONNECTED): S.CONNECTED,
    (S.OFFERED, E.RETRY): S.WAITING,
    (S.OFFERED, E.ABANDON): S.ENDED,
    (S.OFFERED, E.LOST): S.ENDED,
    (S.CONNECTED, E.RETRY): S.WAITING,
    (S.CONNECTED, E.HANGUP): S.ENDED,
    (S.CONNECTED, E.LOST): S.ENDED,
}


def test_table_is_the_documented_one() -> None:
    assert dict(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize(("edge", "target"), sorted(EXPECTED.items()))
def test_every_edge(edge: tuple[CallState, CallEvent], target: CallState) -> None:
    state, event = edge
    assert call_transition(state, event) is target
    call = AcdCall("c1", "sales", 0.0, state=state)
    assert call.move(event) is target
    assert call.state is target


MISSING = sorted(set(itertools.product(S, E)) - set(EXPECTED))


@pytest.mark.parametrize(("state", "event"), MISSING)
def test_every_missing_pair_is_refused(state: CallState, event: CallEvent) -> None:
    call = AcdCall("c9", "sales", 0.0, state=state)
    with pytest.raises(IllegalCallTransition) as info:
        call.move(event)
    assert isinstance(info.value, CtiError)
    assert (info.value.state, info.value.event, info.value.call_id) == (state, event, "c9")
    assert "c9" in str(info.value)
    assert call.state is state  # unchanged


def test_ended_is_terminal() -> None:
    assert not [edge for edge in EXPECTED if edge[0] is S.ENDED]


def test_states_compare_as_the_strings_the_consoles_read() -> None:
    read_as_text: str = S.WAITING
    assert read_as_text == "waiting"
    assert {"offered": 1}.get(S.OFFERED) == 1


async def test_a_call_answered_then_hung_up_goes_through_the_table() -> None:
    h = make_harness(acd_config((queue("sales"),), (agent("a1", {"sales": 5}, ("sales",)),)))
    h.ready("a1")
    call = h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    seen = [call.state]
    h.service.route_once()
    seen.append(call.state)
    h.service.answered("c1")
    seen.append(call.state)
    h.service.hangup("c1")
    seen.append(call.state)
    assert seen == [S.WAITING, S.OFFERED, S.CONNECTED, S.ENDED]
    assert "c1" not in h.service.calls
