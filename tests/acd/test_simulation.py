"""The real routing engine, driven by the simulation harness, reproduces queueing theory.

Single skill, FIFO: Erlang C service level, ASA, probability of waiting and occupancy (two
loads), and Erlang A abandonment (one load). Each comparison asks that the theoretical value
lie inside the run's 99% batch-means confidence interval, and that interval be narrow enough
for the comparison to mean something. Seeds are fixed, so the runs are reproducible.
"""

from __future__ import annotations

import dataclasses

import pytest

from acd.engine import route
from acd.erlang import (
    erlang_a_abandon_probability,
    erlang_a_wait_probability,
    erlang_c,
    erlang_c_asa,
    erlang_c_service_level,
)
from acd.model import Decision, Offer, Overflow, Snapshot
from acd.simulation import Estimate, SimulationConfig, simulate, student_t_quantile

AHT = 180.0


def fifo_reference(snapshot: Snapshot, now: float) -> list[Decision]:
    """A deliberately naive FIFO router, written independently of acd.engine: oldest call to
    the longest-idle available agent. Used to check the harness itself."""
    calls = sorted(snapshot.calls, key=lambda c: (c.entered_at, c.call_id))
    free = sorted(
        (a for a in snapshot.agents if a.available), key=lambda a: (a.idle_since, a.agent_id)
    )
    return [Offer(c.call_id, a.agent_id, c.queue) for c, a in zip(calls, free, strict=False)]


def _assert_agrees(name: str, estimate: Estimate, theory: float, max_half_width: float) -> None:
    assert estimate.half_width <= max_half_width, f"{name}: interval too wide: {estimate}"
    assert estimate.covers(theory), f"{name}: theory {theory:.5g} outside {estimate}"


@pytest.mark.parametrize(
    ("agents", "load", "calls", "seed"),
    [(10, 8.0, 60_000, 11), (5, 3.0, 40_000, 12)],
)
def test_engine_reproduces_erlang_c(agents: int, load: float, calls: int, seed: int) -> None:
    config = SimulationConfig(
        agents=agents, arrival_rate=load / AHT, aht=AHT, calls=calls, warmup=2_000, seed=seed
    )
    result = simulate(config, route)

    assert result.answered == calls
    assert result.abandoned == 0
    _assert_agrees(
        "SL(20 s)",
        result.service_level,
        erlang_c_service_level(agents, load, AHT, 20.0),
        max_half_width=0.04,
    )
    asa = erlang_c_asa(agents, load, AHT)
    _assert_agrees("ASA", result.asa, asa, max_half_width=0.25 * asa)
    _assert_agrees("P(wait)", result.wait_probability, erlang_c(agents, load), 0.04)
    _assert_agrees("occupancy", result.occupancy, load / agents, 0.02)


def test_engine_reproduces_erlang_a_abandonment() -> None:
    agents, load, patience = 5, 4.5, 60.0
    config = SimulationConfig(
        agents=agents,
        arrival_rate=load / AHT,
        aht=AHT,
        patience=patience,
        calls=30_000,
        warmup=1_000,
        seed=13,
    )
    result = simulate(config, route)

    lam = load / AHT
    pab = erlang_a_abandon_probability(agents, lam, AHT, patience)
    _assert_agrees("P(abandon)", result.abandon_probability, pab, max_half_width=0.02)
    pw = erlang_a_wait_probability(agents, lam, AHT, patience)
    _assert_agrees("P(wait)", result.wait_probability, pw, max_half_width=0.03)
    # Only calls that are answered hold an agent.
    _assert_agrees("occupancy", result.occupancy, load * (1 - pab) / agents, 0.02)
    assert result.answered + result.abandoned == config.calls


def test_engine_and_naive_fifo_make_the_same_run() -> None:
    # Which free agent takes a call does not change the random draws or the waits, so a FIFO
    # engine must give exactly the reference's figures, abandonment included.
    config = SimulationConfig(
        agents=4, arrival_rate=3.5 / AHT, aht=AHT, patience=120.0, calls=4_000, warmup=200
    )
    assert simulate(config, route) == simulate(config, fifo_reference)


def test_runs_are_reproducible_and_depend_on_the_seed() -> None:
    config = SimulationConfig(agents=3, arrival_rate=2.0 / AHT, aht=AHT, calls=2_000)
    first = simulate(config, route)
    assert simulate(config, route) == first
    assert simulate(dataclasses.replace(config, seed=2), route) != first


def test_the_engine_is_asked_whenever_a_call_waits() -> None:
    config = SimulationConfig(agents=2, arrival_rate=1.0 / AHT, aht=AHT, calls=1_000, warmup=0)
    result = simulate(config, route)
    # At least once per arrival (a call waits, if only for an instant) and never more often
    # than there are events (arrivals + completions).
    assert config.calls <= result.route_calls <= 2 * config.calls


def test_an_engine_that_double_books_an_agent_is_caught() -> None:
    def greedy(snapshot: Snapshot, now: float) -> list[Decision]:
        first = snapshot.agents[0].agent_id  # busy or not
        return [Offer(c.call_id, first, c.queue) for c in snapshot.calls]

    config = SimulationConfig(agents=2, arrival_rate=1.0 / AHT, aht=AHT, calls=100, warmup=0)
    with pytest.raises(RuntimeError, match="not available"):
        simulate(config, greedy)


def test_an_engine_that_offers_a_call_twice_is_caught() -> None:
    def twice(snapshot: Snapshot, now: float) -> list[Decision]:
        call = snapshot.calls[0]
        return [Offer(call.call_id, a.agent_id, call.queue) for a in snapshot.agents]

    config = SimulationConfig(agents=2, arrival_rate=1.0 / AHT, aht=AHT, calls=100, warmup=0)
    with pytest.raises(RuntimeError, match="not waiting"):
        simulate(config, twice)


def test_an_invented_overflow_is_caught() -> None:
    def overflow(snapshot: Snapshot, now: float) -> list[Decision]:
        call = snapshot.calls[0]
        return [Overflow(call.call_id, call.queue, "voicemail", "100", "no_agents")]

    config = SimulationConfig(agents=1, arrival_rate=1.0 / AHT, aht=AHT, calls=20, warmup=0)
    with pytest.raises(RuntimeError, match="overflow"):
        simulate(config, overflow)


def test_student_t_quantiles() -> None:
    # Table values; the expansion is within 0.1% from df = 5 on (batch counts are >= 20 here).
    table = {
        (0.975, 19): 2.093024,
        (0.995, 19): 2.860935,
        (0.975, 5): 2.570582,
        (0.995, 5): 4.032143,
        (0.995, 29): 2.756386,
    }
    for (p, df), exact in table.items():
        assert student_t_quantile(p, df) == pytest.approx(exact, rel=1e-3)


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(ValueError):
        SimulationConfig(agents=0, arrival_rate=1.0, aht=1.0)
    with pytest.raises(ValueError):
        SimulationConfig(agents=1, arrival_rate=1.0, aht=1.0, patience=0.0)
    with pytest.raises(ValueError):
        SimulationConfig(agents=1, arrival_rate=1.0, aht=1.0, calls=5, batches=10)
