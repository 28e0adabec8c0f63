"""The supervisor monitor's own state (agent_console/monitor.py): the 30-minute service level,
alerts reported on change only, the abandoned worklist and an agent's figures today."""

from __future__ import annotations

from typing import Literal

import pytest

from agent_console.monitor import (
    AbandonedCall,
    AbandonedList,
    AgentDay,
    Alerts,
    RecentServiceLevel,
)

T0 = 1_700_000_000.0


# -- RecentServiceLevel -------------------------------------------------------------------------


def _kpi_example(sl: RecentServiceLevel) -> None:
    """kpi.md's worked example: 100 offered, 70 answered within 20 s, 10 abandoned within,
    10 answered later, 10 abandoned later."""
    answered: Literal["answered"] = "answered"
    abandoned: Literal["abandoned"] = "abandoned"
    outcomes = (
        [(answered, 10.0)] * 70
        + [(abandoned, 5.0)] * 10
        + [(answered, 45.0)] * 10
        + [(abandoned, 60.0)] * 10
    )
    for n, (outcome, wait) in enumerate(outcomes):
        sl.entered("sales", f"c{n}", T0 + n)
        sl.finished("sales", f"c{n}", outcome, wait)


def test_the_kpi_worked_example_gives_every_variant() -> None:
    sl = RecentServiceLevel()
    _kpi_example(sl)
    levels, counted = sl.levels("sales", 20.0, T0 + 200)
    assert counted == 100
    assert levels["abandons_ignored"] == pytest.approx(0.7778, abs=1e-4)
    assert levels["abandons_negative"] == pytest.approx(0.70)
    assert levels["abandons_positive"] == pytest.approx(0.80)
    assert levels["answered_only"] == pytest.approx(0.875)


def test_visits_older_than_the_window_expire() -> None:
    sl = RecentServiceLevel()
    _kpi_example(sl)  # entered at T0 .. T0 + 99
    sl.entered("sales", "late", T0 + 1000)
    sl.finished("sales", "late", "answered", 3.0)
    levels, counted = sl.levels("sales", 20.0, T0 + 30 * 60 + 50)  # c0..c49 are out
    assert counted == 51
    levels, counted = sl.levels("sales", 20.0, T0 + 30 * 60 + 500)
    assert counted == 1
    assert levels["abandons_ignored"] == 1.0


def test_nothing_counted_is_none_and_unknown_queues_too() -> None:
    sl = RecentServiceLevel()
    levels, counted = sl.levels("nobody", 20.0, T0)
    assert counted == 0
    assert set(levels.values()) == {None}


def test_a_waiting_call_under_the_threshold_is_undecided() -> None:
    sl = RecentServiceLevel()
    sl.entered("sales", "w", T0)
    levels, counted = sl.levels("sales", 20.0, T0 + 10)
    assert counted == 0
    assert levels["abandons_negative"] is None


def test_a_call_waiting_past_the_threshold_counts_as_missed() -> None:
    sl = RecentServiceLevel()
    sl.entered("sales", "ok", T0)
    sl.finished("sales", "ok", "answered", 4.0)
    sl.entered("sales", "w", T0)
    levels, counted = sl.levels("sales", 20.0, T0 + 30)
    assert counted == 2
    assert levels["abandons_negative"] == 0.5


def test_a_visit_is_finished_once_and_entered_once() -> None:
    sl = RecentServiceLevel()
    sl.entered("sales", "x", T0)
    sl.entered("sales", "x", T0 + 5)  # a restart's rebuilt place: same visit
    sl.finished("sales", "x", "answered", 2.0)
    sl.finished("sales", "x", "abandoned", 90.0)  # ignored: already decided
    sl.finished("sales", "unknown", "answered", 2.0)  # harmless
    levels, counted = sl.levels("sales", 20.0, T0 + 10)
    assert counted == 1
    assert levels["answered_only"] == 1.0


def test_a_call_that_left_by_overflow_counts_as_offered_not_answered() -> None:
    sl = RecentServiceLevel()
    sl.entered("sales", "o", T0)
    sl.finished("sales", "o", "left", 30.0)
    levels, counted = sl.levels("sales", 20.0, T0 + 40)
    assert counted == 1
    assert levels["abandons_negative"] == 0.0
    assert levels["answered_only"] is None


# -- Alerts -------------------------------------------------------------------------------------


def test_alerts_are_reported_only_when_they_change() -> None:
    alerts = Alerts()
    raised = alerts.evaluate("sales", T0, {"long_wait": "waited 1 min", "service_level": None})
    assert [(a.id, a.kind, a.active, a.since) for a in raised] == [
        ("sales:long_wait", "long_wait", True, T0)
    ]
    assert alerts.evaluate("sales", T0 + 1, {"long_wait": "waited 1 min"}) == []
    refreshed = alerts.evaluate("sales", T0 + 30, {"long_wait": "waited 1 min 30"})
    assert [(a.message, a.since, a.active) for a in refreshed] == [("waited 1 min 30", T0, True)]
    cleared = alerts.evaluate("sales", T0 + 40, {"long_wait": None, "service_level": None})
    assert [(a.id, a.active, a.message) for a in cleared] == [
        ("sales:long_wait", False, "waited 1 min 30")
    ]
    assert alerts.active == {}
    assert alerts.evaluate("sales", T0 + 50, {"long_wait": None}) == []


def test_alerts_of_two_queues_are_separate() -> None:
    alerts = Alerts()
    alerts.evaluate("sales", T0, {"service_level": "low"})
    alerts.evaluate("support", T0, {"service_level": "low"})
    assert set(alerts.active) == {"sales:service_level", "support:service_level"}
    view = alerts.active["support:service_level"].view()
    assert view == {
        "id": "support:service_level",
        "queue": "support",
        "kind": "service_level",
        "message": "low",
        "since": T0,
        "active": True,
    }


# -- AbandonedList ------------------------------------------------------------------------------


def _gone(key: str, number: str, at: float = T0) -> AbandonedCall:
    return AbandonedCall(key, number, "sales", at, 12.0)


def test_one_entry_per_number_the_latest_newest_first() -> None:
    worklist = AbandonedList()
    worklist.add(_gone("k1", "5551234", T0))
    worklist.add(_gone("k2", "5552000", T0 + 1))
    worklist.add(_gone("k3", "5551234", T0 + 2))
    assert [c["key"] for c in worklist.view()] == ["k3", "k2"]
    assert len(worklist) == 2
    assert worklist.get("k1") is None


def test_a_call_without_a_number_is_not_a_worklist_item() -> None:
    worklist = AbandonedList()
    worklist.add(_gone("k1", ""))
    assert len(worklist) == 0


def test_reached_removes_that_number_only() -> None:
    worklist = AbandonedList()
    worklist.add(_gone("k1", "5551234"))
    worklist.add(_gone("k2", "5552000"))
    assert worklist.reached("5551234") is True
    assert worklist.reached("5551234") is False
    assert [c["number"] for c in worklist.view()] == ["5552000"]


def test_the_list_is_bounded_oldest_out() -> None:
    worklist = AbandonedList(limit=3)
    for n in range(5):
        worklist.add(_gone(f"k{n}", f"555000{n}", T0 + n))
    assert [c["key"] for c in worklist.view()] == ["k4", "k3", "k2"]


def test_remove_and_since() -> None:
    worklist = AbandonedList()
    worklist.add(_gone("old", "1", T0 - 100))
    worklist.add(_gone("new", "2", T0 + 1))
    assert worklist.remove("new") is True
    assert worklist.remove("new") is False
    assert worklist.since(T0) is True
    assert worklist.since(T0) is False
    assert len(worklist) == 0


def test_an_abandoned_view_is_the_contract_shape() -> None:
    call = AbandonedCall("k", "5551234", "sales", T0, 12.5, "Ada")
    assert call.view() == {
        "key": "k",
        "number": "5551234",
        "queue": "sales",
        "at": T0,
        "wait": 12.5,
        "customer_name": "Ada",
    }


# -- AgentDay -----------------------------------------------------------------------------------


def test_not_ready_time_counts_closed_and_running_periods() -> None:
    day = AgentDay()
    day.roll("2023-11-14", T0)
    day.state("logged_out", "not_ready", T0)
    day.state("not_ready", "ready", T0 + 100)
    day.state("ready", "not_ready", T0 + 200)
    assert day.view(T0 + 250)["not_ready_seconds"] == 150.0


def test_answered_ended_and_disposed() -> None:
    day = AgentDay()
    day.roll("2023-11-14", T0)
    day.answered += 1
    day.ended("c1", talk=60.0, hold=10.0)
    day.state("on_call", "wrap_up", T0)
    day.state("wrap_up", "ready", T0 + 20)
    view = day.view(T0 + 30)
    assert view["answered"] == 1
    assert view["handled"] == 1
    assert view["talk_seconds"] == 60.0
    assert view["avg_handle_seconds"] == 90.0  # talk + hold + wrap-up
    assert view["dispositions_missing"] == 1
    day.disposed("c1")
    assert day.view(T0 + 30)["dispositions_missing"] == 0


def test_no_calls_means_no_average() -> None:
    assert AgentDay().view(T0)["avg_handle_seconds"] is None


def test_a_new_day_starts_from_zero_and_a_running_state_counts_from_midnight() -> None:
    day = AgentDay()
    day.roll("2023-11-14", T0)
    day.ended("c1", 30.0, 0.0)
    day.state("ready", "not_ready", T0)
    midnight = T0 + 3600
    day.roll("2023-11-14", midnight)  # same day: nothing changes
    assert day.view(midnight)["not_ready_seconds"] == 3600.0
    day.roll("2023-11-15", midnight)
    view = day.view(midnight + 60)
    assert view["handled"] == 0
    assert view["dispositions_missing"] == 0
    assert view["not_ready_seconds"] == 60.0
