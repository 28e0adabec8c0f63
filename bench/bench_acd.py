"""Latency of one routing decision: ``acd.engine.route`` on a large, realistic snapshot.

5,000 agents, 100 skills, 1,000 waiting calls, 20 queues (five of each strategy). Each queue
requires one skill (level 1-4) and has two relaxation steps; a quarter of the queues overflow
when nobody logged in could take a call. Agents serve 1-4 queues and have 3-8 skills
(levels 1-10) including their queues' skills; about 10% are available. Calls need 1-3 skills
(the queue's plus up to two of their own), priorities 0-2 and waits 0-300 s. Seeded, so every
run sees the same snapshot.

Run: .venv/bin/python bench/bench_acd.py   (results: bench/RESULTS.md)
"""

from __future__ import annotations

import platform
import random
import statistics
import time

from acd.engine import route
from acd.model import Agent, Offer, Overflow, QueueSpec, RelaxStep, Snapshot, Strategy, WaitingCall

AGENTS = 5_000
SKILLS = [f"s{i:03d}" for i in range(100)]
CALLS = 1_000
QUEUES = 20
RUNS = 50
NOW = 10_000.0
STRATEGIES: tuple[Strategy, ...] = ("longest_idle", "most_skilled", "round_robin", "fewest_calls")


def build(seed: int = 4) -> Snapshot:
    rng = random.Random(seed)
    queues: dict[str, QueueSpec] = {}
    for i in range(QUEUES):
        queues[f"q{i:02d}"] = QueueSpec(
            f"q{i:02d}",
            {SKILLS[i]: rng.randint(1, 4)},
            STRATEGIES[i % len(STRATEGIES)],
            aging_rate=0.01,
            relaxation=(RelaxStep(60, lower_by=1), RelaxStep(180, lower_by=2)),
            max_wait=600.0,
            overflow_when_empty=i % 4 == 0,
            overflow="voicemail",
            overflow_target=f"{i}@default",
        )
    names = sorted(queues)
    agents = []
    for n in range(AGENTS):
        serves = rng.sample(names, rng.randint(1, 4))
        skills = {next(iter(queues[q].skills)): rng.randint(1, 10) for q in serves}
        wanted = rng.randint(3, 8)
        while len(skills) < wanted:
            skills[rng.choice(SKILLS)] = rng.randint(1, 10)
        agents.append(
            Agent(
                f"agent{n:05d}",
                skills,
                frozenset(serves),
                available=rng.random() < 0.10,
                logged_in=rng.random() < 0.9,
                idle_since=NOW - rng.uniform(0, 3600),
                calls_today=rng.randint(0, 40),
                last_offer=rng.randint(0, 100_000),
            )
        )
    calls = []
    for n in range(CALLS):
        q = rng.choice(names)
        own = {rng.choice(SKILLS): rng.randint(1, 6) for _ in range(rng.randint(0, 2))}
        calls.append(
            WaitingCall(f"call{n:05d}", q, NOW - rng.uniform(0, 300), rng.randint(0, 2), own)
        )
    return Snapshot(queues, tuple(calls), tuple(agents))


def main() -> None:
    snapshot = build()
    decisions = route(snapshot, NOW)  # warm-up, and what one decision round produces
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        route(snapshot, NOW)
        samples.append(time.perf_counter() - start)
    samples.sort()
    median = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    offers = sum(isinstance(d, Offer) for d in decisions)
    spills = sum(isinstance(d, Overflow) for d in decisions)
    available = sum(a.available for a in snapshot.agents)
    print(f"python {platform.python_version()} on {platform.machine()}, {RUNS} runs")
    print(
        f"{AGENTS} agents ({available} available), {len(SKILLS)} skills, {CALLS} calls, "
        f"{QUEUES} queues: {offers} offers, {spills} overflows per decision round"
    )
    print(f"route(): median {median * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
