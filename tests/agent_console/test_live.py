"""The consoles' live state (agent_console/live.py) with a real ACD service (fake PBX, fake
clock), a real EventBus and a real Hub: what an agent's page and a supervisor's page receive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from support.fake_acd import Clock, FakePbx, acd_config, agent, queue

from acd.events import QueueStatsChanged
from acd.service import AcdService
from acd.store import MemoryStore
from agent_console.config import AlertSettings, ConsoleConfig
from agent_console.hub import Hub, Subscription, agent_topic
from agent_console.live import SUPERVISOR_TOPICS, ConsoleLive
from agent_console.screenpop import ScreenPops
from cti.bus import EventBus
from cti.contracts.console import WrapUpRecorded

Frame = dict[str, Any]


class Page:
    """A page's end of the hub: every frame it was sent, decoded."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.frames: list[Frame] = []
        self.closed: int | None = None
        self.task = asyncio.get_running_loop().create_task(sub.run(self._send, self._close))

    async def _send(self, text: str) -> None:
        self.frames.append(json.loads(text))

    async def _close(self, code: int, reason: str) -> None:
        self.closed = code

    def of(self, type_: str) -> list[Frame]:
        return [f for f in self.frames if f["type"] == type_]

    def take(self) -> list[Frame]:
        frames, self.frames = self.frames, []
        return frames


class SlowPops(ScreenPops):
    """Screen-pops whose store answers only when the test says so."""

    def __init__(self) -> None:
        super().__init__(None)
        self.release = asyncio.Event()

    async def compose(self, call_id: str, number: str, queue: str) -> dict[str, Any]:
        await self.release.wait()
        return await super().compose(call_id, number, queue)


@dataclass
class World:
    service: AcdService
    bus: EventBus
    hub: Hub
    live: ConsoleLive
    clock: Clock
    pbx: FakePbx
    config: ConsoleConfig
    pages: list[Page] = field(default_factory=list)

    def agent_page(self, agent_id: str) -> Page:
        sub = self.hub.connect(
            f"{agent_id}/x", [agent_topic(agent_id)], lambda: self.live.agent_snapshot(agent_id)
        )
        page = Page(sub)
        self.pages.append(page)
        return page

    def supervisor_page(self) -> Page:
        page = Page(self.hub.connect("sup/x", SUPERVISOR_TOPICS, self.live.supervisor_snapshot))
        self.pages.append(page)
        return page

    async def settle(self) -> None:
        """Let the service's call_soon figures, the bus tasks and the page writers run."""
        for _ in range(5):
            await asyncio.sleep(0)
        await self.bus.drain()
        for _ in range(5):
            await asyncio.sleep(0)

    def stats(self, name: str = "sales") -> None:
        """What the routing task's tick publishes for a queue where someone waits."""
        now = self.clock()
        self.bus.publish(QueueStatsChanged(self.service.figures.stats(name, now), now))

    def call(self, call_id: str, number: str = "5551234") -> None:
        self.service.enqueue(call_id, f"PJSIP/trunk-{call_id}", "sales", ani=number)


def _world(pops: Callable[[Clock], ScreenPops] | None = None) -> World:
    clock = Clock()
    bus = EventBus()
    pbx = FakePbx()
    config = acd_config(
        (queue("sales"), queue("support")),
        (agent("a1", {"sales": 5}, ("sales",)), agent("a2", {"support": 5}, ("support",))),
    )
    service = AcdService(config, pbx=pbx, store=MemoryStore(), publish=bus.publish, clock=clock)
    hub = Hub()
    console = ConsoleConfig(alerts=AlertSettings(long_wait=60, min_calls=1))
    live = ConsoleLive(
        hub,
        service,
        pops(clock) if pops is not None else ScreenPops(None, clock=clock),
        lambda: console,
        clock=clock,
    )
    live.attach(bus)
    return World(service, bus, hub, live, clock, pbx, console)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = _world()
    yield w
    await _close(w)


async def _close(w: World) -> None:
    w.hub.close_all()
    for page in w.pages:
        await page.task
    await w.bus.aclose()


async def test_an_agent_page_gets_a_snapshot_then_state_changes(world: World) -> None:
    page = world.agent_page("a1")
    await world.settle()
    (snapshot,) = page.take()
    assert snapshot["type"] == "snapshot"
    assert snapshot["topic"] is None
    items = snapshot["data"]
    assert [(i["topic"], i["type"]) for i in items] == [
        (None, "clock"),
        ("agent:a1", "agent"),
        ("agent:a1", "call"),
        ("agent:a1", "figures"),
    ]
    assert items[0]["data"] == world.clock()
    assert items[1]["data"]["status"] == "logged_out"
    assert items[2]["data"] is None
    assert items[3]["data"]["answered"] == 0

    world.service.login("a1")
    world.service.ready("a1")
    await world.settle()
    frames = page.take()
    assert {f["topic"] for f in frames} == {"agent:a1"}
    statuses = [f["data"]["status"] for f in frames if f["type"] == "agent"]
    assert statuses == ["not_ready", "ready"]
    assert all(f["seq"] > snapshot["seq"] for f in frames)
    assert [f["data"] for f in frames if f["type"] == "call"] == [None, None]


async def test_an_offer_sends_the_call_then_the_screen_pop(world: World) -> None:
    page = world.agent_page("a1")
    other = world.agent_page("a2")
    world.service.login("a1")
    world.service.ready("a1")
    world.call("c1")
    world.service.route_once()
    await world.settle()
    types = [(f["type"], (f["data"] or {}).get("state")) for f in page.frames[1:]]
    offered = types.index(("call", "offered"))
    assert ("screen_pop", None) in types[offered:]
    (call,) = [f["data"] for f in page.of("call") if f["data"] is not None]
    assert call["call_id"] == "c1"
    assert call["number"] == "5551234"
    assert call["queue"] == "sales"
    assert call["direction"] == "inbound"
    (pop,) = page.of("screen_pop")
    assert pop["data"]["call_id"] == "c1"
    assert pop["data"]["number"] == "5551234"
    assert world.live.screen_pops == 1
    # Another agent's page hears nothing of it.
    assert [f["type"] for f in other.frames] == ["snapshot"]

    # A page opened now gets the pop in its snapshot.
    late = world.agent_page("a1")
    await world.settle()
    snap_types = [i["type"] for i in late.frames[0]["data"]]
    assert "screen_pop" in snap_types

    page.take()
    world.service.answered("c1")
    await world.settle()
    connected = [f["data"] for f in page.of("call")]
    assert connected[-1]["state"] == "connected"
    assert connected[-1]["answered_at"] == world.clock()
    figures = page.of("figures")[-1]["data"]
    assert figures["answered"] == 1

    page.take()
    world.clock.advance(30)
    world.service.hangup("c1")
    await world.settle()
    ended = [f["data"] for f in page.of("call") if f["data"] is not None]
    assert ended[0]["state"] == "ended"
    assert ended[0]["call_id"] == "c1"
    assert page.of("figures")[-1]["data"]["dispositions_missing"] == 1
    assert world.live.is_agents_call("a1", "c1")
    assert not world.live.is_agents_call("a2", "c1")

    page.take()
    world.bus.publish(WrapUpRecorded("c1", "a1", "ann", "resolved", "", world.clock()))
    await world.settle()
    assert page.of("call")[-1]["data"] is None
    assert page.of("figures")[-1]["data"]["dispositions_missing"] == 0


async def test_a_pop_that_arrives_after_the_offer_ended_is_not_published() -> None:
    slow: list[SlowPops] = []

    def make(_clock: Clock) -> ScreenPops:
        slow.append(SlowPops())
        return slow[0]

    world = _world(make)
    try:
        page = world.agent_page("a1")
        world.service.login("a1")
        world.service.ready("a1")
        world.call("c1")
        world.service.route_once()
        await asyncio.sleep(0)
        world.service.hangup("c1")  # the caller gives up while a1's phone rings
        slow[0].release.set()
        await world.settle()
        assert page.of("screen_pop") == []
        calls = [f["data"] for f in page.of("call")]
        assert calls[-1] is None
        assert world.live.screen_pops == 0
    finally:
        await _close(world)


async def test_supervisors_get_queue_frames_with_the_30_minute_service_level(
    world: World,
) -> None:
    page = world.supervisor_page()
    await world.settle()
    (snapshot,) = page.take()
    items = snapshot["data"]
    kinds = [(i["topic"], i["type"]) for i in items]
    assert kinds[0] == (None, "clock")
    assert ("queues", "queue") in kinds
    assert ("agents", "agent") in kinds
    assert kinds[-1] == ("worklist", "abandoned")
    queues = {i["data"]["queue"]: i["data"] for i in items if i["type"] == "queue"}
    assert set(queues) == {"sales", "support"}
    assert queues["sales"]["service_level_30m"] is None

    world.service.login("a1")
    world.service.ready("a1")
    world.call("c1")
    world.service.route_once()
    world.clock.advance(5)
    world.service.answered("c1")
    await world.settle()
    sales = [f["data"] for f in page.of("queue") if f["data"]["queue"] == "sales"]
    assert sales[-1]["service_level_30m"] == 1.0
    assert sales[-1]["calls_30m"] == 1
    agents = [f["data"] for f in page.of("agent")]
    assert agents[-1]["agent_id"] == "a1"
    assert agents[-1]["queue"] == "sales"
    assert {f["topic"] for f in page.frames} <= set(SUPERVISOR_TOPICS)


async def test_a_long_wait_raises_an_alert_and_clears_it(world: World) -> None:
    page = world.supervisor_page()
    world.call("c1")
    await world.settle()
    assert page.of("alert") == []
    world.clock.advance(61)
    world.stats()
    world.clock.advance(1)
    world.stats()  # same alert, same text: not sent again
    await world.settle()
    # (The caller waiting past 20 s also brings the 30-minute service level to 0.)
    (raised,) = [f for f in page.of("alert") if f["data"]["kind"] == "long_wait"]
    assert raised["topic"] == "alerts"
    assert raised["data"]["kind"] == "long_wait"
    assert raised["data"]["queue"] == "sales"
    assert raised["data"]["active"] is True
    assert "1 min" in raised["data"]["message"]
    # A page opened while it holds sees it in its snapshot.
    late = world.supervisor_page()
    await world.settle()
    assert any(i["type"] == "alert" for i in late.frames[0]["data"])

    world.service.hangup("c1")  # the caller gives up: nobody waits any more
    await world.settle()
    cleared = [f for f in page.of("alert") if f["data"]["kind"] == "long_wait"][-1]["data"]
    assert cleared["id"] == raised["data"]["id"]
    assert cleared["active"] is False
    assert "sales:long_wait" not in world.live.alerts.active


async def test_a_low_30_minute_service_level_raises_an_alert(world: World) -> None:
    page = world.supervisor_page()
    world.call("c1")
    world.clock.advance(25)  # past the 20 s threshold
    world.service.hangup("c1")
    await world.settle()
    alerts = [f["data"] for f in page.of("alert") if f["data"]["kind"] == "service_level"]
    assert alerts
    assert alerts[-1]["active"] is True
    assert "service level 0 %" in alerts[-1]["message"]


async def test_an_abandoned_call_goes_on_the_worklist_until_that_number_gets_through(
    world: World,
) -> None:
    page = world.supervisor_page()
    world.call("c1", "5551234")
    world.clock.advance(12)
    world.service.hangup("c1")
    await world.settle()
    (frame,) = page.of("abandoned")
    assert frame["topic"] == "worklist"
    (item,) = frame["data"]
    assert (item["key"], item["number"], item["queue"], item["wait"]) == (
        "c1",
        "5551234",
        "sales",
        12.0,
    )

    # The same caller calls again and is answered: off the list.
    world.service.login("a1")
    world.service.ready("a1")
    world.call("c2", "5551234")
    world.service.route_once()
    world.service.answered("c2")
    await world.settle()
    assert page.of("abandoned")[-1]["data"] == []
    assert len(world.live.abandoned) == 0


async def test_a_call_back_from_the_worklist_removes_the_entry(world: World) -> None:
    page = world.supervisor_page()
    world.call("c1", "5551234")
    world.service.hangup("c1")
    await world.settle()
    assert world.live.abandoned_called_back("c1") is True
    assert world.live.abandoned_called_back("c1") is False
    await world.settle()
    assert page.of("abandoned")[-1]["data"] == []


async def test_an_agent_page_never_gets_supervisor_frames(world: World) -> None:
    page = world.agent_page("a1")
    world.service.login("a1")
    world.service.ready("a1")
    world.call("c1")
    world.service.route_once()
    world.service.answered("c1")
    world.call("c2", "5550000")
    world.service.hangup("c2")
    world.clock.advance(100)
    world.stats()
    await world.settle()
    assert len(page.frames) > 3
    assert {f["topic"] for f in page.frames} == {None, "agent:a1"}
    assert {f["type"] for f in page.frames} <= {
        "snapshot",
        "agent",
        "call",
        "screen_pop",
        "figures",
    }


async def test_close_pages_ends_every_page_of_a_user_with_4401(world: World) -> None:
    mine = Page(world.hub.connect("ann/one", [agent_topic("a1")], []))
    also = Page(world.hub.connect("ann/two", [agent_topic("a1")], []))
    other = Page(world.hub.connect("anna/one", [agent_topic("a2")], []))
    world.pages.extend([mine, also, other])
    world.live.close_pages("ann")
    await asyncio.wait_for(asyncio.gather(mine.task, also.task), 2)
    assert (mine.closed, also.closed) == (4401, 4401)
    assert not other.task.done()
    assert other.closed is None
