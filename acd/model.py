"""What the routing engine decides on, and what it decides: plain frozen values.

The engine (``acd.engine.route``) is a pure function of a ``Snapshot`` and the time: it reads
no clock, does no I/O and keeps no state between calls. Everything that changes over time
(who is ready, who waits, since when, how many calls an agent took today, whom round-robin
served last) is in the snapshot; everything it decides comes back as ``Offer`` and ``Overflow``
values for the ACD service to carry out through Asterisk.

Work items. What the engine routes is channel-neutral: a ``WaitingCall`` has a ``kind``
("voice", "callback" today; "outbound", "chat", "email" later) and an agent has a
``capacity`` per kind (how many more items of that kind they may take now). The kinds in
``Snapshot.exclusive`` take the whole agent (their phone rings: nothing else meanwhile); the
others share the agent up to their capacity. A new channel adds a kind and a capacity, not a
new engine. Today both kinds are exclusive with capacity 1: one call at a time, as before.

Ordering across queues (the rule an agent in several queues can rely on): every waiting call
gets an *effective priority* = ``priority + aging_rate(queue) * seconds waited``; calls are
considered highest effective priority first, then longest waiting (earliest ``entered_at``),
then ``call_id``; each call is offered to the best eligible agent still free in this round,
chosen by its queue's strategy. So a call never loses an agent to a later call unless aging or
priority says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

__all__ = [
    "CALLBACK",
    "DEFAULT_CAPACITY",
    "PHONE_KINDS",
    "VOICE",
    "Agent",
    "Decision",
    "Offer",
    "Overflow",
    "OverflowKind",
    "QueueSpec",
    "RelaxStep",
    "Snapshot",
    "Strategy",
    "WaitingCall",
    "WorkKind",
]

Strategy = Literal["longest_idle", "most_skilled", "round_robin", "fewest_calls"]
#: what kind of work an item is (a channel): "voice", "callback"...
WorkKind = str
VOICE: WorkKind = "voice"
CALLBACK: WorkKind = "callback"
#: kinds that ring the agent's phone: one at a time, and nothing else meanwhile
PHONE_KINDS: frozenset[WorkKind] = frozenset({VOICE, CALLBACK})
#: an available agent's room per kind unless configured otherwise
DEFAULT_CAPACITY: Mapping[WorkKind, int] = MappingProxyType({VOICE: 1, CALLBACK: 1})
OverflowKind = Literal["queue", "voicemail", "callback", "dialplan"]


@dataclass(frozen=True)
class RelaxStep:
    """After ``after`` seconds of waiting: lower every required level by ``lower_by`` (not
    below 1), and stop requiring the skills in ``drop``."""

    after: float
    lower_by: int = 0
    drop: frozenset[str] = frozenset()


@dataclass(frozen=True)
class QueueSpec:
    name: str
    #: skill -> minimum level (1-10) an agent needs; a call may add or raise its own
    skills: Mapping[str, int] = field(default_factory=dict)
    strategy: Strategy = "longest_idle"
    #: priority points gained per second of waiting, so low priority is not starved forever
    aging_rate: float = 0.0
    relaxation: tuple[RelaxStep, ...] = ()  # in increasing ``after``
    #: leave the queue after this many seconds (None: never) ...
    max_wait: float | None = None
    #: ... or at once when nobody who could ever take the call is logged in
    overflow_when_empty: bool = False
    overflow: OverflowKind | None = None
    overflow_target: str = ""  # queue name, mailbox, or dialplan context,exten,priority


@dataclass(frozen=True)
class WaitingCall:
    call_id: str
    queue: str
    entered_at: float  # when it entered this queue (seconds, the snapshot's clock)
    priority: int = 0  # higher first (VIP tiers)
    #: skills the call itself requires on top of the queue's (from the IVR's queue node)
    skills: Mapping[str, int] = field(default_factory=dict)
    #: False for a callback: nobody is on the line to send elsewhere, so the queue's
    #: overflow never applies to it (it waits for an agent however long it takes)
    may_overflow: bool = True
    kind: WorkKind = VOICE


@dataclass(frozen=True)
class Agent:
    agent_id: str
    skills: Mapping[str, int]  # skill -> level 1-10
    queues: frozenset[str]
    #: ready and not reserved, ringing, talking or in wrap-up
    available: bool
    #: logged in (any state); decides "nobody could ever take it" for overflow_when_empty
    logged_in: bool = True
    idle_since: float = 0.0  # when the agent last became available
    calls_today: int = 0
    #: round-robin: sequence number of the last call this agent was offered (lower first)
    last_offer: int = 0
    #: how many more items of each kind the agent may take now (a kind missing: none)
    capacity: Mapping[WorkKind, int] = field(default_factory=lambda: DEFAULT_CAPACITY)


@dataclass(frozen=True)
class Snapshot:
    queues: Mapping[str, QueueSpec]
    calls: tuple[WaitingCall, ...]
    agents: tuple[Agent, ...]
    #: kinds whose item takes the whole agent (see the module docstring)
    exclusive: frozenset[WorkKind] = PHONE_KINDS


@dataclass(frozen=True)
class Offer:
    call_id: str
    agent_id: str
    queue: str


@dataclass(frozen=True)
class Overflow:
    call_id: str
    queue: str
    kind: OverflowKind
    target: str
    reason: Literal["max_wait", "no_agents"]


Decision = Offer | Overflow
