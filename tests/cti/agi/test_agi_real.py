"""The FastAGI layer against a real Asterisk 22 (the ``pbx`` sandbox) and SIPp callers.

What the fake Asterisk in the other tests assumes is checked here on the real thing: the
environment block, replies of each kind, HANGUP then 511 after the caller leaves, that our
``FAILURE`` line really sets ``AGISTATUS=FAILURE`` so the dialplan takes its fallback, and
that the handled mark (``CTI_HANDLED``) keeps a call the handler finished out of it. (A
server dying mid-call, which never sends the mark, is in tests/sandbox/test_sandbox_real.py.)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.pbx import PbxHandle
from support.sipp import SippProcess, start_caller, start_hangup_caller

from cti.agi import (
    AgiEnvironment,
    AgiServer,
    AgiServerConfig,
    AgiSession,
    SessionOutcome,
    SessionSummary,
)
from cti.errors import AgiCommandError, AgiHangup

pytestmark = pytest.mark.pbx


@pytest.fixture
def line(pbx: PbxHandle) -> Iterator[PbxHandle]:
    """The sandbox with no calls left over, before and after the test."""
    pbx.hangup_all()
    yield pbx
    pbx.hangup_all()


async def finish(process: SippProcess, seconds: float) -> None:
    """Wait for a SIPp caller in a thread (a blocking subprocess wait)."""
    try:
        result = await asyncio.to_thread(process.wait, seconds)
    finally:
        process.stop()
    result.check()


class Summaries:
    def __init__(self) -> None:
        self.items: list[SessionSummary] = []
        self.event = asyncio.Event()

    def __call__(self, summary: SessionSummary) -> None:
        self.items.append(summary)
        self.event.set()

    async def first(self) -> SessionSummary:
        await asyncio.wait_for(self.event.wait(), 30)
        return self.items[0]


def server_for(pbx: PbxHandle, summaries: Summaries) -> AgiServer:
    config = AgiServerConfig(host=pbx.agi_host, port=pbx.agi_port, command_timeout=15)
    return AgiServer(config, on_session_end=summaries)


async def test_a_real_call_through_the_session_api(line: PbxHandle, tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def ivr(session: AgiSession) -> None:
        seen["env"] = session.env
        await session.answer()
        # The caller keys 1 2 # while (or after) one second of silence plays.
        seen["digits"] = await session.get_data("silence/1", 8000, 5)
        await session.set_variable("CTI_TEST", 'say "hi" \\ bye')
        seen["var"] = await session.get_variable("CTI_TEST")
        seen["unset"] = await session.get_variable("CTI_NOT_SET")
        seen["full"] = await session.get_full_variable("${CALLERID(num)}/${EXTEN}")
        with pytest.raises(AgiCommandError) as usage:
            await session.command("STREAM FILE", "only-one-arg")
        seen["usage"] = (usage.value.code, usage.value.message)
        with pytest.raises(AgiCommandError) as unknown:
            await session.command("NO SUCH THING")
        seen["unknown"] = unknown.value.code
        seen["after_errors"] = await session.get_variable("CTI_TEST")  # still in step
        seen["exec"] = await session.exec("Wait", "0.2")
        seen["gosub"] = (await session.command("GOSUB", "from-trunk", "no-such-exten", "1")).text
        await session.verbose("FastAGI layer test", 1)
        await session.hangup()

    summaries = Summaries()
    async with server_for(line, summaries) as server:
        server.route("ivr", ivr)
        caller = start_caller(
            line.sip_port,
            "5550100",
            digits="12#",
            first_key_ms=1500,
            key_gap_ms=400,
            hold_ms=20000,
            ani="5551234",
            caller_name="Ada Lovelace",
            log_dir=tmp_path,
        )
        summary = await summaries.first()
        await finish(caller, 30)

    assert summary.outcome is SessionOutcome.COMPLETED, summary.error
    env = seen["env"]
    assert isinstance(env, AgiEnvironment)
    assert (env.route, env.extension, env.args, env.context) == (
        "ivr",
        "5550100",
        ("5550100",),
        "from-trunk",
    )
    assert (env.callerid, env.calleridname) == ("5551234", "Ada Lovelace")
    assert env.channel.startswith("PJSIP/")
    assert env.version.startswith("22.")
    assert seen["digits"] == "12"
    assert seen["var"] == 'say "hi" \\ bye'  # quoting survived Asterisk's parse_args
    assert seen["unset"] is None
    assert seen["full"] == "5551234/5550100"
    usage = seen["usage"]
    assert isinstance(usage, tuple)
    assert usage[0] == 520
    assert usage[1].startswith("STREAM FILE: Invalid command syntax.  Proper usage follows:\n")
    assert "Send the given file" in usage[1]
    assert usage[1].endswith("\nEnd of proper usage.")
    assert seen["unknown"] == 510
    assert seen["after_errors"] == 'say "hi" \\ bye'
    assert seen["exec"] == "0"
    # No such extension: "200 result=-1 Gosub label not found" (apps/app_stack.c handle_gosub).
    assert seen["gosub"] == "Gosub label not found"
    assert caller.stop().hangup == "remote"


async def test_caller_hangs_up_mid_command_then_511(line: PbxHandle, tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def ivr(session: AgiSession) -> None:
        await session.answer()
        with pytest.raises(AgiHangup):
            await session.wait_for_digit(15000)  # the caller hangs up during the wait
        # A command allowed on a dead channel still runs ...
        seen["var"] = await session.get_variable("CHANNEL")
        seen["notice"] = session.connection.hangup_seen
        # ... one that needs the channel gets 511.
        with pytest.raises(AgiHangup) as dead:
            await session.stream_file("beep")
        seen["dead"] = str(dead.value)

    summaries = Summaries()
    async with server_for(line, summaries) as server:
        server.route("ivr", ivr)
        caller = start_hangup_caller(
            line.sip_port, "5550111", ring_timeout_ms=5000, talk_ms=1000, log_dir=tmp_path
        )
        summary = await summaries.first()
        await finish(caller, 20)

    assert summary.outcome is SessionOutcome.COMPLETED, summary.error
    assert summary.hung_up
    assert str(seen["var"]).startswith("PJSIP/")
    assert seen["notice"] is True
    assert "Command Not Permitted on a dead channel" in str(seen["dead"])


@pytest.mark.parametrize("case", ["unknown_route", "handler_error"])
async def test_failure_line_sends_the_call_to_the_dialplan_fallback(
    line: PbxHandle, tmp_path: Path, case: str
) -> None:
    async def broken(session: AgiSession) -> None:
        raise RuntimeError("IVR bug")

    log_start = line.log_position()
    summaries = Summaries()
    async with server_for(line, summaries) as server:
        server.route("ivr" if case == "handler_error" else "not-ivr", broken)
        caller = start_hangup_caller(
            line.sip_port, "5550122", ring_timeout_ms=8000, talk_ms=1500, log_dir=tmp_path
        )
        summary = await summaries.first()
        await finish(caller, 30)

    assert summary.outcome is SessionOutcome(case)
    # extensions.conf logs this line in [cti-fallback], with the AGISTATUS that led there.
    line.wait_for(
        "the fallback log line", lambda: "(AGISTATUS=FAILURE)" in line.log_since(log_start)
    )
    assert caller.stop().hangup == "caller"  # the fallback answered; the caller left


# The dialplan's decision after the AGI, as Asterisk's verbose log shows it (pbx.c
# pbx_extension_helper): the GotoIf with its expression already evaluated to 0 or 1.
FALLBACK_DECISION = re.compile(r'GotoIf\("PJSIP/[^"]+", "([01])\?cti-fallback,s,1"\)')


async def test_a_handler_that_returns_is_marked_handled_and_not_sent_to_the_fallback(
    line: PbxHandle, tmp_path: Path
) -> None:
    async def quiet(session: AgiSession) -> None:
        await session.answer()

    log_start = line.log_position()
    summaries = Summaries()
    async with server_for(line, summaries) as server:
        server.route("ivr", quiet)
        caller = start_caller(line.sip_port, "5550133", hold_ms=10000, log_dir=tmp_path)
        summary = await summaries.first()
        await finish(caller, 20)

    assert summary.outcome is SessionOutcome.COMPLETED, summary.error
    assert (summary.hung_up, summary.commands) == (False, 2)  # ANSWER, then the mark
    # AGISTATUS=SUCCESS and CTI_HANDLED=1: the GotoIf is false, the next priority is
    # Hangup(), and the caller is hung up well before its 10 s.
    assert caller.stop().hangup == "remote"
    line.wait_for(
        "the GotoIf after the AGI",
        lambda: FALLBACK_DECISION.search(line.log_since(log_start)) is not None,
    )
    log = line.log_since(log_start)
    assert FALLBACK_DECISION.findall(log) == ["0"]
    assert "CTI fallback" not in log
    assert "CtiFallback" not in log
