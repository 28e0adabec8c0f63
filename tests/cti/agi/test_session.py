"""AgiSession through the real server, with a fake Asterisk on the other end of a socket."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from cti.agi import AgiSession, SessionOutcome
from cti.errors import AgiCommandError, AgiError, AgiHangup, LocalProtocolError

if TYPE_CHECKING:
    from support.fake_agi import MakeServer


async def test_typed_helpers_against_a_scripted_asterisk(make_server: MakeServer) -> None:
    seen: dict[str, object] = {}

    async def ivr(session: AgiSession) -> None:
        seen["query"] = dict(session.env.query)
        seen["args"] = session.env.args
        await session.answer()
        seen["stream"] = await session.stream_file("welcome", "12#")
        seen["stream_end"] = await session.stream_file("thanks", "", offset=800)
        seen["data"] = await session.get_data("enter-account", 5000, 6)
        seen["data_timeout"] = await session.get_data("enter-pin")
        seen["var"] = await session.get_variable("CALLERID(name)")
        seen["unset"] = await session.get_variable("NOPE")
        seen["empty"] = await session.get_variable("EMPTY")
        seen["full"] = await session.get_full_variable("${EXTEN}-${CONTEXT}")
        await session.set_variable("IVR_CHOICE", 'sales "gold"')
        seen["exec"] = await session.exec("Queue", "sales", "t", "", "300")
        seen["exec_noargs"] = await session.exec("Ringing")
        seen["digit"] = await session.wait_for_digit(3000)
        seen["no_digit"] = await session.wait_for_digit(1000)
        seen["say_digits"] = await session.say_digits("123", "#")
        seen["say_number"] = await session.say_number(42)
        await session.verbose("caller chose sales", 3)
        gosub = await session.command("GOSUB", "sub-crm", "s", "1")
        seen["gosub"] = gosub.text
        await session.hangup()
        seen["hung_up"] = session.hung_up

    harness = await make_server({"ivr": ivr})
    asterisk = await harness.connect()
    await asterisk.start("ivr?lang=en&caller=+15551234", args=("sales",))
    await asterisk.play(
        [
            (b"ANSWER\n", b"200 result=0\n"),
            (b'STREAM FILE "welcome" "12#" "0"\n', b"200 result=35 endpos=4000\n"),
            (b'STREAM FILE "thanks" "" "800"\n', b"200 result=0 endpos=9000\n"),
            (b'GET DATA "enter-account" "5000" "6"\n', b"200 result=12345\n"),
            (b'GET DATA "enter-pin"\n', b"200 result= (timeout)\n"),
            (b'GET VARIABLE "CALLERID(name)"\n', b"200 result=1 (Smith (home))\n"),
            (b'GET VARIABLE "NOPE"\n', b"200 result=0\n"),
            (b'GET VARIABLE "EMPTY"\n', b"200 result=1 ()\n"),
            (b'GET FULL VARIABLE "${EXTEN}-${CONTEXT}"\n', b"200 result=1 (100-from-pstn)\n"),
            (b'SET VARIABLE "IVR_CHOICE" "sales \\"gold\\""\n', b"200 result=1\n"),
            (b'EXEC "Queue" "sales,t,,300"\n', b"200 result=0\n"),
            (b'EXEC "Ringing"\n', b"200 result=0\n"),
            (b'WAIT FOR DIGIT "3000"\n', b"200 result=50\n"),
            (b'WAIT FOR DIGIT "1000"\n', b"200 result=0\n"),
            (b'SAY DIGITS "123" "#"\n', b"200 result=0\n"),
            (b'SAY NUMBER "42" ""\n', b"200 result=0\n"),
            (b'VERBOSE "caller chose sales" "3"\n', b"200 result=1\n"),
            (
                b'GOSUB "sub-crm" "s" "1"\n',
                b"100 result=0 Trying...\n200 result=0 Gosub complete\n",
            ),
            (b"HANGUP\n", b"200 result=1\n"),
        ]
    )
    # The server closes when the handler returns; no handled mark after our own HANGUP.
    assert await asterisk.read_rest() == b""
    await asterisk.close()
    (summary,) = await harness.wait_sessions(1)
    assert summary.outcome is SessionOutcome.COMPLETED
    assert summary.commands == 19
    assert seen == {
        "query": {"lang": "en", "caller": "+15551234"},
        "args": ("sales",),
        "stream": "#",
        "stream_end": None,
        "data": "12345",
        "data_timeout": "",
        "var": "Smith (home)",
        "unset": None,
        "empty": "",
        "full": "100-from-pstn",
        "exec": "0",
        "exec_noargs": "0",
        "digit": "2",
        "no_digit": None,
        "say_digits": None,
        "say_number": None,
        "gosub": "Gosub complete",
        "hung_up": True,
    }


async def test_hangup_mid_session_then_511(make_server: MakeServer) -> None:
    seen: dict[str, object] = {}

    async def ivr(session: AgiSession) -> None:
        await session.answer()
        assert not session.hung_up
        # The caller hangs up now; HANGUP waits in the socket until our next command.
        seen["dialstatus"] = await session.get_variable("DIALSTATUS")  # allowed when dead
        seen["hung_up_after_notice"] = session.hung_up
        try:
            await session.stream_file("goodbye")
        except AgiHangup as exc:
            seen["hangup"] = str(exc)
        await session.set_variable("IVR_RESULT", "abandoned")  # clean-up still goes through

    harness = await make_server({"ivr": ivr})
    asterisk = await harness.connect()
    await asterisk.start()
    await asterisk.expect(b"ANSWER\n", b"200 result=0\n")
    await asterisk.send(b"HANGUP\n")
    await asterisk.play(
        [
            (b'GET VARIABLE "DIALSTATUS"\n', b"200 result=1 (CANCEL)\n"),
            (
                b'STREAM FILE "goodbye" "" "0"\n',
                b"511 Command Not Permitted on a dead channel or intercept routine\n",
            ),
            (b'SET VARIABLE "IVR_RESULT" "abandoned"\n', b"200 result=1\n"),
        ]
    )
    assert await asterisk.read_rest() == b""  # no FAILURE, no mark: the call is over anyway
    (summary,) = await harness.wait_sessions(1)
    assert seen == {
        "dialstatus": "CANCEL",
        "hung_up_after_notice": True,
        "hangup": "STREAM FILE: Command Not Permitted on a dead channel or intercept routine",
    }
    assert summary.outcome is SessionOutcome.COMPLETED
    assert summary.hung_up


async def test_unhandled_hangup_ends_the_session_quietly(make_server: MakeServer) -> None:
    async def ivr(session: AgiSession) -> None:
        await session.stream_file("menu", "123")
        raise AssertionError("not reached")

    harness = await make_server({"ivr": ivr})
    asterisk = await harness.connect()
    await asterisk.start()
    await asterisk.expect(
        b'STREAM FILE "menu" "123" "0"\n',
        b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n",
    )
    assert await asterisk.read_rest() == b""
    (summary,) = await harness.wait_sessions(1)
    assert summary.outcome is SessionOutcome.HANGUP
    assert harness.server.stats.handler_errors == 0


async def test_520_usage_then_the_next_command_gets_its_own_reply(make_server: MakeServer) -> None:
    seen: dict[str, object] = {}

    async def ivr(session: AgiSession) -> None:
        with pytest.raises(AgiCommandError) as usage:
            await session.command("STREAM FILE", "only-one-arg")
        seen["code"] = usage.value.code
        seen["usage"] = usage.value.message
        with pytest.raises(AgiCommandError) as unknown:
            await session.command("FROB")
        seen["unknown"] = unknown.value.code
        seen["next"] = await session.get_variable("CHANNEL")

    harness = await make_server({"ivr": ivr})
    asterisk = await harness.connect()
    await asterisk.start()
    await asterisk.play(
        [
            (
                b'STREAM FILE "only-one-arg"\n',
                b"520-Invalid command syntax.  Proper usage follows:\n"
                b"Send the given file, allowing playback to be interrupted by the given"
                b" digits, if any.\n"
                b"    <value>SUCCESS</value>\n"
                b"520 End of proper usage.\n",
            ),
            (b"FROB\n", b"510 Invalid or unknown command\n"),
            (b'GET VARIABLE "CHANNEL"\n', b"200 result=1 (PJSIP/anonymous-00000000)\n"),
            (asterisk.HANDLED_MARK, b"200 result=1\n"),
        ]
    )
    (summary,) = await harness.wait_sessions(1)
    assert summary.outcome is SessionOutcome.COMPLETED
    assert seen["code"] == 520
    assert str(seen["usage"]) == (
        "STREAM FILE: Invalid command syntax.  Proper usage follows:\n"
        "Send the given file, allowing playback to be interrupted by the given digits, if any.\n"
        "    <value>SUCCESS</value>\n"
        "End of proper usage."
    )
    assert seen["unknown"] == 510
    assert seen["next"] == "PJSIP/anonymous-00000000"


async def test_peer_closing_mid_command_is_a_hangup(make_server: MakeServer) -> None:
    seen: dict[str, object] = {}

    async def ivr(session: AgiSession) -> None:
        with pytest.raises(AgiHangup, match="closed the connection"):
            await session.get_data("menu", 5000, 1)
        seen["closed"] = session.closed
        # Closed: refused at once, nothing written.
        with pytest.raises(AgiHangup, match="connection to Asterisk is closed"):
            await session.verbose("still there?")
        seen["sent"] = session.connection.commands_sent

    harness = await make_server({"ivr": ivr})
    asterisk = await harness.connect()
    await asterisk.start()
    assert await asterisk.read_line() == b'GET DATA "menu" "5000" "1"\n'
    await asterisk.send(b"HANGUP\n200 res")  # half a reply, then gone
    await asterisk.close()
    (summary,) = await harness.wait_sessions(1)
    assert seen == {"closed": True, "sent": 1}
    assert summary.outcome is SessionOutcome.COMPLETED
    assert summary.hung_up


async def test_failures_that_are_not_hangups(make_server: MakeServer) -> None:
    seen: list[str] = []

    async def ivr(session: AgiSession) -> None:
        for call in (
            session.stream_file("no-such-file"),
            session.exec("NoSuchApp"),
            session.get_data("no-such-prompt"),
            session.command("GOSUB", "x", "s", "1"),
        ):
            with pytest.raises(AgiError) as failure:
                await call
            assert not isinstance(failure.value, AgiHangup)
            seen.append(str(failure.value))
        with pytest.raises(AgiHangup):
            await session.wait_for_digit(-1)

    harness = await make_server({"ivr": ivr})
    asterisk = await harness.connect()
    await asterisk.start()
    await asterisk.play(
        [
            (b'STREAM FILE "no-such-file" "" "0"\n', b"200 result=-1 endpos=0\n"),
            (b'EXEC "NoSuchApp"\n', b"200 result=-2\n"),
            (b'GET DATA "no-such-prompt"\n', b"200 result=-1\n"),
            (b'GOSUB "x" "s" "1"\n', b"503 result=-2 Memory allocation failure\n"),
            (b'WAIT FOR DIGIT "-1"\n', b"200 result=-1\n"),
        ]
    )
    await harness.wait_sessions(1)
    assert seen[0].startswith("STREAM FILE 'no-such-file' failed (result=-1)")
    assert seen[1] == "EXEC NoSuchApp: no such application"
    assert "GET DATA 'no-such-prompt' failed" in seen[2]
    assert "503 result=-2" in seen[3]


async def test_stream_file_cut_by_a_hangup_is_a_hangup_not_an_error(
    make_server: MakeServer,
) -> None:
    # res_agi.c handle_streamfile answers -1 both ways; endpos tells them apart: the offset
    # asked for when the file cannot be opened, the position reached when the caller left.
    seen: list[type[BaseException]] = []

    async def ivr(session: AgiSession) -> None:
        for prompt in ("missing", "long-prompt"):
            try:
                await session.stream_file(prompt, "", offset=0)
            except AgiError as exc:
                seen.append(type(exc))

    harness = await make_server({"ivr": ivr})
    asterisk = await harness.connect()
    await asterisk.start()
    await asterisk.play(
        [
            (b'STREAM FILE "missing" "" "0"\n', b"200 result=-1 endpos=0\n"),
            (b'STREAM FILE "long-prompt" "" "0"\n', b"200 result=-1 endpos=12800\n"),
        ]
    )
    await harness.wait_sessions(1)
    assert seen == [AgiError, AgiHangup]


async def test_command_timeout_makes_the_session_unusable(make_server: MakeServer) -> None:
    seen: dict[str, str] = {}

    async def ivr(session: AgiSession) -> None:
        with pytest.raises(AgiError, match=r"no reply within 0\.2 s") as timeout:
            await session.get_variable("SLOW")
        assert isinstance(timeout.value.__cause__, TimeoutError)
        # A late reply could be taken for the next command's: refuse instead.
        with pytest.raises(AgiError, match="unusable") as after:
            await session.get_variable("OTHER")
        seen["after"] = str(after.value)

    harness = await make_server({"ivr": ivr}, command_timeout=0.2)
    asterisk = await harness.connect()
    await asterisk.start()
    assert await asterisk.read_line() == b'GET VARIABLE "SLOW"\n'
    # Nothing else is written (no mark either) until the server gives up with FAILURE.
    assert await asterisk.read_line() == b"FAILURE\n"
    await asterisk.close()
    await harness.wait_sessions(1)
    assert seen["after"] == "GET VARIABLE: session unusable (no reply to GET VARIABLE within 0.2 s)"


async def test_media_commands_are_not_bound_by_the_command_timeout(
    make_server: MakeServer,
) -> None:
    seen: list[str | None] = []

    async def ivr(session: AgiSession) -> None:
        seen.append(await session.stream_file("long-prompt", "#"))

    harness = await make_server({"ivr": ivr}, command_timeout=0.1)
    asterisk = await harness.connect()
    await asterisk.start()
    assert await asterisk.read_line() == b'STREAM FILE "long-prompt" "#" "0"\n'
    await asyncio.sleep(0.4)  # the prompt plays longer than command_timeout
    await asterisk.send(b"200 result=0 endpos=64000\n")
    # The mark is a quick command again (bound by command_timeout); the outcome is not
    # asserted, so a machine too slow to answer it in 0.1 s cannot make this test flaky.
    await asterisk.expect_handled()
    await harness.wait_sessions(1)
    assert seen == [None]


async def test_idle_timeout_bounds_every_wait(make_server: MakeServer) -> None:
    async def ivr(session: AgiSession) -> None:
        await session.stream_file("never-answered")

    harness = await make_server({"ivr": ivr}, idle_timeout=0.2)
    asterisk = await harness.connect()
    await asterisk.start()
    assert await asterisk.read_line() == b'STREAM FILE "never-answered" "" "0"\n'
    assert await asterisk.read_line() == b"FAILURE\n"  # a handler error: no mark
    await asterisk.close()
    (summary,) = await harness.wait_sessions(1)
    assert summary.outcome is SessionOutcome.HANDLER_ERROR
    assert summary.error is not None
    assert "no reply within 0.2 s" in summary.error


async def test_bad_argument_is_refused_before_anything_is_written(make_server: MakeServer) -> None:
    seen: list[str | None] = []

    async def ivr(session: AgiSession) -> None:
        with pytest.raises(LocalProtocolError):
            await session.set_variable("X", "two\nlines")
        seen.append(await session.get_variable("X"))

    harness = await make_server({"ivr": ivr})
    asterisk = await harness.connect()
    await asterisk.start()
    await asterisk.expect(b'GET VARIABLE "X"\n', b"200 result=0\n")
    await asterisk.expect_handled()
    await harness.wait_sessions(1)
    assert seen == [None]


async def test_concurrent_commands_are_refused_not_queued(make_server: MakeServer) -> None:
    seen: list[str] = []
    written = asyncio.Event()
    refused = asyncio.Event()

    async def ivr(session: AgiSession) -> None:
        first = asyncio.create_task(session.stream_file("menu", "1"))
        try:
            # Ordered by events, not by a sleep: STREAM FILE is on the wire (the fake read it)
            # before the second command is tried.
            await written.wait()
            try:
                await session.answer()
            except LocalProtocolError as exc:
                # Recorded, not asserted here: a failed assertion inside the handler would
                # only surface as a timeout in the test.
                seen.append(str(exc))
            refused.set()
            seen.append(str(await first))
        finally:
            first.cancel()

    harness = await make_server({"ivr": ivr})
    asterisk = await harness.connect()
    await asterisk.start()
    assert await asterisk.read_line() == b'STREAM FILE "menu" "1" "0"\n'
    written.set()
    await asyncio.wait_for(refused.wait(), 5)
    await asterisk.send(b"200 result=49 endpos=10\n")
    # The next line is the handled mark: ANSWER was never written.
    await asterisk.expect_handled()
    assert await asterisk.read_rest() == b""
    (summary,) = await harness.wait_sessions(1)
    assert seen == ["ANSWER: STREAM FILE is still waiting for its reply", "1"]
    assert (summary.outcome, summary.commands) == (SessionOutcome.COMPLETED, 2)
