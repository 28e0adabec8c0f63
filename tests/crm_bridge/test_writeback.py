"""Write-back of finished interactions to an external CRM, on both databases: a fake sink
for the rules, a real HTTP server behind ``HttpCrm`` end to end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.external import ExternalCrmError, ExternalCrmSettings, HttpCrm
from crm_bridge.schema import Interaction
from crm_bridge.timeline import TimelineEvent
from crm_bridge.writeback import WriteBack, is_terminal
from crm_bridge.writer import InteractionWriter

T0 = 1_800_000_000.0
COLUMNS = {column.name for column in Interaction.__table__.columns}


def answered_call(key: str, at: float = T0) -> list[TimelineEvent]:
    """IVR, queue, answer by a1 after 12 s, 55 s talk; the ACD's end and the call's end."""
    return [
        TimelineEvent(f"call:start:{key}", key, "call_started", at, {"ani": "5551234"}),
        TimelineEvent(
            f"ivr:{key}",
            key,
            "ivr_finished",
            at + 8,
            {"flow": "main", "outcome": "queued", "variables": {"account": "******"}},
        ),
        TimelineEvent(f"acd:queued:{key}", key, "queued", at + 8, {"queue": "sales"}),
        TimelineEvent(f"acd:offered:{key}", key, "offered", at + 19, {"agent_id": "a1"}),
        TimelineEvent(
            f"acd:answered:{key}", key, "answered", at + 20, {"agent_id": "a1", "wait": 12.0}
        ),
        TimelineEvent(f"acd:ended:{key}", key, "ended", at + 80, {"talk": 55.0, "hold": 5.0}),
        TimelineEvent(f"call:end:{key}", key, "call_ended", at + 80),
    ]


def abandoned_call(key: str, at: float = T0) -> list[TimelineEvent]:
    return [
        TimelineEvent(f"call:start:{key}", key, "call_started", at, {"ani": "5559999"}),
        TimelineEvent(f"acd:queued:{key}", key, "queued", at + 1, {"queue": "sales"}),
        TimelineEvent(f"acd:abandoned:{key}", key, "abandoned", at + 31, {"wait": 30.0}),
    ]


def waiting_call(key: str, at: float = T0) -> list[TimelineEvent]:
    return abandoned_call(key, at)[:2]


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Sink:
    """Records what it is sent; raises the scripted failures first, one per send."""

    failures: list[Exception] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0

    async def send(self, interaction: Mapping[str, Any]) -> None:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        self.rows.append(dict(interaction))

    @property
    def keys(self) -> list[str]:
        return [row["key"] for row in self.rows]


@pytest.fixture
async def writer(engine: AsyncEngine) -> AsyncIterator[InteractionWriter]:
    writer = InteractionWriter(engine, clock=lambda: T0 + 1000)
    await writer.start()
    try:
        yield writer
    finally:
        await writer.aclose()


def feed(writer: InteractionWriter, writeback: WriteBack, events: Iterable[TimelineEvent]) -> None:
    """What the recorder does with each timeline event."""
    for event in events:
        writer.submit(event)
        writeback.on_event(event)


def test_terminal_facts() -> None:
    def event(kind: str, key: str = "L1", **data: Any) -> TimelineEvent:
        return TimelineEvent(f"{kind}:{key}", key, kind, T0, data)

    for kind in ("ended", "abandoned", "call_ended", "callback_failed"):
        assert is_terminal(event(kind))
    assert is_terminal(event("ivr_finished", outcome="voicemail"))
    assert not is_terminal(event("ivr_finished", outcome="queued"))
    for kind in ("call_started", "queued", "offered", "answered", "overflowed"):
        assert not is_terminal(event(kind))
    assert not is_terminal(event("agent_state", key="agent:a1", new="ready"))


async def test_one_send_per_finished_interaction_with_every_column(
    engine: AsyncEngine, writer: InteractionWriter
) -> None:
    clock, sink = Clock(), Sink()
    writeback = WriteBack(engine, sink, writer=writer, clock=clock, delay=1.0)
    feed(writer, writeback, answered_call("L1") + abandoned_call("L2") + waiting_call("L3"))
    feed(writer, writeback, [TimelineEvent("agent:a1:x", "agent:a1", "agent_state", T0, {})])

    assert await writeback.send_due() == 0  # not due before ``delay``
    clock.now += 1.0
    assert await writeback.send_due() == 2

    # L1's "ended" and "call_ended" coalesced into one send; L3 is still waiting in the queue.
    assert sorted(sink.keys) == ["L1", "L2"]
    answered = next(row for row in sink.rows if row["key"] == "L1")
    assert set(answered) == COLUMNS
    assert (answered["outcome"], answered["agent_id"], answered["queue"]) == (
        "answered",
        "a1",
        "sales",
    )
    assert (answered["started_at"], answered["answered_at"], answered["ended_at"]) == (
        T0,
        T0 + 20,
        T0 + 80,
    )
    assert (answered["wait_seconds"], answered["talk_seconds"], answered["hold_seconds"]) == (
        12.0,
        55.0,
        5.0,
    )
    assert answered["ivr_variables"] == {"account": "******"}
    assert answered["agents"] == ["a1"]
    json.dumps(answered)  # JSON-able as it is
    abandoned = next(row for row in sink.rows if row["key"] == "L2")
    assert (abandoned["outcome"], abandoned["wait_seconds"]) == ("abandoned", 30.0)
    stats = writeback.stats
    assert (stats.sent, stats.failed, stats.pending, stats.dropped) == (2, 0, 0, 0)

    clock.now += 60
    assert await writeback.send_due() == 0  # nothing new: nothing sent again
    assert len(sink.rows) == 2


async def test_a_later_fact_sends_the_interaction_again(
    engine: AsyncEngine, writer: InteractionWriter
) -> None:
    clock, sink = Clock(), Sink()
    writeback = WriteBack(engine, sink, writer=writer, clock=clock, delay=1.0)
    events = answered_call("L1")
    feed(writer, writeback, events[:-1])  # the ACD's end, not yet the call's
    clock.now += 1.0
    await writeback.send_due()
    assert sink.rows[0]["ended_at"] == T0 + 80
    assert sink.rows[0]["outcome"] == "answered"

    later = TimelineEvent("acd:callback_failed:L1", "L1", "callback_failed", T0 + 300)
    feed(writer, writeback, [events[-1], later])
    clock.now += 1.0
    assert await writeback.send_due() == 1  # both later facts in one more send
    assert sink.keys == ["L1", "L1"]
    assert sink.rows[1]["outcome"] == "failed"


async def test_a_fact_during_the_send_sends_once_more(
    engine: AsyncEngine, writer: InteractionWriter
) -> None:
    clock = Clock()
    events = answered_call("L1")

    class RacingSink(Sink):
        async def send(self, interaction: Mapping[str, Any]) -> None:
            await super().send(interaction)
            if self.attempts == 1:  # the call model's end arrives while the CRM answers
                feed(writer, writeback, events[-1:])

    sink = RacingSink()
    writeback = WriteBack(engine, sink, writer=writer, clock=clock, delay=1.0)
    feed(writer, writeback, events[:-1])
    clock.now += 1.0
    assert await writeback.send_due() == 1
    assert writeback.pending == ["L1"]
    assert await writeback.send_due() == 0  # coalescing again: due ``delay`` later
    clock.now += 1.0
    assert await writeback.send_due() == 1
    assert sink.keys == ["L1", "L1"]
    assert writeback.pending == []


async def test_a_failing_crm_is_retried_and_nothing_is_lost(
    engine: AsyncEngine, writer: InteractionWriter
) -> None:
    clock = Clock()
    sink = Sink(failures=[ExternalCrmError("down", status=503), ExternalCrmError("down")])
    writeback = WriteBack(engine, sink, writer=writer, clock=clock, delay=1.0, retry_after=30.0)
    feed(writer, writeback, answered_call("L1") + abandoned_call("L2") + abandoned_call("L3"))
    clock.now += 1.0

    assert await writeback.send_due() == 0
    # The CRM is down: one attempt, not one per interaction.
    assert sink.attempts == 1
    assert writeback.pending == ["L1", "L2", "L3"]
    clock.now += 29.0
    assert await writeback.send_due() == 0
    assert sink.attempts == 1  # not before ``retry_after``

    clock.now += 1.0
    assert await writeback.send_due() == 0  # still down (no status: unreachable)
    clock.now += 30.0
    assert await writeback.send_due() == 3
    assert sorted(sink.keys) == ["L1", "L2", "L3"]
    stats = writeback.stats
    assert (stats.sent, stats.failed, stats.pending, stats.dropped) == (3, 2, 0, 0)


async def test_a_refused_row_does_not_hold_up_the_others(
    engine: AsyncEngine, writer: InteractionWriter
) -> None:
    clock = Clock()
    sink = Sink(failures=[ExternalCrmError("unprocessable", status=422)])
    writeback = WriteBack(engine, sink, writer=writer, clock=clock, delay=1.0, retry_after=30.0)
    feed(writer, writeback, abandoned_call("L1") + abandoned_call("L2"))
    clock.now += 1.0
    assert await writeback.send_due() == 1
    assert sink.keys == ["L2"]
    assert writeback.pending == ["L1"]  # kept: the CRM may accept it later
    clock.now += 30.0
    assert await writeback.send_due() == 1
    assert sink.keys == ["L2", "L1"]


async def test_pending_is_bounded_and_the_oldest_dropped(
    engine: AsyncEngine, writer: InteractionWriter
) -> None:
    clock = Clock()
    sink = Sink(failures=[ExternalCrmError("down")])
    writeback = WriteBack(engine, sink, writer=writer, clock=clock, max_pending=3)
    for n in range(5):
        feed(writer, writeback, abandoned_call(f"L{n}", T0 + n))
    assert writeback.pending == ["L2", "L3", "L4"]
    assert (writeback.stats.dropped, writeback.stats.pending) == (2, 3)
    clock.now += 1.0
    await writeback.send_due()  # fails: the three stay
    clock.now += 30.0
    assert await writeback.send_due() == 3
    assert sorted(sink.keys) == ["L2", "L3", "L4"]


async def test_rows_are_read_only_once_committed(engine: AsyncEngine) -> None:
    """The database is away (here: the writer is not running): nothing is read or sent
    until what the timeline said is committed."""
    writer = InteractionWriter(engine, clock=lambda: T0 + 1000)
    clock, sink = Clock(), Sink()
    writeback = WriteBack(engine, sink, writer=writer, clock=clock, flush_timeout=0.05)
    feed(writer, writeback, abandoned_call("L1"))
    clock.now += 1.0
    assert await writeback.send_due() == 0
    assert (sink.attempts, writeback.pending) == (0, ["L1"])
    await writer.start()
    try:
        clock.now += 1.0
        assert await writeback.send_due() == 1
    finally:
        await writer.aclose()
    assert sink.rows[0]["outcome"] == "abandoned"


# -- end to end: the task, HttpCrm and a real HTTP server -------------------------------------


@dataclass
class Crm:
    status: list[int] = field(default_factory=lambda: [200])
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.method, request.path, dict(request.headers), body))
        code = self.status.pop(0) if len(self.status) > 1 else self.status[0]
        if code == 200:
            self.arrived.set()
        return web.json_response({"ok": code == 200}, status=code)


async def test_end_to_end_through_http_crm(engine: AsyncEngine, writer: InteractionWriter) -> None:
    crm = Crm(status=[503, 200])
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", crm.handle)
    server = TestServer(app)
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    settings = ExternalCrmSettings(
        url_template=base + "/customers?phone={phone}",
        write_url=base + "/interactions/{id}",
        headers={"Authorization": "Bearer t0ken"},
        timeout=2.0,
        retries=0,
    )
    try:
        async with aiohttp.ClientSession() as session:
            sink = HttpCrm(settings, session)
            writeback = WriteBack(engine, sink, writer=writer, delay=0.05, retry_after=0.1)
            await writeback.start()
            try:
                feed(writer, writeback, answered_call("L1"))
                await asyncio.wait_for(crm.arrived.wait(), 10)
            finally:
                await writeback.aclose()
    finally:
        await server.close()

    # The first attempt met a 503 and was retried by the task after ``retry_after``.
    assert len(crm.requests) == 2
    assert writeback.stats.sent == 1
    assert writeback.stats.failed == 1
    method, path, headers, body = crm.requests[-1]
    assert (method, path) == ("POST", "/interactions/L1")
    assert headers["Idempotency-Key"] == "L1"
    assert headers["Authorization"] == "Bearer t0ken"
    sent = json.loads(body)
    assert set(sent) == COLUMNS
    assert (sent["key"], sent["outcome"], sent["talk_seconds"]) == ("L1", "answered", 55.0)
    assert sent["ivr_variables"] == {"account": "******"}
    assert crm.requests[0][3] == body  # the retry sent the same row
