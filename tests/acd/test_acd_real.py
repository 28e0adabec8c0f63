"""The ACD on the real sandbox Asterisk, with SIPp callers and SIPp agent phones.

Callers dial a test IVR whose routes send each number straight to one ACD queue (8101 sales,
8102 support, 8103 general, 8104 short, 8105 asks for a callback). Two agents, two phones:

    agent1001  sales 5            queues sales, general, short
    agent1002  support 5, sales 1 queues sales, support, general

``sales`` needs sales 3, so only agent1001 may take it even when agent1002 has waited longer;
``support`` only agent1002; ``general`` either (ring-no-answer moves the call from one to the
other); ``short`` overflows to voicemail after 4 s. Agents are driven through the HTTP API, as
the console will drive them. Every test awaits what Asterisk did (the phone's own log, AMI
channels) as well as what the ACD published on the bus.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.acd_world import (
    RING_TIMEOUT,
    ServerProcess,
    acd_world,
    server_calls,
    server_config,
    server_metrics,
)
from support.pbx import PbxHandle
from support.server import eventually, free_tcp_port
from support.sipp import SippProcess, start_caller, start_phone

from acd.agent_state import AgentStateChanged, AgentStatus
from acd.events import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallRequeued,
)
from crm_bridge.schema import Interaction
from cti.ami import Event

pytestmark = pytest.mark.pbx


async def test_calls_reach_agents_with_the_right_skills(pbx: PbxHandle, tmp_path: Path) -> None:
    async with acd_world(pbx, tmp_path) as world:
        phones = {agent: world.phone(agent) for agent in ("agent1001", "agent1002")}
        # agent1002 becomes ready first: the longest idle, yet lacks sales level 3.
        await world.ready("agent1002")
        await asyncio.sleep(0.2)
        await world.ready("agent1001")

        mark = world.bus.mark()
        world.caller("8101", hold_ms=20_000)
        sales = await world.queued("sales", mark)
        answered = await world.bus.wait_for(
            CallAnswered, lambda e: e.call_id == sales.call_id, since=mark, within=20
        )
        assert answered.agent_id == "agent1001"
        phones["agent1001"].wait_for_event("answered ", 5)

        mark = world.bus.mark()
        world.caller("8102", hold_ms=20_000)
        support = await world.queued("support", mark)
        answered = await world.bus.wait_for(
            CallAnswered, lambda e: e.call_id == support.call_id, since=mark, within=20
        )
        assert answered.agent_id == "agent1002"
        phones["agent1002"].wait_for_event("answered ", 5)
        offers = world.bus.of_type(CallOffered)
        assert [(o.call_id, o.agent_id) for o in offers] == [
            (sales.call_id, "agent1001"),
            (support.call_id, "agent1002"),
        ]

        # The phones hang up after 4 s of talk: wrap-up (1 s), then ready again.
        await eventually(
            "both calls ended",
            lambda: {e.agent_id for e in world.bus.of_type(CallEnded)} == set(phones),
            within=20,
        )
        await eventually(
            "both agents ready after wrap-up",
            lambda: all(world.status(a) is AgentStatus.READY for a in phones),
            within=10,
        )
        causes = [
            (e.old.value, e.new.value)
            for e in world.bus.of_type(AgentStateChanged)
            if e.agent_id == "agent1001"
        ]
        assert causes[-5:] == [
            ("ready", "reserved"),
            ("reserved", "ringing"),
            ("ringing", "on_call"),
            ("on_call", "wrap_up"),
            ("wrap_up", "ready"),
        ], causes

        # The interaction log: one row per call (IVR, call model and ACD agree on the key),
        # with its queue, agent, outcome and phases.
        writer, engine = world.server.crm_writer, world.server.crm_engine
        assert writer is not None
        assert engine is not None
        await writer.flush(10)
        async with engine.connect() as conn:
            rows = {row.key: row for row in (await conn.execute(select(Interaction))).all()}
        assert set(rows) == {sales.call_id, support.call_id}
        for call, queue, agent, flow in (
            (sales, "sales", "agent1001", "to_sales"),
            (support, "support", "agent1002", "to_support"),
        ):
            row = rows[call.call_id]
            assert (row.queue, row.agent_id, row.outcome, row.ivr_flow) == (
                queue,
                agent,
                "answered",
                flow,
            )
            assert (row.ani, row.dnis, row.agents) == (
                "5551234",
                "8101" if queue == "sales" else "8102",
                [agent],
            )
            assert row.started_at <= row.queued_at <= row.answered_at <= row.ended_at
            assert row.talk_seconds is not None
            assert row.talk_seconds > 2


async def test_ring_no_answer_sets_the_agent_not_ready_and_offers_the_call_again(
    pbx: PbxHandle, tmp_path: Path
) -> None:
    async with acd_world(pbx, tmp_path) as world:
        silent = world.phone("agent1001", ring_ms=60_000)  # rings, never picks up
        world.phone("agent1002")
        await world.ready("agent1001")  # longest idle: offered first
        await asyncio.sleep(0.2)
        await world.ready("agent1002")

        mark = world.bus.mark()
        world.caller("8103", hold_ms=25_000)
        call = await world.queued("general", mark)
        first = await world.bus.wait_for(CallOffered, since=mark, within=15)
        assert first.agent_id == "agent1001"
        requeued = await world.bus.wait_for(
            CallRequeued, lambda e: e.call_id == call.call_id, since=mark, within=RING_TIMEOUT + 10
        )
        assert (requeued.agent_id, requeued.status) == ("agent1001", "NOANSWER")
        answered = await world.bus.wait_for(
            CallAnswered, lambda e: e.call_id == call.call_id, since=mark, within=15
        )
        assert answered.agent_id == "agent1002"
        # The same call, with its place: the wait counts from when it first entered.
        assert answered.wait >= RING_TIMEOUT - 0.5
        assert world.bus.of_type(CallQueued, mark) == [call]
        # The phone that did not answer was cancelled, and its agent is not ready "no answer".
        silent.wait_for_event("hangup: cancel ", 5)
        assert world.status("agent1001") is AgentStatus.NOT_READY
        assert world.server.acd is not None
        assert world.server.acd.service.agents["agent1001"].state.reason == "no answer"
        agents = {a["agent_id"]: a for a in await world.get("/acd/agents")}
        assert (agents["agent1001"]["status"], agents["agent1001"]["reason"]) == (
            "not_ready",
            "no answer",
        )


async def test_a_caller_hanging_up_while_the_phone_rings_stops_the_ringing(
    pbx: PbxHandle, tmp_path: Path
) -> None:
    async with acd_world(pbx, tmp_path) as world:
        ringing = world.phone("agent1001", ring_ms=60_000)
        await world.ready("agent1001")
        mark = world.bus.mark()
        # Hangs up 3 s after the IVR answered: the agent's phone is ringing by then (the ring
        # timeout is 5 s).
        caller = world.caller("8101", hold_ms=3000)
        call = await world.queued("sales", mark)
        await world.bus.wait_for(
            AgentStateChanged,
            lambda e: e.agent_id == "agent1001" and e.new is AgentStatus.RINGING,
            since=mark,
        )
        abandoned = await world.bus.wait_for(
            CallAbandoned, lambda e: e.call_id == call.call_id, since=mark, within=15
        )
        assert abandoned.while_ringing == "agent1001"
        # Asterisk cancelled the INVITE at the phone: the ringing stopped.
        ringing.wait_for_event("hangup: cancel ", 5)
        caller.wait(15)
        # An abandon is not the agent's fault: ready again, not "no answer".
        await eventually("agent1001 ready", lambda: world.status("agent1001") is AgentStatus.READY)
        assert not world.bus.of_type(CallRequeued, mark)
        stats = {q["queue"]: q for q in await world.get("/acd/queues")}
        assert (stats["sales"]["abandoned"], stats["sales"]["answered"]) == (1, 0)


async def test_a_caller_overflows_to_voicemail_after_the_maximum_wait(
    pbx: PbxHandle, tmp_path: Path
) -> None:
    async with acd_world(pbx, tmp_path) as world:
        # Logged in but not ready: nobody takes the call, it waits out "short"'s 4 s.
        await world.post("/acd/agents/agent1001/login")
        mark = world.bus.mark()
        world.caller("8104", hold_ms=15_000)
        call = await world.queued("short", mark)
        overflow = await world.bus.wait_for(
            CallOverflowed, lambda e: e.call_id == call.call_id, since=mark, within=15
        )
        assert (overflow.kind, overflow.target, overflow.reason) == (
            "voicemail",
            "100@default",
            "max_wait",
        )
        assert overflow.at - call.entered_at >= 4
        assert world.server.acd is not None

        async def application() -> str:
            result = await world.server.ami.action("CoreShowChannels")
            for item in result.events:
                if item.get("Uniqueid") == call.call_id:
                    return item.get("Application") or ""
            return ""

        deadline = asyncio.get_running_loop().time() + 10
        seen = ""
        while asyncio.get_running_loop().time() < deadline:
            seen = await application()
            if seen == "VoiceMail":
                break
            await asyncio.sleep(0.2)
        assert seen == "VoiceMail", seen
        stats = {q["queue"]: q for q in await world.get("/acd/queues")}
        assert (stats["short"]["overflowed"], stats["short"]["abandoned"]) == (1, 0)


async def test_a_callback_is_placed_when_the_callers_turn_comes(
    pbx: PbxHandle, tmp_path: Path
) -> None:
    async with acd_world(pbx, tmp_path) as world:
        phone = world.phone("agent1001", talk_ms=3000)
        # Raw AMI events stay off the domain bus; the test taps the PBX feed for them.
        pbx_events: list[Event] = []
        untap = world.server.pbx_feed.subscribe(Event, pbx_events.append)
        await world.ready("agent1001")
        # A takes the only sales agent.
        mark = world.bus.mark()
        world.caller("8101", hold_ms=20_000)
        first = await world.queued("sales", mark)
        await world.bus.wait_for(CallAnswered, lambda e: e.call_id == first.call_id, since=mark)
        # B asks for a callback (the IVR records it and hangs up), then C calls in and waits.
        world.caller("8105", hold_ms=10_000, ani="5552000")
        callback = await world.bus.wait_for(
            CallQueued, lambda e: e.kind == "callback", since=mark, within=15
        )
        world.caller("8101", hold_ms=30_000)
        later = await world.bus.wait_for(
            CallQueued, lambda e: e.kind == "voice" and e.call_id != first.call_id, since=mark
        )
        # When agent1001 is free again, B's turn comes before C's: the agent's phone is rung
        # first, and once it answers the customer's number is dialed.
        offered = await world.bus.wait_for(
            CallOffered, lambda e: e.call_id != first.call_id, since=mark, within=20
        )
        assert offered.call_id == callback.call_id, (offered, later)
        await world.bus.wait_for(
            CallAnswered, lambda e: e.call_id == callback.call_id, since=mark, within=15
        )

        def customer_answered(event: Event) -> bool:
            return (
                event.name == "DialEnd"
                and (event.get("DestChannel") or "").startswith("Local/5552000@sandbox-pstn")
                and event.get("DialStatus") == "ANSWER"
            )

        await eventually(
            "the customer's leg answered",
            lambda: any(customer_answered(e) for e in pbx_events),
            within=15,
        )
        untap()
        phone.wait_for_event("answered ", 5)
        # Then C is served by the same agent, and the callback is not failed.
        await world.bus.wait_for(
            CallAnswered, lambda e: e.call_id == later.call_id, since=mark, within=30
        )
        assert await world.get("/acd/callbacks/failed") == []


# -- restart and crash -----------------------------------------------------------------------


def test_kill_9_with_calls_waiting_and_on_an_agent_loses_nothing(
    pbx: PbxHandle, tmp_path: Path
) -> None:
    pbx.hangup_all()
    http_port = free_tcp_port()
    config = server_config(pbx, tmp_path / "config", http_port)
    log = tmp_path / "ctiserver.log"
    (tmp_path / "sipp").mkdir()
    processes: list[SippProcess] = []
    first = ServerProcess(config, http_port, log)
    second: ServerProcess | None = None
    try:
        first.wait_until("the server up", first.answers)
        first.sign_in()
        processes.append(
            start_phone(
                pbx.phone_port("agent1001"), ring_ms=300, talk_ms=None, log_dir=tmp_path / "sipp"
            )
        )
        first.post("/acd/agents/agent1001/login")
        first.post("/acd/agents/agent1001/ready")

        # A talks to agent1001 until A hangs up (18 s after the IVR answered); B and C wait.
        processes.append(
            start_caller(
                pbx.sip_port,
                "8101",
                first_key_ms=1,
                hold_ms=18_000,
                ani="5550001",
                timeout=60,
                log_dir=tmp_path / "sipp",
            )
        )
        on_agent = first.wait_until(
            "A on agent1001",
            lambda: [c for c in server_calls(first) if c["state"] == "connected"],
        )[0]
        for ani in ("5550002", "5550003"):
            processes.append(
                start_caller(
                    pbx.sip_port,
                    "8101",
                    first_key_ms=1,
                    hold_ms=45_000,
                    ani=ani,
                    timeout=90,
                    log_dir=tmp_path / "sipp",
                )
            )
            time.sleep(1.0)
        before = first.wait_until(
            "B and C waiting",
            lambda: (
                [c for c in server_calls(first) if c["state"] == "waiting"][1:]
                and [c for c in server_calls(first) if c["state"] == "waiting"]
            ),
        )
        assert [c["number"] for c in before] == ["5550002", "5550003"]

        first.kill()
        time.sleep(1.0)
        second = ServerProcess(config, http_port, log)
        server = second
        second.wait_until("the server up again", second.answers)
        second.sign_in()

        def restored() -> list[dict[str, Any]] | None:
            calls = server_calls(server)
            waiting = [c for c in calls if c["state"] == "waiting"]
            connected = [c for c in calls if c["state"] == "connected"]
            return calls if len(waiting) == 2 and len(connected) == 1 else None

        after = second.wait_until("the queue rebuilt from Asterisk", restored)
        waiting = [c for c in after if c["state"] == "waiting"]
        # Same callers, same order, same place (the time each entered is kept).
        assert [(c["call_id"], c["entered_at"], c["position"]) for c in waiting] == [
            (c["call_id"], c["entered_at"], n) for n, c in enumerate(before, 1)
        ]
        connected = [c for c in after if c["state"] == "connected"]
        assert (connected[0]["call_id"], connected[0]["agent_id"]) == (
            on_agent["call_id"],
            "agent1001",
        )
        agent = second.get("/acd/agents/agent1001")
        assert (agent["status"], agent["endpoint"]) == ("on_call", "PJSIP/agent1001")
        # The interaction log kept what the first process had written before it was killed:
        # the three calls, A answered by agent1001, and nothing twice after the restart.
        with sqlite3.connect(tmp_path / "config" / "crm.sqlite3") as db:
            logged = {
                key: (queue, agent_id, outcome)
                for key, queue, agent_id, outcome in db.execute(
                    "SELECT key, queue, agent_id, outcome FROM interactions"
                )
            }
            queued = db.execute(
                "SELECT COUNT(*) FROM interaction_events WHERE kind = 'queued'"
            ).fetchone()[0]
        assert logged[on_agent["call_id"]] == ("sales", "agent1001", "answered")
        assert [logged[c["call_id"]][0] for c in before] == ["sales", "sales"]
        assert queued == 3  # the restart's rebuilt queue entries are the same facts

        # When A hangs up, agent1001 wraps up and takes B next (then C): nobody stuck.
        second.wait_until(
            "B on agent1001",
            lambda: [
                c
                for c in server_calls(server)
                if c["state"] == "connected" and c["call_id"] == waiting[0]["call_id"]
            ],
            timeout=30,
        )
        assert [c["call_id"] for c in server_calls(second) if c["state"] == "waiting"] == [
            waiting[1]["call_id"]
        ]
        metrics = server_metrics(second)
        # The restart repaired what it found (3 calls adopted, one of them on agent1001) and
        # the waiting callers' periodic visits (announcements, heartbeat) reached it.
        assert metrics["ctiserver_acd_repairs_total"] >= 3, metrics
        assert metrics["ctiserver_acd_wait_visits_total"] >= 1, metrics
        log_text = log.read_text(errors="replace")
        assert "Traceback" not in log_text, log_text[-3000:]
    finally:
        first.stop()
        if second is not None:
            second.stop()
        for process in processes:
            process.stop()
        pbx.hangup_all()


def test_waiting_callers_go_to_the_fallback_when_the_server_stays_down(
    pbx: PbxHandle, tmp_path: Path
) -> None:
    pbx.hangup_all()
    http_port = free_tcp_port()
    config = server_config(pbx, tmp_path / "config", http_port)
    (tmp_path / "sipp").mkdir()
    server = ServerProcess(config, http_port, tmp_path / "ctiserver.log")
    caller: SippProcess | None = None
    try:
        server.wait_until("the server up", server.answers)
        server.sign_in()
        caller = start_caller(
            pbx.sip_port,
            "8101",
            first_key_ms=1,
            hold_ms=40_000,
            timeout=70,
            log_dir=tmp_path / "sipp",
        )
        waiting = server.wait_until("a waiting call", lambda: server_calls(server))[0]
        server.kill()
        killed = time.monotonic()

        def context() -> str:
            for line in pbx.cli("core show channels concise").splitlines():
                fields = line.split("!")
                if len(fields) > 5 and fields[0] == waiting["channel"]:
                    return fields[1]
            return ""

        pbx.wait_for("the caller in cti-fallback", lambda: context() == "cti-fallback", timeout=25)
        # Bounded: fallback_after (8 s) plus at most one music period (5 s) and a margin.
        assert time.monotonic() - killed < 8 + 5 + 3
    finally:
        server.stop()
        if caller is not None:
            caller.stop()
        pbx.hangup_all()
