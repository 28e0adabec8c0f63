"""``acd.reconcile.plan_repairs``: a pure function of (channels, our calls, our agents, time)
tested without a service, a loop or a PBX."""

from __future__ import annotations

from acd.agent_state import AgentStatus
from acd.call_state import CallState
from acd.reconcile import OFFER_GRACE, AgentFacts, CallFacts, Repair, plan_repairs
from acd.runtime import CALLBACK_CONTEXT, DELIVER_CONTEXT, WAIT_CONTEXT, ChannelView
from acd.waiting import WaitingState

NOW = 1_000.0
QUEUES = ("sales",)
PLACE = WaitingState("sales", 900.0, 0, {}, "5551234")


def waiting(uid: str, context: str = WAIT_CONTEXT, **more: str) -> ChannelView:
    return ChannelView(uid, f"PJSIP/trunk-{uid}", context, waiting=PLACE, **more)


def idle(agent_id: str, status: AgentStatus = AgentStatus.READY) -> AgentFacts:
    return AgentFacts(agent_id, status)


def kinds(plan: list[Repair]) -> list[tuple[str, str, str]]:
    return [(r.kind, r.call_id, r.agent_id) for r in plan]


def test_nothing_to_repair_when_both_sides_agree() -> None:
    calls = {"c1": CallFacts("c1", "voice", CallState.WAITING)}
    assert plan_repairs([waiting("c1")], calls, {"a1": idle("a1")}, QUEUES, NOW) == []


def test_an_unknown_waiting_caller_is_adopted_and_a_foreign_queue_ignored() -> None:
    other = ChannelView("c2", "PJSIP/x", WAIT_CONTEXT, waiting=WaitingState("gone", 1.0, 0, {}, ""))
    plan = plan_repairs([waiting("c1"), other], {}, {}, QUEUES, NOW)
    assert kinds(plan) == [("call adopted", "c1", "")]
    assert plan[0].view is not None
    assert plan[0].view.waiting == PLACE


def test_a_caller_found_bridged_with_an_agent_is_connected() -> None:
    caller = waiting("c1", DELIVER_CONTEXT, agent_id="a1", bridge_id="b1")
    leg = ChannelView("leg1", "PJSIP/a1-01", "from-internal", bridge_id="b1")
    plan = plan_repairs([caller, leg], {}, {"a1": idle("a1")}, QUEUES, NOW)
    assert kinds(plan) == [("call adopted", "c1", ""), ("call on agent found", "c1", "a1")]
    assert plan[1].leg == "leg1"


def test_a_caller_found_dialing_rings_the_agent() -> None:
    caller = waiting("c1", DELIVER_CONTEXT, agent_id="a1", application="Dial")
    calls = {"c1": CallFacts("c1", "voice", CallState.WAITING)}
    plan = plan_repairs([caller], calls, {"a1": idle("a1")}, QUEUES, NOW)
    assert kinds(plan) == [("ringing agent found", "c1", "a1")]


def test_an_offer_whose_caller_is_back_waiting_is_withdrawn_after_the_grace() -> None:
    agents = {"a1": AgentFacts("a1", AgentStatus.RESERVED, "c1")}
    young = {"c1": CallFacts("c1", "voice", CallState.OFFERED, "a1", offered_at=NOW - 1)}
    assert plan_repairs([waiting("c1")], young, agents, QUEUES, NOW) == []
    old = {"c1": CallFacts("c1", "voice", CallState.OFFERED, "a1", offered_at=NOW - OFFER_GRACE)}
    plan = plan_repairs([waiting("c1")], old, agents, QUEUES, NOW)
    # The agent, no longer tied to the call, is freed as well.
    assert kinds(plan) == [("lost offer withdrawn", "c1", "a1"), ("agent freed", "", "a1")]


def test_a_callback_leg_found_up_connects_the_callback() -> None:
    leg = ChannelView("leg7", "PJSIP/a1-07", CALLBACK_CONTEXT, agent_id="a1", callback_id="cb-1")
    calls = {"cb-1": CallFacts("cb-1", "callback", CallState.WAITING)}
    plan = plan_repairs([leg], calls, {"a1": idle("a1")}, QUEUES, NOW)
    assert kinds(plan) == [("callback on agent found", "cb-1", "a1")]
    assert plan[0].leg == "leg7"


def test_gone_calls_are_removed_and_their_agents_freed() -> None:
    calls = {
        "c1": CallFacts("c1", "voice", CallState.CONNECTED, "a1", "leg1"),
        "cb-1": CallFacts("cb-1", "callback", CallState.OFFERED, "a2", "leg2", NOW - 11),
        "cb-2": CallFacts("cb-2", "callback", CallState.OFFERED, "a3", "leg3", NOW - 2),
        "cb-3": CallFacts("cb-3", "callback", CallState.WAITING),
    }
    agents = {
        "a1": AgentFacts("a1", AgentStatus.ON_CALL, "c1"),
        "a2": AgentFacts("a2", AgentStatus.RESERVED, "cb-1"),
        "a3": AgentFacts("a3", AgentStatus.RESERVED, "cb-2"),
        "a4": AgentFacts("a4", AgentStatus.ON_HOLD, "nothing"),
        "a5": idle("a5", AgentStatus.WRAP_UP),
    }
    plan = plan_repairs([], calls, agents, QUEUES, NOW)
    assert kinds(plan) == [
        ("lost call removed", "c1", "a1"),
        ("lost call removed", "cb-1", "a2"),  # cb-2's originate is still young
        ("agent freed", "", "a1"),
        ("agent freed", "", "a2"),
        ("agent freed", "", "a4"),
    ]
    assert plan[0].detail == "connected"
    assert plan[-1].detail == "was on_hold"
