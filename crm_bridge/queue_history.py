"""The calls that entered a queue since a moment, as plain values: what the ACD needs to rebuild
today's live figures after a restart (``acd.history``).

The interaction log is the record of what happened; the ACD's figures live in memory. A
restarted server reads the day's queued interactions back here, and the composition root maps
each to the ACD's ``PastVisit`` (the store does not decide how the ACD counts).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.schema import Interaction

__all__ = ["QueuedInteraction", "queued_since"]


@dataclass(frozen=True)
class QueuedInteraction:
    key: str
    queue: str | None
    queued_at: float | None
    outcome: str | None
    answered_at: float | None
    ended_at: float | None
    talk: float | None
    hold: float | None
    wrap: float | None
    wrap_ended_at: float | None


async def queued_since(engine: AsyncEngine, since: float) -> list[QueuedInteraction]:
    """Every interaction that entered a queue at or after ``since``, oldest first."""
    i = Interaction
    query = (
        select(
            i.key,
            i.queue,
            i.queued_at,
            i.outcome,
            i.answered_at,
            i.ended_at,
            i.talk_seconds,
            i.hold_seconds,
            i.wrap_seconds,
            i.wrap_ended_at,
        )
        .where(i.queued_at >= since)
        .order_by(i.queued_at, i.key)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        QueuedInteraction(
            key=row.key,
            queue=row.queue,
            queued_at=row.queued_at,
            outcome=row.outcome,
            answered_at=row.answered_at,
            ended_at=row.ended_at,
            talk=row.talk_seconds,
            hold=row.hold_seconds,
            wrap=row.wrap_seconds,
            wrap_ended_at=row.wrap_ended_at,
        )
        for row in rows
    ]
