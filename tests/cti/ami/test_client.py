"""AmiClient against FakeAsterisk: a real TCP manager on 127.0.0.1, ephemeral port."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from cti.ami.client import AmiClient, AmiClientConfig
from cti.ami.messages import Event
from cti.ami.state import ConnectionState
from cti.errors import (
    AmiActionError,
    AmiConnectionLost,
    AmiNotConnected,
    AmiTimeout,
    ConfigError,
    LocalProtocolError,
)
from sandbox.fake_ami import FakeAsterisk, encode_block

S = ConnectionState


@pytest.fixture
async def fake() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk() as server:
        yield server


class Recorder:
    def __init__(self, on_event: Callable[[Event], None] | None = None) -> None:
        self.events: list[Event] = []
        self.states: list[ConnectionState] = []
        self._also = on_event

    def on_event(self, event: Event) -> None:
        self.events.append(event)
        if self._also is not None:
            self._also(event)

    def names(self) -> list[str]:
        return [e.name for e in self.events]


def make_client(fake: FakeAsterisk, rec: Recorder, **overrides: Any) -> AmiClient:
    settings: dict[str, Any] = {
        "port": fake.port,
        "username": fake.username,
        "secret": fake.secret,
        "connect_timeout": 1.0,
        "action_timeout": 1.0,
        "ping_interval": 30.0,
        "ping_timeout": 1.0,
        "reconnect_min": 0.01,
        "reconnect_max": 0.05,
    }
    settings.update(overrides)
    return AmiClient(AmiClientConfig(**settings), on_event=rec.on_event, on_state=rec.states.append)


@contextlib.asynccontextmanager
async def running(client: AmiClient) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(client.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(predicate: Callable[[], bool], within: float = 3.0) -> None:
    """Poll client-side state (stats, state) that offers nothing to await; 2 ms steps."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.002)


async def test_connects_and_logs_in_with_md5(fake: FakeAsterisk) -> None:
    rec = Recorder()
    client = make_client(fake, rec, events="call,agent")
    assert client.state is S.DISCONNECTED
    async with running(client):
        await client.wait_connected(2)
        assert client.connected
        assert rec.states == [S.CONNECTING, S.CONNECTED]
        assert [a.name for a in fake.received] == ["Challenge", "Login"]
        login = fake.received[1].message
        assert login.get("AuthType") == "MD5"
        assert login.get("Username") == fake.username
        assert login.get("Events") == "call,agent"
        assert login.get("Secret") is None
        assert re.fullmatch(r"[0-9a-f]{32}", login.get("Key") or "")
        assert client.greeting is not None
        assert client.greeting.version == "11.0.0"
        await eventually(lambda: "FullyBooted" in rec.names())
        assert client.stats.connects == 1
    assert rec.states[-1] is S.DISCONNECTED
    assert not client.connected


async def test_plain_login_when_configured(fake: FakeAsterisk) -> None:
    client = make_client(fake, Recorder(), auth="plain", events="off")
    async with running(client):
        await client.wait_connected(2)
    (login,) = fake.actions("Login")
    assert login.message.get("Secret") == fake.secret
    assert login.message.get("Events") == "off"


async def test_login_does_not_depend_on_fully_booted(fake: FakeAsterisk) -> None:
    # Pitfall 6: FullyBooted only reaches users with "system" read permission.
    fake.send_fully_booted = False
    rec = Recorder()
    client = make_client(fake, rec)
    async with running(client):
        await client.wait_connected(2)
        assert (await client.action("Ping")).ok
    assert "FullyBooted" not in rec.names()


async def test_slow_login_refusal_is_reported_as_auth_failure(fake: FakeAsterisk) -> None:
    # Asterisk sleeps 1 s before refusing; a short action_timeout must not hide the refusal.
    fake.reject_logins = True
    fake.auth_fail_delay = 0.3
    client = make_client(fake, Recorder(), action_timeout=0.05, reconnect_min=5, reconnect_max=5)
    async with running(client):
        await eventually(lambda: client.state is S.AUTH_FAILED)
    assert client.stats.action_timeouts == 0
    assert client.stats.login_failures == 1


async def test_list_action_correlates_with_interleaved_events(fake: FakeAsterisk) -> None:
    fake.channels = [
        [("Channel", "PJSIP/anonymous-00000000"), ("Uniqueid", "1.0"), ("Duration", "00:00:07")],
        [("Channel", "PJSIP/agent1-00000001"), ("Uniqueid", "1.1"), ("Duration", "00:00:02")],
    ]
    fake.list_interleave = [("Event", "Newstate"), ("Channel", "PJSIP/live-00000009")]
    rec = Recorder()
    client = make_client(fake, rec)
    async with running(client):
        await client.wait_connected(2)
        result = await client.action("CoreShowChannels")
    assert result.ok
    assert [e.get("Uniqueid") for e in result.events] == ["1.0", "1.1"]
    assert result.complete is not None
    assert result.complete.get("ListItems") == "2"
    # The live event reached the application; the list items did not (they are a snapshot).
    assert "Newstate" in rec.names()
    assert "CoreShowChannel" not in rec.names()
    assert "CoreShowChannelsComplete" not in rec.names()


async def test_concurrent_actions_each_get_their_own_answer(fake: FakeAsterisk) -> None:
    fake.commands = {f"echo {i}": [f"line {i}"] for i in range(20)}
    client = make_client(fake, Recorder())
    async with running(client):
        await client.wait_connected(2)
        outputs = await asyncio.gather(*(client.command(f"echo {i}") for i in range(20)))
    assert outputs == [[f"line {i}"] for i in range(20)]


async def test_command_returns_output_lines(fake: FakeAsterisk) -> None:
    fake.commands["core show uptime"] = [
        "System uptime: 1 minute, 5 seconds",
        "Last reload: 1 minute, 5 seconds",
    ]
    client = make_client(fake, Recorder())
    async with running(client):
        await client.wait_connected(2)
        lines = await client.command("core show uptime")
        with pytest.raises(AmiActionError) as info:
            await client.command("core show nothing")
    assert lines == ["System uptime: 1 minute, 5 seconds", "Last reload: 1 minute, 5 seconds"]
    assert info.value.action == "Command"
    assert info.value.message.startswith("No such command 'core show nothing'")


async def test_error_response_raises_action_error(fake: FakeAsterisk) -> None:
    client = make_client(fake, Recorder())
    async with running(client):
        await client.wait_connected(2)
        with pytest.raises(AmiActionError) as info:
            await client.action("NoSuchAction", {"Foo": "bar"})
        assert client.connected  # an error answer is not a broken session
    assert info.value.action == "NoSuchAction"
    assert info.value.message == "Invalid/unknown command"


async def test_actions_fail_fast_when_not_connected(fake: FakeAsterisk) -> None:
    client = make_client(fake, Recorder())
    with pytest.raises(AmiNotConnected):
        await client.action("Ping")
    with pytest.raises(AmiTimeout):
        await client.wait_connected(0.01)
    with pytest.raises(LocalProtocolError):  # refused before the connection is even looked at
        await client.action("Ping", {"Bad": "a\r\nAction: Originate"})
    assert fake.received == []


async def test_reconnects_after_a_drop(fake: FakeAsterisk) -> None:
    rec = Recorder()
    client = make_client(fake, rec)
    async with running(client):
        await client.wait_connected(2)
        await fake.drop()
        await fake.wait_until(lambda: fake.logins == 2)
        await client.wait_connected(2)
        assert (await client.action("Ping")).response.get("Ping") == "Pong"
        stats = client.stats
    assert rec.states[:5] == [S.CONNECTING, S.CONNECTED, S.DISCONNECTED, S.CONNECTING, S.CONNECTED]
    assert (stats.connects, stats.reconnects, stats.disconnects) == (2, 1, 1)
    # A fresh random ActionID prefix per connection.
    first, second = (a.message.action_id or "" for a in fake.actions("Login"))
    assert first.split("-")[0] != second.split("-")[0]


async def test_in_flight_originate_fails_and_is_never_resent(fake: FakeAsterisk) -> None:
    fake.hold = {"Originate"}
    client = make_client(fake, Recorder())
    async with running(client):
        await client.wait_connected(2)
        call = asyncio.create_task(client.originate("PJSIP/agent1", context="agents", exten="100"))
        await fake.wait_until(lambda: len(fake.actions("Originate")) == 1)
        await fake.drop()
        with pytest.raises(AmiConnectionLost, match="not re-sent"):
            await call
        await fake.wait_until(lambda: fake.logins == 2)
        await client.wait_connected(2)
        # A round trip on the new session: anything re-sent would have arrived before this.
        await client.action("Ping")
        assert client.stats.actions_lost == 1
    originates = fake.actions("Originate")
    assert len(originates) == 1
    assert originates[0].session == 1


async def test_actions_while_reconnecting_fail_fast(fake: FakeAsterisk) -> None:
    rec = Recorder()
    client = make_client(fake, rec, reconnect_min=5.0, reconnect_max=5.0)
    async with running(client):
        await client.wait_connected(2)
        await fake.drop()
        await eventually(lambda: client.state is S.DISCONNECTED)
        with pytest.raises(AmiNotConnected):
            await client.originate("PJSIP/agent1", application="Playback", data="beep")
    assert fake.actions("Originate") == []


async def test_originate_is_async_with_channel_id(fake: FakeAsterisk) -> None:
    rec = Recorder()
    client = make_client(fake, rec)
    async with running(client):
        await client.wait_connected(2)
        result = await client.originate(
            "PJSIP/agent1",
            context="agents",
            exten="100",
            caller_id='"Support" <100>',
            variables={"QUEUE": "support", "CTI_CALL": "42"},
            timeout=30,
        )
        given = await client.originate(
            "Local/100@agents", application="Playback", data="beep", channel_id="chan-1"
        )
        await eventually(lambda: rec.names().count("OriginateResponse") == 2)
    first, second = (a.message for a in fake.actions("Originate"))
    assert first.get("Async") == "true"
    assert first.get("ChannelId") == result.channel_id
    uuid.UUID(result.channel_id)
    assert first.get_all("Variable") == ("QUEUE=support", "CTI_CALL=42")
    assert first.get("Timeout") == "30000"
    assert first.get("CallerID") == '"Support" <100>'
    assert (first.get("Context"), first.get("Exten"), first.get("Priority")) == (
        "agents",
        "100",
        "1",
    )
    assert (second.get("Application"), second.get("Data")) == ("Playback", "beep")
    assert second.get("Context") is None
    assert given.channel_id == "chan-1"
    assert second.get("ChannelId") == "chan-1"
    # The outcome arrives as an event carrying the originate's ActionID.
    responses = [e for e in rec.events if e.name == "OriginateResponse"]
    assert [e.action_id for e in responses] == [result.action_id, given.action_id]
    assert responses[0].get("Uniqueid") == result.channel_id


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"context": "agents"},
        {"exten": "100"},
        {"context": "a", "exten": "1", "application": "Playback"},
        {"application": "Playback", "variables": {"A=B": "x"}},
    ],
)
async def test_originate_refuses_ambiguous_requests(
    fake: FakeAsterisk, kwargs: dict[str, Any]
) -> None:
    client = make_client(fake, Recorder())
    async with running(client):
        await client.wait_connected(2)
        with pytest.raises(LocalProtocolError):
            await client.originate("PJSIP/agent1", **kwargs)
    assert fake.actions("Originate") == []


async def test_resync_hooks_run_in_order_after_every_login(fake: FakeAsterisk) -> None:
    fake.channels = [[("Channel", "PJSIP/a-1"), ("Uniqueid", "1.0")]]
    calls: list[str] = []
    go = asyncio.Event()
    rec = Recorder(on_event=lambda e: go.set() if e.name == "Go" else None)
    client = make_client(fake, rec)

    async def first(c: AmiClient) -> None:
        result = await c.action("CoreShowChannels")
        calls.append(f"first:{len(result.events)}")

    async def second(c: AmiClient) -> None:
        calls.append("second:start")
        await go.wait()  # only an event can release it: events flow during the resync
        go.clear()
        calls.append("second:end")

    def hook_waiting(times: int) -> Callable[[], bool]:
        return lambda: calls.count("second:start") == times

    def resynced(times: int) -> Callable[[], bool]:
        return lambda: client.stats.resyncs == times

    client.add_resync_hook(first)
    client.add_resync_hook(second)
    async with running(client):
        for round_ in (1, 2):
            await eventually(hook_waiting(round_))
            assert fake.emit("Go") == 1
            await eventually(resynced(round_))
            if round_ == 1:
                await fake.drop()
    assert calls == ["first:1", "second:start", "second:end"] * 2


async def test_failing_resync_hook_does_not_stop_the_others(fake: FakeAsterisk) -> None:
    ran: list[str] = []

    async def broken(c: AmiClient) -> None:
        raise RuntimeError("bug in a hook")

    async def refused(c: AmiClient) -> None:
        await c.action("NoSuchAction")

    async def fine(c: AmiClient) -> None:
        ran.append("fine")

    client = make_client(fake, Recorder())
    for hook in (broken, refused, fine):
        client.add_resync_hook(hook)
    async with running(client):
        await eventually(lambda: client.stats.resyncs == 1)
        assert client.connected
    assert ran == ["fine"]


async def test_unanswered_ping_triggers_reconnect(fake: FakeAsterisk) -> None:
    fake.answer_pings = False
    rec = Recorder()
    client = make_client(fake, rec, ping_interval=0.05, ping_timeout=0.05)
    async with running(client):
        await client.wait_connected(2)
        await fake.wait_until(lambda: fake.logins == 2)
        fake.answer_pings = True
        await client.wait_connected(2)
        stats = client.stats
    assert stats.ping_timeouts >= 1
    assert fake.actions("Ping")[0].session == 1
    assert S.DISCONNECTED in rec.states
    assert "Ping" in (client.last_error or "")


async def test_answered_pings_keep_the_session(fake: FakeAsterisk) -> None:
    client = make_client(fake, Recorder(), ping_interval=0.02, ping_timeout=0.5)
    async with running(client):
        await client.wait_connected(2)
        await fake.wait_until(lambda: len(fake.actions("Ping")) >= 3)
        assert client.connected
    assert fake.logins == 1
    assert client.stats.ping_timeouts == 0


async def test_reader_keeps_up_with_a_slow_consumer(fake: FakeAsterisk) -> None:
    # The application's slow work runs in its own task, fed from a queue; on_event only
    # enqueues. The reader never waits for the consumer, so 10,000 events and then the answer
    # to an action all go through while the consumer has handled almost none of them.
    queue: asyncio.Queue[Event] = asyncio.Queue()
    handled = 0

    async def slow_consumer() -> None:
        nonlocal handled
        while True:
            await queue.get()
            await asyncio.sleep(0.001)  # stands for a database write
            handled += 1

    client = AmiClient(
        AmiClientConfig(port=fake.port, username=fake.username, secret=fake.secret),
        on_event=queue.put_nowait,
    )
    async with running(client), asyncio.TaskGroup() as tasks:
        consumer = tasks.create_task(slow_consumer())
        await client.wait_connected(2)
        blob = b"".join(
            encode_block(
                [
                    ("Event", "Newexten"),
                    ("Privilege", "dialplan,all"),
                    ("Channel", f"PJSIP/anonymous-{i:08x}"),
                    ("Context", "from-pstn"),
                    ("Extension", "100"),
                    ("Priority", "2"),
                    ("Application", "Queue"),
                    ("AppData", "support"),
                    ("Uniqueid", f"1732270000.{i}"),
                ]
            )
            for i in range(10_000)
        )
        before = client.stats.events_received
        fake.emit_raw(blob)
        # Answered after the 10,000 events on the same stream: when it completes, the reader
        # has already handed every one of them to on_event.
        await client.action("Ping", timeout=5)
        delivered = client.stats.events_received - before
        backlog = queue.qsize()
        consumer.cancel()
    assert delivered == 10_000
    assert backlog > 9_000
    assert handled < 1_000


async def test_cancel_closes_fails_pending_and_leaves_no_task(fake: FakeAsterisk) -> None:
    fake.hold = {"Command"}
    before = asyncio.all_tasks()
    rec = Recorder()
    client = make_client(fake, rec, ping_interval=0.01)  # keepalive task alive too
    task = asyncio.create_task(client.run())
    await client.wait_connected(2)
    pending = asyncio.create_task(client.command("core show channels"))
    await fake.wait_until(lambda: bool(fake.actions("Command")))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(AmiConnectionLost):
        await pending
    assert client.state is S.DISCONNECTED
    assert rec.states[-1] is S.DISCONNECTED
    await fake.wait_until(lambda: fake.session_count == 0)
    assert asyncio.all_tasks() == before


async def test_cancel_while_backing_off(fake: FakeAsterisk) -> None:
    fake.reject_logins = True
    client = make_client(fake, Recorder(), reconnect_min=10, reconnect_max=10)
    async with running(client):
        await eventually(lambda: client.state is S.AUTH_FAILED)
    assert client.state is S.DISCONNECTED


async def test_refused_login_backs_off_retries_and_reports(fake: FakeAsterisk) -> None:
    fake.reject_logins = True
    rec = Recorder()
    client = make_client(fake, rec)
    async with running(client):
        await fake.wait_until(lambda: len(fake.actions("Login")) >= 2)
        await eventually(lambda: client.state is S.AUTH_FAILED)
        assert not client.connected
        assert "Authentication failed" in (client.last_error or "")
        assert client.stats.login_failures >= 2
        fake.reject_logins = False  # Asterisk finished starting, or the secret was fixed
        await client.wait_connected(2)
    assert rec.states[:3] == [S.CONNECTING, S.AUTH_FAILED, S.CONNECTING]
    assert S.CONNECTED in rec.states


async def test_action_timeout(fake: FakeAsterisk) -> None:
    fake.hold = {"Command"}
    client = make_client(fake, Recorder())
    async with running(client):
        await client.wait_connected(2)
        with pytest.raises(AmiTimeout, match="Command"):
            await client.command("core show channels", timeout=0.05)
        assert (await client.action("Ping")).ok  # the session survives a slow answer
        assert client.stats.action_timeouts == 1


async def test_on_event_exception_does_not_stop_the_reader(fake: FakeAsterisk) -> None:
    def on_event(event: Event) -> None:
        if event.name == "Boom":
            raise ValueError("consumer bug")

    rec = Recorder(on_event=on_event)
    client = make_client(fake, rec)
    async with running(client):
        await client.wait_connected(2)
        fake.emit("Boom")
        fake.emit("After")
        await eventually(lambda: "After" in rec.names())
        assert client.connected
        assert client.stats.event_handler_errors == 1


async def test_connection_refused_keeps_retrying() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    rec = Recorder()
    client = AmiClient(
        AmiClientConfig(
            port=port, username="u", secret="s", reconnect_min=0.01, reconnect_max=0.02
        ),
        on_event=rec.on_event,
        on_state=rec.states.append,
    )
    async with running(client):
        await eventually(lambda: client.stats.connect_failures >= 3)
    assert rec.states[:4] == [S.CONNECTING, S.DISCONNECTED, S.CONNECTING, S.DISCONNECTED]
    assert "cannot connect" in (client.last_error or "")


async def _serve(handler: Callable[[asyncio.StreamWriter], None]) -> asyncio.Server:
    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler(writer)
        await reader.read()  # until the client goes away
        writer.close()

    return await asyncio.start_server(on_client, "127.0.0.1", 0)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "not an Asterisk manager greeting"),
        (b"", "no AMI greeting"),
    ],
)
async def test_peer_that_is_not_ami(reply: bytes, error: str) -> None:
    server = await _serve(lambda writer: writer.write(reply))
    async with server:
        client = AmiClient(
            AmiClientConfig(
                port=server.sockets[0].getsockname()[1],
                username="u",
                secret="s",
                connect_timeout=0.05,
                reconnect_min=1,
                reconnect_max=1,
            ),
            on_event=Recorder().on_event,
        )
        async with running(client):
            await eventually(lambda: client.stats.connect_failures >= 1)
        assert error in (client.last_error or "")
        assert client.stats.connects == 0


async def test_run_twice_is_refused(fake: FakeAsterisk) -> None:
    client = make_client(fake, Recorder())
    async with running(client):
        await client.wait_connected(2)
        with pytest.raises(RuntimeError, match="already running"):
            await client.run()


def test_config_is_validated_and_hides_the_secret() -> None:
    config = AmiClientConfig(username="u", secret="hunter2")
    assert "hunter2" not in repr(config)
    assert (config.host, config.port, config.events) == ("127.0.0.1", 5038, "on")
    with pytest.raises(ConfigError, match="ping_timeout"):
        AmiClientConfig(username="u", secret="s", ping_timeout=0)
    with pytest.raises(ConfigError, match="reconnect_min"):
        AmiClientConfig(username="u", secret="s", reconnect_min=5, reconnect_max=1)
    with pytest.raises(ConfigError, match="port"):
        AmiClientConfig(username="u", secret="s", port=70000)
    with pytest.raises(ConfigError, match="auth"):
        AmiClientConfig(username="u", secret="s", auth="sha1")  # type: ignore[arg-type]  # wrong on purpose
