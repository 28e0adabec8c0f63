"""Applying a changed ``acd.yaml`` to the running ACD (SIGHUP, the admin API).

    new AcdConfig (already checked, as check-config checks it)
        ──► plan_reconfigure(running, new, logged_in)   pure: what changes, or why not
        ──► apply_reconfigure(service, plan)            on the event loop, all at once

What applies at once, to the next routing decision:

- agents added (logged out until they log in), agents changed (skills, queues, name, wrap-up,
  endpoint for their next log-in), agents removed while logged out;
- queue settings (skills, strategy, relaxation, overflow, ring time, wrap-up, announcements,
  callback offers), not-ready reasons, callback policy, the fallback interval.

What is refused, the running configuration kept and the answer saying why:

- removing an agent who is logged in (our choice over "removed at log-out": an agent the
  file no longer lists but who keeps taking calls would surprise more than a refusal; log
  them out, then reload);
- adding or removing a queue, changing a queue's service level, or the time zone: the live
  figures keep one running day per queue in that zone; those need a restart. So does
  ``reconcile_every``: the periodic reconciliation took its interval at start.

Everything is read from ``service.config`` (whose setter also replaces the routing engine's
queue specs) and each agent's ``.config`` when used, so replacing them is the whole change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from acd.agent_state import AgentState, AgentStatus
from acd.config import AcdConfig
from acd.figures import FiguresTracker
from acd.runtime import AgentRuntime

__all__ = ["Reconfigurable", "ReconfigurePlan", "apply_reconfigure", "plan_for", "plan_reconfigure"]


class Reconfigurable(Protocol):
    """What reconfiguring needs of the ACD service (``acd.service.AcdService``)."""

    config: AcdConfig
    agents: dict[str, AgentRuntime]
    figures: FiguresTracker

    def clock(self) -> float: ...

    def kick(self) -> None: ...


@dataclass(frozen=True)
class ReconfigurePlan:
    """What a reload changes; ``refused`` non-empty means nothing is applied."""

    new: AcdConfig
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    queues_changed: tuple[str, ...] = ()
    refused: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.refused

    def view(self) -> dict[str, object]:
        """The admin API's answer."""
        if self.refused:
            return {"ok": False, "applied": False, "error": "; ".join(self.refused)}
        return {
            "ok": True,
            "applied": True,
            "source": self.new.source,
            "agents_added": list(self.added),
            "agents_changed": list(self.changed),
            "agents_removed": list(self.removed),
            "queues_changed": list(self.queues_changed),
        }


def plan_reconfigure(
    running: AcdConfig, new: AcdConfig, logged_in: Mapping[str, bool]
) -> ReconfigurePlan:
    """What applying ``new`` over ``running`` does; ``logged_in``: agent id -> logged in."""
    refused: list[str] = []
    if new.timezone != running.timezone:
        refused.append(
            f"timezone {running.timezone} -> {new.timezone} needs a restart "
            "(the live figures count days in it)"
        )
    if new.reconcile_every != running.reconcile_every:
        refused.append(
            f"reconcile_every {running.reconcile_every:g} -> {new.reconcile_every:g} needs a "
            "restart (the periodic reconciliation took its interval at start)"
        )
    added_queues = sorted(set(new.queues) - set(running.queues))
    removed_queues = sorted(set(running.queues) - set(new.queues))
    if added_queues or removed_queues:
        what = ", ".join(
            [*(f"{q} added" for q in added_queues), *(f"{q} removed" for q in removed_queues)]
        )
        refused.append(f"queues {what}: adding or removing a queue needs a restart")
    for name in sorted(set(new.queues) & set(running.queues)):
        if new.queues[name].service_level != running.queues[name].service_level:
            refused.append(
                f"queue {name}: a changed service_level needs a restart "
                "(today's figures were counted with the old one)"
            )
    removed = sorted(set(running.agents) - set(new.agents))
    busy = [agent for agent in removed if logged_in.get(agent, False)]
    if busy:
        refused.append(
            f"agent{'s' if len(busy) > 1 else ''} {', '.join(busy)} removed but logged in "
            "(log them out, then reload)"
        )
    return ReconfigurePlan(
        new=new,
        added=tuple(sorted(set(new.agents) - set(running.agents))),
        changed=tuple(
            sorted(
                agent
                for agent in set(new.agents) & set(running.agents)
                if new.agents[agent] != running.agents[agent]
            )
        ),
        removed=tuple(removed),
        queues_changed=tuple(
            sorted(
                name
                for name in set(new.queues) & set(running.queues)
                if new.queues[name] != running.queues[name]
            )
        ),
        refused=tuple(refused),
    )


def plan_for(service: Reconfigurable, new: AcdConfig) -> ReconfigurePlan:
    """``plan_reconfigure`` against what ``service`` runs now."""
    logged_in = {
        agent_id: agent.status is not AgentStatus.LOGGED_OUT
        for agent_id, agent in service.agents.items()
    }
    return plan_reconfigure(service.config, new, logged_in)


def apply_reconfigure(service: Reconfigurable, plan: ReconfigurePlan) -> None:
    """Make ``plan`` the running configuration (nothing if it was refused). Runs on the event
    loop in one go: no routing pass sees half of it."""
    if plan.refused:
        return
    new = plan.new
    for agent_id in plan.removed:
        del service.agents[agent_id]
    now = service.clock()
    for agent_id in plan.changed:
        agent = service.agents[agent_id]
        moved = agent.config.queues != new.agents[agent_id].queues
        agent.config = new.agents[agent_id]
        if moved and agent.status is not AgentStatus.LOGGED_OUT:
            # The live figures count a logged-in agent in the queues they serve: now the new
            # ones (a logged-out agent is counted nowhere, and at log-in with their config).
            service.figures.agent(agent_id, agent.config.queues, agent.status.value, now)
    for agent_id in plan.added:
        service.agents[agent_id] = AgentRuntime(new.agents[agent_id], AgentState(agent_id))
    service.config = new  # the routing engine's queue specs follow (acd.core.AcdCore.config)
    service.kick()
