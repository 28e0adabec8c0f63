"""Customer insight from history: what the agent sees next to the record.

``insight(interactions, now, rules)`` is a pure function over one customer's interactions
(mappings with ``started_at``, ``outcome``, ``disposition``, ``direction``, ``queue``, and
optionally ``key``); ``insight_for(engine, customer_ref, now)`` reads them from the store.

``now`` is the moment of the contact being looked at (the ringing call's screen-pop, or the
clock when a record is opened). The rules, exactly:

- **History.** The customer's *contacts*: interactions whose ``direction`` is one the customer
  started (``rules.customer_directions``, default ``inbound``: our outbound calls and callbacks
  are not the customer reaching out) and that started strictly before ``now``. The contact
  being looked at is excluded by its ``key`` (``exclude_key``) when it is already stored.
  Windows are half-open: "the last 7 days" is ``now - 7 d <= started_at < now``.
- **Repeat caller.** The latest contact started within ``rules.repeat_window`` (default 72 h)
  before ``now``: this contact comes back within the window of the previous one.
- **Contact frequency.** Contacts in the last 7 days, in the last 30 days, and the 90-day
  weekly average: contacts in the last 90 days / (90 / 7).
- **Last outcome.** ``outcome``, ``disposition`` and ``queue`` of the latest contact.
- **Churn warning** when any of these fires (``churn_rules`` names them, ``reasons`` explains):
  - ``abandons``: at least ``rules.abandons`` (2) contacts with outcome ``abandoned`` in the
    last ``rules.abandon_window`` (7 days);
  - ``complaints``: at least ``rules.complaints`` (2) contacts whose disposition is in
    ``rules.complaint_dispositions`` (compared case-insensitively) in the last
    ``rules.complaint_window`` (30 days);
  - ``surge``: contacts in the last 7 days >= ``rules.surge_factor`` (3) x the 90-day weekly
    average, and at least ``rules.surge_min_contacts`` (3) of them. The average includes the
    last 7 days, so a customer whose whole history is this week (no baseline) fires as soon
    as the minimum is reached: a new customer calling three times in a week is worth a look.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.schema import Customer, Interaction

__all__ = ["DAY", "Insight", "InsightRules", "insight", "insight_for"]

DAY = 86_400.0
_WEEKS_IN_90_DAYS = 90 / 7


@dataclass(frozen=True)
class InsightRules:
    """The thresholds; defaults as in the module docstring."""

    repeat_window: float = 72 * 3600.0
    customer_directions: frozenset[str] = frozenset({"inbound"})
    abandons: int = 2
    abandon_window: float = 7 * DAY
    complaints: int = 2
    complaint_window: float = 30 * DAY
    complaint_dispositions: frozenset[str] = frozenset({"complaint"})
    surge_factor: float = 3.0
    surge_min_contacts: int = 3

    @property
    def history(self) -> float:
        """How far back the rules look (what ``insight_for`` reads)."""
        return max(90 * DAY, self.repeat_window, self.abandon_window, self.complaint_window)


@dataclass(frozen=True)
class Insight:
    repeat_caller: bool
    #: when the latest contact before ``now`` started; None: no earlier contact
    previous_contact_at: float | None
    contacts_7d: int
    contacts_30d: int
    weekly_average_90d: float
    last_outcome: str | None
    last_disposition: str | None
    last_queue: str | None
    abandons_recent: int
    complaints_recent: int
    churn_warning: bool
    #: machine-readable names of the churn rules that fired: abandons, complaints, surge
    churn_rules: tuple[str, ...] = ()
    #: one human-readable sentence per raised flag (repeat caller and each churn rule)
    reasons: tuple[str, ...] = field(default=())


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def insight(
    interactions: Iterable[Mapping[str, Any]],
    now: float,
    rules: InsightRules | None = None,
    *,
    exclude_key: str | None = None,
) -> Insight:
    """The insight for one customer's ``interactions`` at ``now`` (rules: module docstring)."""
    rules = rules or InsightRules()
    contacts = sorted(
        (
            item
            for item in interactions
            if float(item["started_at"]) < now
            and str(item.get("direction") or "inbound") in rules.customer_directions
            and (exclude_key is None or item.get("key") != exclude_key)
        ),
        key=lambda item: float(item["started_at"]),
    )

    def within(seconds: float) -> list[Mapping[str, Any]]:
        return [item for item in contacts if float(item["started_at"]) >= now - seconds]

    last = contacts[-1] if contacts else None
    previous_at = float(last["started_at"]) if last is not None else None
    last_7d = len(within(7 * DAY))
    weekly = len(within(90 * DAY)) / _WEEKS_IN_90_DAYS
    complaint_codes = {code.casefold() for code in rules.complaint_dispositions}
    abandons = sum(1 for item in within(rules.abandon_window) if item.get("outcome") == "abandoned")
    complaints = sum(
        1
        for item in within(rules.complaint_window)
        if str(item.get("disposition") or "").casefold() in complaint_codes
    )

    reasons: list[str] = []
    repeat = previous_at is not None and now - previous_at <= rules.repeat_window
    if repeat and previous_at is not None:
        reasons.append(
            f"repeat caller: previous contact {_hours(now - previous_at)} ago "
            f"(window {_hours(rules.repeat_window)})"
        )
    fired: list[str] = []
    if abandons >= rules.abandons:
        fired.append("abandons")
        reasons.append(
            f"churn: {abandons} abandoned calls in the last "
            f"{rules.abandon_window / DAY:g} days (rule: >= {rules.abandons})"
        )
    if complaints >= rules.complaints:
        fired.append("complaints")
        reasons.append(
            f"churn: {complaints} complaints in the last "
            f"{rules.complaint_window / DAY:g} days (rule: >= {rules.complaints})"
        )
    if last_7d >= rules.surge_min_contacts and last_7d >= rules.surge_factor * weekly:
        fired.append("surge")
        reasons.append(
            f"churn: {last_7d} contacts in the last 7 days against a 90-day weekly average of "
            f"{weekly:.2f} (rule: >= {rules.surge_factor:g}x and >= {rules.surge_min_contacts})"
        )
    return Insight(
        repeat_caller=repeat,
        previous_contact_at=previous_at,
        contacts_7d=last_7d,
        contacts_30d=len(within(30 * DAY)),
        weekly_average_90d=weekly,
        last_outcome=_text(last.get("outcome")) if last is not None else None,
        last_disposition=_text(last.get("disposition")) if last is not None else None,
        last_queue=_text(last.get("queue")) if last is not None else None,
        abandons_recent=abandons,
        complaints_recent=complaints,
        churn_warning=bool(fired),
        churn_rules=tuple(fired),
        reasons=tuple(reasons),
    )


_COLUMNS: Sequence[Any] = (
    Interaction.key,
    Interaction.started_at,
    Interaction.outcome,
    Interaction.disposition,
    Interaction.direction,
    Interaction.queue,
)


async def insight_for(
    engine: AsyncEngine,
    customer_ref: str,
    now: float,
    rules: InsightRules | None = None,
    *,
    exclude_key: str | None = None,
) -> Insight:
    """The insight for the customer ``customer_ref`` from the store's interactions.

    An interaction belongs to the customer by ``customer_ref`` (set by the IVR's lookup) or by
    ``customer_id`` (set when a record is linked later); only the rules' history (90 days by
    default) is read.
    """
    rules = rules or InsightRules()
    customer_id = select(Customer.id).where(Customer.ref == customer_ref).scalar_subquery()
    query = (
        select(*_COLUMNS)
        .where(
            or_(Interaction.customer_ref == customer_ref, Interaction.customer_id == customer_id),
            Interaction.started_at >= now - rules.history,
            Interaction.started_at < now,
        )
        .order_by(Interaction.started_at)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return insight((dict(row) for row in rows), now, rules, exclude_key=exclude_key)
