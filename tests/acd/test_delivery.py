"""Delivery outcomes the PBX never reports by itself: a Dial that fails at once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from support.fake_acd import Clock, FakePbx, Harness, acd_config, agent, queue, settle

from acd.agent_state import AgentStatus
from acd.config import AcdConfig
from acd.events import CallAnswered, CallOffered, CallRequeued
from acd.ports import DeliveryError
from acd.service import AcdService
from acd.store import MemoryStore


@dataclass
class SilentDialPbx(FakePbx):
    """A PBX whose Dial may end at once with no event: ``statuses`` is what ``dial_status``
    answers for each channel (missing: still dialing)."""

    statuses: dict[str, str] = field(default_factory=dict)
    dial_checks: tuple[float, ...] = (0.0, 0.0)
    asked: list[str] = field(default_factory=list)

    async def dial_status(self, channel: str) -> str:
        self.asked.append(channel)
        status = self.statuses.get(channel)
        if status is None:
            return ""
        if status == "gone":
            raise DeliveryError("no such channel")
        return status


def harness(config: AcdConfig, pbx: SilentDialPbx) -> Harness:
    events: list[object] = []
    store, clock = MemoryStore(), Clock()
    service = AcdService(config, pbx=pbx, store=store, publish=events.append, clock=clock)
    return Harness(service, pbx, store, clock, events)


async def run(pbx: SilentDialPbx) -> None:
    for _ in range(4):
        await settle()
        await asyncio.sleep(0)


async def test_a_dial_that_ended_at_once_fails_the_offer_and_the_next_agent_is_offered() -> None:
    config = acd_config(
        (queue("sales"),),
        (agent("a1", {"sales": 5}, ("sales",)), agent("a2", {"sales": 5}, ("sales",))),
    )
    pbx = SilentDialPbx(statuses={"PJSIP/caller-1": "CHANUNAVAIL"})
    h = harness(config, pbx)
    h.ready("a1", "a2")
    call = h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    entered = call.entered_at
    h.service.route_once()
    await run(pbx)
    requeued = h.of(CallRequeued)
    assert [(e.agent_id, e.status) for e in requeued] == [("a1", "CHANUNAVAIL")]
    assert h.service.agents["a1"].status is AgentStatus.NOT_READY
    assert h.service.agents["a1"].state.reason == "no answer"
    assert call.state == "waiting"
    assert call.entered_at == entered
    # The next pass offers it to a2; this Dial rings (DialBegin names the leg): no question.
    pbx.statuses.clear()
    pbx.asked.clear()
    h.service.route_once()
    h.service.dial_began("c1", "leg-a2")
    await run(pbx)
    assert pbx.asked == []
    h.service.answered("c1")
    assert [(e.call_id, e.agent_id) for e in h.of(CallOffered)] == [("c1", "a1"), ("c1", "a2")]
    assert [e.agent_id for e in h.of(CallAnswered)] == ["a2"]
    assert h.service.delivery_failures == 1
    await h.service.aclose()


async def test_a_dial_still_running_or_a_gone_channel_changes_nothing() -> None:
    config = acd_config((queue("sales"),), (agent("a1", {"sales": 5}, ("sales",)),))
    pbx = SilentDialPbx()
    h = harness(config, pbx)
    h.ready("a1")
    call = h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    await run(pbx)
    assert pbx.asked == ["PJSIP/caller-1", "PJSIP/caller-1"]  # every check, nothing yet
    assert call.state == "offered"
    assert h.service.agents["a1"].status is AgentStatus.RESERVED
    assert h.of(CallRequeued) == []

    gone = SilentDialPbx(statuses={"PJSIP/caller-1": "gone"})
    h2 = harness(config, gone)
    h2.ready("a1")
    h2.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h2.service.route_once()
    await run(gone)
    assert gone.asked == ["PJSIP/caller-1"]  # stops asking: the Hangup tells the rest
    assert h2.of(CallRequeued) == []
    await h.service.aclose()
    await h2.service.aclose()


async def test_close_cancels_the_dial_watch() -> None:
    config = acd_config((queue("sales"),), (agent("a1", {"sales": 5}, ("sales",)),))
    pbx = SilentDialPbx(dial_checks=(3600.0,))
    h = harness(config, pbx)
    h.ready("a1")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    await settle()
    async with asyncio.timeout(2):
        await h.service.aclose()
    assert pbx.asked == []
