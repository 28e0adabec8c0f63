"""The hub with in-memory pages: fan-out, drops, serialise-once, snapshot-then-delta."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_console.hub import (
    CLOSE_GOING_AWAY,
    CLOSE_SLOW_CONSUMER,
    Hub,
    Subscription,
    agent_topic,
)


class Page:
    """A fake browser: records what it is sent; a stalled one never finishes a send."""

    def __init__(self, *, stalled: bool = False) -> None:
        self.texts: list[str] = []
        self.closed: tuple[int, str] | None = None
        self.stalled = stalled
        self._never = asyncio.Event()

    async def send(self, text: str) -> None:
        if self.stalled:
            await self._never.wait()
        self.texts.append(text)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(text) for text in self.texts]


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_snapshot_first_then_deltas_in_order() -> None:
    hub = Hub()
    hub.publish("queues", "stats", {"q": "sales", "waiting": 1})  # before: only in snapshot
    sub = hub.connect("p1", ["queues"], lambda: [{"q": "sales", "waiting": 1}])
    page = Page()
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(sub.run(page.send, page.close))
        hub.publish("queues", "stats", {"q": "sales", "waiting": 2})
        hub.publish("agents", "state", {"agent": "a1"})  # not subscribed
        hub.publish("queues", "stats", {"q": "sales", "waiting": 3})
        await _settle()
        hub.disconnect(sub)
    assert page.frames == [
        {"seq": 1, "topic": None, "type": "snapshot", "data": [{"q": "sales", "waiting": 1}]},
        {"seq": 2, "topic": "queues", "type": "stats", "data": {"q": "sales", "waiting": 2}},
        {"seq": 4, "topic": "queues", "type": "stats", "data": {"q": "sales", "waiting": 3}},
    ]
    # Closed by us (unsubscribed), not dropped.
    assert page.closed == (CLOSE_GOING_AWAY, "unsubscribed")
    assert hub.stats.clients == 0


async def test_compact_json_and_same_object_for_every_page() -> None:
    hub = Hub()
    subs = [hub.connect(f"p{i}", ["agents"], []) for i in range(3)]
    hub.publish("agents", "state", {"agent": "a1", "state": "ready"})
    queued = [sub._queue.get_nowait() for sub in subs for _ in range(2)][1::2]
    expected = '{"seq":1,"topic":"agents","type":"state","data":{"agent":"a1","state":"ready"}}'
    assert queued[0] == expected
    assert all(text is queued[0] for text in queued)


async def test_serialised_once_per_publish_whatever_the_number_of_pages() -> None:
    hub = Hub()
    for i in range(50):
        hub.connect(f"p{i}", ["queues"], [])
    before = hub.stats.serialisations  # one per snapshot
    assert before == 50
    for n in range(10):
        hub.publish("queues", "stats", {"n": n})
    hub.publish("nobody-listens", "x", {})  # no page: not even serialised
    assert hub.stats.serialisations == before + 10
    assert hub.stats.published == 11


async def test_stalled_page_dropped_while_100_others_get_everything_in_order() -> None:
    hub = Hub(queue_size=64)
    pages = [Page() for _ in range(100)]
    stalled = Page(stalled=True)
    subs = [hub.connect(f"p{i}", ["queues"], []) for i in range(100)]
    slow_sub = hub.connect("stalled", ["queues"], [], queue_size=4)
    async with asyncio.TaskGroup() as tasks:
        for sub, page in zip(subs, pages, strict=True):
            tasks.create_task(sub.run(page.send, page.close))
        slow_task = tasks.create_task(slow_sub.run(stalled.send, stalled.close))
        for n in range(500):
            hub.publish("queues", "stats", {"n": n})
            if n % 10 == 0:
                await asyncio.sleep(0)  # the event loop turns, as between AMI events
        await _settle()
        # The stalled page's writer is done even though its send never returned.
        assert slow_task.done()
        for sub in subs:
            hub.disconnect(sub)
    assert stalled.closed == (CLOSE_SLOW_CONSUMER, "too slow: reconnect and resync")
    assert slow_sub.dropped
    assert stalled.texts == []
    for page in pages:
        assert [frame["data"]["n"] for frame in page.frames[1:]] == list(range(500))
    stats = hub.stats
    assert stats.dropped == 1
    assert stats.sent == 100 * 501
    assert stats.clients == 0


async def test_full_queue_drops_even_without_a_writer_and_frees_queued_frames() -> None:
    hub = Hub(queue_size=3)
    sub = hub.connect("p", ["queues"], [])
    for n in range(3):
        hub.publish("queues", "stats", {"n": n})
    assert sub.dropped
    assert sub.pending == 0
    # Nothing more is queued for a dropped page.
    hub.publish("queues", "stats", {"n": 9})
    assert sub.pending == 0
    page = Page()
    await sub.run(page.send, page.close)  # returns at once: it was already stopped
    assert page.closed is not None
    assert page.closed[0] == CLOSE_SLOW_CONSUMER


async def test_failing_transport_ends_writer_without_close() -> None:
    hub = Hub()
    sub = hub.connect("p", ["queues"], [])
    closed: list[int] = []

    async def send(text: str) -> None:
        raise ConnectionResetError("peer gone")

    async def close(code: int, reason: str) -> None:
        closed.append(code)

    await sub.run(send, close)
    assert closed == []
    assert hub.stats.clients == 0


async def test_agent_topic_only_reaches_that_agent() -> None:
    hub = Hub()
    mine = hub.connect("a1-page", [agent_topic("a1")], [])
    other = hub.connect("a2-page", [agent_topic("a2")], [])
    hub.publish(agent_topic("a1"), "offer", {"call": "c1"})
    assert (mine.pending, other.pending) == (2, 1)


async def test_reconnect_gets_fresh_snapshot() -> None:
    state = {"sales": 0}
    hub = Hub(queue_size=2)

    def bump(n: int) -> None:
        state["sales"] = n
        hub.publish("queues", "stats", {"sales": n})

    first = hub.connect("p", ["queues"], lambda: [dict(state)])
    bump(1)
    bump(2)  # queue of 2 already holds snapshot + 1: dropped
    assert first.dropped
    again = hub.connect("p", ["queues"], lambda: [dict(state)])
    page = Page()
    bump(3)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(again.run(page.send, page.close))
        await _settle()
        hub.close_all()
    assert [f["data"] for f in page.frames] == [[{"sales": 2}], {"sales": 3}]
    assert page.frames[0]["seq"] == 2
    assert page.closed == (CLOSE_GOING_AWAY, "server shutting down")


async def test_close_client_stops_only_that_clients_pages() -> None:
    hub = Hub()
    tab1 = hub.connect("session-a", ["agents"], [])
    tab2 = hub.connect("session-a", ["queues"], [])
    other = hub.connect("session-b", ["agents"], [])
    assert hub.close_client("session-a", code=4001, reason="signed out") == 2
    page = Page()
    await tab1.run(page.send, page.close)
    assert page.closed == (4001, "signed out")
    assert tab2.close_code == 4001
    assert other.close_code is None
    hub.publish("agents", "state", {})
    assert other.pending == 2
    assert hub.stats.clients == 1


def test_queue_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Hub(queue_size=0)


class Model:
    """A page's view rebuilt from frames, the way the console's script does it."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.last_seq = -1

    def apply(self, frame: dict[str, Any]) -> None:
        assert frame["seq"] > self.last_seq, "duplicate or out of order frame"
        self.last_seq = frame["seq"]
        if frame["type"] == "snapshot":
            self.values = {item["key"]: item["value"] for item in frame["data"]}
        else:
            data = frame["data"]
            # Deltas are increments: applying one twice or missing one shows up as a wrong sum.
            self.values[data["key"]] = self.values.get(data["key"], 0) + data["inc"]


async def _snapshot_then_deltas(seed: int, pages: int, publishes: int) -> None:
    rng = random.Random(seed)
    hub = Hub(queue_size=publishes + 2)
    truth: dict[str, int] = {}
    joined: list[tuple[Subscription, Page]] = []

    async def publisher() -> None:
        for _ in range(publishes):
            key = rng.choice("abc")
            truth[key] = truth.get(key, 0) + 1
            hub.publish("queues", "inc", {"key": key, "inc": 1})
            await asyncio.sleep(0) if rng.random() < 0.5 else None

    async def joiner(tasks: asyncio.TaskGroup) -> None:
        for i in range(pages):
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)
            sub = hub.connect(
                f"p{i}",
                ["queues"],
                lambda: [{"key": k, "value": v} for k, v in truth.items()],
            )
            page = Page()
            joined.append((sub, page))
            tasks.create_task(sub.run(page.send, page.close))

    async with asyncio.TaskGroup() as tasks:
        await asyncio.gather(publisher(), joiner(tasks))
        await _settle()
        for sub, _ in joined:
            hub.disconnect(sub)
    assert hub.stats.dropped == 0
    for sub, page in joined:
        model = Model()
        for frame in page.frames:
            model.apply(frame)
        assert model.values == truth, f"page {sub.client_id} is stale"


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), pages=st.integers(1, 8), publishes=st.integers(0, 60))
def test_snapshot_then_deltas_no_gap_no_duplicate(seed: int, pages: int, publishes: int) -> None:
    asyncio.run(_snapshot_then_deltas(seed, pages, publishes))
