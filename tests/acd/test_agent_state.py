"""The agent state table: every edge walked, every missing pair refused."""

from __future__ import annotations

import itertools

import pytest

from acd.agent_state import (
    LOGIN_REASON,
    NO_ANSWER_REASON,
    TRANSITIONS,
    AgentEvent,
    AgentState,
    AgentStateChanged,
    AgentStatus,
    IllegalAgentTransition,
    transition,
)
from cti.errors import CtiError

S = AgentStatus
E = AgentEvent

# The table as the issue states it, written out independently of the module's table.
EXPECTED: dict[tuple[AgentStatus, AgentEvent], AgentStatus] = {
    (S.LOGGED_OUT, E.LOGIN): S.NOT_READY,
    (S.NOT_READY, E.READY): S.READY,
    (S.NOT_READY, E.NOT_READY): S.NOT_READY,
    (S.NOT_READY, E.LOGOUT): S.LOGGED_OUT,
    (S.READY, E.NOT_READY): S.NOT_READY,
    (S.READY, E.LOGOUT): S.LOGGED_OUT,
    (S.READY, E.OFFER): S.RESERVED,
    (S.RESERVED, E.RING): S.RINGING,
    (S.RESERVED, E.ANSWER): S.ON_CALL,
    (S.RESERVED, E.NO_ANSWER): S.NOT_READY,
    (S.RESERVED, E.CALLER_ABANDONED): S.READY,
    (S.RINGING, E.ANSWER): S.ON_CALL,
    (S.RINGING, E.NO_ANSWER): S.NOT_READY,
    (S.RINGING, E.CALLER_ABANDONED): S.READY,
    (S.ON_CALL, E.HOLD): S.ON_HOLD,
    (S.ON_CALL, E.HANGUP): S.WRAP_UP,
    (S.ON_HOLD, E.UNHOLD): S.ON_CALL,
    (S.ON_HOLD, E.HANGUP): S.WRAP_UP,
    (S.WRAP_UP, E.WRAP_UP_DONE): S.READY,
    (S.WRAP_UP, E.END_WRAP_UP_EARLY): S.READY,
    (S.WRAP_UP, E.NOT_READY): S.NOT_READY,
    (S.WRAP_UP, E.LOGOUT): S.LOGGED_OUT,
}


def test_table_is_the_documented_one() -> None:
    assert dict(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize(("edge", "target"), sorted(EXPECTED.items()))
def test_every_edge(edge: tuple[AgentStatus, AgentEvent], target: AgentStatus) -> None:
    state, event = edge
    assert transition(state, event) is target
    before = AgentState("a1", state, since=1.0)
    after, changed = before.apply(event, at=5.0, reason="break")
    assert after.status is target
    assert after.since == 5.0
    assert changed == AgentStateChanged("a1", state, target, event, 5.0, after.reason)


MISSING = [pair for pair in itertools.product(S, E) if pair not in EXPECTED]


def test_missing_pairs_are_the_complement() -> None:
    assert len(MISSING) + len(EXPECTED) == len(S) * len(E)


@pytest.mark.parametrize(("state", "event"), MISSING)
def test_every_missing_pair_is_refused(state: AgentStatus, event: AgentEvent) -> None:
    with pytest.raises(IllegalAgentTransition) as info:
        transition(state, event)
    assert info.value.state is state
    assert info.value.event is event
    with pytest.raises(IllegalAgentTransition, match="agent a7"):
        AgentState("a7", state).apply(event, at=1.0, reason="x")


def test_error_is_in_the_project_tree() -> None:
    assert issubclass(IllegalAgentTransition, CtiError)


def test_reasons() -> None:
    agent, changed = AgentState("a1").apply(E.LOGIN, at=1.0)
    assert (agent.status, agent.reason, changed.reason) == (S.NOT_READY, LOGIN_REASON, "login")
    agent, _ = agent.apply(E.NOT_READY, at=2.0, reason="training")
    assert agent.reason == "training"
    agent, changed = agent.apply(E.READY, at=3.0)
    assert (agent.status, agent.reason) == (S.READY, "")
    agent, _ = agent.apply(E.OFFER, at=4.0)
    agent, _ = agent.apply(E.RING, at=4.5)
    agent, changed = agent.apply(E.NO_ANSWER, at=20.0)
    assert (agent.status, agent.reason) == (S.NOT_READY, NO_ANSWER_REASON)
    assert changed.cause is E.NO_ANSWER
    assert changed.at == 20.0


def test_not_ready_needs_a_reason() -> None:
    with pytest.raises(IllegalAgentTransition, match="reason"):
        AgentState("a1", S.READY).apply(E.NOT_READY, at=1.0)


def test_one_wrap_up_per_call_whatever_the_queues() -> None:
    # The agent's one call ends: a second hangup (e.g. reported for another queue's leg) is
    # refused rather than starting a second wrap-up, and wrap-up ends once.
    agent = AgentState("a1", S.ON_CALL)
    agent, changed = agent.apply(E.HANGUP, at=10.0)
    assert changed.new is S.WRAP_UP
    with pytest.raises(IllegalAgentTransition):
        agent.apply(E.HANGUP, at=10.1)
    agent, _ = agent.apply(E.WRAP_UP_DONE, at=40.0)
    assert agent.status is S.READY
    with pytest.raises(IllegalAgentTransition):
        agent.apply(E.WRAP_UP_DONE, at=40.1)


def test_caller_abandon_while_ringing_frees_agent() -> None:
    agent = AgentState("a1", S.READY)
    agent, _ = agent.apply(E.OFFER, at=1.0)
    agent, _ = agent.apply(E.RING, at=1.2)
    agent, changed = agent.apply(E.CALLER_ABANDONED, at=3.0)
    assert (agent.status, changed.old, changed.cause) == (S.READY, S.RINGING, E.CALLER_ABANDONED)
