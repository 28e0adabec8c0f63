"""The routing engine: strategies, tie-breaks, relaxation, overflow, and properties on random
snapshots checked against a deliberately naive reference written from the documented rules."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from acd.engine import effective_requirements, route
from acd.model import (
    Agent,
    Decision,
    Offer,
    Overflow,
    QueueSpec,
    RelaxStep,
    Snapshot,
    Strategy,
    WaitingCall,
)


def agent(
    agent_id: str,
    skills: Mapping[str, int] | None = None,
    queues: tuple[str, ...] = ("sales",),
    *,
    available: bool = True,
    logged_in: bool = True,
    idle_since: float = 0.0,
    calls_today: int = 0,
    last_offer: int = 0,
) -> Agent:
    return Agent(
        agent_id,
        dict(skills or {}),
        frozenset(queues),
        available,
        logged_in,
        idle_since,
        calls_today,
        last_offer,
    )


def call(
    call_id: str,
    queue: str = "sales",
    entered_at: float = 0.0,
    priority: int = 0,
    skills: Mapping[str, int] | None = None,
) -> WaitingCall:
    return WaitingCall(call_id, queue, entered_at, priority, dict(skills or {}))


def snap(queues: list[QueueSpec], calls: list[WaitingCall], agents: list[Agent]) -> Snapshot:
    return Snapshot({q.name: q for q in queues}, tuple(calls), tuple(agents))


def offers(decisions: list[Decision]) -> dict[str, str]:
    return {d.call_id: d.agent_id for d in decisions if isinstance(d, Offer)}


# --- strategies and tie-breaks ------------------------------------------------------------


def test_longest_idle_is_default_and_ties_go_to_smallest_agent_id() -> None:
    q = QueueSpec("sales")
    agents = [agent("b", idle_since=5), agent("c", idle_since=3), agent("a", idle_since=3)]
    assert route(snap([q], [call("c1")], agents), now=10) == [Offer("c1", "a", "sales")]
    two = route(snap([q], [call("c1"), call("c2", entered_at=1)], agents), now=10)
    assert two == [Offer("c1", "a", "sales"), Offer("c2", "c", "sales")]


def test_most_skilled_sums_levels_over_required_skills_then_longest_idle() -> None:
    q = QueueSpec("sales", {"fr": 1, "billing": 1}, strategy="most_skilled")
    agents = [
        agent("a", {"fr": 5, "billing": 5, "de": 10}, idle_since=1),  # de is not required
        agent("b", {"fr": 7, "billing": 4}, idle_since=9),
        agent("c", {"fr": 3, "billing": 8}, idle_since=2),
        agent("d", {"fr": 10}, idle_since=0),  # lacks billing
    ]
    # b and c both sum to 11; c has been idle longer.
    assert offers(route(snap([q], [call("c1")], agents), now=10)) == {"c1": "c"}
    agents[2] = agent("c", {"fr": 3, "billing": 8}, idle_since=9)
    # Same sum, same idle: agent_id decides.
    assert offers(route(snap([q], [call("c1")], agents), now=10)) == {"c1": "b"}


def test_most_skilled_counts_call_level_skills() -> None:
    q = QueueSpec("sales", {"fr": 1}, strategy="most_skilled")
    agents = [agent("a", {"fr": 9, "vip": 1}), agent("b", {"fr": 2, "vip": 9})]
    assert offers(route(snap([q], [call("c1")], agents), now=1)) == {"c1": "a"}
    assert offers(route(snap([q], [call("c1", skills={"vip": 1})], agents), now=1)) == {"c1": "b"}


def test_round_robin_smallest_last_offer_then_agent_id() -> None:
    q = QueueSpec("sales", strategy="round_robin")
    agents = [
        agent("a", last_offer=7, idle_since=0),
        agent("b", last_offer=3, idle_since=50),
        agent("c", last_offer=3, idle_since=1),
    ]
    result = route(snap([q], [call("c1"), call("c2", entered_at=1)], agents), now=60)
    assert result == [Offer("c1", "b", "sales"), Offer("c2", "c", "sales")]


def test_fewest_calls_then_longest_idle_then_agent_id() -> None:
    q = QueueSpec("sales", strategy="fewest_calls")
    agents = [
        agent("a", calls_today=2, idle_since=0),
        agent("b", calls_today=1, idle_since=8),
        agent("c", calls_today=1, idle_since=4),
        agent("d", calls_today=1, idle_since=4),
    ]
    calls = [call(f"c{i}", entered_at=i) for i in range(4)]
    assert offers(route(snap([q], calls, agents), now=60)) == {
        "c0": "c",
        "c1": "d",
        "c2": "b",
        "c3": "a",
    }


# --- eligibility and ordering ---------------------------------------------------------------


def test_only_available_agents_serving_the_queue_with_the_skills() -> None:
    q = QueueSpec("sales", {"fr": 5})
    agents = [
        agent("a", {"fr": 9}, available=False),
        agent("b", {"fr": 9}, queues=("support",)),
        agent("c", {"fr": 4}),
        agent("d", {"de": 9}),
    ]
    assert route(snap([q], [call("c1")], agents), now=10) == []
    agents.append(agent("e", {"fr": 5}))
    assert route(snap([q], [call("c1")], agents), now=10) == [Offer("c1", "e", "sales")]


def test_call_skills_merge_with_queue_skills_at_the_higher_level() -> None:
    q = QueueSpec("sales", {"fr": 3, "billing": 2})
    c = call("c1", skills={"fr": 6, "vip": 1, "billing": 1})
    assert effective_requirements(q, c, 0) == {"fr": 6, "billing": 2, "vip": 1}
    agents = [agent("a", {"fr": 5, "billing": 9, "vip": 9}), agent("b", {"fr": 6, "billing": 2})]
    assert route(snap([q], [c], agents), now=1) == []
    agents.append(agent("c", {"fr": 6, "billing": 2, "vip": 1}, idle_since=99))
    assert offers(route(snap([q], [c], agents), now=100)) == {"c1": "c"}


def test_priority_then_wait_then_call_id_across_queues() -> None:
    sales, support = QueueSpec("sales"), QueueSpec("support")
    shared = agent("x", queues=("sales", "support"))
    calls = [
        call("s-old", "sales", entered_at=0),
        call("t-new", "support", entered_at=5),
        call("t-vip", "support", entered_at=9, priority=1),
    ]
    assert route(snap([sales, support], calls, [shared]), now=10) == [
        Offer("t-vip", "x", "support")
    ]
    assert route(snap([sales, support], calls[:2], [shared]), now=10) == [
        Offer("s-old", "x", "sales")
    ]
    same_time = [call("b", "sales", entered_at=3), call("a", "support", entered_at=3)]
    assert offers(route(snap([sales, support], same_time, [shared]), now=10)) == {"a": "x"}


def test_aging_lets_an_old_low_priority_call_pass_a_new_vip() -> None:
    q = QueueSpec("sales", aging_rate=0.01)  # one priority point per 100 s
    calls = [call("old", entered_at=0, priority=0), call("vip", entered_at=900, priority=1)]
    a = [agent("a")]
    # At 1000 s: old has 0 + 10 = 10, vip 1 + 1 = 2.
    assert offers(route(snap([q], calls, a), now=1000)) == {"old": "a"}
    # At 950 s with no aging the VIP goes first.
    assert offers(route(snap([QueueSpec("sales")], calls, a), now=950)) == {"vip": "a"}


def test_an_agent_gets_at_most_one_call_per_round() -> None:
    q = QueueSpec("sales")
    calls = [call(f"c{i}", entered_at=i) for i in range(3)]
    assert route(snap([q], calls, [agent("a")]), now=10) == [Offer("c0", "a", "sales")]


def test_calls_for_unknown_queues_are_left_alone() -> None:
    assert route(snap([QueueSpec("sales")], [call("c1", "nope")], [agent("a")]), now=1) == []


# --- relaxation -------------------------------------------------------------------------


RELAXING = QueueSpec(
    "sales",
    {"fr": 8, "billing": 5},
    relaxation=(
        RelaxStep(after=30, lower_by=2),
        RelaxStep(after=60, lower_by=3, drop=frozenset({"billing"})),
    ),
)


def test_relaxation_steps_accumulate_with_wait() -> None:
    c = call("c1", entered_at=100)
    assert effective_requirements(RELAXING, c, 29.9) == {"fr": 8, "billing": 5}
    assert effective_requirements(RELAXING, c, 30) == {"fr": 6, "billing": 3}
    assert effective_requirements(RELAXING, c, 60) == {"fr": 3}
    assert effective_requirements(RELAXING, c, None) == {"fr": 3}


def test_relaxation_never_goes_below_level_one() -> None:
    q = QueueSpec("sales", {"fr": 2}, relaxation=(RelaxStep(after=1, lower_by=5),))
    assert effective_requirements(q, call("c1"), 10) == {"fr": 1}


def test_relaxation_widens_the_agents_a_call_may_reach() -> None:
    agents = [agent("a", {"fr": 6, "billing": 3}), agent("b", {"fr": 3})]
    c = call("c1", entered_at=100)
    assert route(snap([RELAXING], [c], agents), now=120) == []
    assert offers(route(snap([RELAXING], [c], agents), now=130)) == {"c1": "a"}
    only_b = agents[1:]
    assert route(snap([RELAXING], [c], only_b), now=159) == []
    assert offers(route(snap([RELAXING], [c], only_b), now=160)) == {"c1": "b"}


def test_relaxation_applies_to_call_level_skills_too() -> None:
    q = QueueSpec("sales", relaxation=(RelaxStep(after=10, drop=frozenset({"vip"})),))
    c = call("c1", skills={"vip": 3})
    assert route(snap([q], [c], [agent("a")]), now=5) == []
    assert offers(route(snap([q], [c], [agent("a")]), now=10)) == {"c1": "a"}


# --- overflow ---------------------------------------------------------------------------


def test_max_wait_overflows_instead_of_offering() -> None:
    q = QueueSpec("sales", max_wait=60, overflow="voicemail", overflow_target="100@default")
    calls = [call("old", entered_at=0), call("new", entered_at=30)]
    result = route(snap([q], calls, [agent("a")]), now=60)
    assert result == [
        Overflow("old", "sales", "voicemail", "100@default", "max_wait"),
        Offer("new", "a", "sales"),
    ]


def test_no_overflow_without_an_overflow_kind() -> None:
    q = QueueSpec("sales", {"fr": 9}, max_wait=60, overflow_when_empty=True)
    assert route(snap([q], [call("c1")], []), now=600) == []


def test_overflow_when_nobody_logged_in_could_ever_take_the_call() -> None:
    q = QueueSpec(
        "sales",
        {"fr": 8},
        relaxation=(RelaxStep(after=60, lower_by=3),),
        overflow_when_empty=True,
        overflow="queue",
        overflow_target="support",
    )
    spill = [Overflow("c1", "sales", "queue", "support", "no_agents")]
    # Nobody at all; a logged-out expert; an agent of another queue: all overflow at once.
    assert route(snap([q], [call("c1")], []), now=0) == spill
    expert = agent("x", {"fr": 9}, logged_in=False, available=False)
    assert route(snap([q], [call("c1")], [expert]), now=0) == spill
    other = agent("y", {"fr": 9}, queues=("support",))
    assert route(snap([q], [call("c1")], [other]), now=0) == spill
    # Level 4 is too low even after relaxation (8 - 3 = 5).
    assert route(snap([q], [call("c1")], [agent("z", {"fr": 4})]), now=0) == spill
    # A busy (logged-in, not available) agent who could take it fully relaxed: the call waits.
    busy = agent("w", {"fr": 5}, available=False)
    assert route(snap([q], [call("c1")], [busy]), now=0) == []
    # An available one who only fits after relaxation: the call waits, then gets them.
    free = agent("v", {"fr": 5})
    assert route(snap([q], [call("c1")], [free]), now=0) == []
    assert route(snap([q], [call("c1")], [free]), now=60) == [Offer("c1", "v", "sales")]


# --- properties on random snapshots -----------------------------------------------------

SKILLS = ("a", "b", "c", "d")
QUEUES = ("q1", "q2", "q3")
NOW = 1000.0
STRATEGIES: tuple[Strategy, ...] = ("longest_idle", "most_skilled", "round_robin", "fewest_calls")

levels = st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10), max_size=3)


@st.composite
def queue_specs(draw: st.DrawFn, name: str) -> QueueSpec:
    steps = draw(
        st.lists(
            st.builds(
                RelaxStep,
                after=st.integers(0, 100).map(float),
                lower_by=st.integers(0, 4),
                drop=st.frozensets(st.sampled_from(SKILLS), max_size=2),
            ),
            max_size=3,
        )
    )
    has_overflow = draw(st.booleans())
    return QueueSpec(
        name,
        draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10), max_size=2)),
        draw(st.sampled_from(STRATEGIES)),
        draw(st.sampled_from((0.0, 0.01, 0.5))),
        tuple(sorted(steps, key=lambda s: s.after)),
        draw(st.sampled_from((None, 30.0, 80.0))),
        draw(st.booleans()),
        "callback" if has_overflow else None,
        "cb" if has_overflow else "",
    )


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    queues = {name: draw(queue_specs(name)) for name in QUEUES}
    n_agents = draw(st.integers(0, 12))
    agents = tuple(
        Agent(
            f"a{i:02d}",
            draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10), max_size=4)),
            draw(st.frozensets(st.sampled_from((*QUEUES, "elsewhere")), max_size=3)),
            draw(st.booleans()),
            draw(st.booleans()),
            float(draw(st.integers(0, 5))),
            draw(st.integers(0, 3)),
            draw(st.integers(0, 3)),
        )
        for i in range(n_agents)
    )
    n_calls = draw(st.integers(0, 12))
    calls = tuple(
        WaitingCall(
            f"c{i:02d}",
            draw(st.sampled_from(QUEUES)),
            NOW - draw(st.integers(0, 120)),
            draw(st.integers(0, 2)),
            draw(levels),
        )
        for i in range(n_calls)
    )
    return Snapshot(queues, calls, agents)


def _needs(q: QueueSpec, c: WaitingCall, wait: float | None) -> dict[str, int]:
    """The documented requirement rule, written naively (independent of the engine's)."""
    need: dict[str, int] = {}
    for source in (q.skills, c.skills):
        for skill, level in source.items():
            need[skill] = max(need.get(skill, 0), level)
    for step in q.relaxation:
        if wait is None or wait >= step.after:
            need = {s: max(1, lv - step.lower_by) for s, lv in need.items() if s not in step.drop}
    return need


def _can_take(a: Agent, q: QueueSpec, c: WaitingCall, wait: float | None) -> bool:
    return q.name in a.queues and all(
        a.skills.get(s, 0) >= lv for s, lv in _needs(q, c, wait).items()
    )


def _eff_priority(s: Snapshot, c: WaitingCall) -> float:
    return c.priority + s.queues[c.queue].aging_rate * (NOW - c.entered_at)


def _order(s: Snapshot) -> list[WaitingCall]:
    return sorted(s.calls, key=lambda c: (-_eff_priority(s, c), c.entered_at, c.call_id))


def _rank(strategy: Strategy, a: Agent, need: Mapping[str, int]) -> tuple[float, ...]:
    # agent ids are "aNN": their number orders them like the strings do.
    number = float(a.agent_id[1:])
    if strategy == "most_skilled":
        return (-sum(a.skills[k] for k in need), a.idle_since, number)
    if strategy == "round_robin":
        return (a.last_offer, number)
    if strategy == "fewest_calls":
        return (a.calls_today, a.idle_since, number)
    return (a.idle_since, number)


def reference_route(s: Snapshot) -> list[Decision]:
    """O(calls x agents), no indexes: what the engine must agree with exactly."""
    out: list[Decision] = []
    taken: set[str] = set()
    for c in _order(s):
        q = s.queues[c.queue]
        wait = NOW - c.entered_at
        if q.overflow is not None:
            if q.max_wait is not None and wait >= q.max_wait:
                out.append(Overflow(c.call_id, c.queue, q.overflow, q.overflow_target, "max_wait"))
                continue
            if q.overflow_when_empty and not any(
                a.logged_in and _can_take(a, q, c, None) for a in s.agents
            ):
                out.append(Overflow(c.call_id, c.queue, q.overflow, q.overflow_target, "no_agents"))
                continue
        free = [
            a
            for a in s.agents
            if a.available and a.agent_id not in taken and _can_take(a, q, c, wait)
        ]
        if not free:
            continue
        best = min(free, key=lambda a: _rank(q.strategy, a, _needs(q, c, wait)))
        taken.add(best.agent_id)
        out.append(Offer(c.call_id, best.agent_id, c.queue))
    return out


@settings(max_examples=200, deadline=None)
@given(snapshots())
def test_engine_agrees_with_the_naive_reference(s: Snapshot) -> None:
    assert route(s, NOW) == reference_route(s)


@settings(max_examples=200, deadline=None)
@given(snapshots())
def test_safety_properties(s: Snapshot) -> None:
    decisions = route(s, NOW)
    agents = {a.agent_id: a for a in s.agents}
    calls = {c.call_id: c for c in s.calls}
    decided = [d.call_id for d in decisions]
    assert len(decided) == len(set(decided)), "a call got two decisions"
    given_to = [d.agent_id for d in decisions if isinstance(d, Offer)]
    assert len(given_to) == len(set(given_to)), "an agent got two calls"
    for d in decisions:
        c = calls[d.call_id]
        q = s.queues[c.queue]
        assert d.queue == c.queue
        if isinstance(d, Offer):
            a = agents[d.agent_id]
            assert a.available
            assert c.queue in a.queues
            for skill, level in _needs(q, c, NOW - c.entered_at).items():
                assert a.skills.get(skill, 0) >= level
        else:
            assert q.overflow is not None


@settings(max_examples=200, deadline=None)
@given(snapshots())
def test_fairness_and_priority_are_never_passed_over(s: Snapshot) -> None:
    decisions = route(s, NOW)
    got = offers(decisions)
    handled = {d.call_id for d in decisions}
    agents = {a.agent_id: a for a in s.agents}
    order = _order(s)
    for i, first in enumerate(order):
        if first.call_id in handled:
            continue  # it got an agent, or left by overflow
        q = s.queues[first.queue]
        for later in order[i + 1 :]:
            x = got.get(later.call_id)
            if x is None:
                continue
            # The earlier call waits while a later one took X: X must not have fit it.
            assert not _can_take(agents[x], q, first, NOW - first.entered_at)
            # Hence, in particular, a higher effective priority is never passed over.
            assert _eff_priority(s, first) >= _eff_priority(s, later)
