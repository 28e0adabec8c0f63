"""The wired server against the fake manager: health follows the AMI connection, the call model
is rebuilt on every (re)connect, and metrics expose the counters. The same behaviour against a
real Asterisk is in tests/cti/test_server_real.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp
import pytest

from app.server import Server
from app.settings import Settings, load_settings
from cti.ami import Message
from cti.calls import CallEnded, CallStarted, ChannelPhase, ModelResynced
from ivr.ports import QueueFigures
from sandbox.fake_ami import FakeAsterisk


def _settings(fake: FakeAsterisk) -> Settings:
    return load_settings(
        environ={},
        overrides=(
            f"ami.port={fake.port}",
            f"ami.username={fake.username}",
            f"ami.secret={fake.secret}",
            "ami.reconnect_min=0.05",
            "ami.reconnect_max=0.2",
            "ami.ping_interval=5",
            "agi.port=0",
            "http.port=0",
            # These tests are about the foundation and the app_queue stand-in; the ACD's
            # own server tests switch it on (tests/acd/).
            "acd.enabled=false",
            "crm.enabled=false",
        ),
    )


def _channel(uid: str, state: int = 6, bridge: str = "") -> list[tuple[str, str]]:
    return [
        ("Channel", f"PJSIP/trunk-{uid[-4:]}"),
        ("ChannelState", str(state)),
        ("ChannelStateDesc", "Up" if state == 6 else "Ring"),
        ("CallerIDNum", "5551234"),
        ("CallerIDName", "Ann Caller"),
        ("ConnectedLineNum", "<unknown>"),
        ("ConnectedLineName", "<unknown>"),
        ("Language", "en"),
        ("AccountCode", ""),
        ("Context", "from-trunk"),
        ("Exten", "8000"),
        ("Priority", "2"),
        ("Uniqueid", uid),
        ("Linkedid", uid),
        ("Application", "AGI"),
        ("ApplicationData", "agi://127.0.0.1:4573/ivr"),
        ("Duration", "00:00:07"),
        ("BridgeId", bridge),
    ]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk() as fake:
        yield fake


async def _healthz(session: aiohttp.ClientSession, port: int) -> tuple[int, Mapping[str, object]]:
    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
        return response.status, await response.json()


async def _eventually(predicate: object, within: float = 5.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_healthz_follows_the_pbx_connection(fake: FakeAsterisk) -> None:
    async with Server(_settings(fake)) as server, aiohttp.ClientSession() as http:
        await server.ami.wait_connected(5)
        status, body = await _healthz(http, server.http_port)
        assert status == 200
        assert body["status"] == "ok"
        pbx = body["pbx"]
        assert isinstance(pbx, dict)
        assert pbx["connected"] is True
        assert pbx["connects"] == 1

        # Asterisk goes away and refuses us for a while: degraded, with the reason.
        fake.reject_logins = True
        await fake.drop()
        await _eventually(lambda: not server.ami.connected)
        status, body = await _healthz(http, server.http_port)
        assert status == 503
        pbx = body["pbx"]
        assert isinstance(pbx, dict)
        assert pbx["connected"] is False
        assert body["status"] == "degraded"

        # It comes back: the same server reconnects by itself.
        fake.reject_logins = False
        await server.ami.wait_connected(5)
        status, body = await _healthz(http, server.http_port)
        assert status == 200
        pbx = body["pbx"]
        assert isinstance(pbx, dict)
        assert pbx["connects"] == 2


async def test_call_model_is_rebuilt_on_every_connect(fake: FakeAsterisk) -> None:
    # A call already up before we connect: the resync must find it.
    fake.channels = [_channel("1700000000.1")]
    async with Server(_settings(fake)) as server:
        seen: list[object] = []
        server.bus.subscribe(object, seen.append)
        await server.ami.wait_connected(5)
        await _eventually(lambda: server.tracker.resyncs == 1)
        channel = server.calls.channel("1700000000.1")
        assert channel is not None
        assert channel.phase is ChannelPhase.UP
        assert channel.caller_num == "5551234"
        assert any(isinstance(e, CallStarted) for e in seen)

        # While we are disconnected the call ends and its Hangup is lost with the connection;
        # a new call starts. After the reconnect: no ghost, and the new call is known.
        fake.reject_logins = True
        await fake.drop()
        await _eventually(lambda: not server.ami.connected)
        fake.channels = [_channel("1700000000.9", bridge="b-1")]
        fake.reject_logins = False
        await _eventually(lambda: server.tracker.resyncs == 2)
        assert server.calls.channel("1700000000.1") is None
        new = server.calls.channel("1700000000.9")
        assert new is not None
        assert new.phase is ChannelPhase.BRIDGED
        ended = [e for e in seen if isinstance(e, CallEnded)]
        assert [e.call.linkedid for e in ended] == ["1700000000.1"]
        resynced = [e for e in seen if isinstance(e, ModelResynced)]
        assert resynced[-1].removed == ("1700000000.1",)
        assert resynced[-1].added == ("1700000000.9",)


async def test_live_events_reach_the_model_and_the_bus(fake: FakeAsterisk) -> None:
    async with Server(_settings(fake)) as server:
        await server.ami.wait_connected(5)
        await _eventually(lambda: server.tracker.resyncs == 1)
        fake.emit("Newchannel", _channel("1700000001.5", state=4))
        await _eventually(lambda: server.calls.channel("1700000001.5") is not None)
        channel = server.calls.channel("1700000001.5")
        assert channel is not None
        assert channel.phase is ChannelPhase.PRE_ANSWER
        fake.emit("Hangup", [*_channel("1700000001.5"), ("Cause", "16"), ("Cause-txt", "Normal")])
        await _eventually(lambda: server.calls.channel("1700000001.5") is None)
        assert server.calls.calls() == []


async def test_metrics_expose_component_counters(fake: FakeAsterisk) -> None:
    async with Server(_settings(fake)) as server, aiohttp.ClientSession() as http:
        await server.ami.wait_connected(5)
        await _eventually(lambda: server.tracker.resyncs == 1)
        async with http.get(f"http://127.0.0.1:{server.http_port}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
        values = {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines()
            if line and not line.startswith("#")
        }
        assert values["ctiserver_ami_connected"] == 1.0
        assert values["ctiserver_ami_connects_total"] == 1.0
        assert values["ctiserver_calls_resyncs_total"] == 1.0
        assert values["ctiserver_calls_channels"] == 0.0
        assert values["ctiserver_agi_sessions_active"] == 0.0


async def test_agi_listener_and_linecheck_route_are_up(fake: FakeAsterisk) -> None:
    async with Server(_settings(fake)) as server:
        assert server.agi.handler_for("linecheck") is not None
        # The dialplan's "ivr" route runs the IVR flows.
        assert server.agi.handler_for("ivr") is server.ivr.handler
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.agi.port)
        writer.close()
        await writer.wait_closed()
        await _eventually(lambda: server.agi.stats.early_disconnects == 1)


def _queue_summary(fake: FakeAsterisk, queues: dict[str, tuple[int, int]]) -> None:
    """Make the fake answer QueueSummary like app_queue: (available, holdtime) per queue."""

    def respond(action: object) -> list[list[tuple[str, str]]]:
        assert isinstance(action, Message)
        aid = [("ActionID", action.action_id or "")]
        blocks = [[("Response", "Success"), *aid, ("EventList", "start")]]
        for name, (available, hold) in queues.items():
            blocks.append(
                [
                    ("Event", "QueueSummary"),
                    *aid,
                    ("Queue", name),
                    ("LoggedIn", "2"),
                    ("Available", str(available)),
                    ("Callers", "0"),
                    ("HoldTime", str(hold)),
                    ("TalkTime", "0"),
                    ("LongestHoldTime", "0"),
                ]
            )
        blocks.append(
            [
                ("Event", "QueueSummaryComplete"),
                *aid,
                ("EventList", "Complete"),
                ("ListItems", str(len(queues))),
            ]
        )
        return blocks

    fake.responders["queuesummary"] = respond


async def test_queue_figures_follow_app_queue_without_polling(fake: FakeAsterisk) -> None:
    figures = {"support": (0, 0)}
    _queue_summary(fake, figures)
    async with Server(_settings(fake)) as server:
        await server.ami.wait_connected(5)
        # Asked once after login...
        feed = server.queue_feed
        assert feed is not None
        await _eventually(lambda: feed.refreshes == 1)
        assert server.ivr.queues.figures("support") == QueueFigures(0, None)
        asked = len(fake.actions("QueueSummary"))
        # ...not again while nothing happens...
        await asyncio.sleep(0.3)
        assert len(fake.actions("QueueSummary")) == asked
        # ...and again when app_queue says a member changed.
        figures["support"] = (2, 42)
        fake.emit("QueueMemberStatus", [("Queue", "support"), ("Status", "1")])
        await _eventually(lambda: server.ivr.queues.figures("support").agents_available == 2)
        assert server.ivr.queues.figures("support") == QueueFigures(2, 42.0)


async def test_ivr_reload_endpoint_applies_or_refuses(fake: FakeAsterisk, tmp_path: Path) -> None:
    flows = tmp_path / "ivr"
    flows.mkdir()
    good = (
        "default_flow: main\n"
        "flows:\n"
        "  main:\n"
        "    start: bye\n"
        "    nodes:\n"
        "      bye: {kind: hangup, prompts: [{tts: Goodbye}]}\n"
    )
    (flows / "main.yaml").write_text(good, encoding="utf-8")
    config = tmp_path / "cti.yaml"
    config.write_text(
        f"ami: {{port: {fake.port}, username: {fake.username}, secret: {fake.secret}}}\n"
        "agi: {port: 0}\n"
        "http: {port: 0}\n"
        "ivr: {flows: [ivr], customers: null}\n"
        "acd: {enabled: false}\n"
        "crm: {enabled: false}\n",
        encoding="utf-8",
    )
    settings = load_settings(config, environ={})
    async with Server(settings) as server, aiohttp.ClientSession() as http:
        first = server.ivr.registry.current.version
        url = f"http://127.0.0.1:{server.http_port}/admin/ivr/reload"

        (flows / "main.yaml").write_text(good.replace("Goodbye", "Bye now"), encoding="utf-8")
        async with http.post(url) as response:
            assert response.status == 200
            body = await response.json()
        assert body["ok"] is True
        assert body["previous"] == first
        assert body["version"] == server.ivr.registry.current.version != first

        (flows / "main.yaml").write_text(good.replace("kind: hangup", "kind: hangpu"), "utf-8")
        async with http.post(url) as response:
            assert response.status == 422
            refused = await response.json()
        assert refused["ok"] is False
        assert f"{flows / 'main.yaml'}:6" in refused["error"]
        assert "hangpu" in refused["error"]
        assert server.ivr.registry.current.version == body["version"]
