"""/healthz figures: durations on a monotonic clock, connects counted per real login."""

from __future__ import annotations

from cti.health import Health, PbxConnectionChanged


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_uptime_and_time_in_state_follow_the_monotonic_clock() -> None:
    clock = _Clock()
    health = Health(version="x", monotonic=clock)
    clock.now += 5
    # The event's wall-clock time (``at``) may be anything, even "in the past" after a clock
    # step: durations do not depend on it.
    health.on_pbx(PbxConnectionChanged(True, "connected", at=0.0))
    clock.now += 2
    report = health.report()
    assert report["uptime_s"] == 7.0
    assert report["pbx"]["since_s"] == 2.0
    assert report["status"] == "ok"


def test_connects_count_only_transitions_into_connected() -> None:
    health = Health(version="x", monotonic=_Clock())
    for connected, state in [
        (False, "connecting"),
        (True, "connected"),
        (True, "connected"),  # a repeated report is not a new login
        (False, "disconnected"),
        (False, "connecting"),
        (True, "connected"),
    ]:
        health.on_pbx(PbxConnectionChanged(connected, state, at=0.0))
    assert health.pbx_connects == 2
    assert health.healthy
