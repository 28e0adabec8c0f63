"""The YAML shape of a business-hours calendar, checked by hand so that each problem points
at its own day or interval (a pydantic model would point at the calendar).

    timezone: Europe/Berlin                      # an IANA zone
    weekly: {mon-fri: "08:00-18:00", sat: ["09:00-12:00", "13:00-15:00"], sun: []}
    holidays: [2026-12-25]                       # closed all day

Used for the IVR's ``calendars:`` (``ivr.schema``) and the ACD's calling hours
(``callbacks.hours`` in acd.yaml).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
import zoneinfo
from collections.abc import Callable, Mapping

from ivr.model import Calendar
from ivr.validate import KeyPath, Locate, Problem, did_you_mean

__all__ = ["parse_calendar"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_INTERVAL = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")
_Report = Callable[[KeyPath, str], None]


def parse_calendar(
    name: str, raw: object, path: KeyPath, locate: Locate
) -> tuple[Calendar | None, list[Problem]]:
    """A business-hours calendar. Written by hand rather than as a pydantic model so each
    problem points at its own day or interval."""
    problems: list[Problem] = []

    def report(where: KeyPath, message: str) -> None:
        problems.append(Problem(where, message, locate(where)))

    if not isinstance(raw, Mapping):
        report(path, f"{_short(raw)} is not a calendar (expected timezone, weekly, holidays)")
        return None, problems
    allowed = ("timezone", "weekly", "holidays")
    for key in raw:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed)
            report((*path, str(key)), f"unknown key {key!r} (expected {', '.join(allowed)}){hint}")
    for key in ("timezone", "weekly"):
        if key not in raw:
            report(path, f"no {key} (a calendar needs timezone and weekly)")
    timezone = raw.get("timezone")
    if "timezone" in raw:
        _check_timezone(timezone, (*path, "timezone"), report)
    weekly = _parse_weekly(raw.get("weekly", {}), (*path, "weekly"), report)
    holidays = _parse_holidays(raw.get("holidays", []), (*path, "holidays"), report)
    if problems or not isinstance(timezone, str):
        return None, problems
    return Calendar(name, timezone, weekly, holidays), problems


def _check_timezone(value: object, path: KeyPath, report: _Report) -> None:
    expected = "expected an IANA time zone like Europe/Berlin"
    if not isinstance(value, str) or not value:
        report(path, f"timezone {_short(value)} ({expected})")
        return
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        hint = did_you_mean(value, _timezones())
        report(path, f"unknown timezone {value!r} ({expected}){hint}")


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _parse_weekly(
    raw: object, path: KeyPath, report: _Report
) -> dict[int, tuple[tuple[dt.time, dt.time], ...]]:
    weekly: dict[int, tuple[tuple[dt.time, dt.time], ...]] = {}
    if not isinstance(raw, Mapping):
        report(path, f"{_short(raw)} (expected days mapped to opening hours, e.g. mon-fri)")
        return weekly
    for key, hours in raw.items():
        here = (*path, str(key))
        days = _days(str(key))
        if days is None:
            report(
                here,
                f"{key!r} is not a day or range of days "
                "(expected mon, tue, wed, thu, fri, sat, sun or a range like mon-fri)",
            )
            continue
        intervals = _intervals(hours, here, report)
        for day in days:
            if day in weekly:
                report(here, f"{_DAYS[day]} is given twice (expected each day once)")
            weekly[day] = intervals
    return weekly


def _days(key: str) -> list[int] | None:
    first, dash, last = key.strip().lower().partition("-")
    if first not in _DAYS or (dash and last not in _DAYS):
        return None
    start = _DAYS.index(first)
    end = _DAYS.index(last) if dash else start
    return list(range(start, end + 1)) if start <= end else None


def _intervals(raw: object, path: KeyPath, report: _Report) -> tuple[tuple[dt.time, dt.time], ...]:
    # "sun:" with nothing after it: closed that day, like "sun: []".
    items = [raw] if isinstance(raw, str) else [] if raw is None else raw
    if not isinstance(items, list):
        report(path, f'{_short(raw)} (expected a list of intervals like "08:00-18:00")')
        return ()
    intervals: list[tuple[dt.time, dt.time]] = []
    for item in items:
        interval = _interval(item)
        if isinstance(interval, str):
            report(path, interval)
        else:
            intervals.append(interval)
    intervals.sort()
    for (_, end), (start, _) in itertools.pairwise(intervals):
        if start < end:
            report(path, f"intervals overlap at {start:%H:%M} (expected separate intervals)")
    return tuple(intervals)


def _interval(item: object) -> tuple[dt.time, dt.time] | str:
    """(start, end) or what is wrong. "24:00" ends the day: the model's end is exclusive and a
    ``time`` cannot be 24:00, so it becomes ``time.max``."""
    expected = '(expected "HH:MM-HH:MM" with the end after the start, e.g. "08:00-18:00")'
    match = _INTERVAL.fullmatch(item.replace(" ", "")) if isinstance(item, str) else None
    if match is None:
        return f"{_short(item)} is not an interval {expected}"
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        return f"{item!r} is not a time of day {expected}"
    start = dt.time(h1, m1)
    end = dt.time.max if h2 == 24 else dt.time(h2, m2)
    if end <= start:
        return f"{item!r} ends before it starts {expected}"
    return start, end


def _parse_holidays(raw: object, path: KeyPath, report: _Report) -> frozenset[dt.date]:
    if not isinstance(raw, list):
        report(path, f"{_short(raw)} (expected a list of dates like 2026-12-25)")
        return frozenset()
    days: set[dt.date] = set()
    for i, item in enumerate(raw):
        if isinstance(item, dt.date) and not isinstance(item, dt.datetime):
            days.add(item)
            continue
        try:
            days.add(dt.date.fromisoformat(str(item)))
        except ValueError:
            report((*path, str(i)), f"{_short(item)} is not a date (expected YYYY-MM-DD)")
    return frozenset(days)


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
