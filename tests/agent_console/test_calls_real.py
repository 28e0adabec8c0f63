"""Call control on the real sandbox Asterisk, with SIPp callers and SIPp agent phones.

A caller dials 8101 (straight to the ACD's ``sales`` queue) and reaches agent1001; then the
console's ``CallControl`` (on the server's own AMI client and ACD) holds, resumes, transfers,
dials out and spies, and every test checks what Asterisk did (``CoreShowChannels``: context,
application, bridge) as well as what the ACD made of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.catalogue import assert_catalogued
from support.pbx import PbxHandle
from support.server import BusRecorder, eventually, real_server_settings, with_ivr_flows
from support.sipp import SippProcess, start_caller, start_phone

from acd.agent_state import AgentStatus
from acd.events import CallAnswered, CallEnded, CallQueued
from acd.service import AcdService
from agent_console.calls import CallControl
from app.server import Server
from cti.contracts.console import CallControlled

pytestmark = pytest.mark.pbx

ACD_YAML = """
timezone: UTC
fallback_after: 30
not_ready_reasons: [break, outbound]
defaults: {ring_timeout: 10, wrap_up: 1, announce: {every: 10, position: false}}
queues:
  sales: {skills: {sales: 1}}
agents:
  agent1001: {skills: {sales: 5}, queues: [sales]}
  agent1002: {skills: {sales: 5}, queues: [sales]}
"""

FLOWS_YAML = """
default_flow: to_sales
routes: [{dnis: "8101", flow: to_sales}]
flows:
  to_sales: {start: q, nodes: {q: {kind: queue, queue: sales}}}
"""


@dataclass(frozen=True)
class Channel:
    uniqueid: str
    name: str
    context: str
    exten: str
    application: str
    bridge_id: str


@dataclass
class World:
    pbx: PbxHandle
    server: Server
    bus: BusRecorder
    control: CallControl
    log_dir: Path
    processes: list[SippProcess] = field(default_factory=list)

    @property
    def service(self) -> AcdService:
        assert self.server.acd is not None
        return self.server.acd.service

    def status(self, agent_id: str = "agent1001") -> AgentStatus:
        # A call, not an attribute: mypy would narrow an attribute across awaits.
        return self.service.agents[agent_id].status

    def phone(self, agent: str, *, talk_ms: int = 60_000) -> SippProcess:
        phone = start_phone(
            self.pbx.phone_port(agent), ring_ms=300, talk_ms=talk_ms, log_dir=self.log_dir
        )
        self.processes.append(phone)
        return phone

    async def channels(self) -> dict[str, Channel]:
        result = await self.server.ami.action("CoreShowChannels")
        found = {}
        for item in result.events:
            if item.name == "CoreShowChannel":
                channel = Channel(
                    item.get("Uniqueid") or "",
                    item.get("Channel") or "",
                    item.get("Context") or "",
                    item.get("Exten") or "",
                    item.get("Application") or "",
                    item.get("BridgeId") or "",
                )
                found[channel.uniqueid] = channel
        return found

    async def until_channels(self, what: str, check: object, within: float = 10) -> None:
        assert callable(check)
        latest: dict[str, Channel] = {}
        deadline = asyncio.get_running_loop().time() + within
        while True:
            latest = await self.channels()
            if check(latest):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{what}: channels are {list(latest.values())}")
            await asyncio.sleep(0.2)

    async def connected_call(self, *, talk_ms: int = 60_000) -> CallAnswered:
        """agent1001 ready with a phone; one caller answered by them."""
        self.phone("agent1001", talk_ms=talk_ms)
        self.service.login("agent1001")
        self.service.ready("agent1001")
        mark = self.bus.mark()
        caller = start_caller(
            self.pbx.sip_port,
            "8101",
            first_key_ms=1,
            hold_ms=60_000,
            ani="5551234",
            timeout=90,
            log_dir=self.log_dir,
        )
        self.processes.append(caller)
        queued = await self.bus.wait_for(CallQueued, since=mark, within=15)
        return await self.bus.wait_for(
            CallAnswered, lambda e: e.call_id == queued.call_id, since=mark, within=20
        )


@contextlib.asynccontextmanager
async def world_on(pbx: PbxHandle, tmp_path: Path) -> AsyncIterator[World]:
    pbx.hangup_all()
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "acd.yaml").write_text(textwrap.dedent(ACD_YAML).lstrip(), encoding="utf-8")
    flows = folder / "flows.yaml"
    flows.write_text(textwrap.dedent(FLOWS_YAML).lstrip(), encoding="utf-8")
    settings = with_ivr_flows(
        real_server_settings(
            pbx,
            "acd.enabled=true",
            f"acd.config={folder / 'acd.yaml'}",
            f"acd.state_dir={tmp_path / 'state'}",
        ),
        flows,
    )
    server = Server(settings)
    bus = BusRecorder(server.bus)
    world: World | None = None
    try:
        async with server:
            await server.ami.wait_connected(15)
            assert server.acd is not None
            control = CallControl(
                server.ami, server.acd.service, server.bus.publish, ring_timeout=10
            )
            (tmp_path / "sipp").mkdir()
            world = World(pbx, server, bus, control, tmp_path / "sipp")
            yield world
            # Every fact of the shift could cross a process boundary (app/catalogue.py).
            assert_catalogued(bus.events, server.bus)
    finally:
        bus.close()
        # Hang up while the phones still run: a BYE sent to a phone already gone is
        # retransmitted for half a minute and lands on the next test's phone on that port.
        pbx.hangup_all()
        await asyncio.sleep(0.5)
        if world is not None:
            for process in world.processes:
                process.stop()


async def test_hold_plays_music_and_resume_bridges_again(pbx: PbxHandle, tmp_path: Path) -> None:
    async with world_on(pbx, tmp_path) as world:
        answered = await world.connected_call(talk_ms=15_000)
        call_id = answered.call_id
        leg = world.service.calls[call_id].agent_leg
        assert leg

        await world.control.hold("agent1001", call_id)
        await world.until_channels(
            "customer on music, agent waiting",
            lambda ch: (
                ch[call_id].context == "cti-hold"
                and ch[call_id].application == "MusicOnHold"
                and ch[leg].context == "cti-held"
                and not ch[call_id].bridge_id
            ),
        )
        assert world.status() is AgentStatus.ON_HOLD
        await asyncio.sleep(1)

        await world.control.resume("agent1001", call_id)
        await world.until_channels(
            "both legs in one bridge",
            lambda ch: ch[call_id].bridge_id != "" and ch[call_id].bridge_id == ch[leg].bridge_id,
        )
        assert world.status() is AgentStatus.ON_CALL

        # The agent's phone hangs up (15 s of talk): the customer goes too, and the ACD counts
        # the call with its hold time.
        ended = await world.bus.wait_for(CallEnded, lambda e: e.call_id == call_id, within=25)
        assert ended.hold >= 1
        await world.until_channels("the customer hung up too", lambda ch: call_id not in ch)
        actions = [e.action for e in world.bus.of_type(CallControlled)]
        assert actions == ["hold", "resume"]


async def test_a_customer_hanging_up_on_hold_ends_the_agents_leg(
    pbx: PbxHandle, tmp_path: Path
) -> None:
    async with world_on(pbx, tmp_path) as world:
        answered = await world.connected_call()
        call_id = answered.call_id
        leg = world.service.calls[call_id].agent_leg
        await world.control.hold("agent1001", call_id)
        await world.until_channels("agent waiting", lambda ch: ch[leg].context == "cti-held")
        await world.server.ami.action("Hangup", {"Channel": call_id})
        # [cti-held] notices its peer is gone within its 1 s loop.
        await world.until_channels("agent leg ended", lambda ch: leg not in ch, within=6)
        await world.bus.wait_for(CallEnded, lambda e: e.call_id == call_id, within=5)
        await eventually(
            "agent in wrap-up",
            lambda: world.status() in (AgentStatus.WRAP_UP, AgentStatus.READY),
            within=5,
        )


async def test_blind_transfer_sends_the_customer_to_the_number(
    pbx: PbxHandle, tmp_path: Path
) -> None:
    async with world_on(pbx, tmp_path) as world:
        answered = await world.connected_call()
        call_id = answered.call_id
        await world.control.transfer("agent1001", call_id, "blind", "number", "5550100")
        await world.until_channels(
            "customer in sandbox-pstn, agent leg gone",
            lambda ch: (
                ch[call_id].context == "sandbox-pstn"
                and ch[call_id].exten == "5550100"
                and not any(c.name.startswith("PJSIP/agent1001-") for c in ch.values())
            ),
        )
        assert world.status() in (
            AgentStatus.WRAP_UP,
            AgentStatus.READY,
        )
        assert call_id not in world.service.calls


async def test_click_to_dial_rings_the_agent_then_calls_the_number(
    pbx: PbxHandle, tmp_path: Path
) -> None:
    async with world_on(pbx, tmp_path) as world:
        phone = world.phone("agent1001", talk_ms=8_000)
        world.service.login("agent1001")
        world.service.ready("agent1001")
        channel_id = await world.control.dial("agent1001", "5550199")
        agent = world.service.agents["agent1001"]
        assert (agent.status, agent.state.reason) == (AgentStatus.NOT_READY, "outbound")
        await asyncio.to_thread(phone.wait_for_event, "invite ", 10)
        await world.until_channels(
            "the agent's channel dials the number",
            lambda ch: (
                channel_id in ch
                and ch[channel_id].context == "sandbox-pstn"
                and ch[channel_id].exten == "5550199"
            ),
        )
        await asyncio.to_thread(phone.wait_for_event, "answered ", 5)


async def test_spy_rings_the_supervisor_phone_into_chanspy(pbx: PbxHandle, tmp_path: Path) -> None:
    async with world_on(pbx, tmp_path) as world:
        answered = await world.connected_call()
        # agent1002's phone stands in for the supervisor's.
        supervisor = world.phone("agent1002", talk_ms=10_000)
        channel_id = await world.control.spy("PJSIP/agent1002", "agent1001", "listen")
        await asyncio.to_thread(supervisor.wait_for_event, "invite ", 10)
        await world.until_channels(
            "ChanSpy runs on the supervisor's channel",
            lambda ch: channel_id in ch and ch[channel_id].application == "ChanSpy",
        )
        # Spying changed nothing for the call itself.
        assert world.service.calls[answered.call_id].state == "connected"


@pytest.mark.parametrize("finish", ["complete", "cancel"])
async def test_attended_transfer_to_a_number(pbx: PbxHandle, tmp_path: Path, finish: str) -> None:
    async with world_on(pbx, tmp_path) as world:
        answered = await world.connected_call()
        call_id = answered.call_id
        leg = world.service.calls[call_id].agent_leg
        await world.control.transfer("agent1001", call_id, "attended", "number", "5550100")
        consult = world.bus.of_type(CallControlled)[-1]
        assert (consult.action, consult.mode) == ("transfer", "attended")
        originate = world.control.consult_channel(call_id)
        assert originate is not None
        await world.until_channels(
            "customer on music, agent talking to the number",
            lambda ch: (
                ch[call_id].context == "cti-hold"
                and originate in ch
                and ch[originate].bridge_id != ""
                and ch[originate].bridge_id == ch[leg].bridge_id
            ),
        )
        if finish == "complete":
            await world.control.complete_transfer("agent1001", call_id)
            await world.until_channels(
                "customer talking to the number, agent gone",
                lambda ch: (
                    leg not in ch
                    and ch[call_id].bridge_id != ""
                    and ch[call_id].bridge_id == ch[originate].bridge_id
                ),
            )
            assert call_id not in world.service.calls
            assert world.status() in (
                AgentStatus.WRAP_UP,
                AgentStatus.READY,
            )
        else:
            await world.control.cancel_transfer("agent1001", call_id)
            await world.until_channels(
                "customer back with the agent, the number let go",
                lambda ch: (
                    originate not in ch
                    and ch[call_id].bridge_id != ""
                    and ch[call_id].bridge_id == ch[leg].bridge_id
                ),
            )
            assert world.status() is AgentStatus.ON_CALL
