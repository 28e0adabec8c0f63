"""Real-call regression tests for the ACD defects of issue 11 (each one failed on the old
``acd/service.py``): the sandbox Asterisk, SIPp callers and phones, the whole server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.acd_world import acd_world
from support.pbx import PbxHandle

from acd.agent_state import AgentStatus
from acd.events import CallAnswered, CallOffered, CallQueued, CallRequeued

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
