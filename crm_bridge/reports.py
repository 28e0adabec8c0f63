"""Reports from the interaction log: queues per interval, agents per interval, abandoned calls.

Every figure follows docs/kpi.md, is computed by ``cti.kpi`` (the formulas' one home) and is
counted from the store alone (timeline
events and interaction rows), on SQLite and PostgreSQL alike. The rules this module decides:

- **Queue visits, not interaction rows.** An interaction row keeps only its final queue, so a
  call that overflowed from A to B would be lost to A. Queue figures are built from the
  timeline: each ``queued`` event opens a *visit* of ``data.queue``; the next ``answered``,
  ``abandoned`` or ``overflowed`` event of the same call naming the same queue closes it. A
  call overflowing A -> B is offered (and overflowed) in A, and offered again in B when it
  enters B. A visit with no outcome yet (still waiting, or lost) is offered and counted in
  ``unresolved``.
- **Interval.** A visit belongs to the interval in which it was *queued* (docs/kpi.md: offered =
  calls that entered the queue in the interval); its answer, wait, talk, hold and wrap-up are
  counted there too, even if they happen later. Intervals are 15/30/60 minutes or a day,
  aligned on the wall clock of ``tz`` (default UTC). ``--to`` given as a bare date includes
  that day; a date-time ``to`` is exclusive.
- **Waits.** Answered and abandoned waits are the ACD's ``data.wait``; an overflow's wait is
  the time from queueing to the overflow. ``longest_wait`` is the longest of these. "Within t"
  means ``wait <= t``.
- **Short abandons** (``wait < short_abandon`` seconds; 0 = none) are taken OUT of offered and
  abandoned and shown only as ``short_abandoned``.
- **Service level**: all four variants of docs/kpi.md are given; ``service_level`` is the
  one configured (default ``abandons_ignored``, threshold 20 s). A ratio with a zero
  denominator is ``None`` (``cti.kpi``'s rule; empty in CSV).
- **Handle time of a call** = talk + hold (the ACD's ``ended`` event) + wrap-up, where the
  wrap-up is the agent's first ``on_call/on_hold -> wrap_up`` period after the answer, until
  the agent leaves ``wrap_up``; handled = answered. A wrap-up not ended yet is not counted.
  Wrap-ups are looked for within two days after the last answer of the report.
- **Agents** are measured by their states, clipped to each interval: talk = ``on_call``,
  hold = ``on_hold``, wrap-up = ``wrap_up``, not ready by reason; available idle = ``ready``,
  ``reserved`` and ``ringing`` (the agent was available, no call connected yet). Occupancy =
  (talk + hold + wrap) / (that + available idle); not-ready excluded. ``calls`` = calls the
  agent answered in the interval. A state still open ends at ``min(to, now)``.
- **Abandoned worklist**: every abandon in the range (short ones marked), with the caller's
  number, the customer (from the interaction, else from the number), and *called back*: a later
  interaction (started after the abandon) with the same normalised number whose direction is
  ``callback`` or ``outbound``, or which was answered. The first such one is shown.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.schema import Customer, CustomerPhone, Interaction, InteractionEvent
from cti import kpi
from cti.errors import ConfigError
from cti.kpi import service_levels
from cti.phones import normalise_phone

__all__ = [
    "SL_VARIANTS",
    "AbandonedRow",
    "AgentRow",
    "QueueRow",
    "ReportParams",
    "abandoned_report",
    "add_commands",
    "agent_report",
    "parse_params",
    "queue_report",
    "rows_to_csv",
    "rows_to_dicts",
    "run_command",
    "service_levels",
]

SL_VARIANTS: tuple[str, ...] = kpi.SL_VARIANTS
Interval = int | Literal["day"]
_IDLE = frozenset({"ready", "reserved", "ringing"})
_WRAP_LOOKAHEAD = 2 * 86400.0
_CHUNK = 500


@dataclass(frozen=True)
class ReportParams:
    start: float
    end: float
    interval: Interval = "day"
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    queue: str | None = None
    agent: str | None = None
    sl_threshold: float = 20.0
    sl_variant: str = kpi.DEFAULT_SL_VARIANT
    short_abandon: float = 0.0


def _bad(key: str, message: str) -> ConfigError:
    return ConfigError(message, source="report", key=key)


def _parse_time(value: str, tz: ZoneInfo, key: str, *, end: bool) -> float:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    if day is not None:
        if end:
            day += timedelta(days=1)
        return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _bad(key, f"expected a date or ISO date-time, got {value!r}") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).timestamp()


def _number(value: str | None, key: str, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError as exc:
        raise _bad(key, f"expected a number of seconds, got {value!r}") from exc
    if not number >= 0 or number == float("inf"):
        raise _bad(key, f"expected a number of seconds >= 0, got {value!r}")
    return number


def parse_params(
    start: str | None,
    end: str | None,
    *,
    interval: str | None = None,
    tz: str | None = None,
    queue: str | None = None,
    agent: str | None = None,
    sl_threshold: str | None = None,
    sl_variant: str | None = None,
    short_abandon: str | None = None,
) -> ReportParams:
    """Validated parameters from text (CLI or query string); ``ConfigError`` names the key."""
    try:
        zone = ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _bad("tz", f"unknown time zone {tz!r}") from exc
    if not start:
        raise _bad("from", "a start date is required")
    begin = _parse_time(start, zone, "from", end=False)
    finish = _parse_time(end, zone, "to", end=True) if end else begin + 86400.0
    if finish <= begin:
        raise _bad("to", "must be after from")
    chosen: Interval
    if interval in (None, "", "day"):
        chosen = "day"
    elif interval in ("15", "30", "60"):
        chosen = int(interval)
    else:
        raise _bad("interval", f"expected 15, 30, 60 or day, got {interval!r}")
    variant = sl_variant or kpi.DEFAULT_SL_VARIANT
    if variant not in SL_VARIANTS:
        raise _bad("sl_variant", f"expected one of {', '.join(SL_VARIANTS)}, got {variant!r}")
    return ReportParams(
        begin,
        finish,
        chosen,
        zone,
        queue or None,
        agent or None,
        _number(sl_threshold, "sl_threshold", 20.0),
        variant,
        _number(short_abandon, "short_abandon", 0.0),
    )


def _boundaries(params: ReportParams) -> list[float]:
    """Interval starts from the one holding ``start`` up to ``end`` (wall clock of tz)."""
    local = datetime.fromtimestamp(params.start, params.tz)
    if params.interval == "day":
        first = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        minute = local.minute - local.minute % params.interval
        first = local.replace(minute=minute, second=0, microsecond=0)
    out = [first.timestamp()]
    day = first.date()
    while out[-1] < params.end:
        if params.interval == "day":
            day += timedelta(days=1)
            out.append(datetime(day.year, day.month, day.day, tzinfo=params.tz).timestamp())
        else:
            out.append(out[-1] + params.interval * 60.0)
    return out


def _label(ts: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, tz).isoformat()


# --- queue report -------------------------------------------------------------------------


@dataclass
class _Visit:
    call: str
    queue: str
    queued_at: float
    outcome: str | None = None
    wait: float | None = None
    agent: str | None = None
    answered_at: float | None = None
    talk: float = 0.0
    hold: float = 0.0
    wrap: float = 0.0


@dataclass
class QueueRow:
    interval_start: str
    interval_end: str
    queue: str
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    overflowed: int = 0
    unresolved: int = 0
    answered_within: int = 0
    abandoned_within: int = 0
    sl_variant: str = ""
    service_level: float | None = None
    sl_abandons_ignored: float | None = None
    sl_abandons_negative: float | None = None
    sl_abandons_positive: float | None = None
    sl_answered_only: float | None = None
    abandon_rate: float | None = None
    asa: float | None = None
    aht: float | None = None
    longest_wait: float = 0.0
    answer_wait: float = 0.0
    talk: float = 0.0
    hold: float = 0.0
    wrap: float = 0.0


_RANK = {"queued": 0, "answered": 1, "abandoned": 1, "overflowed": 1, "ended": 2}


def _visits(events: Iterable[tuple[str, str, float, Mapping[str, Any]]]) -> list[_Visit]:
    """Queue visits of calls from their timeline events (see the module docstring)."""
    by_call: dict[str, list[tuple[str, float, Mapping[str, Any]]]] = defaultdict(list)
    for key, kind, at, data in events:
        by_call[key].append((kind, at, data))
    visits: list[_Visit] = []
    for call, items in by_call.items():
        items.sort(key=lambda item: (item[1], _RANK[item[0]]))
        open_: dict[str, _Visit] = {}
        answered: dict[str, _Visit] = {}
        for kind, at, data in items:
            queue = str(data.get("queue"))
            if kind == "queued":
                visit = _Visit(call, queue, at)
                open_[queue] = visit
                visits.append(visit)
            elif kind == "ended":
                done = answered.get(queue)
                if done is not None:
                    done.talk = float(data.get("talk") or 0.0)
                    done.hold = float(data.get("hold") or 0.0)
            elif (visit_ := open_.pop(queue, None)) is not None:
                visit_.outcome = kind
                if kind == "overflowed":
                    visit_.wait = at - visit_.queued_at
                else:
                    visit_.wait = float(data.get("wait") or 0.0)
                if kind == "answered":
                    visit_.agent = str(data.get("agent_id"))
                    visit_.answered_at = at
                    answered[queue] = visit_
    return visits


def _wraps(
    events: Iterable[tuple[str, float, Mapping[str, Any]]],
) -> dict[str, list[tuple[float, float]]]:
    """Per agent, the (start, end) of each wrap-up that followed a call, in time order."""
    by_agent: dict[str, list[tuple[float, Mapping[str, Any]]]] = defaultdict(list)
    for agent, at, data in events:
        by_agent[agent].append((at, data))
    out: dict[str, list[tuple[float, float]]] = {}
    for agent, items in by_agent.items():
        items.sort(key=lambda item: item[0])
        periods: list[tuple[float, float]] = []
        for (at, data), (next_at, _) in pairwise(items):
            if data.get("new") == "wrap_up" and data.get("old") in ("on_call", "on_hold"):
                periods.append((at, next_at))
        out[agent] = periods
    return out


def _attach_wraps(visits: Sequence[_Visit], wraps: Mapping[str, list[tuple[float, float]]]) -> None:
    for visit in visits:
        if visit.answered_at is None or visit.agent is None:
            continue
        periods = wraps.get(visit.agent, [])
        i = bisect_right(periods, (visit.answered_at, float("-inf")))
        if i < len(periods):
            start, end = periods[i]
            visit.wrap = end - start


def compute_queue_rows(visits: Sequence[_Visit], params: ReportParams) -> list[QueueRow]:
    """The queue report from visits (pure; see the module docstring for the rules)."""
    bounds = _boundaries(params)
    rows: dict[tuple[int, str], QueueRow] = {}
    t = params.sl_threshold
    for v in visits:
        if params.queue and v.queue != params.queue:
            continue
        if not params.start <= v.queued_at < params.end:
            continue
        i = bisect_right(bounds, v.queued_at) - 1
        row = rows.get((i, v.queue))
        if row is None:
            row = rows[(i, v.queue)] = QueueRow(
                _label(bounds[i], params.tz), _label(bounds[i + 1], params.tz), v.queue
            )
        wait = v.wait or 0.0
        if v.outcome == "abandoned" and kpi.is_short_abandon(wait, params.short_abandon):
            row.short_abandoned += 1
            continue
        row.offered += 1
        if v.outcome is None:
            row.unresolved += 1
            continue
        row.longest_wait = max(row.longest_wait, wait)
        if v.outcome == "answered":
            row.answered += 1
            row.answered_within += kpi.within(wait, t)
            row.answer_wait += wait
            row.talk += v.talk
            row.hold += v.hold
            row.wrap += v.wrap
        elif v.outcome == "abandoned":
            row.abandoned += 1
            row.abandoned_within += kpi.within(wait, t)
        else:
            row.overflowed += 1
    for row in rows.values():
        levels = service_levels(
            row.offered, row.answered, row.answered_within, row.abandoned_within
        )
        row.sl_variant = params.sl_variant
        row.service_level = levels[params.sl_variant]
        row.sl_abandons_ignored = levels["abandons_ignored"]
        row.sl_abandons_negative = levels["abandons_negative"]
        row.sl_abandons_positive = levels["abandons_positive"]
        row.sl_answered_only = levels["answered_only"]
        # Short abandons are already out of offered and abandoned (module docstring).
        row.abandon_rate = kpi.abandon_rate(row.abandoned, row.offered)
        row.asa = kpi.average_speed_of_answer(row.answer_wait, row.answered)
        row.aht = kpi.average_handle_time(row.talk + row.hold + row.wrap, row.answered)
    return [rows[k] for k in sorted(rows)]


async def _call_events(
    engine: AsyncEngine, params: ReportParams
) -> list[tuple[str, str, float, Mapping[str, Any]]]:
    e = InteractionEvent
    queued_keys = (
        select(e.interaction_key)
        .where(e.kind == "queued", e.at >= params.start, e.at < params.end)
        .scalar_subquery()
    )
    statement = select(e.interaction_key, e.kind, e.at, e.data).where(
        e.kind.in_(tuple(_RANK)), e.interaction_key.in_(queued_keys)
    )
    async with engine.connect() as conn:
        result = await conn.execute(statement)
        return [(r[0], r[1], float(r[2]), r[3] or {}) for r in result]


async def _agent_events(
    engine: AsyncEngine, start: float, end: float, agents: set[str] | None = None
) -> list[tuple[str, float, Mapping[str, Any]]]:
    e = InteractionEvent
    statement = (
        select(e.at, e.data)
        .where(e.kind == "agent_state", e.at >= start, e.at < end)
        # Ties (a zero-second wrap-up) keep the order the events were stored in: the sorts
        # below are stable.
        .order_by(e.at, e.id)
    )
    async with engine.connect() as conn:
        result = await conn.execute(statement)
        rows = [(str((r[1] or {}).get("agent_id")), float(r[0]), r[1] or {}) for r in result]
    return [r for r in rows if agents is None or r[0] in agents]


async def queue_report(engine: AsyncEngine, params: ReportParams) -> list[QueueRow]:
    """Per queue and interval: offered, answered, abandoned, service levels, ASA, AHT..."""
    visits = _visits(await _call_events(engine, params))
    answers = [v.answered_at for v in visits if v.answered_at is not None]
    if answers:
        agents = {v.agent for v in visits if v.agent}
        wraps = _wraps(
            await _agent_events(engine, min(answers), max(answers) + _WRAP_LOOKAHEAD, agents)
        )
        _attach_wraps(visits, wraps)
    return compute_queue_rows(visits, params)


# --- agent report -------------------------------------------------------------------------


@dataclass
class AgentRow:
    interval_start: str
    interval_end: str
    agent_id: str
    calls: int = 0
    talk: float = 0.0
    hold: float = 0.0
    wrap: float = 0.0
    available: float = 0.0
    not_ready_total: float = 0.0
    logged_in: float = 0.0
    occupancy: float | None = None
    not_ready: dict[str, float] = field(default_factory=dict)

    @property
    def handle(self) -> float:
        return self.talk + self.hold + self.wrap


def compute_agent_rows(
    states: Sequence[tuple[str, float, Mapping[str, Any]]],
    answers: Sequence[tuple[str, float]],
    params: ReportParams,
    now: float,
) -> list[AgentRow]:
    """Agents' time by state, clipped to intervals, and their answered calls (pure)."""
    bounds = _boundaries(params)
    stop = min(params.end, now)
    rows: dict[tuple[int, str], AgentRow] = {}

    def row_for(i: int, agent: str) -> AgentRow:
        row = rows.get((i, agent))
        if row is None:
            row = rows[(i, agent)] = AgentRow(
                _label(bounds[i], params.tz), _label(bounds[i + 1], params.tz), agent
            )
        return row

    by_agent: dict[str, list[tuple[float, Mapping[str, Any]]]] = defaultdict(list)
    for agent, at, data in states:
        if params.agent is None or agent == params.agent:
            by_agent[agent].append((at, data))
    for agent, items in by_agent.items():
        items.sort(key=lambda item: item[0])
        ends = [at for at, _ in items[1:]] + [stop]
        for (at, data), end in zip(items, ends, strict=True):
            state = str(data.get("new"))
            lo, hi = max(at, params.start), min(end, stop)
            if hi <= lo or state == "logged_out":
                continue
            i = bisect_right(bounds, lo) - 1
            while i + 1 < len(bounds) and bounds[i] < hi:
                part = min(hi, bounds[i + 1]) - max(lo, bounds[i])
                if part > 0:
                    row = row_for(i, agent)
                    row.logged_in += part
                    if state == "on_call":
                        row.talk += part
                    elif state == "on_hold":
                        row.hold += part
                    elif state == "wrap_up":
                        row.wrap += part
                    elif state in _IDLE:
                        row.available += part
                    else:
                        reason = str(data.get("reason") or "")
                        row.not_ready[reason] = row.not_ready.get(reason, 0.0) + part
                        row.not_ready_total += part
                i += 1
    for agent, at in answers:
        if (params.agent is None or agent == params.agent) and params.start <= at < params.end:
            row_for(bisect_right(bounds, at) - 1, agent).calls += 1
    for row in rows.values():
        row.occupancy = kpi.occupancy(row.handle, row.available)
    return [rows[k] for k in sorted(rows)]


def total_agents(rows: Sequence[AgentRow]) -> AgentRow:
    """All agents and intervals together (agent_id ``*``)."""
    total = AgentRow(
        rows[0].interval_start if rows else "", rows[-1].interval_end if rows else "", "*"
    )
    for row in rows:
        total.calls += row.calls
        total.talk += row.talk
        total.hold += row.hold
        total.wrap += row.wrap
        total.available += row.available
        total.not_ready_total += row.not_ready_total
        total.logged_in += row.logged_in
        for reason, seconds in row.not_ready.items():
            total.not_ready[reason] = total.not_ready.get(reason, 0.0) + seconds
    total.occupancy = kpi.occupancy(total.handle, total.available)
    return total


async def agent_report(
    engine: AsyncEngine, params: ReportParams, *, now: float | None = None
) -> list[AgentRow]:
    """Per agent and interval: calls, talk, hold, wrap-up, not ready by reason, occupancy."""
    e = InteractionEvent
    last = (
        select(e.interaction_key.label("k"), func.max(e.at).label("m"))
        .where(e.kind == "agent_state", e.at < params.start)
        .group_by(e.interaction_key)
        .subquery()
    )
    before = select(e.at, e.data).join(last, and_(e.interaction_key == last.c.k, e.at == last.c.m))
    answered = select(e.at, e.data).where(
        e.kind == "answered", e.at >= params.start, e.at < params.end
    )
    async with engine.connect() as conn:
        states = [
            (str((r[1] or {}).get("agent_id")), float(r[0]), r[1] or {})
            for r in await conn.execute(before.where(e.kind == "agent_state"))
        ]
        answers = [
            (str((r[1] or {}).get("agent_id")), float(r[0])) for r in await conn.execute(answered)
        ]
    states += await _agent_events(engine, params.start, params.end)
    return compute_agent_rows(states, answers, params, time.time() if now is None else now)


# --- abandoned worklist -------------------------------------------------------------------


@dataclass
class AbandonedRow:
    call: str
    queue: str
    ani: str | None
    number: str | None  # normalised; None if not a dialable number
    customer_ref: str | None
    customer_name: str | None
    abandoned_at: str
    waited: float
    short: bool
    called_back: bool = False
    called_back_at: str | None = None
    called_back_key: str | None = None
    called_back_how: str | None = None


async def abandoned_report(engine: AsyncEngine, params: ReportParams) -> list[AbandonedRow]:
    """Every abandon in the range, oldest first, with who it was and whether they were reached."""
    e, i = InteractionEvent, Interaction
    async with engine.connect() as conn:
        found = [
            (str(r[0]), float(r[1]), r[2] or {})
            for r in await conn.execute(
                select(e.interaction_key, e.at, e.data).where(
                    e.kind == "abandoned", e.at >= params.start, e.at < params.end
                )
            )
        ]
        found = [f for f in found if params.queue is None or f[2].get("queue") == params.queue]
        if not found:
            return []
        keys = sorted({f[0] for f in found})
        calls: dict[str, Any] = {}
        for n in range(0, len(keys), _CHUNK):
            statement = (
                select(i.key, i.ani, i.customer_ref, Customer.ref, Customer.name)
                .outerjoin(
                    Customer,
                    or_(Customer.id == i.customer_id, Customer.ref == i.customer_ref),
                )
                .where(i.key.in_(keys[n : n + _CHUNK]))
            )
            calls.update({r[0]: r for r in await conn.execute(statement)})
        later = (
            await conn.execute(
                select(i.key, i.ani, i.direction, i.outcome, i.started_at).where(
                    i.started_at >= min(f[1] for f in found), i.ani.is_not(None)
                )
            )
        ).all()
        numbers = {normalise_phone(str(c[1] or "")) for c in calls.values()} - {""}
        people: dict[str, tuple[str, str]] = {}
        listed = sorted(numbers)
        for n in range(0, len(listed), _CHUNK):
            by_phone = (
                select(CustomerPhone.number, Customer.ref, Customer.name)
                .join(Customer, Customer.id == CustomerPhone.customer_id)
                .where(CustomerPhone.number.in_(listed[n : n + _CHUNK]))
                .order_by(Customer.id)
            )
            for number, known_ref, known_name in await conn.execute(by_phone):
                people.setdefault(number, (known_ref, known_name))
    contacts: dict[str, list[tuple[float, str, str]]] = defaultdict(list)
    for key, ani, direction, outcome, started in later:
        number = normalise_phone(str(ani))
        how = direction if direction in ("callback", "outbound") else None
        how = how or ("answered" if outcome == "answered" else None)
        if number and how:
            contacts[number].append((float(started), str(key), how))
    for items in contacts.values():
        items.sort()
    rows: list[AbandonedRow] = []
    for key, at, data in sorted(found, key=lambda f: (f[1], f[0])):
        call = calls.get(key)
        ani = str(call[1]) if call is not None and call[1] else None
        number = normalise_phone(ani or "")
        ref: str | None = (call[2] or call[3]) if call is not None else None
        name: str | None = call[4] if call is not None else None
        if number and not ref and number in people:
            ref, name = people[number]
        waited = float(data.get("wait") or 0.0)
        row = AbandonedRow(
            key,
            str(data.get("queue")),
            ani,
            number or None,
            ref,
            name,
            _label(at, params.tz),
            waited,
            kpi.is_short_abandon(waited, params.short_abandon),
        )
        for started, other, how in contacts.get(number, []):
            if started > at and other != key:
                row.called_back, row.called_back_key, row.called_back_how = True, other, how
                row.called_back_at = _label(started, params.tz)
                break
        rows.append(row)
    return rows


# --- output -------------------------------------------------------------------------------

Row = QueueRow | AgentRow | AbandonedRow


def rows_to_dicts(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Rows as flat dicts; an agent's not-ready seconds become ``not_ready:<reason>`` keys."""
    reasons = sorted({r for row in rows if isinstance(row, AgentRow) for r in row.not_ready})
    out = []
    for row in rows:
        item = {f.name: getattr(row, f.name) for f in fields(row) if f.name != "not_ready"}
        if isinstance(row, AgentRow):
            item.update({f"not_ready:{r}": row.not_ready.get(r, 0.0) for r in reasons})
        out.append(item)
    return out


def rows_to_csv(rows: Sequence[Row]) -> str:
    """CSV with a header; ``None`` is an empty cell, floats are written exactly (repr)."""
    items = rows_to_dicts(rows)
    buffer = io.StringIO()
    if items:
        writer = csv.DictWriter(buffer, fieldnames=list(items[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in item.items()} for item in items)
    return buffer.getvalue()


async def build(
    engine: AsyncEngine, kind: str, params: ReportParams, *, now: float | None = None
) -> Sequence[Row]:
    """The report named ``kind`` (queues, agents or abandoned)."""
    if kind == "queues":
        return await queue_report(engine, params)
    if kind == "agents":
        return await agent_report(engine, params, now=now)
    if kind == "abandoned":
        return await abandoned_report(engine, params)
    raise _bad("report", f"unknown report {kind!r}")


# --- CLI ----------------------------------------------------------------------------------


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``ctiserver report queues|agents|abandoned --from DATE [--to DATE] ...``"""
    parser = subparsers.add_parser("report", help="queue, agent and abandoned-call reports")
    parser.add_argument("report", choices=("queues", "agents", "abandoned"))
    parser.add_argument("--from", dest="from_", required=True, help="date or ISO date-time")
    parser.add_argument("--to", default=None, help="date (included) or date-time (excluded)")
    parser.add_argument("--interval", default="day", help="15, 30, 60 or day")
    parser.add_argument("--tz", default="UTC", help="time zone of dates and intervals")
    parser.add_argument("--queue", default=None)
    parser.add_argument("--agent", default=None)
    parser.add_argument("--sl-threshold", default=None, help="seconds (20)")
    parser.add_argument("--sl-variant", default=None, choices=SL_VARIANTS)
    parser.add_argument("--short-abandon", default=None, help="seconds (0: none)")
    parser.add_argument("--csv", action="store_true", help="CSV instead of a table")


async def run_command(args: argparse.Namespace, engine: AsyncEngine) -> int:
    try:
        params = parse_params(
            args.from_,
            args.to,
            interval=str(args.interval),
            tz=args.tz,
            queue=args.queue,
            agent=args.agent,
            sl_threshold=args.sl_threshold,
            sl_variant=args.sl_variant,
            short_abandon=args.short_abandon,
        )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = await build(engine, args.report, params)
    if args.csv:
        sys.stdout.write(rows_to_csv(rows))
        return 0
    items = rows_to_dicts(rows)
    if not items:
        print("(no data)")
        return 0
    cells = [[_cell(v) for v in item.values()] for item in items]
    header = list(items[0])
    widths = [max(len(h), *(len(c[n]) for c in cells)) for n, h in enumerate(header)]
    for line in [header, *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return 0


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)
