"""Today's figures rebuilt from what the store kept, after a restart.

The live figures (``acd.figures.FiguresTracker``) live in memory: a restarted server would
show today's offered and answered calls from zero while the interaction log holds every call
handled before the crash. ``seed_figures`` replays the store's calls of the day into a fresh
tracker, through the same methods the live events use, so the counting rules stay in one
place.

Which calls: those that entered a queue today (the tracker's local day) and already have an
outcome (answered, abandoned, or left another way). A call still waiting or ringing when the
server died has no outcome yet: the reconciliation finds it on its channel and it waits again
as a restored call (``FiguresTracker.restore_waiting``), whose offer and outcome the tracker
does not count (see ``acd.figures``); seeding its offer would count it without its outcome.

The composition root reads the store (``crm_bridge``'s interactions, a layer above the ACD)
and maps each row to a ``PastVisit`` (``from_interaction`` shows how, from plain values).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from acd.figures import FiguresTracker, LeaveOutcome

__all__ = ["PastOutcome", "PastVisit", "from_interaction", "seed_figures"]

PastOutcome = Literal["answered", "abandoned", "overflow", "callback", "voicemail", "other"]


@dataclass(frozen=True)
class PastVisit:
    """One call's visit of a queue, as the store kept it."""

    key: str  # the interaction's key (the caller's channel id, or a callback's id)
    queue: str
    entered_at: float
    outcome: PastOutcome
    outcome_at: float  # answered, abandoned, or left the queue
    #: the handling, once the wrap-up ended (None: not handled, or not yet)
    talk: float | None = None
    hold: float = 0.0
    wrap: float | None = None
    wrap_ended_at: float | None = None


# The interaction log's outcomes (crm_bridge.timeline) as the figures count them.
_OUTCOMES: dict[str, PastOutcome] = {
    "answered": "answered",
    "abandoned": "abandoned",
    "overflowed": "overflow",
    "voicemail": "overflow",  # the ACD's overflow to voicemail (the IVR's own is not queued)
    "callback": "callback",
}


def from_interaction(
    key: str,
    queue: str | None,
    queued_at: float | None,
    outcome: str | None,
    *,
    answered_at: float | None = None,
    ended_at: float | None = None,
    talk: float | None = None,
    hold: float | None = None,
    wrap: float | None = None,
    wrap_ended_at: float | None = None,
) -> PastVisit | None:
    """The visit an interaction row describes, or None when it does not count (never
    queued, no outcome yet, an outcome the figures do not know)."""
    mapped = _OUTCOMES.get(outcome or "")
    if not queue or queued_at is None or mapped is None:
        return None
    if mapped == "answered":
        if answered_at is None:
            return None
        at = answered_at
    else:
        at = ended_at if ended_at is not None else queued_at
    return PastVisit(key, queue, queued_at, mapped, at, talk, hold or 0.0, wrap, wrap_ended_at)


def seed_figures(
    figures: FiguresTracker,
    visits: Iterable[PastVisit],
    now: float,
    timezone: str,
    queues: Iterable[str],
) -> int:
    """Replay today's finished visits into ``figures`` (before any live event); returns how
    many were counted. Visits of another day, or of a queue no longer configured, are
    skipped."""
    zone = ZoneInfo(timezone)
    today = dt.datetime.fromtimestamp(now, zone).date()
    known = set(queues)
    counted = 0
    for visit in sorted(visits, key=lambda v: (v.entered_at, v.key)):
        if visit.queue not in known:
            continue
        if dt.datetime.fromtimestamp(visit.entered_at, zone).date() != today:
            continue
        # Its own id space: a seeded visit can never meet a live one.
        visit_id = f"past:{visit.key}"
        figures.entered(visit_id, visit.queue, visit.entered_at)
        if visit.outcome == "answered":
            figures.answered(visit_id, visit.outcome_at)
        elif visit.outcome == "abandoned":
            figures.abandoned(visit_id, visit.outcome_at)
        else:
            leave: LeaveOutcome = visit.outcome
            figures.left(visit_id, visit.outcome_at, leave)
        if visit.talk is not None and visit.wrap is not None and visit.wrap_ended_at is not None:
            figures.handled(visit.queue, visit.talk, visit.hold, visit.wrap, visit.wrap_ended_at)
        counted += 1
    return counted
