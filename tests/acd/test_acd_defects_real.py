"""Real-call regression tests for the ACD defects of issue 11 (each one failed on the old
``acd/service.py``): the sandbox Asterisk, SIPp callers and phones, the whole server."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from support.acd_world import ServerProcess, acd_world, server_calls, server_config
from support.pbx import PbxHandle
from support.server import eventually, free_tcp_port
from support.sipp import SippProcess, start_caller, start_phone

import acd.asterisk as acd_asterisk
from acd.agent_state import AgentStatus
from acd.asterisk import list_channels
from acd.events import AcdRepaired, CallAnswered, CallEnded, CallOffered, CallQueued, CallRequeued
from acd.runtime import ChannelView
from crm_bridge.schema import Interaction
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


def test_talk_time_of_a_call_answered_before_a_kill_9_counts_from_the_answer(
    pbx: PbxHandle, tmp_path: Path
) -> None:
    pbx.hangup_all()
    http_port = free_tcp_port()
    config = server_config(pbx, tmp_path / "config", http_port)
    log = tmp_path / "ctiserver.log"
    sipp_logs = tmp_path / "sipp"
    sipp_logs.mkdir()
    processes: list[SippProcess] = []
    first = ServerProcess(config, http_port, log)
    second: ServerProcess | None = None
    try:
        first.wait_until("the server up", first.answers)
        first.sign_in()
        processes.append(
            start_phone(pbx.phone_port("agent1001"), ring_ms=300, talk_ms=None, log_dir=sipp_logs)
        )
        first.post("/acd/agents/agent1001/login")
        first.post("/acd/agents/agent1001/ready")
        # The caller talks to agent1001 until it hangs up, 14 s after the IVR answered.
        processes.append(
            start_caller(
                pbx.sip_port,
                "8101",
                first_key_ms=1,
                hold_ms=14_000,
                ani="5550001",
                timeout=60,
                log_dir=sipp_logs,
            )
        )
        server = first
        on_agent = first.wait_until(
            "the call on agent1001",
            lambda: [c for c in server_calls(server) if c["state"] == "connected"],
        )[0]
        time.sleep(4.0)  # talking before the crash
        first.kill()
        time.sleep(1.0)
        second = ServerProcess(config, http_port, log)
        server = second
        second.wait_until("the server up again", second.answers)
        second.sign_in()
        second.wait_until(
            "the call found on agent1001 again",
            lambda: [c for c in server_calls(server) if c["call_id"] == on_agent["call_id"]],
        )

        def ended_row() -> tuple[float, float, float] | None:
            with sqlite3.connect(tmp_path / "config" / "crm.sqlite3") as db:
                row = db.execute(
                    "SELECT answered_at, ended_at, talk_seconds FROM interactions WHERE key = ?",
                    (on_agent["call_id"],),
                ).fetchone()
            if row is None or None in row:
                return None
            return (float(row[0]), float(row[1]), float(row[2]))

        answered_at, ended_at, talk = second.wait_until("the call's end logged", ended_row, 30)
        # Talk counts from the answer (before the crash), as the row's own times say: not
        # from the moment the restarted server found the call again.
        assert ended_at - answered_at > 10
        assert abs(talk - (ended_at - answered_at)) < 1.0, (talk, answered_at, ended_at)
    finally:
        first.stop()
        if second is not None:
            second.stop()
        for process in processes:
            process.stop()
        pbx.hangup_all()


async def test_the_timed_wrap_up_is_written_to_the_interaction(
    pbx: PbxHandle, tmp_path: Path
) -> None:
    async with acd_world(pbx, tmp_path) as world:
        world.phone("agent1001", talk_ms=2000)  # the agent hangs up after 2 s of talk
        await world.ready("agent1001")
        mark = world.bus.mark()
        world.caller("8101", hold_ms=20_000)
        call = await world.queued("sales", mark)
        ended = await world.bus.wait_for(
            CallEnded, lambda e: e.call_id == call.call_id, since=mark, within=20
        )
        # Wrap-up is 1 s (acd.yaml defaults), then ready again.
        await eventually(
            "agent1001 ready after wrap-up",
            lambda: world.status("agent1001") is AgentStatus.READY,
            within=10,
        )
        writer, engine = world.server.crm_writer, world.server.crm_engine
        assert writer is not None
        assert engine is not None

        async def row() -> Interaction:
            await writer.flush(10)
            async with engine.connect() as conn:
                found = (
                    await conn.execute(select(Interaction).where(Interaction.key == call.call_id))
                ).one()
            return Interaction(**found._asdict())

        logged = await row()
        assert logged.wrap_seconds is not None, "wrap_seconds never written"
        assert logged.wrap_ended_at is not None
        assert 0.8 <= logged.wrap_seconds <= 3.0
        assert logged.ended_at is not None
        assert logged.wrap_ended_at - ended.at == pytest.approx(logged.wrap_seconds, abs=0.05)
        assert world.server.bus.uncatalogued == set()
