"""The sandbox against a real Asterisk 22: calls from SIPp, a raw FastAGI listener, AMI.

The FastAGI and AMI clients here are a few lines of raw asyncio on purpose: these tests
check the sandbox (config, dialplan, ports), not the project's protocol layers.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from support.pbx import PbxHandle, make_test_config
from support.sipp import SippProcess, run_caller, start_caller, start_hangup_caller, start_phone

from sandbox import Sandbox

pytestmark = pytest.mark.pbx


@pytest.fixture
def line(pbx: PbxHandle) -> Iterator[PbxHandle]:
    """The test instance with no calls left over, before and after the test."""
    pbx.hangup_all()
    yield pbx
    pbx.hangup_all()


# -- a raw FastAGI listener ----------------------------------------------------------------


async def read_agi_env(reader: asyncio.StreamReader) -> dict[str, str]:
    env: dict[str, str] = {}
    while True:
        raw = await asyncio.wait_for(reader.readline(), 10)
        if raw in (b"\n", b""):
            return env
        key, _, value = raw.decode("utf-8", "replace").rstrip("\n").partition(": ")
        env[key] = value


async def agi_command(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: str
) -> str:
    writer.write(f"{command}\n".encode())
    await writer.drain()
    while True:
        reply = (await asyncio.wait_for(reader.readline(), 15)).decode().strip()
        if reply != "HANGUP":  # an unprompted hang-up notice, not the reply (res_agi.c)
            return reply


AgiSession = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def agi_listener(pbx: PbxHandle, session: AgiSession) -> AsyncIterator[None]:
    server = await asyncio.start_server(session, pbx.agi_host, pbx.agi_port)
    async with server:
        yield


async def finish(process: SippProcess, seconds: float) -> None:
    """Wait for a SIPp caller in a thread (it is a blocking subprocess wait)."""
    try:
        result = await asyncio.to_thread(process.wait, seconds)
    finally:
        process.stop()
    result.check()


# -- (a) it runs ---------------------------------------------------------------------------


def test_sandbox_runs_asterisk_22(pbx: PbxHandle) -> None:
    assert re.match(r"Asterisk 22\.\d+", pbx.cli("core show version"))
    status = pbx.sandbox.status()
    assert status.running
    assert status.pid is not None
    assert status.version is not None
    assert status.version.startswith("22.")
    assert status.uptime_seconds is not None
    transports = pbx.cli("pjsip show transports")
    assert f"127.0.0.1:{pbx.sip_port}" in transports


# -- (b) a caller reaches the IVR over FastAGI and presses keys ----------------------------


@pytest.mark.parametrize(("digits", "dnis"), [("5", "5550100"), ("42#", "+4930123456")])
async def test_caller_reaches_fastagi_and_presses_keys(
    line: PbxHandle, tmp_path: Path, digits: str, dnis: str
) -> None:
    seen: dict[str, object] = {}
    done = asyncio.Event()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            seen["env"] = await read_agi_env(reader)
            seen["answer"] = await agi_command(reader, writer, "ANSWER")
            seen["keys"] = [
                await agi_command(reader, writer, "WAIT FOR DIGIT 5000") for _ in digits
            ]
            seen["hangup"] = await agi_command(reader, writer, "HANGUP")
        finally:
            writer.close()
            done.set()

    async with agi_listener(line, session):
        caller = start_caller(
            line.sip_port,
            dnis,
            digits=digits,
            first_key_ms=1000,
            key_gap_ms=400,
            hold_ms=15000,
            ani="5551234",
            caller_name="Ada Lovelace",
            log_dir=tmp_path,
        )
        await asyncio.wait_for(done.wait(), 30)
        await finish(caller, 20)

    env = seen["env"]
    assert isinstance(env, dict)
    assert env["agi_request"] == f"agi://{line.agi_host}:{line.agi_port}/ivr"
    assert env["agi_network_script"] == "ivr"
    assert env["agi_extension"] == dnis
    assert env["agi_arg_1"] == dnis
    assert env["agi_context"] == "from-trunk"
    assert env["agi_callerid"] == "5551234"
    assert env["agi_calleridname"] == "Ada Lovelace"
    assert env["agi_channel"].startswith("PJSIP/anonymous-")
    assert seen["answer"] == "200 result=0"
    # WAIT FOR DIGIT answers with the key's character code.
    assert seen["keys"] == [f"200 result={ord(key)}" for key in digits]
    assert seen["hangup"] == "200 result=1"
    assert caller.stop().hangup == "remote"


async def test_caller_abandoning_before_answer_is_a_hangup_for_the_agi(
    line: PbxHandle, tmp_path: Path
) -> None:
    after_env: list[str] = []
    done = asyncio.Event()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_agi_env(reader)
            # Never answer: the caller hears ringing and gives up.
            raw = await asyncio.wait_for(reader.readline(), 15)
            after_env.append(raw.decode().strip())
        finally:
            writer.close()
            done.set()

    async with agi_listener(line, session):
        caller = start_hangup_caller(
            line.sip_port, "5550111", ring_timeout_ms=1500, talk_ms=1000, log_dir=tmp_path
        )
        await asyncio.wait_for(done.wait(), 20)
        await finish(caller, 20)

    assert caller.stop().hangup == "cancel"
    assert after_env == ["HANGUP"]


# -- (c) the CTI server is down: the caller still reaches a human --------------------------


def test_without_cti_server_the_fallback_queue_rings_an_agent_phone(
    line: PbxHandle, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # nothing listens on the AGI port
        assert probe.connect_ex((line.agi_host, line.agi_port)) != 0
    log_start = line.log_position()
    phone = start_phone(line.phone_port("agent1001"), ring_ms=300, talk_ms=1500, log_dir=tmp_path)
    try:
        caller = run_caller(line.sip_port, "5550199", hold_ms=25000, timeout=45, log_dir=tmp_path)
    finally:
        answered = phone.stop()

    caller.check()
    answered.check()
    # The agent answered, talked and hung up; Asterisk then hung up on the caller.
    assert caller.hangup == "remote"
    assert answered.count("answered ") == 1
    assert answered.count("hangup: phone ") == 1
    log = line.log_since(log_start)
    assert (
        f"CTI fallback: agi://{line.agi_host}:{line.agi_port}/ivr did not handle the call "
        "(AGISTATUS=FAILURE)" in log
    )
    assert "Playback" in log
    assert 'Queue("PJSIP/anonymous-' in log


def test_a_call_hung_up_before_a_phone_answered_never_rings_a_later_phone(
    line: PbxHandle, tmp_path: Path
) -> None:
    """The fresh-clone flake (issue 11): an INVITE to a phone that is not running outlives
    its call (pjsip may not CANCEL before a provisional response and retransmits for 32 s),
    and rang the next test's phone on the same port. ``hangup_all`` now ends such INVITEs
    (sandbox/stale_invites.py). Without that, the phone below gets the old call."""
    # Nobody listens on either agent's port: the fallback queue's ring-all INVITEs go
    # unanswered, and the caller gives up after ~1.5 s in the queue.
    caller = run_caller(line.sip_port, "5550188", hold_ms=5000, timeout=30, log_dir=tmp_path)
    assert caller.hangup == "caller"
    line.hangup_all()
    phone = start_phone(line.phone_port("agent1001"), ring_ms=300, talk_ms=1500, log_dir=tmp_path)
    try:
        # Timer A retransmits at 0.5, 1.5, 3.5, 7.5 and 15.5 s after the first send: the one
        # at 7.5 s falls in this window, had the INVITE survived.
        time.sleep(8)
    finally:
        result = phone.stop()
    result.check()
    # One CI run (of several) still saw a stale INVITE reach this phone, cancelled by Asterisk
    # before the phone answered: the 480 does not stop every retransmission (open, see the
    # issue 11 note). What must never happen is the flake itself: the phone answering the old
    # call, then an unexpected BYE. So: nothing here but INVITEs that were cancelled.
    stale = [e for e in result.events if not e.startswith(("invite ", "hangup: cancel "))]
    assert stale == [], result.events
    invites = {e.split()[-1] for e in result.events if e.startswith("invite ")}
    cancels = {e.split()[-1] for e in result.events if e.startswith("hangup: cancel ")}
    assert invites == cancels, result.events


@pytest.mark.parametrize("death", ["close_after_env", "reset_after_answer"])
async def test_a_server_dying_mid_call_still_sends_the_caller_to_the_fallback(
    line: PbxHandle, tmp_path: Path, death: str
) -> None:
    """A crashed or killed (kill -9) CTI server: the kernel closes its socket, with a FIN, or
    an RST if input was left unread. res_agi takes either as "script completed" and sets
    AGISTATUS=SUCCESS (res_agi.c run_agi: an empty read ends the loop without a failure).
    The dialplan falls back anyway because the server never set CTI_HANDLED=1."""
    seen: dict[str, object] = {}
    died = asyncio.Event()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            seen["env"] = await read_agi_env(reader)
            if death == "reset_after_answer":
                seen["answer"] = await agi_command(reader, writer, "ANSWER")
                # SO_LINGER 0: close() sends RST, as the kernel does for a dead process
                # whose socket still held unread input.
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # no FAILURE, no mark: just gone
        finally:
            died.set()

    log_start = line.log_position()
    phone = start_phone(line.phone_port("agent1001"), ring_ms=300, talk_ms=1500, log_dir=tmp_path)
    try:
        async with agi_listener(line, session):
            caller = start_caller(
                line.sip_port, "5550177", hold_ms=25000, timeout=45, log_dir=tmp_path
            )
            await asyncio.wait_for(died.wait(), 20)
            await finish(caller, 45)
    finally:
        answered = phone.stop()

    answered.check()
    env = seen["env"]
    assert isinstance(env, dict)
    assert env["agi_extension"] == "5550177"
    if death == "reset_after_answer":
        assert seen["answer"] == "200 result=0"
    # The agent answered, talked and hung up; Asterisk then hung up on the caller.
    assert caller.stop().hangup == "remote"
    assert answered.count("answered ") == 1
    log = line.log_since(log_start)
    assert (
        f"CTI fallback: agi://{line.agi_host}:{line.agi_port}/ivr did not handle the call "
        "(AGISTATUS=SUCCESS)" in log
    )
    assert re.search(r'GotoIf\("PJSIP/[^"]+", "1\?cti-fallback,s,1"\)', log)
    assert 'Queue("PJSIP/anonymous-' in log


def test_phone_answers_cancel_when_the_queued_caller_gives_up(
    line: PbxHandle, tmp_path: Path
) -> None:
    phone = start_phone(line.phone_port("agent1001"), ring_ms=60000, log_dir=tmp_path)
    try:
        # No CTI server: the fallback answers, apologises (~4 s) and queues the caller, the
        # phone rings, and the caller hangs up 6 s after the answer, while it still rings.
        caller = start_hangup_caller(
            line.sip_port, "5550122", ring_timeout_ms=5000, talk_ms=6000, log_dir=tmp_path
        )
        phone.wait_for_event("invite ", 15)
        result = caller.wait(20).check()
        phone.wait_for_event("hangup: cancel ", 10)
    finally:
        rang = phone.stop()
    assert result.hangup == "caller"
    assert rang.count("answered ") == 0


# -- calls the CTI server originates -------------------------------------------------------


def test_originate_into_cti_originate_connects_two_agents(line: PbxHandle, tmp_path: Path) -> None:
    """What an AMI Originate (Channel PJSIP/agent1001, Context cti-originate, Exten 1002) does:
    the first phone rings and answers, then the dialplan dials the second agent."""
    first = start_phone(line.phone_port("agent1001"), ring_ms=200, log_dir=tmp_path)
    second = start_phone(line.phone_port("agent1002"), ring_ms=200, talk_ms=1000, log_dir=tmp_path)
    try:
        line.cli("channel originate PJSIP/agent1001 extension 1002@cti-originate")
        first.wait_for_event("answered ", 10)
        second.wait_for_event("answered ", 10)
        second.wait_for_event("hangup: phone ", 10)
        first.wait_for_event("hangup: remote ", 10)
    finally:
        caller_side, called_side = first.stop(), second.stop()
    caller_side.check()
    called_side.check()


def test_agents_reach_the_sandbox_pstn_with_a_9(line: PbxHandle, tmp_path: Path) -> None:
    log_start = line.log_position()
    phone = start_phone(line.phone_port("agent1001"), ring_ms=200, talk_ms=1500, log_dir=tmp_path)
    try:
        line.cli("channel originate PJSIP/agent1001 extension 95551234@cti-originate")
        phone.wait_for_event("hangup: phone ", 15)
    finally:
        phone.stop().check()
    assert "Executing [5551234@sandbox-pstn:1] Answer" in line.log_since(log_start)


# -- restart and a second instance ---------------------------------------------------------


def test_core_restart_now_comes_back_with_the_same_config(pbx: PbxHandle) -> None:
    old_pid = pbx.sandbox.status().pid
    new_pid = pbx.restart()
    assert new_pid != old_pid
    argv = Path(f"/proc/{new_pid}/cmdline").read_bytes().split(b"\0")
    assert argv[1:3] == [b"-C", str(pbx.sandbox.layout.asterisk_conf).encode()]
    assert f"127.0.0.1:{pbx.sip_port}" in pbx.cli("pjsip show transports")


def ami_greeting(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        return conn.recv(100)


def test_a_second_instance_runs_beside_the_first(pbx: PbxHandle) -> None:
    other = Sandbox(
        make_test_config(
            "test2", ami_port=25138, sip_port=25160, rtp_start=27000, rtp_end=27999, agi_port=24673
        )
    )
    other.down()
    other.up()
    try:
        first, second = pbx.sandbox.status(), other.status()
        assert first.running
        assert second.running
        assert first.pid != second.pid
        assert first.root == second.root  # one cached root, two instances
        assert pbx.sandbox.layout.ctl_socket != other.layout.ctl_socket
        assert pbx.sandbox.layout.ctl_socket.exists()
        assert other.layout.ctl_socket.exists()
        assert ami_greeting(pbx.ami_port).startswith(b"Asterisk Call Manager/")
        assert ami_greeting(25138).startswith(b"Asterisk Call Manager/")
        assert "127.0.0.1:25160" in other.cli("pjsip show transports")
        assert "CTI_AGI_URL=agi://127.0.0.1:24673/ivr" in other.cli("dialplan show globals")
    finally:
        other.down()
    assert not other.status().running
    assert re.match(r"Asterisk 22\.", pbx.cli("core show version"))


# -- the AMI user can do what the server needs, and no more --------------------------------


class Ami:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.next_id = reader, writer, 0

    async def read_message(self) -> list[tuple[str, str]]:
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        return [
            (key, value)
            for key, _, value in (
                item.partition(": ") for item in raw.decode().strip().split("\r\n")
            )
        ]

    async def action(self, name: str, **headers: str) -> list[list[tuple[str, str]]]:
        """Send an action; return its response plus list events up to ``...Complete``."""
        self.next_id += 1
        action_id = f"t{self.next_id}"
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()
        messages: list[list[tuple[str, str]]] = []
        while True:
            message = await self.read_message()
            fields = dict(message)
            if fields.get("ActionID") != action_id:
                continue  # an event for everybody
            messages.append(message)
            if "Response" in fields and fields.get("EventList") != "start":
                return messages
            if fields.get("EventList") == "Complete":
                return messages


async def test_ami_user_can_do_its_job_and_no_more(pbx: PbxHandle) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    try:
        greeting = await asyncio.wait_for(reader.readline(), 5)
        assert greeting.startswith(b"Asterisk Call Manager/")
        ami = Ami(reader, writer)

        def response(messages: list[list[tuple[str, str]]]) -> dict[str, str]:
            return dict(messages[0])

        login = await ami.action("Login", Username=pbx.ami_username, Secret=pbx.ami_secret)
        assert response(login)["Response"] == "Success"
        assert response(await ami.action("Ping"))["Response"] == "Success"

        command = await ami.action("Command", Command="core show channels")
        assert response(command)["Response"] == "Success"
        assert any(key == "Output" for key, _ in command[0])

        channels = await ami.action("CoreShowChannels")
        assert response(channels)["Response"] == "Success"
        assert dict(channels[-1])["Event"] == "CoreShowChannelsComplete"

        queues = await ami.action("QueueStatus", Queue="cti-fallback")
        assert response(queues)["Response"] == "Success"
        members = [dict(m) for m in queues if dict(m).get("Event") == "QueueMember"]
        assert {m["Name"] for m in members} == {"Agent 1001", "Agent 1002"}

        getvar = await ami.action("Getvar", Variable="CTI_AGI_URL")
        assert response(getvar)["Value"] == f"agi://127.0.0.1:{pbx.agi_port}/ivr"

        # What the user must not do: reload, load modules, run System() through Originate.
        for name, headers in [
            ("Reload", {}),
            ("ModuleLoad", {"Module": "app_queue.so", "LoadType": "reload"}),
            ("GetConfig", {"Filename": "manager.conf"}),
        ]:
            refused = response(await ami.action(name, **headers))
            assert refused["Response"] == "Error", name
            assert refused["Message"] == "Permission denied", name
        originate = response(
            await ami.action(
                "Originate", Channel="Local/1001@from-agents", Application="System", Data="true"
            )
        )
        assert originate["Response"] == "Error"
        assert "Forbidden" in originate["Message"]
    finally:
        writer.close()
