"""Live queue figures, kept up to date event by event (issue 4, point 6).

``FiguresTracker`` is the pure accumulator the ACD service feeds: it reads no clock (every
method takes the time), does no I/O and never rescans all calls or agents. Definitions are
those of docs/kpi.md, computed by ``cti.kpi`` (their one home); the rules kpi.md leaves open for
a live tracker are decided here:

* **Today** is the local calendar day in the tracker's ``timezone`` (an IANA name, so DST days
  of 23 or 25 hours are handled by ``zoneinfo``). The tracker holds one current day: the latest
  local date of any time it was given (events, ``stats``, ``roll_over``). When a time falls on a
  later day every daily counter of every queue restarts at zero, at the first event or
  ``stats`` call after local midnight; the service should also call ``roll_over`` (or ``stats``)
  periodically so a quiet queue still shows the reset.
* **A call belongs to the day it was offered** (kpi.md: "offered = calls that entered the queue
  in the interval", and answered/abandoned are outcomes *of offered calls*). A call offered at
  23:59:50 and answered at 00:00:10 counts in neither day's ``answered`` once the day has
  turned; it is not counted in the new day because its offer is not. This keeps
  ``answered + abandoned + left <= offered`` at every instant, so no ratio exceeds 1. Waiting
  and longest wait are not daily figures: such a call keeps waiting across midnight.
* **Handle time** (``handled``) counts on the local day of its ``at`` (the end of wrap-up);
  a ``handled`` reported with a time on an earlier day than the current one is dropped.
* **Within the threshold** means ``wait <= threshold`` ("answered within 20 s" includes 20.0),
  ``cti.kpi.within``.
* **Short abandons** (``cti.kpi``): an abandon after a wait ``< short_abandon`` seconds is
  counted in both ``abandoned`` and ``short_abandoned``. The abandon rate excludes them from
  numerator and denominator: ``(abandoned - short) / (offered - short)``; with
  ``short_abandon = 0`` it is kpi.md's plain abandoned / offered. The four service-level
  variants use every abandon, as kpi.md writes them.
* **Empty denominators** give ``None`` (nothing to show): ``cti.kpi``'s one rule.
* **Unknown and repeated events**: ``answered``/``abandoned``/``left`` for a call id never
  entered (after a restart we may see only the end of a call) change nothing and add one to
  ``ignored``; a second outcome for a call already finished (answered twice, abandoned after
  answered) changes nothing, the first outcome wins, and adds one to ``ignored`` and
  ``duplicates``. A repeated ``entered`` is a duplicate too (one visit, one offer).
* **Restored calls** (``restore_waiting``, after a server restart) wait again with their
  original ``entered_at`` and count in ``waiting`` and ``longest_wait``, but not in the daily
  counters, nor does their outcome: their offer was counted by the process that died, and
  counting the outcome without the offer would break the invariant above.

Complexity: every event is O(1), except the heap work behind ``longest_wait`` (O(log n) for n
waiting calls in the queue, amortised: finished calls are removed lazily, and the heap is
rebuilt when more than half of it is stale) and ``agent`` (O(q) for the q queues of that one
agent). ``stats`` is O(1) amortised; midnight rollover is O(queues + calls finished that day),
once a day.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from acd.agent_state import AgentStatus
from cti import kpi
from cti.errors import ConfigError

__all__ = [
    "CAPABLE_STATUSES",
    "SL_VARIANTS",
    "FiguresTracker",
    "LeaveOutcome",
    "QueueStats",
    "SlSpec",
    "SlSpecLike",
]

LeaveOutcome = Literal["overflow", "callback", "voicemail", "other"]
SL_VARIANTS: tuple[str, ...] = kpi.SL_VARIANTS

#: Agents who could take a call of the queue now or after the call in hand: everyone logged in
#: and not "not ready". Used for the estimated wait.
CAPABLE_STATUSES: frozenset[AgentStatus] = frozenset(
    {
        AgentStatus.READY,
        AgentStatus.RESERVED,
        AgentStatus.RINGING,
        AgentStatus.ON_CALL,
        AgentStatus.ON_HOLD,
        AgentStatus.WRAP_UP,
    }
)
_SHOWN_STATUSES = tuple(s for s in AgentStatus if s is not AgentStatus.LOGGED_OUT)


class SlSpecLike(Protocol):
    """Anything with these attributes (``acd.config.ServiceLevelSpec`` or ``SlSpec``)."""

    @property
    def threshold(self) -> float: ...
    @property
    def goal(self) -> float: ...
    @property
    def variant(self) -> str: ...
    @property
    def short_abandon(self) -> float: ...


@dataclass(frozen=True)
class SlSpec:
    threshold: float = 20.0
    goal: float = 0.8
    variant: str = kpi.DEFAULT_SL_VARIANT
    short_abandon: float = 0.0


@dataclass(frozen=True)
class QueueStats:
    """One queue at one instant; JSON-able through ``dataclasses.asdict`` (plain dicts)."""

    queue: str
    at: float
    waiting: int
    longest_wait: float  # 0.0 when nobody waits
    agents: Mapping[str, int]  # AgentStatus value -> agents serving this queue (not logged_out)
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    overflowed: int
    callbacks: int
    answered_within: int
    abandoned_within: int
    service_level: float | None  # the configured variant; None when its denominator is 0
    service_levels: Mapping[str, float | None]  # all four variants
    sl_variant: str
    sl_threshold: float
    sl_goal: float
    asa: float | None
    abandon_rate: float | None
    aht: float | None
    estimated_wait: float | None  # for a caller joining now; None when nobody could answer
    voicemail: int = 0
    left_other: int = 0
    handled: int = 0


@dataclass(slots=True)
class _Daily:
    """One queue's counters for the current day."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    overflowed: int = 0
    callbacks: int = 0
    voicemail: int = 0
    left_other: int = 0
    answered_within: int = 0
    abandoned_within: int = 0
    answered_wait: float = 0.0
    handled: int = 0
    handle_time: float = 0.0


@dataclass(slots=True)
class _Queue:
    spec: SlSpecLike
    daily: _Daily = field(default_factory=_Daily)
    #: call id -> entered_at of the calls waiting now
    waiting: dict[str, float] = field(default_factory=dict)
    #: (entered_at, call_id), possibly stale: an entry is live iff ``waiting`` still maps the
    #: call id to that entered_at
    heap: list[tuple[float, str]] = field(default_factory=list)
    agents: dict[AgentStatus, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Call:
    queue: str
    entered_at: float
    day: date | None  # the day it was offered; None for a restored call (never counted)


class FiguresTracker:
    def __init__(
        self,
        queues: Mapping[str, SlSpecLike],
        *,
        timezone: str = "UTC",
        default_aht: float = 180.0,
    ) -> None:
        try:
            self._tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown time zone {timezone!r}", key="timezone") from exc
        if default_aht <= 0:
            raise ConfigError(f"must be > 0, got {default_aht}", key="default_aht")
        for name, spec in queues.items():
            if spec.variant not in SL_VARIANTS:
                raise ConfigError(
                    f"unknown service level variant {spec.variant!r}, expected one of "
                    f"{', '.join(SL_VARIANTS)}",
                    key=f"queues.{name}.service_level.variant",
                )
        self._default_aht = default_aht
        self._queues = {name: _Queue(spec) for name, spec in queues.items()}
        self._calls: dict[str, _Call] = {}  # waiting calls, by id
        #: ids whose outcome was seen today: tells a repeat from an unknown id (cleared at midnight)
        self._finished: set[str] = set()
        self._agents: dict[str, tuple[frozenset[str], AgentStatus]] = {}
        self._day: date | None = None
        self._dirty: set[str] = set()
        #: events that changed nothing (unknown call id, repeated event, stale handled)
        self.ignored = 0
        #: of those, the repeats of an event already applied
        self.duplicates = 0

    # -- time ---------------------------------------------------------------------------------

    def _local_day(self, at: float) -> date:
        return datetime.fromtimestamp(at, self._tz).date()

    def roll_over(self, now: float) -> bool:
        """Start a new day if ``now`` is on a later local day; True if it did. O(queues +
        calls finished on the day that ends), once a day."""
        day = self._local_day(now)
        if self._day is not None and day <= self._day:
            return False
        first = self._day is None
        self._day = day
        if not first:
            for q in self._queues.values():
                q.daily = _Daily()
            self._finished.clear()
            self._dirty.update(self._queues)
        return not first

    def _counted(self, call: _Call) -> bool:
        return call.day is not None and call.day == self._day

    def _queue(self, queue: str) -> _Queue:
        try:
            return self._queues[queue]
        except KeyError:
            raise ValueError(f"unknown queue {queue!r}") from None

    # -- calls --------------------------------------------------------------------------------

    def entered(self, call_id: str, queue: str, at: float) -> None:
        """A call entered ``queue``: offered += 1 (on the current day) and it waits. O(log n)."""
        q = self._queue(queue)
        self.roll_over(at)
        if call_id in self._calls or call_id in self._finished:
            self.ignored += 1
            self.duplicates += 1
            return
        day = self._local_day(at)
        self._start_waiting(call_id, queue, q, at, day)
        if day == self._day:
            q.daily.offered += 1

    def restore_waiting(self, call_id: str, queue: str, entered_at: float) -> None:
        """After a restart: the call waits again since ``entered_at``, without a second offer
        (and its outcome will not be counted either; see the module docstring). O(log n)."""
        q = self._queue(queue)
        if call_id in self._calls or call_id in self._finished:
            self.ignored += 1
            self.duplicates += 1
            return
        self._start_waiting(call_id, queue, q, entered_at, None)

    def _start_waiting(
        self, call_id: str, queue: str, q: _Queue, at: float, day: date | None
    ) -> None:
        self._calls[call_id] = _Call(queue, at, day)
        q.waiting[call_id] = at
        heapq.heappush(q.heap, (at, call_id))
        self._dirty.add(queue)

    def _finish(self, call_id: str, at: float) -> tuple[_Call, _Queue, float] | None:
        """Take a waiting call out of its queue; None (and counted as ignored) if unknown or
        already finished. Returns the call, its queue and how long it waited."""
        self.roll_over(at)
        call = self._calls.pop(call_id, None)
        if call is None:
            self.ignored += 1
            if call_id in self._finished:
                self.duplicates += 1
            return None
        self._finished.add(call_id)
        q = self._queues[call.queue]
        del q.waiting[call_id]
        # Lazy deletion: the heap entry goes stale; rebuild when stale entries dominate, so
        # the heap stays O(waiting) and each removal is amortised O(1).
        if len(q.heap) > 2 * len(q.waiting) + 16:
            q.heap = [(t, cid) for cid, t in q.waiting.items()]
            heapq.heapify(q.heap)
        self._dirty.add(call.queue)
        return call, q, max(0.0, at - call.entered_at)

    def _finish_counted(self, call_id: str, at: float) -> tuple[_Queue, float] | None:
        """``_finish``, and None too when the call's outcome is not counted (restored)."""
        found = self._finish(call_id, at)
        if found is None or not self._counted(found[0]):
            return None
        return found[1], found[2]

    def answered(self, call_id: str, at: float) -> None:
        """Connected to an agent after ``at - entered`` seconds of waiting. O(1) amortised."""
        found = self._finish_counted(call_id, at)
        if found is None:
            return
        q, wait = found
        d = q.daily
        d.answered += 1
        d.answered_wait += wait
        if kpi.within(wait, q.spec.threshold):
            d.answered_within += 1

    def abandoned(self, call_id: str, at: float) -> None:
        """The caller hung up while waiting or while an agent's phone rang. O(1) amortised."""
        found = self._finish_counted(call_id, at)
        if found is None:
            return
        q, wait = found
        d = q.daily
        d.abandoned += 1
        if kpi.within(wait, q.spec.threshold):
            d.abandoned_within += 1
        if kpi.is_short_abandon(wait, q.spec.short_abandon):
            d.short_abandoned += 1

    def left(self, call_id: str, at: float, outcome: LeaveOutcome) -> None:
        """The call left the queue another way: its own outcome, not an abandon (kpi.md).
        O(1) amortised."""
        found = self._finish_counted(call_id, at)
        if found is None:
            return
        d = found[0].daily
        if outcome == "overflow":
            d.overflowed += 1
        elif outcome == "callback":
            d.callbacks += 1
        elif outcome == "voicemail":
            d.voicemail += 1
        else:
            d.left_other += 1

    def handled(self, queue: str, talk: float, hold: float, wrap_up: float, at: float) -> None:
        """One call's handling ended (after wrap-up), for AHT. O(1)."""
        if min(talk, hold, wrap_up) < 0:
            raise ValueError(f"negative handle time: talk={talk} hold={hold} wrap_up={wrap_up}")
        q = self._queue(queue)
        self.roll_over(at)
        if self._local_day(at) != self._day:
            self.ignored += 1
            return
        q.daily.handled += 1
        q.daily.handle_time += talk + hold + wrap_up
        self._dirty.add(queue)

    # -- agents -------------------------------------------------------------------------------

    def agent(self, agent_id: str, queues: frozenset[str], status: str, at: float) -> None:
        """Set the agent's current status and queues (``logged_out`` forgets the agent).
        Queues not configured here are not counted. O(q) for the agent's q queues."""
        new_status = AgentStatus(status)  # ValueError for an unknown status: caller's mistake
        self.roll_over(at)
        old = self._agents.pop(agent_id, None)
        if old is not None:
            old_queues, old_status = old
            for name in old_queues:
                q = self._queues.get(name)
                if q is not None:
                    q.agents[old_status] -= 1
                    self._dirty.add(name)
        if new_status is AgentStatus.LOGGED_OUT:
            return
        self._agents[agent_id] = (queues, new_status)
        for name in queues:
            q = self._queues.get(name)
            if q is not None:
                q.agents[new_status] = q.agents.get(new_status, 0) + 1
                self._dirty.add(name)

    # -- figures ------------------------------------------------------------------------------

    def stats(self, queue: str, now: float) -> QueueStats:
        """The figures of ``queue`` at ``now`` (rolls the day over first if ``now`` is past
        midnight). O(1) amortised: popping stale heap tops is paid for by the removals."""
        q = self._queue(queue)
        self.roll_over(now)
        while q.heap:
            entered_at, call_id = q.heap[0]
            if q.waiting.get(call_id) == entered_at:
                break
            heapq.heappop(q.heap)
        longest = max(0.0, now - q.heap[0][0]) if q.heap else 0.0

        d, spec = q.daily, q.spec
        levels = kpi.service_levels(d.offered, d.answered, d.answered_within, d.abandoned_within)
        aht = kpi.average_handle_time(d.handle_time, d.handled)
        capable = sum(q.agents.get(s, 0) for s in CAPABLE_STATUSES)
        waiting = len(q.waiting)
        estimated = (
            (waiting + 1) * (aht if aht is not None else self._default_aht) / capable
            if capable
            else None
        )
        return QueueStats(
            queue=queue,
            at=now,
            waiting=waiting,
            longest_wait=longest,
            agents={s.value: q.agents.get(s, 0) for s in _SHOWN_STATUSES},
            offered=d.offered,
            answered=d.answered,
            abandoned=d.abandoned,
            short_abandoned=d.short_abandoned,
            overflowed=d.overflowed,
            callbacks=d.callbacks,
            answered_within=d.answered_within,
            abandoned_within=d.abandoned_within,
            service_level=levels[spec.variant],
            service_levels=levels,
            sl_variant=spec.variant,
            sl_threshold=spec.threshold,
            sl_goal=spec.goal,
            asa=kpi.average_speed_of_answer(d.answered_wait, d.answered),
            abandon_rate=kpi.abandon_rate(d.abandoned, d.offered, d.short_abandoned),
            aht=aht,
            estimated_wait=estimated,
            voicemail=d.voicemail,
            left_other=d.left_other,
            handled=d.handled,
        )

    def all_stats(self, now: float) -> list[QueueStats]:
        """Every configured queue, in configuration order. O(queues)."""
        return [self.stats(name, now) for name in self._queues]

    # -- coalesced publishing -----------------------------------------------------------------

    def dirty(self) -> set[str]:
        """Queues whose figures changed since the last ``take_dirty`` (a copy). Longest wait
        and estimated wait also change with time alone: publish periodically as well."""
        return set(self._dirty)

    def take_dirty(self) -> set[str]:
        """The dirty queues, and forget them."""
        dirty, self._dirty = self._dirty, set()
        return dirty
