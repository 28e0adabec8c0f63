"""The routing engine: one pure function from a ``Snapshot`` and the time to decisions.

``route(snapshot, now)`` reads no clock, does no I/O and keeps nothing between calls, so it can
be benchmarked alone, property-tested and driven by a simulated clock.

Rules, in the order they are applied (the contract is in ``acd.model``):

1. **Effective requirements** of a call: the queue's skills merged with the call's own (the
   higher level wins for a skill in both), then relaxed by every ``RelaxStep`` of the queue
   whose ``after`` is <= the call's wait (``now - entered_at``). Reached steps add up: their
   ``lower_by`` are summed (a level never goes below 1) and their ``drop`` sets united.
2. **Order of calls** (one global order across queues): highest *effective priority* first
   (``priority + aging_rate(queue) * wait``), then earliest ``entered_at``, then ``call_id``.
3. **Overflow**, checked for each call in that order and only when its queue has an
   ``overflow`` kind configured and the call ``may_overflow`` (a callback does not):
   ``wait >= max_wait`` gives ``Overflow(reason="max_wait")`` instead of an offer;
   otherwise, with ``overflow_when_empty``, a call that no *logged-in* agent serving the
   queue could take even with every relaxation step applied gives
   ``Overflow(reason="no_agents")``. An overflowing call takes no agent.
4. **Eligible agent** for a call: ``available``, serves the call's queue, has every effective
   required skill at >= the required level, and has room for the call's kind: capacity left
   for it, counting what this round already gave them. An item of an exclusive kind (a phone
   call) needs an agent given nothing else this round and takes them whole; an item of a
   shared kind takes one unit of that kind's capacity. The call is offered to the best
   eligible agent by its queue's strategy:

   ============== ===========================================================
   longest_idle   smallest ``idle_since``
   most_skilled   highest sum of the agent's levels over the effective required
                  skills, then smallest ``idle_since``
   round_robin    smallest ``last_offer``
   fewest_calls   smallest ``calls_today``, then smallest ``idle_since``
   ============== ===========================================================

   and the final tie-break is always the smallest ``agent_id``. A call with no eligible agent
   waits (no decision).

Decisions come back in the order above, so the first ``Offer`` is for the call that should be
answered first. Because each call takes its agent before any later call is looked at, a call
never loses an agent it could take to a call after it in the order.

Speed: agents are indexed per queue and per (queue, skill), each bucket pre-sorted by the
queue's strategy key where that key does not depend on the call; a call walks the smallest
bucket among its required skills and stops at the first agent that fits. So the cost per call
is a few agents, not all of them (see ``bench/bench_acd.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from acd.model import (
    DEFAULT_CAPACITY,
    Agent,
    Decision,
    Offer,
    Overflow,
    QueueSpec,
    Snapshot,
    WaitingCall,
)

__all__ = ["call_order_key", "effective_priority", "effective_requirements", "route"]

_SortKey = tuple[float | int | str, ...]


def effective_requirements(
    queue: QueueSpec, call: WaitingCall, wait: float | None
) -> dict[str, int]:
    """Skill -> minimum level the call needs after ``wait`` seconds (``None``: every step of
    the queue's relaxation applied, i.e. the least the call could ever need)."""
    required = dict(queue.skills)
    for skill, level in call.skills.items():
        required[skill] = max(level, required.get(skill, level))
    lower = 0
    dropped: set[str] = set()
    for step in queue.relaxation:
        if wait is not None and step.after > wait:
            # Steps are documented as sorted by ``after``, but a misordered configuration must
            # not silently skip a reached step: keep looking instead of breaking.
            continue
        lower += step.lower_by
        dropped.update(step.drop)
    return {
        skill: max(1, level - lower) if lower else level
        for skill, level in required.items()
        if skill not in dropped
    }


def effective_priority(queue: QueueSpec, call: WaitingCall, now: float) -> float:
    return call.priority + queue.aging_rate * (now - call.entered_at)


def call_order_key(queue: QueueSpec, call: WaitingCall, now: float) -> tuple[float, float, str]:
    """Sort key for the global order: smaller comes first."""
    return (-effective_priority(queue, call, now), call.entered_at, call.call_id)


def _static_key(strategy: str) -> Callable[[Agent], _SortKey] | None:
    """The strategy's ranking when it does not depend on the call (None for most_skilled)."""
    if strategy == "round_robin":
        return lambda a: (a.last_offer, a.agent_id)
    if strategy == "fewest_calls":
        return lambda a: (a.calls_today, a.idle_since, a.agent_id)
    if strategy == "most_skilled":
        return None
    return lambda a: (a.idle_since, a.agent_id)


def _fits(agent: Agent, required: Mapping[str, int]) -> bool:
    skills = agent.skills
    return all(skills.get(skill, 0) >= level for skill, level in required.items())


@dataclass
class _Index:
    """Agents of one queue: all of them and by skill, each list sorted by ``key``."""

    all: list[Agent]
    by_skill: dict[str, list[Agent]]

    @classmethod
    def build(cls, agents: Iterable[Agent], key: Callable[[Agent], _SortKey] | None) -> _Index:
        ordered = sorted(agents, key=key) if key is not None else list(agents)
        by_skill: dict[str, list[Agent]] = {}
        for agent in ordered:
            for skill in agent.skills:
                by_skill.setdefault(skill, []).append(agent)
        return cls(ordered, by_skill)

    def bucket(self, required: Mapping[str, int]) -> list[Agent]:
        """The smallest list that must contain every agent with all ``required`` skills."""
        best = self.all
        for skill in required:
            found = self.by_skill.get(skill)
            if found is None:
                return []
            if len(found) < len(best):
                best = found
        return best


def _by_agent_id(agent: Agent) -> _SortKey:
    return (agent.agent_id,)


def route(snapshot: Snapshot, now: float) -> list[Decision]:
    """Decide, for this instant, which waiting calls go to which agents and which overflow."""
    queues = snapshot.queues
    # Logged-in agents only matter to queues that overflow when nobody could take a call.
    watch_present = {n for n, q in queues.items() if q.overflow_when_empty and q.overflow}
    served: dict[str, list[Agent]] = {}
    logged_in: dict[str, list[Agent]] = {}
    for agent in snapshot.agents:
        if not (agent.available or (agent.logged_in and watch_present)):
            continue
        for name in agent.queues:
            if agent.available and name in queues:
                served.setdefault(name, []).append(agent)
            if agent.logged_in and name in watch_present:
                logged_in.setdefault(name, []).append(agent)

    available: dict[str, _Index] = {}
    for name, agents in served.items():
        key = _static_key(queues[name].strategy) or _by_agent_id
        available[name] = _Index.build(agents, key)
    present: dict[str, _Index] = {}  # built lazily: only overflow_when_empty queues need it
    nobody_cache: dict[tuple[str, frozenset[tuple[str, int]]], bool] = {}

    def nobody_could_take(queue: QueueSpec, call: WaitingCall) -> bool:
        least = effective_requirements(queue, call, None)
        cache_key = (queue.name, frozenset(least.items()))
        if cache_key not in nobody_cache:
            if queue.name not in present:
                # Any order will do here: the question is only whether someone fits.
                present[queue.name] = _Index.build(logged_in.get(queue.name, ()), None)
            bucket = present[queue.name].bucket(least)
            nobody_cache[cache_key] = not any(_fits(a, least) for a in bucket)
        return nobody_cache[cache_key]

    waiting = [call for call in snapshot.calls if call.queue in queues]
    waiting.sort(key=lambda c: call_order_key(queues[c.queue], c, now))

    exclusive = snapshot.exclusive
    taken: set[str] = set()  # agents with no room left for anything this round
    room: dict[str, dict[str, int]] = {}  # agents given a shared item this round: room left
    # Distinct free agents: once all are taken, later calls only need their overflow checks.
    candidates = {agent.agent_id: agent for agents in served.values() for agent in agents}
    free = len(candidates)
    # kind -> agents who cannot take an item of that kind now: the taken ones, those with no
    # capacity for it, and what this round's shared items used up. One set per kind keeps
    # the check in the agents' loop (``_pick``) a single membership test. When every agent
    # has the default capacity (today: one phone call at a time), the phone kinds share the
    # set ``taken`` itself, and the round costs what it did before kinds existed.
    out: dict[str, set[str]] = {}
    separate: list[set[str]] = []  # the sets in ``out`` that are not ``taken``
    if exclusive.issuperset(DEFAULT_CAPACITY) and all(
        agent.capacity is DEFAULT_CAPACITY for agent in candidates.values()
    ):
        # Nobody can take a shared item then: ``taken`` is exactly who cannot take more.
        out.update((kind, taken) for kind, n in DEFAULT_CAPACITY.items() if n > 0)

    def out_for(kind: str) -> set[str]:
        found = set(taken)
        found.update(k for k, a in candidates.items() if a.capacity.get(kind, 0) <= 0)
        found.update(k for k, left in room.items() if kind in exclusive or left.get(kind, 0) <= 0)
        out[kind] = found
        separate.append(found)
        return found

    decisions: list[Decision] = []
    for call in waiting:
        queue = queues[call.queue]
        wait = now - call.entered_at
        if queue.overflow is not None and call.may_overflow:
            spill: Overflow | None = None
            if queue.max_wait is not None and wait >= queue.max_wait:
                spill = _overflow(call, queue, "max_wait")
            elif queue.overflow_when_empty and nobody_could_take(queue, call):
                spill = _overflow(call, queue, "no_agents")
            if spill is not None:
                decisions.append(spill)
                continue
        if free <= 0 or call.queue not in available:
            continue
        required = effective_requirements(queue, call, wait)
        bucket = available[call.queue].bucket(required)
        unable = out.get(call.kind)
        if unable is None:
            unable = out_for(call.kind)
        chosen = _pick(queue, bucket, required, unable)
        if chosen is not None:
            agent_id = chosen.agent_id
            if call.kind in exclusive:
                taken.add(agent_id)
                free -= 1
                for others in separate:
                    others.add(agent_id)
            else:
                # A shared item: one unit of its kind, and nothing exclusive on top of it.
                left = room.setdefault(agent_id, dict(chosen.capacity))
                left[call.kind] -= 1
                for kind, others in out.items():
                    if kind in exclusive or left.get(kind, 0) <= 0:
                        others.add(agent_id)
                if not any(n > 0 for kind, n in left.items() if kind not in exclusive):
                    taken.add(agent_id)
                    free -= 1
                    for others in separate:
                        others.add(agent_id)
            decisions.append(Offer(call.call_id, agent_id, call.queue))
    return decisions


def _overflow(
    call: WaitingCall, queue: QueueSpec, reason: Literal["max_wait", "no_agents"]
) -> Overflow:
    assert queue.overflow is not None  # checked by the caller
    return Overflow(call.call_id, call.queue, queue.overflow, queue.overflow_target, reason)


def _pick(
    queue: QueueSpec, bucket: list[Agent], required: Mapping[str, int], out: set[str]
) -> Agent | None:
    if queue.strategy != "most_skilled":
        # The bucket is sorted by the strategy's key: the first agent that fits is the best.
        for agent in bucket:
            if agent.agent_id not in out and _fits(agent, required):
                return agent
        return None
    best: Agent | None = None
    best_key: _SortKey = ()
    for agent in bucket:
        if agent.agent_id in out or not _fits(agent, required):
            continue
        score = sum(agent.skills[skill] for skill in required)
        key: _SortKey = (-score, agent.idle_since, agent.agent_id)
        if best is None or key < best_key:
            best = agent
            best_key = key
    return best
