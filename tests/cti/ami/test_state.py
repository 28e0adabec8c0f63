"""The connection state table: every edge, and every non-edge refused."""

from __future__ import annotations

import itertools

import pytest

from cti.ami.state import TRANSITIONS, ConnectionState, IllegalTransition, check_transition

S = ConnectionState
EDGES = {
    (S.DISCONNECTED, S.CONNECTING),
    (S.CONNECTING, S.CONNECTED),
    (S.CONNECTING, S.AUTH_FAILED),
    (S.CONNECTING, S.DISCONNECTED),
    (S.CONNECTED, S.DISCONNECTED),
    (S.AUTH_FAILED, S.CONNECTING),
    (S.AUTH_FAILED, S.DISCONNECTED),
}


def test_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(ConnectionState)


@pytest.mark.parametrize(("current", "new"), sorted(EDGES, key=str))
def test_allowed_edges(current: ConnectionState, new: ConnectionState) -> None:
    assert check_transition(current, new) is new


@pytest.mark.parametrize(
    ("current", "new"),
    sorted(set(itertools.product(ConnectionState, repeat=2)) - EDGES, key=str),
)
def test_every_other_edge_is_refused(current: ConnectionState, new: ConnectionState) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(current, new)
