"""Reconnect delays."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti.ami.backoff import backoff_delay


def test_doubles_up_to_the_cap() -> None:
    delays = [backoff_delay(n, minimum=0.5, maximum=30, jitter=1.0) for n in range(10)]
    assert delays[:7] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert delays[7:] == [30.0] * 3


def test_jitter_keeps_at_least_half() -> None:
    assert backoff_delay(3, minimum=0.5, maximum=30, jitter=0.0) == 2.0
    assert backoff_delay(3, minimum=0.5, maximum=30, jitter=0.5) == 3.0


@given(
    attempt=st.integers(min_value=0, max_value=100_000),
    jitter=st.floats(min_value=0, max_value=1),
    minimum=st.floats(min_value=0, max_value=10),
    extra=st.floats(min_value=0, max_value=100),
)
def test_always_within_bounds(attempt: int, jitter: float, minimum: float, extra: float) -> None:
    maximum = minimum + extra
    delay = backoff_delay(attempt, minimum=minimum, maximum=maximum, jitter=jitter)
    assert min(minimum, maximum) / 2 <= delay <= maximum


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        backoff_delay(-1, minimum=1, maximum=2, jitter=0)
    with pytest.raises(ValueError):
        backoff_delay(0, minimum=1, maximum=2, jitter=2)
    with pytest.raises(ValueError):
        backoff_delay(0, minimum=3, maximum=2, jitter=0)
