"""The interaction log on both databases: the same tests on SQLite and on a real PostgreSQL
(started by the session's ``postgres`` fixture, tests/conftest.py)."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.db import current_revision, head_revision, migrate
from crm_bridge.schema import Interaction, InteractionEvent
from crm_bridge.timeline import TimelineEvent
from crm_bridge.writer import BufferFull, InteractionWriter

T0 = 1_800_000_000.0


def answered_call(key: str, at: float = T0) -> list[TimelineEvent]:
    """One inbound call's facts: IVR, queue, offer, answer by a1 after 12 s, 60 s talk."""
    return [
        TimelineEvent(
            f"call:start:{key}", key, "call_started", at, {"ani": "5551234", "dnis": "8000"}
        ),
        TimelineEvent(
            f"ivr:{key}",
            key,
            "ivr_finished",
            at + 8,
            {
                "flow": "main",
                "outcome": "queued",
                "started_at": at,
                "steps": [{"node": "welcome"}, {"node": "sales"}],
                "variables": {"account": "******"},
                "customer_ref": "C1001",
            },
        ),
        TimelineEvent(
            f"acd:queued:{key}", key, "queued", at + 8, {"queue": "sales", "priority": 2}
        ),
        TimelineEvent(f"acd:offered:{key}", key, "offered", at + 19, {"agent_id": "a1"}),
        TimelineEvent(
            f"acd:answered:{key}", key, "answered", at + 20, {"agent_id": "a1", "wait": 12.0}
        ),
        TimelineEvent(f"acd:ended:{key}", key, "ended", at + 80, {"talk": 55.0, "hold": 5.0}),
        TimelineEvent(f"call:end:{key}", key, "call_ended", at + 80),
    ]


async def count(engine: AsyncEngine, model: type[Interaction] | type[InteractionEvent]) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


async def test_migrations_reach_head_and_are_idempotent(engine: AsyncEngine) -> None:
    assert await current_revision(engine) == head_revision()
    await migrate(engine)  # nothing to do: no error, same revision
    assert await current_revision(engine) == head_revision()


async def test_an_answered_call_is_one_interaction_with_every_phase(engine: AsyncEngine) -> None:
    writer = InteractionWriter(engine, clock=lambda: T0 + 100)
    await writer.start()
    try:
        futures = [writer.submit(e) for e in answered_call("L1")]
        await asyncio.wait_for(asyncio.gather(*futures), 10)
    finally:
        await writer.aclose()
    async with engine.connect() as conn:
        row = (await conn.execute(select(Interaction).where(Interaction.key == "L1"))).one()
    assert (row.ani, row.dnis, row.queue, row.priority, row.agent_id) == (
        "5551234",
        "8000",
        "sales",
        2,
        "a1",
    )
    assert (row.started_at, row.queued_at, row.answered_at, row.ended_at) == (
        T0,
        T0 + 8,
        T0 + 20,
        T0 + 80,
    )
    assert (row.wait_seconds, row.talk_seconds, row.hold_seconds) == (12.0, 55.0, 5.0)
    assert (row.outcome, row.ivr_flow, row.customer_ref) == ("answered", "main", "C1001")
    assert row.ivr_variables == {"account": "******"}
    assert [s["node"] for s in row.ivr_path] == ["welcome", "sales"]
    assert row.agents == ["a1"]
    assert await count(engine, InteractionEvent) == 7


async def test_the_same_facts_twice_are_stored_once(engine: AsyncEngine) -> None:
    writer = InteractionWriter(engine, clock=lambda: T0 + 100)
    events = answered_call("L2")
    assert await writer.write(events) == 7
    # A reconnect replays part of the history, and a retry sends a whole batch again.
    assert await writer.write(events[:3] + events) == 0
    assert writer.stats.duplicates == 10
    assert await count(engine, InteractionEvent) == 7
    assert await count(engine, Interaction) == 1
    async with engine.connect() as conn:
        row = (await conn.execute(select(Interaction).where(Interaction.key == "L2"))).one()
    assert (row.outcome, row.agents) == ("answered", ["a1"])  # not applied twice


async def test_a_burst_is_written_in_few_transactions(engine: AsyncEngine) -> None:
    writer = InteractionWriter(engine, max_batch=500)
    await writer.start()
    try:
        futures = [writer.submit(e) for n in range(200) for e in answered_call(f"B{n}", T0 + n)]
        await asyncio.wait_for(asyncio.gather(*futures), 60)
    finally:
        await writer.aclose()
    assert writer.stats.written == 1400
    # Group commit: the burst went out in batches of up to 500, not one commit per event.
    assert writer.stats.batches <= 10, writer.stats
    assert await count(engine, Interaction) == 200


async def test_a_full_buffer_refuses_instead_of_growing(engine: AsyncEngine) -> None:
    writer = InteractionWriter(engine, max_buffer=3)  # not started: nothing drains it
    accepted = [writer.submit(e) for e in answered_call("F1")[:3]]
    refused = writer.submit(answered_call("F1")[3])
    assert isinstance(refused.exception(), BufferFull)
    assert (writer.stats.rejected, writer.buffered) == (1, 3)
    await writer.start()
    try:
        await asyncio.wait_for(asyncio.gather(*accepted), 10)
    finally:
        await writer.aclose()
    assert await count(engine, InteractionEvent) == 3


async def test_the_migrations_build_exactly_the_models_schema(engine: AsyncEngine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import Connection

    from crm_bridge.schema import Base

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(differences) == []
