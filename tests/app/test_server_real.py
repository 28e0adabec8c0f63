"""The wired ``Server`` against the real Asterisk 22 sandbox, with SIPp callers.

tests/cti/test_server.py shows the same behaviour against a fake manager; here every claim is
checked on the real thing: a trunk call reaches the IVR route over FastAGI and is tracked by
the call model from ``CallStarted`` to ``CallEnded``; ``core restart now`` and a SIGKILL of
Asterisk leave no ghost calls behind; a tracker that connects mid-call learns the call from
``CoreShowChannels``; FastAGI peers that leave early do not hurt the next call; and
``ctiserver run`` follows Asterisk going down and coming back without a restart.

Several tests stop, kill or restart the sandbox: the ``line`` fixture brings it back up (and
clears calls) after each test, because later tests of the session need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.catalogue import assert_catalogued
from support.pbx import PbxHandle
from support.server import (
    BusRecorder,
    HoldingIvr,
    eventually,
    finish_caller,
    free_tcp_port,
    real_server_settings,
)
from support.sipp import SippProcess, start_caller, start_phone

from app.diagnostics import line_check
from app.server import Server
from cti.agi import AgiSession, SessionOutcome, SessionSummary
from cti.ami import AmiClient, AmiClientConfig, Event
from cti.bus import EventBus
from cti.calls import (
    CallEnded,
    CallEvent,
    CallModel,
    CallPhase,
    CallStarted,
    CallUpdated,
    Channel,
    ChannelCreated,
    ChannelHungUp,
    ChannelPhase,
    ModelResynced,
)
from cti.calls.tracker import CallTracker

pytestmark = pytest.mark.pbx

DNIS = "8000"
ANI = "5551234"


@pytest.fixture
def line(pbx: PbxHandle) -> Iterator[PbxHandle]:
    """The sandbox running with no calls, before and after the test (``up`` is a no-op when
    it already runs, and brings it back when the test stopped or killed it)."""
    pbx.sandbox.up()
    pbx.hangup_all()
    yield pbx
    pbx.sandbox.up()
    pbx.hangup_all()


class _EachCall:
    """A route handler that gives the n-th call to the n-th handler."""

    def __init__(self, *handlers: HoldingIvr) -> None:
        self._handlers = handlers
        self._next = 0

    async def __call__(self, session: AgiSession) -> None:
        handler = self._handlers[self._next]
        self._next += 1
        await handler(session)


async def _connected(server: Server) -> None:
    """The server is logged in to Asterisk and its first resync is done."""
    await server.ami.wait_connected(15)
    await eventually("the first resync", lambda: server.tracker.resyncs >= 1, 10)


async def _reconnected_and_resynced(server: Server, reconnects: int, resyncs: int) -> None:
    """The AMI client logged in again by itself and the resync after it has run."""
    await eventually(
        "the AMI client to log in again by itself",
        lambda: server.ami.stats.reconnects > reconnects,
        30,
    )
    await eventually("the resync after the reconnect", lambda: server.tracker.resyncs > resyncs, 15)


def _call_to_ivr(line: PbxHandle, tmp_path: Path, **options: Any) -> SippProcess:
    """A trunk call to the DNIS; it stays on the line (60 s) until Asterisk hangs up."""
    options.setdefault("hold_ms", 60_000)
    return start_caller(
        line.sip_port, DNIS, ani=ANI, caller_name="Ada Lovelace", log_dir=tmp_path, **options
    )


async def _answered_in_model(server: Server | CallModel, uniqueid: str) -> Channel:
    """Wait until the model holds the channel as answered (the Newstate Up has arrived)."""
    model = server.calls if isinstance(server, Server) else server

    def up() -> bool:
        channel = model.channel(uniqueid)
        return channel is not None and channel.phase is ChannelPhase.UP

    await eventually(f"channel {uniqueid} answered (UP) in the call model", up, 10)
    channel = model.channel(uniqueid)
    assert channel is not None
    return channel


def _lifecycle(recorder: BusRecorder, linkedid: str, since: int = 0) -> list[CallEvent]:
    return [e for e in recorder.of_type(CallEvent, since) if e.call.linkedid == linkedid]


def _describe(events: list[CallEvent]) -> list[tuple[str, str, str]]:
    return [(type(e).__name__, e.call.phase.value, e.cause) for e in events]


async def _summaries(bus: BusRecorder, count: int) -> list[SessionSummary]:
    await eventually(
        f"{count} FastAGI sessions ended", lambda: len(bus.of_type(SessionSummary)) >= count
    )
    summaries: list[SessionSummary] = bus.of_type(SessionSummary)
    return summaries


async def _metrics(port: int) -> dict[str, float]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


# -- 1. a real call through the IVR route, tracked from start to end ------------------------


async def test_a_trunk_call_reaches_the_ivr_route_and_is_tracked_to_the_end(
    line: PbxHandle, tmp_path: Path
) -> None:
    ivr = HoldingIvr(prompt="hello-world", want_key=True)
    server = Server(real_server_settings(line), routes={"ivr": ivr})
    bus = BusRecorder(server.bus)
    async with server:
        await _connected(server)
        caller = _call_to_ivr(line, tmp_path, digits="5", first_key_ms=800, hold_ms=30_000)
        try:
            env = await ivr.ready()
            # While the handler holds the call, the model shows it answered, in the IVR.
            channel = await _answered_in_model(server, env.uniqueid)
            call = server.calls.call(channel.linkedid)
            during = await _metrics(server.http_port)
            ivr.release()
            result = await finish_caller(caller, 20)
        finally:
            caller.stop()
        ended = await bus.wait_for(CallEnded, lambda e: e.call.linkedid == channel.linkedid)
        summary = await bus.wait_for(SessionSummary)
        await eventually("an empty call model", lambda: not server.calls.channels)

    # What the handler got from Asterisk.
    assert (env.route, env.extension, env.args, env.context) == ("ivr", DNIS, (DNIS,), "from-trunk")
    assert (env.callerid, env.calleridname) == (ANI, "Ada Lovelace")
    assert env.channel.startswith("PJSIP/"), env.channel
    assert ivr.key == "5", f"the caller pressed 5 (RFC 2833), the handler read {ivr.key!r}"
    # What the model held while the handler ran.
    assert channel.linkedid == env.uniqueid, "the trunk channel starts its own call"
    assert channel.name == env.channel
    assert (channel.caller_num, channel.exten, channel.context) == (ANI, DNIS, "from-trunk")
    assert call is not None, "the call of the channel is missing from the model"
    assert call.phase is CallPhase.ACTIVE, call
    assert (call.caller_num, call.caller_name, call.dnis) == (ANI, "Ada Lovelace", DNIS)
    assert [c.uniqueid for c in call.channels] == [env.uniqueid]
    assert call.answered_at is not None
    assert during["ctiserver_calls_channels"] == 1.0
    assert during["ctiserver_calls_calls"] == 1.0
    assert during["ctiserver_agi_sessions_active"] == 1.0
    # What the bus saw: started (ringing: the AGI runs before the answer), then active, then
    # ended by the live Hangup event (not by a resync).
    lifecycle = _lifecycle(bus, channel.linkedid)
    kinds = _describe(lifecycle)
    assert isinstance(lifecycle[0], CallStarted), kinds
    assert lifecycle[0].call.phase is CallPhase.RINGING, kinds
    assert any(
        isinstance(e, CallUpdated) and e.call.phase is CallPhase.ACTIVE for e in lifecycle[1:]
    ), kinds
    assert lifecycle[-1] is ended, kinds
    assert sum(isinstance(e, CallStarted | CallEnded) for e in lifecycle) == 2, kinds
    assert ended.cause == "Hangup", kinds
    assert (ended.call.phase, ended.call.caller_num, ended.call.dnis) == (
        CallPhase.ENDED,
        ANI,
        DNIS,
    )
    hung_up = [e for e in bus.of_type(ChannelHungUp) if e.channel.uniqueid == env.uniqueid]
    assert len(hung_up) == 1
    # Removed by Asterisk's Hangup event, which carries a Cause (a resync removal has none).
    # It is 0 here: the AGI HANGUP command soft-hangs-up without setting a cause.
    assert hung_up[0].cause == "Hangup", hung_up[0]
    assert hung_up[0].channel.hangup_cause is not None, hung_up[0].channel
    # The session ended normally, and the server hung up on the caller.
    assert summary.outcome is SessionOutcome.COMPLETED, summary
    assert (summary.route, summary.hung_up) == ("ivr", True)
    assert result.hangup == "remote"
    assert server.calls.calls() == []
    # The whole call's facts could cross a process boundary (app/catalogue.py).
    assert_catalogued(bus.events, server.bus)


async def test_line_check_reads_the_key_and_sets_linecheck_digit(
    line: PbxHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The dialplan only dials the "ivr" route, so the built-in handler is put there. After it
    # hung up, the AGI runs on in dead mode, where GET VARIABLE still works: that reads the
    # variable back from the channel itself.
    seen: dict[str, str | None] = {}

    async def checked_line_check(session: AgiSession) -> None:
        await line_check(session)
        seen["LINECHECK_DIGIT"] = await session.get_variable("LINECHECK_DIGIT")

    caplog.set_level("INFO", logger="app.diagnostics")
    server = Server(real_server_settings(line), routes={"ivr": checked_line_check})
    bus = BusRecorder(server.bus)
    async with server:
        await _connected(server)
        caller = _call_to_ivr(line, tmp_path, digits="7", first_key_ms=600, hold_ms=20_000)
        try:
            result = await finish_caller(caller, 30)
        finally:
            caller.stop()
        summary = await bus.wait_for(SessionSummary)
        ended = await bus.wait_for(CallEnded)

    assert summary.outcome is SessionOutcome.COMPLETED, summary
    assert summary.hung_up, "line_check hangs up at the end"
    assert seen == {"LINECHECK_DIGIT": "7"}
    logged = [r for r in caplog.records if r.name == "app.diagnostics"]
    assert [getattr(r, "digit", None) for r in logged] == ["7"], [r.message for r in logged]
    assert result.hangup == "remote"
    assert ended.call.caller_num == ANI


async def test_an_agent_phone_dialing_600_reaches_the_line_check_via_originate(
    line: PbxHandle, tmp_path: Path
) -> None:
    # The server originates (AMI, always Async) from agent1001's phone into cti-originate,
    # extension 600: the phone rings and answers, then the dialplan runs the "linecheck"
    # FastAGI route. The phone presses nothing and hangs up after 3 s, during the wait.
    phone = start_phone(line.phone_port("agent1001"), ring_ms=200, talk_ms=3000, log_dir=tmp_path)
    server = Server(real_server_settings(line))
    bus = BusRecorder(server.bus)
    feed = BusRecorder(server.pbx_feed)  # raw AMI events stay off the domain bus
    try:
        async with server:
            await _connected(server)
            result = await server.ami.originate(
                "PJSIP/agent1001", context="cti-originate", exten="600", timeout=10
            )
            summary = await bus.wait_for(SessionSummary, within=20)
            response = await feed.wait_for(
                Event, lambda e: e.name == "OriginateResponse" and e.action_id == result.action_id
            )
            ended = await bus.wait_for(CallEnded, within=10)
    finally:
        phone.stop().check()
    assert response.get("Response") == "Success", response
    assert summary.route == "linecheck"
    assert summary.env is not None
    assert summary.env.channel.startswith("PJSIP/agent1001-")
    assert summary.env.uniqueid == result.channel_id, "ChannelId names the new channel at once"
    assert summary.outcome is SessionOutcome.HANGUP, summary
    assert ended.call.linkedid == result.channel_id


# -- 2. Asterisk restarts or dies under a live call: reconnect, resync, no ghosts ----------


async def test_core_restart_now_reconnects_resyncs_and_leaves_no_ghosts(
    line: PbxHandle, tmp_path: Path
) -> None:
    held, after = HoldingIvr(prompt="", want_key=False), HoldingIvr(prompt="", want_key=False)
    server = Server(real_server_settings(line), routes={"ivr": _EachCall(held, after)})
    bus = BusRecorder(server.bus)
    async with server:
        await _connected(server)
        caller = _call_to_ivr(line, tmp_path)
        try:
            channel = await _answered_in_model(server, (await held.ready()).uniqueid)
            resyncs, reconnects = server.tracker.resyncs, server.ami.stats.reconnects
            mark = bus.mark()
            await asyncio.to_thread(line.restart)
            await _reconnected_and_resynced(server, reconnects, resyncs)
        finally:
            caller.stop()
        died = await bus.wait_for(SessionSummary)

        # No ghost: neither the channel nor its call survived the restart. (``core restart
        # now`` hangs channels up before the manager goes, so the Hangup usually arrives
        # live; the SIGKILL test below is the one where only the resync can clean up.)
        assert dict(server.calls.channels) == {}, "ghost channels after the restart"
        assert server.calls.calls() == [], "ghost calls after the restart"
        lifecycle = _lifecycle(bus, channel.linkedid, since=mark)
        ended = [e for e in lifecycle if isinstance(e, CallEnded)]
        assert len(ended) == 1, _describe(lifecycle)
        assert died.outcome is SessionOutcome.HANGUP, died
        assert server.ami.connected

        # A new call after the restart is tracked as usual.
        mark = bus.mark()
        caller = _call_to_ivr(line, tmp_path)
        try:
            new = await _answered_in_model(server, (await after.ready()).uniqueid)
            call = server.calls.call(new.linkedid)
            after.release()
            await finish_caller(caller, 20)
        finally:
            caller.stop()
        await bus.wait_for(CallEnded, lambda e: e.call.linkedid == new.linkedid, since=mark)
        await eventually("an empty call model", lambda: not server.calls.channels)

    assert new.uniqueid != channel.uniqueid
    assert call is not None
    assert (call.phase, call.caller_num, call.dnis) == (CallPhase.ACTIVE, ANI, DNIS)
    kinds = _describe(_lifecycle(bus, new.linkedid, since=mark))
    assert kinds[0][:2] == ("CallStarted", "ringing"), kinds
    assert kinds[-1][:2] == ("CallEnded", "ended"), kinds


async def test_sigkilled_asterisk_leaves_ghosts_that_the_resync_removes(
    line: PbxHandle, tmp_path: Path
) -> None:
    held = HoldingIvr(prompt="", want_key=False)
    server = Server(real_server_settings(line), routes={"ivr": held})
    bus = BusRecorder(server.bus)
    async with server:
        await _connected(server)
        caller = _call_to_ivr(line, tmp_path)
        try:
            channel = await _answered_in_model(server, (await held.ready()).uniqueid)
            resyncs, reconnects = server.tracker.resyncs, server.ami.stats.reconnects
            mark = bus.mark()
            pid = line.sandbox.status().pid
            assert pid is not None, "the sandbox reports no pid"
            os.kill(pid, signal.SIGKILL)
            await eventually("the AMI client to lose Asterisk", lambda: not server.ami.connected)
            # Killed: no Hangup event was ever sent, so the model still holds the dead call.
            assert server.calls.channel(channel.uniqueid) is not None
            assert server.calls.call(channel.linkedid) is not None
            await asyncio.to_thread(line.sandbox.up)
            await _reconnected_and_resynced(server, reconnects, resyncs)
        finally:
            caller.stop()
        died = await bus.wait_for(SessionSummary)

    assert dict(server.calls.channels) == {}, "ghost channels after the resync"
    assert server.calls.calls() == [], "ghost calls after the resync"
    resynced = bus.of_type(ModelResynced, mark)
    assert len(resynced) == 1, resynced
    assert resynced[0].removed == (channel.uniqueid,)
    assert (resynced[0].added, resynced[0].channels) == ((), 0)
    lifecycle = _lifecycle(bus, channel.linkedid, since=mark)
    assert [(type(e).__name__, e.cause) for e in lifecycle] == [("CallEnded", "resync")]
    gone = [e for e in bus.of_type(ChannelHungUp, mark) if e.channel.uniqueid == channel.uniqueid]
    assert [e.cause for e in gone] == ["resync"]
    # The FastAGI side noticed too: the socket closed under the handler's command.
    assert died.outcome is SessionOutcome.HANGUP, died


# -- 3. a tracker that connects mid-call misses no live call ---------------------------------


async def test_a_fresh_tracker_learns_the_live_call_from_its_first_resync(
    line: PbxHandle, tmp_path: Path
) -> None:
    held = HoldingIvr(prompt="", want_key=False)
    server = Server(real_server_settings(line), routes={"ivr": held})
    async with server:
        await _connected(server)
        caller = _call_to_ivr(line, tmp_path)
        try:
            live = await _answered_in_model(server, (await held.ready()).uniqueid)

            # A second observer wired as app/server.py wires one, connecting only now: it
            # saw no Newchannel, so only its resync can tell it about the call.
            bus = EventBus()
            seen = BusRecorder(bus)
            model = CallModel()
            tracker = CallTracker(model, bus, time.time)

            def on_event(event: Event) -> None:
                tracker.on_ami_event(event.name, event.to_dict())

            settings = real_server_settings(line).ami
            ami = AmiClient(
                AmiClientConfig(
                    host=settings.host,
                    port=settings.port,
                    username=settings.username,
                    secret=settings.secret.get_secret_value(),
                    reconnect_min=0.2,
                    reconnect_max=1.0,
                ),
                on_event=on_event,
            )

            async def resync(client: AmiClient) -> None:
                async def list_channels() -> list[dict[str, str]]:
                    result = await client.action("CoreShowChannels")
                    return [item.to_dict() for item in result.events]

                await tracker.resync(list_channels)

            ami.add_resync_hook(resync)
            session = asyncio.get_running_loop().create_task(ami.run(), name="second-ami")
            try:
                await ami.wait_connected(15)
                await eventually("the second tracker's first resync", lambda: tracker.resyncs == 1)
                learned = model.channel(live.uniqueid)
                call = model.call(live.linkedid)
                # It keeps following the call live: the end comes as a Hangup event.
                held.release()
                await finish_caller(caller, 20)
                await seen.wait_for(CallEnded, lambda e: e.call.linkedid == live.linkedid)
            finally:
                session.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await session
                await bus.aclose()
        finally:
            caller.stop()

    assert learned is not None, "the live call is missing after the first resync"
    assert (learned.phase, learned.name, learned.caller_num, learned.exten) == (
        ChannelPhase.UP,
        live.name,
        ANI,
        DNIS,
    )
    assert call is not None
    assert (call.phase, call.caller_num, call.dnis) == (CallPhase.ACTIVE, ANI, DNIS)
    resynced = seen.of_type(ModelResynced)
    assert resynced[0].added == (live.uniqueid,), resynced
    created = [e for e in seen.of_type(ChannelCreated) if e.channel.uniqueid == live.uniqueid]
    assert [e.cause for e in created] == ["resync"]
    started = [e for e in seen.of_type(CallStarted) if e.call.linkedid == live.linkedid]
    assert [e.cause for e in started] == ["resync"]
    ended = [e for e in seen.of_type(CallEnded) if e.call.linkedid == live.linkedid]
    assert [e.cause for e in ended] == ["Hangup"]
    assert dict(model.channels) == {}


# -- 4. FastAGI peers that leave early ------------------------------------------------------


async def test_fastagi_peers_that_leave_early_do_not_hurt_the_next_call(
    line: PbxHandle, tmp_path: Path
) -> None:
    ivr = HoldingIvr(prompt="beep", want_key=True)
    server = Server(real_server_settings(line), routes={"ivr": ivr})
    bus = BusRecorder(server.bus)
    async with server, aiohttp.ClientSession() as http:
        await _connected(server)
        host, port = line.agi_host, server.agi.port
        # One connects and closes without a byte (what a TCP health check does) ...
        _reader, writer = await asyncio.open_connection(host, port)
        writer.close()
        await writer.wait_closed()
        # ... one sends half an environment block, cut in the middle of a line, and closes.
        _reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"agi_network: yes\nagi_network_script: ivr\nagi_request: agi://127.0")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await eventually(
            "both early disconnects counted", lambda: len(bus.of_type(SessionSummary)) == 2
        )
        stats = server.agi.stats
        # Nothing spins on the closed sockets: over the next second the process stays idle.
        cpu = time.process_time()
        await asyncio.sleep(1.0)
        cpu_used = time.process_time() - cpu
        async with http.get(f"http://127.0.0.1:{server.http_port}/healthz") as response:
            health = (response.status, await response.json())
        metrics = await _metrics(server.http_port)

        # The next real call works end to end.
        caller = _call_to_ivr(line, tmp_path, digits="9", first_key_ms=800, hold_ms=30_000)
        try:
            env = await ivr.ready()
            channel = await _answered_in_model(server, env.uniqueid)
            ivr.release()
            result = await finish_caller(caller, 20)
        finally:
            caller.stop()
        await bus.wait_for(CallEnded, lambda e: e.call.linkedid == channel.linkedid)
        summaries = await _summaries(bus, 3)

    early = summaries[:2]
    assert [s.outcome for s in early] == [SessionOutcome.EARLY_DISCONNECT] * 2, early
    assert [s.env for s in early] == [None, None]
    assert (stats.early_disconnects, stats.sessions_active, stats.sessions_started) == (2, 0, 0)
    assert cpu_used < 0.5, f"{cpu_used:.2f} s of CPU in 1 s idle after the early disconnects"
    assert health[0] == 200, health
    assert metrics["ctiserver_agi_early_disconnects_total"] == 2.0
    assert (env.extension, env.callerid) == (DNIS, ANI)
    assert ivr.key == "9"
    assert summaries[2].outcome is SessionOutcome.COMPLETED, summaries[2]
    assert result.hangup == "remote"
    assert server.agi.stats.early_disconnects == 2


# -- 5. ``ctiserver run`` as an admin runs it ----------------------------------------------


def _healthz(port: int) -> tuple[int, Mapping[str, Any]] | None:
    """(status, body) of /healthz, or None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 503 carries the same JSON body
        return exc.code, json.loads(exc.read())
    except OSError:
        return None


def _poll_healthz(
    port: int,
    what: str,
    wanted: Callable[[int, Mapping[str, Any]], bool],
    proc: subprocess.Popen[bytes],
    log: Path,
    timeout: float = 20,
) -> Mapping[str, Any]:
    deadline = time.monotonic() + timeout
    last: tuple[int, Mapping[str, Any]] | None = None
    while time.monotonic() < deadline and proc.poll() is None:
        last = _healthz(port)
        if last is not None and wanted(*last):
            return last[1]
        time.sleep(0.1)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise AssertionError(
        f"/healthz never showed {what} within {timeout} s (server exit code {proc.poll()}); "
        f"last answer: {last}\n--- server log (last lines)\n{tail}"
    )


def test_ctiserver_run_follows_asterisk_down_and_up_and_stops_on_sigterm(
    line: PbxHandle, tmp_path: Path
) -> None:
    http_port, agi_port = free_tcp_port(), free_tcp_port()
    log = tmp_path / "ctiserver.log"
    overrides = [
        f"ami.port={line.ami_port}",
        f"ami.username={line.ami_username}",
        f"ami.secret={line.ami_secret}",
        "ami.reconnect_min=0.2",
        "ami.reconnect_max=1.0",
        "ami.ping_interval=2",
        "ami.ping_timeout=2",
        f"agi.port={agi_port}",  # no call is made: any free port, never the sandbox's
        f"http.port={http_port}",
        "log.format=json",
        "log.level=INFO",
        # The repository's flows and customers (the working directory has none).
        f"config_dir={Path(__file__).parents[2] / 'config'}",
    ]
    command = [sys.executable, "-m", "app.cli"]
    for item in overrides:
        command += ["--set", item]
    # No CTISERVER__ variables from the caller's environment, and a working directory without
    # config/ctiserver.yaml: the options above (and the defaults) are the whole configuration.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTISERVER__")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "run"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        up = _poll_healthz(
            http_port, "200 with the PBX connected", lambda s, _b: s == 200, proc, log
        )
        assert (up["status"], up["pbx"]["connected"], up["pbx"]["connects"]) == ("ok", True, 1)

        line.sandbox.down()
        down = _poll_healthz(
            http_port, "503 with the PBX disconnected", lambda s, _b: s == 503, proc, log
        )
        assert (down["status"], down["pbx"]["connected"]) == ("degraded", False), down

        line.sandbox.up()
        back = _poll_healthz(
            http_port, "200 again after Asterisk came back", lambda s, _b: s == 200, proc, log
        )
        # The same process logged in again by itself (Asterisk may drop a session that
        # arrives while it is still booting, so a third login is possible too).
        assert back["pbx"]["connected"] is True, back
        assert back["pbx"]["connects"] >= 2, back
        assert back["uptime_s"] > up["uptime_s"], (up, back)
        assert proc.poll() is None, "the server must not have restarted"

        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("ctiserver did not exit within 10 s of SIGTERM") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    text = log.read_text(errors="replace")
    assert code == 0, text[-3000:]
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert entries, f"no JSON log lines:\n{text[-3000:]}"
    assert all({"ts", "level", "logger", "msg"} <= entry.keys() for entry in entries)
    # Only the transitions an operator watches for: failed retries while Asterisk was down
    # are the AMI client's own log lines, not repeated "PBX lost" warnings.
    states = [entry["ami_state"] for entry in entries if "ami_state" in entry]
    assert states == ["connected", "disconnected", "connected", "disconnected"], states
    assert entries[-1]["msg"] == "ctiserver stopped", entries[-1]
    assert "Traceback" not in text
