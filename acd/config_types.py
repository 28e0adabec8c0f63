"""The ACD configuration as frozen values: what the rest of the ACD reads.

Built from ``acd.yaml`` by ``acd.config`` (see its docstring for the file's keys); a reload
(``acd.reconfigure``) swaps one ``AcdConfig`` for another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from acd.config_file import SlVariant
from acd.model import QueueSpec
from ivr.model import Calendar

__all__ = [
    "AcdConfig",
    "AgentConfig",
    "AnnounceSpec",
    "CallbackPolicy",
    "QueueConfig",
    "ServiceLevelSpec",
]


@dataclass(frozen=True)
class AnnounceSpec:
    """Periodic announcements to a waiting caller."""

    every: float = 30.0  # seconds between them (also the dialplan's heartbeat tick); >= 5
    position: bool = True  # "you are caller number N"
    estimated_wait: bool = True


@dataclass(frozen=True)
class ServiceLevelSpec:
    """Which service-level formula the queue reports (see ``docs/kpi.md``)."""

    threshold: float = 20.0  # seconds
    goal: float = 0.8  # 0..1
    variant: SlVariant = "abandons_ignored"
    short_abandon: float = 0.0  # abandons within this many seconds are not counted


@dataclass(frozen=True)
class QueueConfig:
    spec: QueueSpec
    ring_timeout: float = 15.0  # seconds an agent's phone rings before "no answer"
    wrap_up: float = 10.0  # seconds of after-call work per call (an agent may override)
    announce: AnnounceSpec = AnnounceSpec()
    service_level: ServiceLevelSpec = ServiceLevelSpec()
    music_class: str = "default"
    #: offer a callback that keeps the caller's place when the estimated wait exceeds this
    callback_offer_after: float | None = None


@dataclass(frozen=True)
class AgentConfig:
    agent_id: str
    name: str
    endpoint: str  # Tech/resource, e.g. PJSIP/agent1001
    skills: Mapping[str, int]  # level 1..10
    queues: frozenset[str]
    wrap_up: float | None = None  # overrides the queue's


@dataclass(frozen=True)
class CallbackPolicy:
    attempts: int = 3
    retry_after: float = 300.0
    ring_customer: float = 30.0
    dial_context: str = "cti-originate"
    hours: Calendar | None = None  # calling-hours window; None = any time


@dataclass(frozen=True)
class AcdConfig:
    queues: Mapping[str, QueueConfig]
    agents: Mapping[str, AgentConfig]
    not_ready_reasons: tuple[str, ...]
    callbacks: CallbackPolicy = field(default_factory=CallbackPolicy)
    fallback_after: float = 90.0
    reconcile_every: float = 30.0
    timezone: str = "UTC"
    source: str = ""  # the file it was loaded from

    def queue_specs(self) -> Mapping[str, QueueSpec]:
        """What the routing engine needs: queue name -> ``QueueSpec``."""
        return {name: queue.spec for name, queue in self.queues.items()}
