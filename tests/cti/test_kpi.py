"""The KPI formulas against the worked example of docs/kpi.md, and the one zero-denominator
rule (no data -> None) that every role now shares."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti.kpi import (
    DEFAULT_SL_VARIANT,
    SL_VARIANTS,
    abandon_rate,
    average_handle_time,
    average_speed_of_answer,
    is_short_abandon,
    occupancy,
    ratio,
    service_level,
    service_levels,
    within,
)

# docs/kpi.md: 100 offered; 70 answered within 20 s; 10 abandoned within 20 s; 10 answered
# later; 10 abandoned later. Talk 24,000 s, hold 1,600 s, after-call work 4,000 s. Total wait
# of answered calls 1,400 s. 10 agents each logged in 3,600 s, 2,000 s of it not ready.
OFFERED, ANSWERED, ABANDONED = 100, 80, 20
ANSWERED_WITHIN, ABANDONED_WITHIN = 70, 10
HANDLE = 24_000.0 + 1_600.0 + 4_000.0
LOGGED_IN, NOT_READY = 10 * 3600.0, 2_000.0


def test_worked_example_of_kpi_md() -> None:
    levels = service_levels(OFFERED, ANSWERED, ANSWERED_WITHIN, ABANDONED_WITHIN)
    assert levels["abandons_ignored"] == pytest.approx(0.7778, abs=5e-5)
    assert levels["abandons_negative"] == pytest.approx(0.70)
    assert levels["abandons_positive"] == pytest.approx(0.80)
    assert levels["answered_only"] == pytest.approx(0.875)
    assert abandon_rate(ABANDONED, OFFERED) == pytest.approx(0.20)
    assert average_handle_time(HANDLE, ANSWERED) == pytest.approx(370.0)
    assert average_speed_of_answer(1_400.0, ANSWERED) == pytest.approx(17.5)
    available_idle = LOGGED_IN - NOT_READY - HANDLE
    assert occupancy(HANDLE, available_idle) == pytest.approx(0.8706, abs=5e-5)


def test_the_default_variant_is_abandons_ignored_and_named_variants_agree() -> None:
    assert DEFAULT_SL_VARIANT == "abandons_ignored"
    levels = service_levels(OFFERED, ANSWERED, ANSWERED_WITHIN, ABANDONED_WITHIN)
    assert set(levels) == set(SL_VARIANTS)
    assert len(SL_VARIANTS) == 4
    for variant in SL_VARIANTS:
        got = service_level(variant, OFFERED, ANSWERED, ANSWERED_WITHIN, ABANDONED_WITHIN)
        assert got == levels[variant]
    with pytest.raises(ValueError, match="unknown service level variant 'bogus'"):
        service_level("bogus", OFFERED, ANSWERED, ANSWERED_WITHIN, ABANDONED_WITHIN)


def test_no_data_is_none_for_every_figure() -> None:
    # The documented rule: a zero denominator is "nothing measured", never 0 % or 0 s.
    assert service_levels(0, 0, 0, 0) == dict.fromkeys(SL_VARIANTS)
    assert abandon_rate(0, 0) is None
    assert average_handle_time(0.0, 0) is None
    assert average_speed_of_answer(0.0, 0) is None
    assert occupancy(0.0, 0.0) is None
    # Only the variant whose denominator is empty is None: 3 offered, all abandoned within.
    levels = service_levels(3, 0, 0, 3)
    assert levels["abandons_ignored"] is None
    assert levels["answered_only"] is None
    assert levels["abandons_negative"] == 0.0
    assert levels["abandons_positive"] == 1.0


def test_a_negative_denominator_is_none_not_a_negative_ratio() -> None:
    # Inconsistent counts (more abandoned within than offered) must not yield -100 %.
    assert ratio(1, -1) is None
    assert ratio(0, 0) is None
    assert ratio(1, 4) == 0.25


def test_short_abandons_leave_both_sides_of_the_abandon_rate() -> None:
    # 10 offered, 4 abandoned of which 2 short: (4 - 2) / (10 - 2).
    assert abandon_rate(4, 10, 2) == pytest.approx(0.25)
    assert abandon_rate(2, 2, 2) is None  # every call was a short abandon: nothing to show
    assert is_short_abandon(2.9, 3.0)
    assert not is_short_abandon(3.0, 3.0)
    assert not is_short_abandon(0.0, 0.0)  # short_abandon = 0: none are short


def test_within_the_threshold_includes_the_threshold() -> None:
    assert within(20.0, 20.0)
    assert within(0.0, 20.0)
    assert not within(20.001, 20.0)


@given(
    offered=st.integers(0, 500),
    data=st.data(),
)
def test_service_levels_are_fractions_and_ordered(offered: int, data: st.DataObject) -> None:
    answered = data.draw(st.integers(0, offered))
    abandoned = data.draw(st.integers(0, offered - answered))
    answered_within = data.draw(st.integers(0, answered))
    abandoned_within = data.draw(st.integers(0, abandoned))
    levels = service_levels(offered, answered, answered_within, abandoned_within)
    for value in levels.values():
        assert value is None or 0.0 <= value <= 1.0
    if offered:
        negative, positive = levels["abandons_negative"], levels["abandons_positive"]
        assert negative is not None
        assert positive is not None
        # Counting abandons as failures can only lower the figure, as successes only raise it.
        assert negative <= positive
        ignored = levels["abandons_ignored"]
        assert ignored is None or negative <= ignored
