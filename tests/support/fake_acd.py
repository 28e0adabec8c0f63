"""A fake PBX and a small harness for driving ``acd.service.AcdService`` in unit tests.

``FakePbx`` implements ``acd.ports.AcdPbx``: it records every request in ``requests`` (in
order, as plain tuples) and raises ``DeliveryError`` when told to. ``Clock`` is a mutable
float the service reads as its clock, so tests decide what time it is. ``make_harness`` wires
a service to both, a ``MemoryStore`` and a list that collects everything published.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from acd.config import AcdConfig, AgentConfig, CallbackPolicy, QueueConfig
from acd.model import OverflowKind, QueueSpec, RelaxStep, Strategy
from acd.ports import AcdPbx, DeliveryError
from acd.service import AcdService
from acd.store import MemoryStore

__all__ = [
    "T0",
    "Clock",
    "FakePbx",
    "Harness",
    "acd_config",
    "agent",
    "make_harness",
    "queue",
    "settle",
]

T = TypeVar("T")

#: 2023-11-14 22:13:20 UTC, a Tuesday
T0 = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakePbx(AcdPbx):
    requests: list[tuple[object, ...]] = field(default_factory=list)
    fail_deliver: str | None = None  # the DeliveryError message, when set
    fail_originate: str | None = None
    fail_overflow: str | None = None
    #: set by every ``deliver``: lets a test wait for the routing task without polling
    delivered: asyncio.Event = field(default_factory=asyncio.Event)
    _legs: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def of(self, kind: str) -> list[tuple[object, ...]]:
        return [r for r in self.requests if r[0] == kind]

    async def deliver(
        self, channel: str, endpoint: str, ring_timeout: float, agent_id: str
    ) -> None:
        self.requests.append(("deliver", channel, endpoint, ring_timeout, agent_id))
        self.delivered.set()
        if self.fail_deliver is not None:
            raise DeliveryError(self.fail_deliver)

    async def originate_callback(
        self,
        call_id: str,
        endpoint: str,
        agent_id: str,
        number: str,
        ring_timeout: float,
        variables: Mapping[str, str],
    ) -> str:
        self.requests.append(
            ("originate", call_id, endpoint, agent_id, number, ring_timeout, dict(variables))
        )
        if self.fail_originate is not None:
            raise DeliveryError(self.fail_originate)
        return f"leg-{next(self._legs)}"

    async def overflow(self, channel: str, kind: str, target: str) -> None:
        self.requests.append(("overflow", channel, kind, target))
        if self.fail_overflow is not None:
            raise DeliveryError(self.fail_overflow)

    async def update_waiting(self, channel: str, state: str) -> None:
        self.requests.append(("update_waiting", channel, state))


def queue(
    name: str,
    skills: Mapping[str, int] | None = None,
    *,
    strategy: Strategy = "longest_idle",
    relaxation: tuple[RelaxStep, ...] = (),
    max_wait: float | None = None,
    overflow_when_empty: bool = False,
    overflow: OverflowKind | None = None,
    overflow_target: str = "",
    ring_timeout: float = 15.0,
    wrap_up: float = 10.0,
) -> QueueConfig:
    spec = QueueSpec(
        name,
        dict(skills if skills is not None else {name: 1}),
        strategy,
        relaxation=relaxation,
        max_wait=max_wait,
        overflow_when_empty=overflow_when_empty,
        overflow=overflow,
        overflow_target=overflow_target,
    )
    return QueueConfig(spec, ring_timeout=ring_timeout, wrap_up=wrap_up)


def agent(
    agent_id: str,
    skills: Mapping[str, int],
    queues: tuple[str, ...],
    *,
    endpoint: str | None = None,
    wrap_up: float | None = None,
) -> AgentConfig:
    return AgentConfig(
        agent_id,
        agent_id.title(),
        endpoint or f"PJSIP/{agent_id}",
        dict(skills),
        frozenset(queues),
        wrap_up,
    )


def acd_config(
    queues: tuple[QueueConfig, ...],
    agents: tuple[AgentConfig, ...],
    *,
    callbacks: CallbackPolicy | None = None,
) -> AcdConfig:
    return AcdConfig(
        {q.spec.name: q for q in queues},
        {a.agent_id: a for a in agents},
        ("break", "lunch"),
        callbacks or CallbackPolicy(),
    )


@dataclass
class Harness:
    service: AcdService
    pbx: FakePbx
    store: MemoryStore
    clock: Clock
    events: list[object]

    def of(self, kind: type[T]) -> list[T]:
        return [e for e in self.events if isinstance(e, kind)]

    def ready(self, *agent_ids: str, gap: float = 1.0) -> None:
        """Log the agents in and make them ready, ``gap`` seconds apart (first = longest
        idle)."""
        for agent_id in agent_ids:
            self.service.login(agent_id)
            self.service.ready(agent_id)
            self.clock.advance(gap)


def make_harness(
    config: AcdConfig,
    *,
    store: MemoryStore | None = None,
    clock: Clock | None = None,
    tick: float = 1.0,
    retry_delay: float = 2.0,
) -> Harness:
    events: list[object] = []
    pbx = FakePbx()
    store = store if store is not None else MemoryStore()
    clock = clock if clock is not None else Clock()
    service = AcdService(
        config,
        pbx=pbx,
        store=store,
        publish=events.append,
        clock=clock,
        tick=tick,
        retry_delay=retry_delay,
    )
    return Harness(service, pbx, store, clock, events)


async def settle() -> None:
    """Let the tasks the service spawned (PBX requests) run to their end."""
    for _ in range(10):
        await asyncio.sleep(0)
