"""Drive a routing engine with a simulated clock and measure it against queueing theory.

Theory of operation: a discrete-event simulation of one queue with one skill. Calls arrive as
a Poisson process (rate ``arrival_rate``), each would hold an agent for an exponential handle
time (mean ``aht``) and, optionally, gives up after an exponential patience (mean
``patience``). Events (arrival, end of handling, end of patience) sit in a heap ordered by
(time, sequence number), so ties resolve in the order they were scheduled and a run is fully
determined by its seed. After every event at which a call is waiting, the harness builds a
``Snapshot`` exactly as the ACD service would, calls ``route(snapshot, now)`` and carries out
each ``Offer`` at once (no ring time: the agent is busy until ``now + handle time``). The
engine is the only thing that picks calls and agents; the harness only checks the decisions
are possible (a waiting call, an available agent, each used once) and keeps score.

With a FIFO engine this is the M/M/n queue of Erlang C (no patience) or the M/M/n+M queue of
Erlang A (with patience), so ``acd.erlang`` says what the scores must be.

Scores: the first ``warmup`` calls are dropped (the system starts empty, which is not the
steady state); the next ``calls`` are measured, in arrival order, and cut into ``batches``
consecutive batches. Each figure is computed per batch and reported as the mean of the batch
figures with a Student-t confidence interval (the method of batch means: batches long
compared with the queue's memory are nearly independent, where single calls are not).
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from acd.model import Agent, Decision, Offer, Overflow, QueueSpec, Snapshot, WaitingCall

__all__ = [
    "Estimate",
    "Router",
    "SimulationConfig",
    "SimulationResult",
    "simulate",
    "student_t_quantile",
]

Router = Callable[[Snapshot, float], Sequence[Decision]]

_QUEUE = "sim"
_SKILL = "sim"

# Event kinds; the number also breaks ties between events at the very same instant (never in
# practice with continuous distributions, but it keeps the order defined).
_DONE = 0  # an agent finishes a call
_ABANDON = 1  # a waiting caller's patience runs out
_ARRIVAL = 2


@dataclass(frozen=True)
class SimulationConfig:
    agents: int
    arrival_rate: float  # calls per second
    aht: float  # mean handle time, seconds
    patience: float | None = None  # mean patience, seconds; None: callers never abandon
    calls: int = 20_000  # measured calls
    warmup: int = 1_000  # calls simulated before measuring starts
    batches: int = 20
    sl_threshold: float = 20.0
    confidence: float = 0.99
    seed: int = 1

    def __post_init__(self) -> None:
        if self.agents < 1 or self.arrival_rate <= 0 or self.aht <= 0:
            raise ValueError("need agents >= 1, arrival_rate > 0 and aht > 0")
        if self.patience is not None and self.patience <= 0:
            raise ValueError("patience must be > 0 (or None for callers who never abandon)")
        if self.batches < 2 or self.calls < self.batches or self.warmup < 0:
            raise ValueError("need batches >= 2, calls >= batches and warmup >= 0")
        if not 0 < self.confidence < 1:
            raise ValueError("confidence must be between 0 and 1")

    @property
    def load(self) -> float:
        """Offered load in Erlangs."""
        return self.arrival_rate * self.aht


@dataclass(frozen=True)
class Estimate:
    """Mean of the batch figures and the half-width of its confidence interval."""

    mean: float
    half_width: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class SimulationResult:
    config: SimulationConfig
    #: answered within the threshold / measured calls ("abandons negative"; with no patience
    #: every variant of kpi.md is the same number, and it is what Erlang C's SL(t) counts)
    service_level: Estimate
    #: mean queue wait of answered calls (kpi.md's ASA; with no patience every call is
    #: answered, so this is Erlang C's ASA over all calls)
    asa: Estimate
    wait_probability: Estimate  # calls that found no agent free and waited
    abandon_probability: Estimate
    occupancy: Estimate  # busy agent-time / agent-time over the measured arrivals' span
    answered: int
    abandoned: int
    route_calls: int  # how many times the engine was asked


def student_t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t with ``df`` degrees of freedom (Cornish-Fisher expansion
    around the normal; within 0.1% of the exact value from df = 5 upward, which is all the
    batch counts we use)."""
    if df < 1:
        raise ValueError("df must be >= 1")
    z = statistics.NormalDist().inv_cdf(p)
    v = float(df)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4)
    )


def _estimate(values: Sequence[float], confidence: float) -> Estimate:
    mean = math.fsum(values) / len(values)
    sd = statistics.stdev(values)
    t = student_t_quantile(0.5 + confidence / 2, len(values) - 1)
    return Estimate(mean, t * sd / math.sqrt(len(values)))


@dataclass
class _Call:
    index: int
    arrived: float
    wait: float | None = None  # set when answered
    abandoned: bool = False
    found_busy: bool = False


@dataclass
class _AgentState:
    agent_id: str
    busy: bool = False
    idle_since: float = 0.0
    calls_today: int = 0
    last_offer: int = 0


def simulate(config: SimulationConfig, route: Router) -> SimulationResult:
    """Run one simulation of ``config`` with ``route`` as the routing engine."""
    rng = random.Random(config.seed)
    queue = QueueSpec(name=_QUEUE, skills={_SKILL: 1})
    queues = {_QUEUE: queue}
    agents = {f"a{i:03d}": _AgentState(f"a{i:03d}") for i in range(config.agents)}
    total = config.warmup + config.calls
    calls: list[_Call] = []
    waiting: dict[str, _Call] = {}  # call_id -> call, insertion (= arrival) order
    heap: list[tuple[float, int, int, str]] = []
    seq = 0
    offers = 0
    route_calls = 0
    # Busy agent-seconds, integrated piecewise between events, and the measured window.
    busy_count = 0
    busy_area = 0.0
    last_t = 0.0
    window_marks: list[tuple[float, float]] = []  # (time, busy_area) at each measured arrival

    def push(t: float, kind: int, key: str) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (t, kind, seq, key))

    push(rng.expovariate(config.arrival_rate), _ARRIVAL, "")
    while heap:
        now, kind, _, key = heapq.heappop(heap)
        busy_area += busy_count * (now - last_t)
        last_t = now
        if kind == _ARRIVAL:
            call = _Call(len(calls), now)
            calls.append(call)
            call_id = f"c{call.index}"
            call.found_busy = all(a.busy for a in agents.values())
            waiting[call_id] = call
            if call.index >= config.warmup:
                window_marks.append((now, busy_area))
            if config.patience is not None:
                push(now + rng.expovariate(1.0 / config.patience), _ABANDON, call_id)
            if len(calls) < total:
                push(now + rng.expovariate(config.arrival_rate), _ARRIVAL, "")
        elif kind == _ABANDON:
            gone = waiting.pop(key, None)
            if gone is not None:  # otherwise answered before its patience ran out
                gone.abandoned = True
        else:
            agent = agents[key]
            agent.busy = False
            agent.idle_since = now
            busy_count -= 1
        if not waiting:
            continue
        snapshot = Snapshot(
            queues=queues,
            calls=tuple(
                WaitingCall(call_id=cid, queue=_QUEUE, entered_at=c.arrived)
                for cid, c in waiting.items()
            ),
            agents=tuple(
                Agent(
                    agent_id=a.agent_id,
                    skills={_SKILL: 5},
                    queues=frozenset({_QUEUE}),
                    available=not a.busy,
                    idle_since=a.idle_since,
                    calls_today=a.calls_today,
                    last_offer=a.last_offer,
                )
                for a in agents.values()
            ),
        )
        route_calls += 1
        for decision in route(snapshot, now):
            if isinstance(decision, Overflow):
                # The simulated queue has no overflow configured: the engine invented one.
                raise RuntimeError(f"engine overflowed {decision} with no overflow configured")
            _check_offer(decision, waiting, agents)
            offered = waiting.pop(decision.call_id)
            offered.wait = now - offered.arrived
            agent = agents[decision.agent_id]
            offers += 1
            agent.busy = True
            agent.calls_today += 1
            agent.last_offer = offers
            busy_count += 1
            push(now + rng.expovariate(1.0 / config.aht), _DONE, agent.agent_id)
    return _score(config, calls[config.warmup :], window_marks, route_calls)


def _check_offer(offer: Offer, waiting: dict[str, _Call], agents: dict[str, _AgentState]) -> None:
    # These are engine bugs (the contract of acd.model), not run-time conditions: fail loudly.
    if offer.call_id not in waiting:
        raise RuntimeError(f"engine offered a call that is not waiting: {offer}")
    agent = agents.get(offer.agent_id)
    if agent is None or agent.busy:
        raise RuntimeError(f"engine offered a call to an agent who is not available: {offer}")
    if offer.queue != _QUEUE:
        raise RuntimeError(f"engine offered a call from the wrong queue: {offer}")


def _score(
    config: SimulationConfig,
    measured: list[_Call],
    window_marks: list[tuple[float, float]],
    route_calls: int,
) -> SimulationResult:
    size = len(measured) // config.batches
    sl: list[float] = []
    asa: list[float] = []
    pw: list[float] = []
    pab: list[float] = []
    occ: list[float] = []
    for b in range(config.batches):
        lo, hi = b * size, (b + 1) * size
        batch = measured[lo:hi]
        waits = [c.wait for c in batch if c.wait is not None]
        sl.append(sum(1 for w in waits if w <= config.sl_threshold) / len(batch))
        asa.append(math.fsum(waits) / len(waits) if waits else 0.0)
        pw.append(sum(1 for c in batch if c.found_busy) / len(batch))
        pab.append(sum(1 for c in batch if c.abandoned) / len(batch))
        # Occupancy over the span from this batch's first arrival to the next batch's first
        # (or the last measured arrival): busy agent-seconds / agent-seconds.
        t0, area0 = window_marks[lo]
        t1, area1 = window_marks[min(hi, len(window_marks) - 1)]
        occ.append((area1 - area0) / (config.agents * (t1 - t0)) if t1 > t0 else 0.0)
    c = config.confidence
    return SimulationResult(
        config=config,
        service_level=_estimate(sl, c),
        asa=_estimate(asa, c),
        wait_probability=_estimate(pw, c),
        abandon_probability=_estimate(pab, c),
        occupancy=_estimate(occ, c),
        answered=sum(1 for call in measured if call.wait is not None),
        abandoned=sum(1 for call in measured if call.abandoned),
        route_calls=route_calls,
    )
