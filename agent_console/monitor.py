"""What the supervisor monitor adds to the ACD's live figures, as plain state with no I/O.

* ``RecentServiceLevel``: each queue's service level over the last 30 minutes (the ACD's own
  figures are per day). The window holds the queue visits that ENTERED the queue in the last
  ``window`` seconds (docs/kpi.md: offered = calls that entered the queue in the interval). A visit
  counts once its result against the threshold is known: answered or abandoned (within the
  threshold or not), left by overflow, or still waiting past the threshold (it can no longer
  be answered within it). A visit still waiting under the threshold is not counted yet: it
  could go either way. The four variants are docs/kpi.md's, computed on those visits by
  ``cti.kpi``; the queue's configured one is shown. ``None`` when the denominator is 0
  (``cti.kpi``'s rule: nothing to say yet).
* ``Alerts``: active alerts per (queue, kind), raised and cleared by evaluating the figures;
  only CHANGES are reported, so the monitor is told once, not every second.
* ``AbandonedList``: today's abandoned callers not yet called back (newest first, bounded).
* ``AgentDay``: one agent's own figures for today (answered, talk, handle, not ready).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from cti import kpi

__all__ = [
    "AbandonedCall",
    "AbandonedList",
    "AgentDay",
    "Alert",
    "Alerts",
    "RecentServiceLevel",
]

WINDOW: Final = 30 * 60.0


@dataclass(slots=True)
class _Visit:
    key: str
    entered_at: float
    outcome: Literal["waiting", "answered", "abandoned", "left"] = "waiting"
    wait: float = 0.0


@dataclass
class _QueueWindow:
    visits: deque[_Visit] = field(default_factory=deque)
    by_key: dict[str, _Visit] = field(default_factory=dict)


class RecentServiceLevel:
    """Service level of the last ``window`` seconds per queue; see the module docstring."""

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._queues: dict[str, _QueueWindow] = {}

    def entered(self, queue: str, key: str, at: float) -> None:
        q = self._queues.setdefault(queue, _QueueWindow())
        if key in q.by_key:
            return  # a restart's rebuilt place: the same visit
        visit = _Visit(key, at)
        q.visits.append(visit)
        q.by_key[key] = visit

    def finished(
        self, queue: str, key: str, outcome: Literal["answered", "abandoned", "left"], wait: float
    ) -> None:
        q = self._queues.get(queue)
        visit = q.by_key.get(key) if q is not None else None
        if visit is not None and visit.outcome == "waiting":
            visit.outcome = outcome
            visit.wait = wait

    def _expire(self, q: _QueueWindow, now: float) -> None:
        while q.visits and q.visits[0].entered_at < now - self.window:
            old = q.visits.popleft()
            q.by_key.pop(old.key, None)

    def levels(
        self, queue: str, threshold: float, now: float
    ) -> tuple[dict[str, float | None], int]:
        """Every variant's value, and how many visits counted."""
        q = self._queues.get(queue)
        if q is None:
            return kpi.service_levels(0, 0, 0, 0), 0
        self._expire(q, now)
        offered = answered = answered_within = abandoned_within = 0
        for v in q.visits:
            if v.outcome == "waiting":
                if kpi.within(now - v.entered_at, threshold):
                    continue  # undecided
                offered += 1
                continue
            offered += 1
            if v.outcome == "answered":
                answered += 1
                answered_within += kpi.within(v.wait, threshold)
            elif v.outcome == "abandoned":
                abandoned_within += kpi.within(v.wait, threshold)
        return kpi.service_levels(offered, answered, answered_within, abandoned_within), offered


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    queue: str
    kind: Literal["service_level", "long_wait"]
    message: str
    since: float
    active: bool

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "kind": self.kind,
            "message": self.message,
            "since": self.since,
            "active": self.active,
        }


class Alerts:
    """Active alerts; ``evaluate`` returns only the alerts that were raised or cleared."""

    def __init__(self) -> None:
        self.active: dict[str, Alert] = {}

    def evaluate(
        self,
        queue: str,
        now: float,
        conditions: Mapping[Literal["service_level", "long_wait"], str | None],
    ) -> list[Alert]:
        """``conditions`` maps each kind to the message while it holds, or None when not."""
        changed: list[Alert] = []
        for kind, message in conditions.items():
            alert_id = f"{queue}:{kind}"
            current = self.active.get(alert_id)
            if message is not None and current is None:
                alert = Alert(alert_id, queue, kind, message, now, True)
                self.active[alert_id] = alert
                changed.append(alert)
            elif message is not None and current is not None and current.message != message:
                # Same alert, new figure: keep its start, refresh the text only now and then
                # (the caller rounds the figures, so this is not every second).
                alert = Alert(alert_id, queue, kind, message, current.since, True)
                self.active[alert_id] = alert
                changed.append(alert)
            elif message is None and current is not None:
                del self.active[alert_id]
                changed.append(Alert(alert_id, queue, kind, current.message, current.since, False))
        return changed


@dataclass(frozen=True, slots=True)
class AbandonedCall:
    key: str  # the interaction key (the caller channel's Uniqueid)
    number: str
    queue: str
    at: float
    wait: float
    customer_name: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "number": self.number,
            "queue": self.queue,
            "at": self.at,
            "wait": self.wait,
            "customer_name": self.customer_name,
        }


class AbandonedList:
    """Today's abandoned callers not yet called back; one entry per number (the latest)."""

    def __init__(self, limit: int = 500) -> None:
        self.limit = limit
        self._calls: OrderedDict[str, AbandonedCall] = OrderedDict()  # key -> call, oldest first

    def add(self, call: AbandonedCall) -> None:
        if not call.number:
            return  # nobody to call back: not a worklist item
        for key, other in list(self._calls.items()):
            if other.number == call.number:
                del self._calls[key]
        self._calls[call.key] = call
        while len(self._calls) > self.limit:
            self._calls.popitem(last=False)

    def get(self, key: str) -> AbandonedCall | None:
        return self._calls.get(key)

    def remove(self, key: str) -> bool:
        return self._calls.pop(key, None) is not None

    def reached(self, number: str) -> bool:
        """The customer got through (answered later, or called back): drop their entry."""
        keys = [k for k, c in self._calls.items() if c.number == number]
        for key in keys:
            del self._calls[key]
        return bool(keys)

    def since(self, start: float) -> bool:
        """Forget entries before ``start`` (a new day); True when something went."""
        old = [k for k, c in self._calls.items() if c.at < start]
        for key in old:
            del self._calls[key]
        return bool(old)

    def view(self) -> list[dict[str, Any]]:
        return [c.view() for c in reversed(self._calls.values())]

    def __len__(self) -> int:
        return len(self._calls)


@dataclass
class AgentDay:
    """One agent's figures today; fed by ``answered``/``ended``/``state``/``wrapped``."""

    day: str = ""
    answered: int = 0
    handled: int = 0
    talk_seconds: float = 0.0
    hold_seconds: float = 0.0
    wrap_seconds: float = 0.0
    not_ready_seconds: float = 0.0
    not_ready_since: float | None = None
    wrap_since: float | None = None
    undisposed: set[str] = field(default_factory=set)  # ended calls without a wrap-up code

    def roll(self, day: str, at: float) -> None:
        """A new day starts at ``at``: counters to zero; a running state counts from ``at``."""
        if day == self.day:
            return
        self.day = day
        self.answered = self.handled = 0
        self.talk_seconds = self.hold_seconds = self.wrap_seconds = self.not_ready_seconds = 0.0
        self.undisposed = set()
        if self.not_ready_since is not None:
            self.not_ready_since = at
        if self.wrap_since is not None:
            self.wrap_since = at

    def state(self, old: str, new: str, at: float) -> None:
        if old == "not_ready" and self.not_ready_since is not None:
            self.not_ready_seconds += max(0.0, at - self.not_ready_since)
            self.not_ready_since = None
        if old == "wrap_up" and self.wrap_since is not None:
            self.wrap_seconds += max(0.0, at - self.wrap_since)
            self.wrap_since = None
        if new == "not_ready":
            self.not_ready_since = at
        if new == "wrap_up":
            self.wrap_since = at

    def ended(self, call_id: str, talk: float, hold: float) -> None:
        self.handled += 1
        self.talk_seconds += talk
        self.hold_seconds += hold
        self.undisposed.add(call_id)

    def disposed(self, call_id: str) -> None:
        self.undisposed.discard(call_id)

    def view(self, now: float) -> dict[str, Any]:
        not_ready = self.not_ready_seconds
        if self.not_ready_since is not None:
            not_ready += max(0.0, now - self.not_ready_since)
        handle = self.talk_seconds + self.hold_seconds + self.wrap_seconds
        aht = kpi.average_handle_time(handle, self.handled)
        return {
            "answered": self.answered,
            "handled": self.handled,
            "talk_seconds": round(self.talk_seconds, 1),
            "avg_handle_seconds": round(aht, 1) if aht is not None else None,
            "not_ready_seconds": round(not_ready, 1),
            "dispositions_missing": len(self.undisposed),
        }
