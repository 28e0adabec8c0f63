"""Customer insight: each documented rule on its own, at its edges, and read from the store."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.insight import DAY, InsightRules, insight, insight_for
from crm_bridge.schema import Customer, Interaction

NOW = 1_800_000_000.0
HOUR = 3600.0


def contact(
    ago: float,
    outcome: str = "answered",
    disposition: str | None = None,
    direction: str = "inbound",
    queue: str = "sales",
    key: str | None = None,
) -> dict[str, Any]:
    return {
        "key": key or f"k{ago}",
        "started_at": NOW - ago,
        "outcome": outcome,
        "disposition": disposition,
        "direction": direction,
        "queue": queue,
    }


def test_no_history_is_a_quiet_record() -> None:
    result = insight([], NOW)
    assert not result.repeat_caller
    assert result.previous_contact_at is None
    assert (result.contacts_7d, result.contacts_30d, result.weekly_average_90d) == (0, 0, 0.0)
    assert result.last_outcome is None
    assert not result.churn_warning
    assert result.reasons == ()


@pytest.mark.parametrize(
    ("ago", "repeat"),
    [(71 * HOUR, True), (72 * HOUR, True), (72 * HOUR + 1, False), (10 * DAY, False)],
)
def test_repeat_caller_window_edges(ago: float, repeat: bool) -> None:
    result = insight([contact(ago)], NOW)
    assert result.repeat_caller is repeat
    assert result.previous_contact_at == NOW - ago
    assert any(reason.startswith("repeat caller") for reason in result.reasons) is repeat


def test_repeat_window_is_configurable() -> None:
    rules = InsightRules(repeat_window=24 * HOUR)
    assert not insight([contact(30 * HOUR)], NOW, rules).repeat_caller
    assert insight([contact(23 * HOUR)], NOW, rules).repeat_caller


def test_the_contact_being_looked_at_does_not_count() -> None:
    current = contact(20.0, outcome="answered", key="live")
    older = contact(10 * DAY, outcome="abandoned", key="old")
    result = insight([current, older], NOW, exclude_key="live")
    assert not result.repeat_caller
    assert result.last_outcome == "abandoned"
    # Later than now (clock skew between writers) is not history either.
    assert insight([contact(-5.0)], NOW).previous_contact_at is None


def test_outbound_and_callbacks_are_not_customer_contacts() -> None:
    result = insight(
        [contact(HOUR, direction="outbound"), contact(2 * HOUR, direction="callback")], NOW
    )
    assert not result.repeat_caller
    assert result.contacts_7d == 0
    rules = InsightRules(customer_directions=frozenset({"inbound", "callback"}))
    assert insight([contact(2 * HOUR, direction="callback")], NOW, rules).repeat_caller


def test_contact_frequency_windows_are_half_open() -> None:
    history = [
        contact(HOUR),
        contact(7 * DAY),  # exactly 7 days: inside the 7-day window
        contact(7 * DAY + 1),
        contact(30 * DAY),
        contact(30 * DAY + 1),
        contact(90 * DAY),
        contact(90 * DAY + 1),  # outside everything
    ]
    result = insight(history, NOW)
    assert result.contacts_7d == 2
    assert result.contacts_30d == 4
    assert result.weekly_average_90d == pytest.approx(6 / (90 / 7))


def test_last_outcome_is_the_latest_contact() -> None:
    history = [
        contact(3 * DAY, outcome="answered", queue="sales"),
        contact(2 * DAY, outcome="abandoned", disposition=None, queue="support"),
        contact(5 * DAY, outcome="voicemail"),
    ]
    result = insight(history, NOW)
    assert (result.last_outcome, result.last_disposition, result.last_queue) == (
        "abandoned",
        None,
        "support",
    )


def test_churn_on_two_abandons_in_seven_days() -> None:
    one = insight([contact(DAY, "abandoned"), contact(8 * DAY, "abandoned")], NOW)
    assert one.abandons_recent == 1
    assert "abandons" not in one.churn_rules
    two = insight([contact(DAY, "abandoned"), contact(6 * DAY, "abandoned")], NOW)
    assert two.abandons_recent == 2
    assert two.churn_warning
    assert two.churn_rules == ("abandons",)
    assert "churn: 2 abandoned calls in the last 7 days (rule: >= 2)" in two.reasons


def test_churn_on_two_complaints_from_the_configured_codes() -> None:
    history = [contact(2 * DAY, disposition="COMPLAINT"), contact(20 * DAY, disposition="billing")]
    assert not insight(history, NOW).churn_warning
    rules = InsightRules(complaint_dispositions=frozenset({"complaint", "billing"}))
    result = insight(history, NOW, rules)
    assert result.complaints_recent == 2
    assert result.churn_rules == ("complaints",)
    assert "churn: 2 complaints in the last 30 days (rule: >= 2)" in result.reasons
    # Outside the 30-day window the old complaint no longer counts.
    old = [contact(2 * DAY, disposition="complaint"), contact(31 * DAY, disposition="complaint")]
    assert insight(old, NOW).complaints_recent == 1


def test_churn_on_a_surge_against_the_baseline() -> None:
    # A steady customer: one contact a week for 12 weeks (weekly average 12 / 12.86).
    steady = [contact(week * 7 * DAY + DAY) for week in range(1, 13)]
    calm = insight(steady, NOW)
    assert calm.weekly_average_90d == pytest.approx(12 / (90 / 7))
    assert "surge" not in calm.churn_rules
    # Three contacts this week: 3 >= 3 x (15 / 12.86) = 3.5? No: not yet a surge.
    week = [contact(DAY), contact(2 * DAY), contact(3 * DAY)]
    assert "surge" not in insight(steady + week, NOW).churn_rules
    # Four: 4 >= 3 x (16 / 12.86) = 3.73: a surge.
    surge = insight([*steady, *week, contact(4 * DAY)], NOW)
    assert surge.churn_rules == ("surge",)
    assert surge.reasons[-1].startswith("churn: 4 contacts in the last 7 days")


def test_surge_needs_its_minimum_of_contacts() -> None:
    # No baseline at all: two contacts are below the minimum, three fire the rule.
    assert "surge" not in insight([contact(DAY), contact(2 * DAY)], NOW).churn_rules
    three = insight([contact(DAY), contact(2 * DAY), contact(3 * DAY)], NOW)
    assert three.churn_rules == ("surge",)
    rules = InsightRules(surge_min_contacts=4)
    assert not insight([contact(DAY), contact(2 * DAY), contact(3 * DAY)], NOW, rules).churn_warning


def test_every_rule_at_once_gives_every_reason() -> None:
    history = [
        contact(HOUR, "abandoned", disposition="complaint"),
        contact(DAY, "abandoned", disposition="complaint"),
        contact(2 * DAY),
    ]
    result = insight(history, NOW)
    assert result.repeat_caller
    assert result.churn_rules == ("abandons", "complaints", "surge")
    assert len(result.reasons) == 4


# -- from the store (SQLite and PostgreSQL) ---------------------------------------------------


async def test_insight_for_reads_the_customers_interactions(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        created = await conn.execute(
            insert(Customer).returning(Customer.id),
            [{"ref": "C1", "name": "Alice", "name_key": "alice", "created_at": 0, "updated_at": 0}],
        )
        alice = created.scalar_one()
        await conn.execute(
            insert(Customer),
            [{"ref": "C2", "name": "Bob", "name_key": "bob", "created_at": 0, "updated_at": 0}],
        )
        rows = [
            # by ref (the IVR's lookup)
            {"key": "a1", "customer_ref": "C1", "started_at": NOW - DAY, "outcome": "abandoned"},
            # by id only (linked later)
            {
                "key": "a2",
                "customer_id": alice,
                "started_at": NOW - 2 * DAY,
                "outcome": "abandoned",
            },
            {
                "key": "a3",
                "customer_ref": "C1",
                "started_at": NOW - 40 * DAY,
                "outcome": "answered",
                "disposition": "complaint",
            },
            # long ago: outside the history read
            {"key": "a4", "customer_ref": "C1", "started_at": NOW - 200 * DAY, "outcome": "x"},
            # the live call, already in the store
            {"key": "live", "customer_ref": "C1", "started_at": NOW - 30, "outcome": None},
            # someone else
            {"key": "b1", "customer_ref": "C2", "started_at": NOW - HOUR, "outcome": "answered"},
            # an outbound call to Alice: not her contact
            {
                "key": "a5",
                "customer_ref": "C1",
                "started_at": NOW - 2 * HOUR,
                "direction": "outbound",
                "outcome": "answered",
            },
        ]
        # executemany needs every row to name the same columns.
        blank = {
            "customer_ref": None,
            "customer_id": None,
            "disposition": None,
            "direction": "inbound",
            "updated_at": NOW,
        }
        await conn.execute(insert(Interaction), [{**blank, **row} for row in rows])

    result = await insight_for(engine, "C1", NOW, exclude_key="live")
    assert result.repeat_caller  # the latest earlier contact is a day old, the live call aside
    assert result.previous_contact_at == NOW - DAY
    assert result.contacts_7d == 2
    assert result.contacts_30d == 2
    assert result.weekly_average_90d == pytest.approx(3 / (90 / 7))
    assert result.last_outcome == "abandoned"
    assert result.churn_rules == ("abandons",)

    with_live = await insight_for(engine, "C1", NOW)
    assert with_live.previous_contact_at == NOW - 30
    nobody = await insight_for(engine, "C404", NOW)
    assert nobody.previous_contact_at is None
    assert nobody.contacts_30d == 0
