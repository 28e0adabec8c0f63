from __future__ import annotations

import datetime as dt

import pytest

from cti.errors import ConfigError
from ivr.calendar import is_open, local_time
from ivr.model import Calendar

UTC = dt.UTC
NINE_TO_FIVE = ((dt.time(9, 0), dt.time(17, 0)),)


def at(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> float:
    """Epoch seconds of a UTC wall-clock time (tests read better in UTC)."""
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


def calendar(**weekly: tuple[tuple[dt.time, dt.time], ...]) -> Calendar:
    days = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
    return Calendar(
        name="support_hours",
        timezone="Europe/Berlin",
        weekly={days[name]: intervals for name, intervals in weekly.items()},
        holidays=frozenset({dt.date(2026, 12, 25), dt.date(2026, 12, 26)}),
    )


def test_intervals_are_local_and_end_exclusive() -> None:
    # 2026-01-14 is a Wednesday; Berlin is UTC+1 in winter.
    cal = calendar(wed=NINE_TO_FIVE)
    assert not is_open(cal, at(2026, 1, 14, 7, 59, 59))  # 08:59:59 local
    assert is_open(cal, at(2026, 1, 14, 8, 0))  # 09:00 local: opening time is open
    assert is_open(cal, at(2026, 1, 14, 15, 59, 59))  # 16:59:59 local
    assert not is_open(cal, at(2026, 1, 14, 16, 0))  # 17:00 local: closing time is closed
    assert not is_open(cal, at(2026, 1, 15, 10, 0))  # Thursday: no hours at all


def test_several_intervals_a_day() -> None:
    cal = calendar(sat=((dt.time(9, 0), dt.time(12, 0)), (dt.time(13, 0), dt.time(15, 0))))
    # 2026-01-17 is a Saturday.
    assert is_open(cal, at(2026, 1, 17, 10, 30))  # 11:30 local
    assert not is_open(cal, at(2026, 1, 17, 11, 30))  # 12:30 local: lunch
    assert is_open(cal, at(2026, 1, 17, 12, 0))  # 13:00 local


def test_spring_forward_day() -> None:
    # Clocks go from 02:00 CET to 03:00 CEST on Sunday 2026-03-29. The same UTC instant is
    # 07:30 local the day before and 08:30 local that day.
    cal = calendar(sat=((dt.time(8, 0), dt.time(18, 0)),), sun=((dt.time(8, 0), dt.time(18, 0)),))
    assert not is_open(cal, at(2026, 3, 28, 6, 30))  # Sat 07:30 CET
    assert is_open(cal, at(2026, 3, 29, 6, 30))  # Sun 08:30 CEST
    assert local_time(cal, at(2026, 3, 29, 6, 30)).hour == 8
    # Closing follows the wall clock too: 18:00 CEST is 16:00 UTC.
    assert is_open(cal, at(2026, 3, 29, 15, 59))
    assert not is_open(cal, at(2026, 3, 29, 16, 0))
    assert is_open(cal, at(2026, 3, 28, 16, 59))  # Sat 17:59 CET


def test_fall_back_day_counts_both_passes_of_the_repeated_hour() -> None:
    # Sunday 2026-10-25: 03:00 CEST becomes 02:00 CET, so 02:00-03:00 local happens twice.
    cal = calendar(sun=((dt.time(2, 0), dt.time(3, 0)),))
    assert is_open(cal, at(2026, 10, 25, 0, 30))  # 02:30 CEST (first pass)
    assert is_open(cal, at(2026, 10, 25, 1, 30))  # 02:30 CET (second pass)
    assert not is_open(cal, at(2026, 10, 25, 2, 0))  # 03:00 CET


def test_holidays_are_local_dates() -> None:
    always = ((dt.time(0, 0), dt.time.max),)
    cal = calendar(thu=always, fri=always, sat=always, sun=always)
    # 2026-12-24 is a Thursday; 23:30 UTC is already 00:30 on the 25th in Berlin.
    assert is_open(cal, at(2026, 12, 24, 22, 30))  # 23:30 local on the 24th
    assert not is_open(cal, at(2026, 12, 24, 23, 30))
    assert not is_open(cal, at(2026, 12, 26, 12, 0))
    assert is_open(cal, at(2026, 12, 26, 23, 0))  # 00:00 on the 27th


@pytest.mark.parametrize("end", [dt.time.max, dt.time(0, 0)])
def test_interval_to_the_end_of_the_day(end: dt.time) -> None:
    cal = calendar(wed=((dt.time(20, 0), end),))
    assert is_open(cal, at(2026, 1, 14, 22, 59, 59))  # 23:59:59 local
    assert not is_open(cal, at(2026, 1, 14, 23, 0))  # 00:00 Thursday
    assert not is_open(cal, at(2026, 1, 14, 18, 59))  # 19:59 local


def test_unknown_timezone_is_a_config_error() -> None:
    cal = Calendar(name="x", timezone="Mars/Olympus", weekly={})
    with pytest.raises(ConfigError) as info:
        is_open(cal, 0.0)
    assert info.value.key == "calendars.x.timezone"
    assert "Mars/Olympus" in str(info.value)
