"""AgiServer: routing, bad peers, limits and shutdown, against a fake Asterisk over TCP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest

from cti.agi import HANDLED_VARIABLE, AgiServer, AgiServerConfig, AgiSession, SessionOutcome
from cti.errors import AgiError, ConfigError, CtiError

if TYPE_CHECKING:
    from support.fake_agi import FakeAsterisk, MakeServer


async def answer_and_leave(session: AgiSession) -> None:
    await session.answer()


async def finish_like_asterisk(asterisk: FakeAsterisk) -> bytes:
    """All the server sends up to its half-close (so the tests also see what it does NOT
    send: no handled mark before or after FAILURE). After FAILURE, Asterisk ends the AGI:
    HANGUP, then close (res_agi.c run_agi)."""
    sent = await asterisk.read_rest()
    await asterisk.send(b"HANGUP\n")
    await asterisk.close()
    return sent


async def test_routing_by_path_with_query(make_server: MakeServer) -> None:
    calls: list[tuple[str, str, dict[str, str]]] = []

    def recorder(name: str) -> Callable[[AgiSession], Awaitable[None]]:
        async def handler(session: AgiSession) -> None:
            calls.append((name, session.env.path, dict(session.env.query)))

        return handler

    harness = await make_server(
        {"ivr": recorder("ivr"), "ivr/sales": recorder("sales"), "/queue/": recorder("queue")}
    )
    for script in ("ivr?x=1", "ivr/sales?team=gold&x=2", "ivr/sales/extra", "queue", "ivr/other"):
        asterisk = await harness.connect()
        await asterisk.start(script)
        await asterisk.expect_handled()
        assert await asterisk.read_rest() == b""
        await asterisk.close()
    await harness.wait_sessions(5)
    assert calls == [
        ("ivr", "ivr", {"x": "1"}),
        ("sales", "ivr/sales", {"team": "gold", "x": "2"}),
        ("sales", "ivr/sales/extra", {}),
        ("queue", "queue", {}),
        ("ivr", "ivr/other", {}),
    ]
    assert harness.server.stats.sessions_completed == 5


async def test_unknown_route_says_failure(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    harness = await make_server({"ivr": answer_and_leave})
    asterisk = await harness.connect()
    await asterisk.start("billing?acct=1", channel="PJSIP/trunk-00000007")
    # FAILURE -> AGISTATUS=FAILURE, so the dialplan can take its fallback branch.
    assert await finish_like_asterisk(asterisk) == b"FAILURE\n"
    (summary,) = await harness.wait_sessions(1)
    assert summary.outcome is SessionOutcome.UNKNOWN_ROUTE
    assert summary.route == "billing"
    assert harness.server.stats.unknown_routes == 1
    assert "PJSIP/trunk-00000007" in caplog.text
    assert "billing?acct=1" in caplog.text


async def test_connect_and_close_immediately_then_next_session_works(
    make_server: MakeServer,
) -> None:
    harness = await make_server({"ivr": answer_and_leave})
    for _ in range(3):
        silent = await harness.connect()
        await silent.close()
    asterisk = await harness.connect()
    await asterisk.start()
    await asterisk.expect(b"ANSWER\n", b"200 result=0\n")
    await asterisk.expect_handled()
    summaries = await harness.wait_sessions(4)
    outcomes = [s.outcome for s in summaries]
    assert outcomes.count(SessionOutcome.EARLY_DISCONNECT) == 3
    assert outcomes.count(SessionOutcome.COMPLETED) == 1
    stats = harness.server.stats
    assert (stats.early_disconnects, stats.sessions_started, stats.connections) == (3, 1, 4)


async def test_half_environment_then_eof(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    harness = await make_server({"ivr": answer_and_leave})
    broken = await harness.connect()
    await broken.send(b"agi_network: yes\nagi_network_script: ivr\nagi_chan")
    await broken.close()
    (summary,) = await harness.wait_sessions(1)
    assert summary.outcome is SessionOutcome.EARLY_DISCONNECT
    assert "inside the environment block" in (summary.error or "")
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    asterisk = await harness.connect()
    await asterisk.start()
    await asterisk.expect(b"ANSWER\n", b"200 result=0\n")
    await asterisk.expect_handled()
    await harness.wait_sessions(2)
    assert harness.server.stats.early_disconnects == 1


@pytest.mark.parametrize(
    "garbage",
    [
        b"agi_network: yes\nagi_request: " + b"A" * 10000,  # oversized line, no newline
        b"GET / HTTP/1.1\r\nHost: cti\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",  # a TLS hello
    ],
    ids=["oversized", "http", "tls"],
)
async def test_garbage_is_counted_and_the_server_stays_healthy(
    make_server: MakeServer, garbage: bytes
) -> None:
    harness = await make_server({"ivr": answer_and_leave}, max_line=4096)
    bad = await harness.connect()
    await bad.send(garbage)
    assert await bad.read_rest() == b""  # the server hangs up on it, sends nothing
    await bad.close()
    (summary,) = await harness.wait_sessions(1)
    assert summary.outcome is SessionOutcome.PROTOCOL_ERROR
    asterisk = await harness.connect()
    await asterisk.start()
    await asterisk.expect(b"ANSWER\n", b"200 result=0\n")
    await asterisk.expect_handled()
    await harness.wait_sessions(2)
    assert harness.server.stats.protocol_errors == 1


async def test_oversized_reply_line_ends_only_that_session(make_server: MakeServer) -> None:
    async def reader(session: AgiSession) -> None:
        await session.get_variable("HUGE")

    harness = await make_server({"ivr": reader}, max_line=1024)
    asterisk = await harness.connect()
    await asterisk.start()
    await asterisk.expect(b'GET VARIABLE "HUGE"\n', b"200 result=1 (" + b"x" * 5000)
    (summary,) = await harness.wait_sessions(1)
    assert summary.outcome is SessionOutcome.PROTOCOL_ERROR
    assert "longer than 1024" in (summary.error or "")


async def test_env_timeout(make_server: MakeServer) -> None:
    harness = await make_server({"ivr": answer_and_leave}, env_timeout=0.2)
    slow = await harness.connect()
    await slow.send(b"agi_network: yes\n")
    assert await slow.read_rest() == b""  # closed on us
    (summary,) = await harness.wait_sessions(1)
    assert summary.outcome is SessionOutcome.ENV_TIMEOUT
    assert harness.server.stats.env_timeouts == 1


async def test_handler_error_is_isolated_logged_and_says_failure(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    release = asyncio.Event()

    async def broken(session: AgiSession) -> None:
        await session.answer()
        raise ValueError("bug in the IVR")

    async def patient(session: AgiSession) -> None:
        await release.wait()
        await session.answer()

    harness = await make_server({"broken": broken, "patient": patient})
    good = await harness.connect()
    await good.start("patient", channel="PJSIP/good-00000001")
    bad = await harness.connect()
    await bad.start("broken", channel="PJSIP/bad-00000002")
    await bad.expect(b"ANSWER\n", b"200 result=0\n")
    assert await finish_like_asterisk(bad) == b"FAILURE\n"  # and no handled mark
    (summary,) = await harness.wait_sessions(1)
    assert summary.outcome is SessionOutcome.HANDLER_ERROR
    assert summary.error == "ValueError: bug in the IVR"
    error_logs = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error_logs
    assert "PJSIP/bad-00000002" in error_logs[0].getMessage()
    assert error_logs[0].exc_info is not None
    # The other call never noticed.
    release.set()
    await good.expect(b"ANSWER\n", b"200 result=0\n")
    await good.expect_handled()
    summaries = await harness.wait_sessions(2)
    assert summaries[1].outcome is SessionOutcome.COMPLETED
    assert harness.server.stats.handler_errors == 1


async def test_no_failure_after_the_caller_hung_up(make_server: MakeServer) -> None:
    async def careless(session: AgiSession) -> None:
        await session.get_variable("X")
        raise RuntimeError("cleanup bug")

    harness = await make_server({"ivr": careless})
    asterisk = await harness.connect()
    await asterisk.start()
    await asterisk.expect(b'GET VARIABLE "X"\n', b"HANGUP\n200 result=0\n")
    assert await asterisk.read_rest() == b""  # the channel is gone: no FAILURE, no mark
    (summary,) = await harness.wait_sessions(1)
    assert summary.outcome is SessionOutcome.HANDLER_ERROR
    assert summary.hung_up


def test_the_handled_mark_is_the_variable_the_dialplan_checks() -> None:
    # The bytes the fake expects (conftest) spell the name out; the dialplan's side is checked
    # in tests/sandbox/test_render.py.
    assert HANDLED_VARIABLE == "CTI_HANDLED"


async def test_no_mark_when_the_handler_hangs_up_the_call(make_server: MakeServer) -> None:
    async def goodbye(session: AgiSession) -> None:
        await session.answer()
        await session.hangup()

    harness = await make_server({"ivr": goodbye})
    asterisk = await harness.connect()
    await asterisk.start()
    await asterisk.play([(b"ANSWER\n", b"200 result=0\n"), (b"HANGUP\n", b"200 result=1\n")])
    # The channel is gone: the dialplan runs only the h extension, nothing to mark.
    assert await asterisk.read_rest() == b""
    (summary,) = await harness.wait_sessions(1)
    assert (summary.outcome, summary.hung_up, summary.commands) == (
        SessionOutcome.COMPLETED,
        True,
        2,
    )


@pytest.mark.parametrize("asterisk_does", ["replies_dead", "closes"])
async def test_caller_hanging_up_during_the_mark(
    make_server: MakeServer, asterisk_does: str
) -> None:
    harness = await make_server({"ivr": answer_and_leave})
    asterisk = await harness.connect()
    await asterisk.start()
    await asterisk.expect(b"ANSWER\n", b"200 result=0\n")
    if asterisk_does == "replies_dead":
        # SET VARIABLE is allowed on a dead channel (res_agi.c command table): it still runs.
        await asterisk.expect(asterisk.HANDLED_MARK, b"HANGUP\n200 result=1\n")
        assert await asterisk.read_rest() == b""
    else:
        assert await asterisk.read_line() == asterisk.HANDLED_MARK
        await asterisk.close()
    (summary,) = await harness.wait_sessions(1)
    assert summary.hung_up
    assert summary.outcome is (
        SessionOutcome.COMPLETED if asterisk_does == "replies_dead" else SessionOutcome.HANGUP
    )
    assert harness.server.stats.handler_errors == 0


async def test_a_session_left_unusable_is_not_marked_and_says_failure(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def swallows_timeout(session: AgiSession) -> None:
        # A handler bug: after a timeout, a late reply could be paired with the next command.
        with contextlib.suppress(AgiError):
            await session.get_variable("SLOW")

    harness = await make_server({"ivr": swallows_timeout}, command_timeout=0.2)
    asterisk = await harness.connect()
    await asterisk.start(channel="PJSIP/slow-00000003")
    assert await asterisk.read_line() == b'GET VARIABLE "SLOW"\n'
    # No mark (it could not be paired with its reply), and FAILURE: either sends the call to
    # the dialplan's fallback.
    assert await finish_like_asterisk(asterisk) == b"FAILURE\n"
    (summary,) = await harness.wait_sessions(1)
    assert summary.outcome is SessionOutcome.HANDLER_ERROR
    assert summary.error == (
        "call not marked handled: SET VARIABLE: session unusable "
        "(no reply to GET VARIABLE within 0.2 s)"
    )
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.levelno == logging.WARNING
    assert "PJSIP/slow-00000003" in warning.getMessage()
    assert warning.exc_info is None  # the handler did not raise: no misleading traceback


async def test_aclose_with_sessions_in_progress(make_server: MakeServer) -> None:
    state: dict[str, bool] = {}

    async def playing(session: AgiSession) -> None:
        try:
            await session.stream_file("very-long-prompt")
        finally:
            state["handler_finally"] = True

    async def thinking(session: AgiSession) -> None:
        await asyncio.Event().wait()  # CRM lookup that never ends

    before = asyncio.all_tasks()
    harness = await make_server({"play": playing, "think": thinking})
    polite = await harness.connect()
    await polite.start("play")
    assert await polite.read_line() == b'STREAM FILE "very-long-prompt" "" "0"\n'
    stubborn = await harness.connect()
    await stubborn.start("think")
    pending_env = await harness.connect()  # connected, no environment yet
    await harness.until_active(3)

    port = harness.port
    loop = asyncio.get_running_loop()
    started = loop.time()
    closing = asyncio.create_task(harness.server.aclose())
    # The playing call is told FAILURE (its prompt is interrupted, the dialplan goes on).
    assert await finish_like_asterisk(polite) == b"FAILURE\n"
    # The stubborn peer never closes: aclose still finishes, bounded by the linger time.
    assert await stubborn.read_line() == b"FAILURE\n"
    await asyncio.wait_for(closing, 5)
    assert loop.time() - started < 3
    assert state == {"handler_finally": True}
    assert await stubborn.read_rest() == b""
    # Even a connection still in its environment block is told (it may be a slow Asterisk).
    assert await pending_env.read_rest() == b"FAILURE\n"
    assert asyncio.all_tasks() - before == set()
    stats = harness.server.stats
    assert stats.sessions_active == 0
    assert stats.cancelled == 3
    outcomes = sorted(s.outcome.value for s in harness.summaries)
    assert outcomes == ["cancelled"] * 3
    for fake in (polite, stubborn, pending_env):
        await fake.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)  # no longer listening


async def test_max_sessions_refuses_quickly_with_failure(make_server: MakeServer) -> None:
    release = asyncio.Event()

    async def holding(session: AgiSession) -> None:
        await release.wait()
        await session.answer()

    harness = await make_server({"ivr": holding}, max_sessions=2)
    first, second = await harness.connect(), await harness.connect()
    await first.start()
    await second.start()
    await harness.until_active(2)

    loop = asyncio.get_running_loop()
    started = loop.time()
    third = await harness.connect()
    await third.start()
    # Asterisk gives up on a FastAGI server after 2 s; a refusal must be much faster, and
    # must say FAILURE so the dialplan takes its fallback.
    assert await finish_like_asterisk(third) == b"FAILURE\n"
    assert loop.time() - started < 1
    (refused,) = await harness.wait_sessions(1)
    assert refused.outcome is SessionOutcome.REJECTED
    assert harness.server.stats.rejected == 1

    release.set()
    for fake in (first, second):
        await fake.expect(b"ANSWER\n", b"200 result=0\n")
        await fake.expect_handled()
    await harness.wait_sessions(3)
    fourth = await harness.connect()
    await fourth.start()
    await fourth.expect(b"ANSWER\n", b"200 result=0\n")
    await fourth.expect_handled()
    summaries = await harness.wait_sessions(4)
    assert summaries[-1].outcome is SessionOutcome.COMPLETED


async def test_summary_for_a_normal_session(make_server: MakeServer) -> None:
    harness = await make_server({"ivr": answer_and_leave})
    asterisk = await harness.connect()
    await asterisk.start("ivr/sales?x=1", channel="PJSIP/alice-00000009")
    await asterisk.expect(b"ANSWER\n", b"200 result=0\n")
    # The handler returned on a live channel: the mark is the last command, then the close.
    await asterisk.expect_handled()
    assert await asterisk.read_rest() == b""
    (summary,) = await harness.wait_sessions(1)
    assert summary.outcome is SessionOutcome.COMPLETED
    assert summary.env is not None
    assert summary.env.channel == "PJSIP/alice-00000009"
    assert (summary.route, summary.commands, summary.hung_up, summary.error) == (
        "ivr/sales",
        2,
        False,
        None,
    )
    assert summary.peer.startswith("127.0.0.1:")
    assert summary.duration >= 0


async def test_a_failing_summary_callback_does_not_hurt(
    caplog: pytest.LogCaptureFixture, connect_fake: Callable[[int], Awaitable[FakeAsterisk]]
) -> None:
    def explode(summary: object) -> None:
        raise RuntimeError("metrics down")

    server = AgiServer(AgiServerConfig(port=0), on_session_end=explode)
    server.route("ivr", answer_and_leave)
    async with server:
        for _ in range(2):
            asterisk = await connect_fake(server.port)
            await asterisk.start()
            await asterisk.expect(b"ANSWER\n", b"200 result=0\n")
            await asterisk.expect_handled()
            assert await asterisk.read_rest() == b""
            await asterisk.close()
        await asyncio.sleep(0.05)
        assert server.stats.sessions_completed == 2
    assert "metrics down" in caplog.text


def test_route_registration_is_checked() -> None:
    server = AgiServer(AgiServerConfig(port=0))
    server.route("ivr", answer_and_leave)
    with pytest.raises(ConfigError, match="twice"):
        server.route("/ivr/", answer_and_leave)
    for bad in ("", "/", "ivr?x=1"):
        with pytest.raises(ConfigError):
            server.route(bad, answer_and_leave)
    assert server.handler_for("ivr/anything") is answer_and_leave
    assert server.handler_for("ivrx") is None
    assert server.handler_for("") is None


@pytest.mark.parametrize(
    "bad",
    [
        {"port": 70000},
        {"max_sessions": 0},
        {"env_timeout": 0},
        {"linger": -1},
        {"command_timeout": 0},
        {"max_line": 0},
    ],
)
def test_config_is_validated(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        AgiServerConfig(**bad)


async def test_lifecycle_misuse() -> None:
    server = AgiServer(AgiServerConfig(port=0))
    with pytest.raises(CtiError, match="not started"):
        _ = server.port
    await server.start()
    try:
        with pytest.raises(CtiError, match="already started"):
            await server.start()
    finally:
        await server.aclose()
    await server.aclose()  # idempotent
