"""``acd.reconcile.plan_repairs``: a pure function of (channels, our calls, our agents, time)
tested without a service, a loop or a PBX."""

from __future__ import annotations

from support.fake_acd import Clock, acd_config, agent, make_harness, queue

from acd.agent_state import AgentStatus
from acd.call_state import CallState
from acd.events import CallEnded
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


def test_a_channel_whose_hang_up_was_seen_is_never_adopted() -> None:
    # Listed while bridged with agent a1; its Hangup was handled before the plan ran.
    caller = waiting("c1", DELIVER_CONTEXT, agent_id="a1", bridge_id="b1")
    leg = ChannelView("leg1", "PJSIP/a1-01", "from-internal", bridge_id="b1")
    agents = {"a1": AgentFacts("a1", AgentStatus.WRAP_UP, None, since=NOW - 0.1)}
    assert plan_repairs([caller, leg], {}, agents, QUEUES, NOW, ended={"c1"}) == []
    # Without it (the old behaviour) the ended call came back and a1 went on call.
    plan = plan_repairs([caller, leg], {}, agents, QUEUES, NOW)
    assert kinds(plan) == [("call adopted", "c1", ""), ("call on agent found", "c1", "a1")]


def test_calls_and_agents_changed_after_the_list_was_taken_are_left_alone() -> None:
    taken = NOW - 1.0
    calls = {
        # Entered while the list was read: not in it, yet not lost.
        "c2": CallFacts("c2", "voice", CallState.WAITING, changed_at=NOW - 0.5),
        # Its offer failed after the list showed it dialing: not "ringing agent found".
        "c3": CallFacts("c3", "voice", CallState.WAITING, changed_at=NOW - 0.2),
        # Older than the list and gone from it: lost.
        "c4": CallFacts("c4", "voice", CallState.WAITING, changed_at=taken - 5),
        # Answered by a2 after the list was taken (offered long ago).
        "c5": CallFacts(
            "c5", "voice", CallState.CONNECTED, "a2", "leg5", offered_at=NOW - 9, changed_at=NOW
        ),
    }
    agents = {
        "a1": AgentFacts("a1", AgentStatus.NOT_READY, since=NOW - 0.2),
        "a2": AgentFacts("a2", AgentStatus.ON_CALL, "c5", since=NOW),
        "a3": AgentFacts("a3", AgentStatus.ON_CALL, "c9", since=taken - 5),
    }
    dialing = waiting("c3", DELIVER_CONTEXT, agent_id="a1", application="Dial")
    back = waiting("c5")  # the list still showed c5 back in the wait loop
    plan = plan_repairs([dialing, back], calls, agents, QUEUES, NOW, taken_at=taken)
    assert kinds(plan) == [("lost call removed", "c4", ""), ("agent freed", "", "a3")]


async def test_a_call_found_on_its_agent_after_a_restart_keeps_its_answer_time() -> None:
    config = acd_config((queue("sales"),), (agent("a1", {"sales": 5}, ("sales",)),))
    before = make_harness(config)
    before.ready("a1")
    before.service.enqueue("c1", "PJSIP/trunk-c1", "sales")
    before.service.route_once()
    before.clock.advance(2)
    answered_at = before.clock.now
    before.service.answered("c1")
    # The server dies 30 s into the call; a new one starts from the same store.
    clock = Clock(answered_at + 30)
    after = make_harness(config, store=before.store, clock=clock)
    after.service.restore()
    caller = waiting("c1", DELIVER_CONTEXT, agent_id="a1", bridge_id="b1")
    leg = ChannelView("leg1", "PJSIP/a1-01", "from-internal", bridge_id="b1")
    after.service.reconcile([caller, leg])
    call = after.service.calls["c1"]
    assert call.state == "connected"
    assert call.answered_at == answered_at
    clock.advance(10)
    after.service.hangup("c1")
    ended = after.of(CallEnded)
    assert [(e.call_id, e.talk) for e in ended] == [("c1", 40.0)]
    await after.service.aclose()
