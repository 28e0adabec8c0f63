"""The console's facts on the interaction timeline: wrap-up and transfers."""

from __future__ import annotations

from crm_bridge.timeline import apply, from_bus, new_interaction
from cti.contracts.console import CallControlled, WrapUpRecorded

T0 = 1_800_000_000.0


def test_a_wrap_up_sets_disposition_and_notes_the_latest_wins() -> None:
    first = from_bus(WrapUpRecorded("L1", "agent1001", "ada", "resolved", "ok", T0))
    second = from_bus(WrapUpRecorded("L1", "agent1001", "ada", "complaint", "angry", T0 + 5))
    assert first is not None
    assert second is not None
    assert first.event_key != second.event_key  # a correction is a second fact
    row = new_interaction(first, T0)
    apply(row, first, T0)
    apply(row, second, T0 + 5)
    assert (row.disposition, row.notes) == ("complaint", "angry")


def test_blind_and_completed_attended_transfers_count_a_started_attended_one_does_not() -> None:
    def event(action: str, mode: str, at: float) -> CallControlled:
        return CallControlled("agent1001", "L1", action, mode, "agent", "agent1002", at)

    blind = from_bus(event("transfer", "blind", T0))
    consulting = from_bus(event("transfer", "attended", T0 + 1))
    completed = from_bus(event("transfer-complete", "attended", T0 + 9))
    assert consulting is None
    assert from_bus(event("transfer-cancel", "attended", T0 + 2)) is None
    assert from_bus(event("hold", "", T0 + 3)) is None
    assert blind is not None
    assert completed is not None
    row = new_interaction(blind, T0)
    apply(row, blind, T0)
    apply(row, completed, T0 + 9)
    assert row.transfers == 2
    assert completed.data == {
        "agent_id": "agent1001",
        "mode": "attended",
        "kind": "agent",
        "target": "agent1002",
    }
