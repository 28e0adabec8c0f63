"""Real-call regression tests for the ACD defects of issue 11 (each one failed on the old
``acd/service.py``): the sandbox Asterisk, SIPp callers and phones, the whole server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.acd_world import acd_world
from support.pbx import PbxHandle

import acd.asterisk as acd_asterisk
from acd.agent_state import AgentStatus
from acd.asterisk import list_channels
from acd.events import AcdRepaired, CallAnswered, CallEnded, CallOffered, CallQueued, CallRequeued
from acd.runtime import ChannelView
from cti.ami import AmiClient

pytestmark = pytest.mark.pbx


async def test_a_dial_that_fails_at_once_offers_the_call_to_the_next_agent(
    pbx: PbxHandle, tmp_path: Path
) -> None:
    async with acd_world(pbx, tmp_path) as world:
        world.phone("agent1002")
        # agent1001's phone is not known to Asterisk: Dial() fails at once ("Everyone is
        # busy/congested", CHANUNAVAIL), as for an unreachable phone or no RTP port free. No
        # DialBegin, no DialEnd: the caller is simply back in the wait loop.
        await world.post("/acd/agents/agent1001/login", {"endpoint": "PJSIP/agent1099"})
        await world.post("/acd/agents/agent1001/ready")  # longest idle: offered first
        await asyncio.sleep(0.2)
        await world.ready("agent1002")

        mark = world.bus.mark()
        world.caller("8103", hold_ms=20_000)
        call = await world.queued("general", mark)
        first = await world.bus.wait_for(CallOffered, since=mark, within=15)
        assert first.agent_id == "agent1001"
        # The offer fails at once (not at the next reconciliation, 3-8 s later) ...
        requeued = await world.bus.wait_for(
            CallRequeued, lambda e: e.call_id == call.call_id, since=mark, within=3
        )
        assert (requeued.agent_id, requeued.status) == ("agent1001", "CHANUNAVAIL")
        # ... the agent goes not ready "no answer" (as for a phone that does not answer) ...
        assert world.status("agent1001") is AgentStatus.NOT_READY
        assert world.server.acd is not None
        assert world.server.acd.service.agents["agent1001"].state.reason == "no answer"
        # ... and the same call, keeping its place, goes to the next agent.
        answered = await world.bus.wait_for(
            CallAnswered, lambda e: e.call_id == call.call_id, since=mark, within=10
        )
        assert answered.agent_id == "agent1002"
        assert answered.at - requeued.at < 3
        assert world.bus.of_type(CallQueued, mark) == [call]
        offers = [(o.call_id, o.agent_id) for o in world.bus.of_type(CallOffered, mark)]
        assert offers == [(call.call_id, "agent1001"), (call.call_id, "agent1002")]


async def test_a_reconcile_racing_a_hang_up_does_not_adopt_the_ended_call(
    pbx: PbxHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with acd_world(pbx, tmp_path) as world:
        world.phone("agent1001", talk_ms=None)  # talks until the caller leaves
        await world.ready("agent1001")
        mark = world.bus.mark()
        world.caller("8101", hold_ms=6000)
        call = await world.queued("sales", mark)
        await world.bus.wait_for(
            CallAnswered, lambda e: e.call_id == call.call_id, since=mark, within=15
        )
        acd = world.server.acd
        assert acd is not None
        listed: list[ChannelView] = []

        async def list_then_hang_up(ami: AmiClient) -> list[ChannelView]:
            # The channel list is taken while the call is up; the caller leaves before the
            # reconciliation applies it (15 ms after, in the field; here the whole call end).
            views = await list_channels(ami)
            listed.extend(views)
            await world.bus.wait_for(
                CallEnded, lambda e: e.call_id == call.call_id, since=mark, within=15
            )
            return views

        monkeypatch.setattr(acd_asterisk, "list_channels", list_then_hang_up)
        await acd.feed.reconcile()
        assert any(v.uniqueid == call.call_id and v.bridge_id for v in listed)
        # Live events win: the ended call is not adopted again, and the agent is not put
        # back on a call that has no channel.
        adopted = [r for r in world.bus.of_type(AcdRepaired, mark) if r.call_id == call.call_id]
        assert adopted == []
        assert call.call_id not in acd.service.calls
        assert world.status("agent1001") in (AgentStatus.WRAP_UP, AgentStatus.READY)
        assert acd.service.agents["agent1001"].call_id is None
