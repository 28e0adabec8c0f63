"""Work items: the engine routes kinds (voice, callback today; chat later) against each
agent's capacity per kind. Phone kinds are exclusive (one at a time, nothing else meanwhile);
a shared kind takes one unit of its own capacity."""

from __future__ import annotations

from collections.abc import Mapping

from acd.engine import route
from acd.model import (
    CALLBACK,
    DEFAULT_CAPACITY,
    VOICE,
    Agent,
    Offer,
    QueueSpec,
    Snapshot,
    WaitingCall,
)

NOW = 1_000.0
QUEUES = {"q": QueueSpec("q", {})}


def agent(agent_id: str, idle_since: float, capacity: Mapping[str, int] | None = None) -> Agent:
    if capacity is None:
        return Agent(agent_id, {}, frozenset({"q"}), True, idle_since=idle_since)
    return Agent(agent_id, {}, frozenset({"q"}), True, idle_since=idle_since, capacity=capacity)


def item(call_id: str, entered_at: float, kind: str = VOICE) -> WaitingCall:
    return WaitingCall(call_id, "q", entered_at, kind=kind, may_overflow=kind == VOICE)


def offers(snapshot: Snapshot) -> list[tuple[str, str]]:
    return [(d.call_id, d.agent_id) for d in route(snapshot, NOW) if isinstance(d, Offer)]


def test_phone_kinds_take_the_whole_agent_by_default() -> None:
    calls = (item("v1", 1.0), item("cb1", 2.0, CALLBACK), item("v2", 3.0))
    agents = (agent("a", 10.0), agent("b", 20.0))
    assert offers(Snapshot(QUEUES, calls, agents)) == [("v1", "a"), ("cb1", "b")]
    assert agents[0].capacity is DEFAULT_CAPACITY


def test_an_agent_without_capacity_for_a_kind_is_not_offered_it() -> None:
    calls = (item("cb1", 1.0, CALLBACK), item("v1", 2.0))
    voice_only = agent("a", 10.0, {VOICE: 1})  # longest idle, but takes no callbacks
    agents = (voice_only, agent("b", 20.0))
    assert offers(Snapshot(QUEUES, calls, agents)) == [("cb1", "b"), ("v1", "a")]


def test_a_shared_kind_fills_the_agent_up_to_its_capacity() -> None:
    chats = tuple(item(f"c{n}", float(n), "chat") for n in range(1, 5))
    agents = (agent("a", 10.0, {VOICE: 1, "chat": 3}),)
    snapshot = Snapshot(QUEUES, (*chats, item("v1", 9.0)), agents)
    # Three chats; the fourth waits for room, and no call rings an agent who is chatting.
    assert offers(snapshot) == [("c1", "a"), ("c2", "a"), ("c3", "a")]


def test_an_exclusive_item_first_leaves_no_room_for_shared_ones() -> None:
    calls = (item("v1", 1.0), item("c1", 2.0, "chat"), item("c2", 3.0, "chat"))
    agents = (agent("a", 10.0, {VOICE: 1, "chat": 2}), agent("b", 20.0, {VOICE: 1, "chat": 1}))
    # v1 takes a whole; c1 goes to b, which then has no chat room left for c2.
    assert offers(Snapshot(QUEUES, calls, agents)) == [("v1", "a"), ("c1", "b")]


def test_shared_and_exclusive_agents_mixed_in_one_round() -> None:
    calls = (item("c1", 1.0, "chat"), item("v1", 2.0), item("c2", 3.0, "chat"), item("v2", 4.0))
    agents = (
        agent("a", 10.0, {VOICE: 1, "chat": 2}),
        agent("b", 20.0),  # the default: phone kinds only
        agent("c", 30.0, {"chat": 1}),
    )
    assert offers(Snapshot(QUEUES, calls, agents)) == [("c1", "a"), ("v1", "b"), ("c2", "a")]
