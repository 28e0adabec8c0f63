"""Business hours: is a calendar open at a given instant?

Opening hours are written in wall-clock time of the calendar's own timezone, so the instant
(epoch seconds, as the engine's clock gives it) is first turned into local time with
``zoneinfo``. That makes daylight saving time come out right without special cases: on the
day clocks go forward, 08:00 local is one hour earlier in UTC than the day before, and an
interval simply covers whatever wall-clock times that day has.

- Holidays are local dates: a call at 23:30 UTC on 24 December is already the 25th in Berlin.
- Intervals are end-exclusive: 08:00-18:00 is closed at 18:00:00.
- An interval ending at 00:00 (how a loader may write "24:00") or at ``time.max`` runs to the
  end of the day.

Pure: no clock, no I/O.
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cti.errors import ConfigError
from ivr.model import Calendar

__all__ = ["is_open", "local_time"]

_MIDNIGHT = dt.time(0, 0)


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown timezone {name!r}", key="timezone") from exc


def local_time(calendar: Calendar, at: float) -> dt.datetime:
    """``at`` (epoch seconds) as an aware datetime in the calendar's timezone."""
    try:
        zone = _zone(calendar.timezone)
    except ConfigError as exc:
        raise ConfigError(
            f"unknown timezone {calendar.timezone!r}", key=f"calendars.{calendar.name}.timezone"
        ) from exc
    return dt.datetime.fromtimestamp(at, tz=zone)


def _within(start: dt.time, end: dt.time, wall: dt.time) -> bool:
    if end == _MIDNIGHT or end == dt.time.max:
        return start <= wall
    return start <= wall < end


def is_open(calendar: Calendar, at: float) -> bool:
    """True when ``at`` falls on a local day that is not a holiday, within one of that
    weekday's opening intervals."""
    local = local_time(calendar, at)
    if local.date() in calendar.holidays:
        return False
    # time() is the naive wall-clock reading: intervals compare with the clock on the wall,
    # whatever the UTC offset is that day (both passes of a repeated autumn hour count).
    wall = local.time()
    return any(_within(start, end, wall) for start, end in calendar.weekly.get(local.weekday(), ()))
