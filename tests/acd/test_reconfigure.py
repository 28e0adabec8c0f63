"""Applying a changed acd.yaml to the running ACD (acd/reconfigure.py): the plan is pure, the
apply changes what the next routing decision sees, and refusals change nothing."""

from __future__ import annotations

import dataclasses

from support.fake_acd import acd_config, agent, make_harness, queue

from acd.agent_state import AgentStatus
from acd.config import AcdConfig, ServiceLevelSpec
from acd.reconfigure import apply_reconfigure, plan_for, plan_reconfigure

RUNNING = acd_config(
    (queue("sales", {"sales": 3}), queue("support")),
    (agent("a1", {"sales": 5}, ("sales",)), agent("a2", {"support": 1}, ("support",))),
)


def _with(config: AcdConfig, **changes: object) -> AcdConfig:
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def test_nothing_changed_is_an_empty_plan() -> None:
    plan = plan_reconfigure(RUNNING, RUNNING, {})
    assert plan.ok
    assert (plan.added, plan.changed, plan.removed, plan.queues_changed) == ((), (), (), ())


def test_the_plan_names_agents_added_changed_removed_and_queues_changed() -> None:
    new = acd_config(
        (queue("sales", {"sales": 1}), queue("support")),
        (agent("a1", {"sales": 2}, ("sales",)), agent("a3", {"support": 1}, ("support",))),
    )
    plan = plan_reconfigure(RUNNING, new, {"a1": True, "a2": False})
    assert plan.ok
    assert (plan.added, plan.changed, plan.removed, plan.queues_changed) == (
        ("a3",),
        ("a1",),
        ("a2",),
        ("sales",),
    )
    assert plan.view()["agents_removed"] == ["a2"]


def test_removing_a_logged_in_agent_is_refused_with_the_reason() -> None:
    new = acd_config((queue("sales", {"sales": 3}), queue("support")), (RUNNING.agents["a1"],))
    plan = plan_reconfigure(RUNNING, new, {"a2": True})
    assert not plan.ok
    assert plan.view() == {
        "ok": False,
        "applied": False,
        "error": "agent a2 removed but logged in (log them out, then reload)",
    }


def test_what_needs_a_restart_is_refused() -> None:
    sales = RUNNING.queues["sales"]
    new = _with(
        RUNNING,
        timezone="Europe/Berlin",
        reconcile_every=10.0,
        queues={
            "sales": dataclasses.replace(sales, service_level=ServiceLevelSpec(threshold=30)),
            "billing": queue("billing"),
        },
    )
    refused = plan_reconfigure(RUNNING, new, {}).refused
    assert refused == (
        "timezone UTC -> Europe/Berlin needs a restart (the live figures count days in it)",
        "reconcile_every 30 -> 10 needs a restart (the periodic reconciliation took its "
        "interval at start)",
        "queues billing added, support removed: adding or removing a queue needs a restart",
        "queue sales: a changed service_level needs a restart (today's figures were counted "
        "with the old one)",
    )


async def test_apply_changes_the_next_routing_decision() -> None:
    h = make_harness(RUNNING)
    h.ready("a1", "a2")
    # a1 (the only sales agent) on a break: the sales call waits, a2 does not serve sales.
    h.service.not_ready("a1", "break")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    assert h.service.calls["c1"].state == "waiting"
    new = acd_config(
        (queue("sales", {"sales": 3}), queue("support")),
        (
            agent("a1", {"sales": 5}, ("sales",)),
            agent("a2", {"support": 1, "sales": 4}, ("support", "sales")),
            agent("a9", {"sales": 9}, ("sales",)),
        ),
    )
    plan = plan_for(h.service, new)
    assert plan.ok
    assert h.service.figures.stats("sales", h.clock()).agents.get("ready", 0) == 0
    apply_reconfigure(h.service, plan)
    assert h.service.config is new
    assert h.service.agents["a9"].status is AgentStatus.LOGGED_OUT  # new: logged out
    # a2 is counted in the sales figures at once, not at their next state change.
    assert h.service.figures.stats("sales", h.clock()).agents.get("ready", 0) == 1
    h.service.route_once()
    assert h.service.calls["c1"].agent_id == "a2"


async def test_apply_lowers_a_queue_requirement_for_the_next_decision() -> None:
    h = make_harness(RUNNING)
    h.ready("a2")
    new = acd_config(
        (queue("sales", {"support": 1}), queue("support")),
        (RUNNING.agents["a1"], agent("a2", {"support": 1}, ("support", "sales"))),
    )
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    assert h.service.calls["c1"].state == "waiting"
    apply_reconfigure(h.service, plan_for(h.service, new))
    h.service.route_once()
    assert h.service.calls["c1"].agent_id == "a2"


async def test_a_removed_logged_out_agent_disappears_and_a_refused_plan_changes_nothing() -> None:
    h = make_harness(RUNNING)
    h.service.login("a1")
    new = acd_config((queue("sales", {"sales": 3}), queue("support")), ())
    refused = plan_for(h.service, new)
    assert not refused.ok
    apply_reconfigure(h.service, refused)
    assert h.service.config is RUNNING
    assert set(h.service.agents) == {"a1", "a2"}
    h.service.logout("a1")
    apply_reconfigure(h.service, plan_for(h.service, new))
    assert h.service.agents == {}
