"""AgiCallControl: say plans (pure), the AGI lines it sends (a scripted fake Asterisk over a
real socket), and, against the sandbox Asterisk, that every sound the plans use exists and
that VoiceMail runs."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from support.fake_agi import FakeAsterisk
from support.pbx import PbxHandle
from support.sipp import SippProcess, start_caller

from cti.agi import AgiServer, AgiServerConfig, AgiSession, SessionOutcome, SessionSummary
from cti.errors import AgiError, AgiHangup
from ivr.agi_control import AgiCallControl, SaySounds, SayStep, say_plan
from ivr.model import SayAs

# -- say plans (pure) -----------------------------------------------------------------------


def n(value: str) -> SayStep:
    return SayStep("number", value)


def s(name: str) -> SayStep:
    return SayStep("sound", name)


def d(value: str) -> SayStep:
    return SayStep("digits", value)


@pytest.mark.parametrize(
    ("value", "steps"),
    [
        ("42", [n("42")]),
        (" 7 ", [n("7")]),
        ("-3", [s("digits/minus"), n("3")]),
        ("3.50", [n("3"), s("letters/dot"), d("50")]),
        ("-0.5", [s("digits/minus"), n("0"), s("letters/dot"), d("5")]),
        ("1E+3", [n("1000")]),
    ],
)
def test_numbers(value: str, steps: list[SayStep]) -> None:
    assert say_plan(value, "number") == tuple(steps)


@pytest.mark.parametrize(
    ("value", "steps"),
    [
        ("1234.56", [n("1234"), s("digits/dollars"), s("vm-and"), n("56")]),
        ("12.5", [n("12"), s("digits/dollars"), s("vm-and"), n("50")]),
        ("12.05", [n("12"), s("digits/dollars"), s("vm-and"), n("5")]),
        ("12", [n("12"), s("digits/dollars")]),
        ("1", [n("1"), s("letters/dollar")]),
        ("0", [n("0"), s("digits/dollars")]),
        ("0.999", [n("1"), s("letters/dollar")]),  # rounded half up to cents
        ("-42.10", [s("digits/minus"), n("42"), s("digits/dollars"), s("vm-and"), n("10")]),
    ],
)
def test_amounts(value: str, steps: list[SayStep]) -> None:
    assert say_plan(value, "amount") == tuple(steps)


def test_amount_says_cents_when_a_sound_is_given() -> None:
    sounds = SaySounds(cents="/srv/tts/cents", dollars="euros")
    assert say_plan("2.30", "amount", sounds) == (
        n("2"),
        s("euros"),
        s("vm-and"),
        n("30"),
        s("/srv/tts/cents"),
    )


@pytest.mark.parametrize(
    ("value", "steps"),
    [
        ("125", [n("2"), s("minutes"), s("vm-and"), n("5"), s("seconds")]),
        ("60", [n("1"), s("minute")]),
        ("61", [n("1"), s("minute"), s("vm-and"), n("1"), s("second")]),
        ("0", [n("0"), s("seconds")]),
        ("44.5", [n("45"), s("seconds")]),
        ("3600", [n("60"), s("minutes")]),
    ],
)
def test_durations(value: str, steps: list[SayStep]) -> None:
    assert say_plan(value, "duration") == tuple(steps)


def test_digits_drop_formatting_and_keep_star_and_pound() -> None:
    assert say_plan("+49 (30) 123-45", "digits") == (d("493012345"),)
    assert say_plan("12*#", "digits") == (d("12*#"),)
    # SAY DIGITS refuses a string that does not start with a digit.
    assert say_plan("*#1*", "digits") == (s("digits/star"), s("digits/pound"), d("1*"))
    assert say_plan("#", "digits") == (s("digits/pound"),)


def test_dates_are_noon_utc_of_the_calendar_day() -> None:
    noon = int(dt.datetime(2026, 12, 25, 12, tzinfo=dt.UTC).timestamp())
    assert say_plan("2026-12-25", "date") == (SayStep("date", str(noon)),)
    # A date-time counts by its own calendar day, whatever its offset.
    assert say_plan("2026-12-25T23:30:00-05:00", "date") == (SayStep("date", str(noon)),)
    assert say_plan("1767000000", "date") == (SayStep("date", "1767000000"),)


@pytest.mark.parametrize(
    ("value", "say_as", "why"),
    [
        ("abc", "number", "not a number"),
        ("NaN", "amount", "not a finite number"),
        ("", "amount", "not a number"),
        ("3000000000", "number", "too large"),
        ("-5", "duration", "negative"),
        ("12a", "digits", "only 0-9"),
        ("", "digits", "only 0-9"),
        ("25.12.2026", "date", "expected an ISO date"),
    ],
)
def test_values_that_cannot_be_said_are_agi_errors(value: str, say_as: SayAs, why: str) -> None:
    with pytest.raises(AgiError, match=why):
        say_plan(value, say_as)


# -- the AGI lines (fake Asterisk) ----------------------------------------------------------

Scenario = Callable[[AgiCallControl], Awaitable[None]]


class Harness:
    def __init__(self) -> None:
        self.server = AgiServer(AgiServerConfig(port=0, linger=1.0), on_session_end=self._ended)
        self.summaries: list[SessionSummary] = []
        self.done = asyncio.Event()
        self.scenario: Scenario | None = None
        self.server.route("ivr", self._handle)

    def _ended(self, summary: SessionSummary) -> None:
        self.summaries.append(summary)
        self.done.set()

    async def _handle(self, session: AgiSession) -> None:
        assert self.scenario is not None
        await self.scenario(AgiCallControl(session))

    async def call(self, scenario: Scenario) -> FakeAsterisk:
        self.scenario = scenario
        asterisk = await FakeAsterisk.connect(self.server.port)
        await asterisk.start()
        return asterisk

    async def summary(self) -> SessionSummary:
        await asyncio.wait_for(self.done.wait(), 5)
        return self.summaries[-1]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    harness = Harness()
    await harness.server.start()
    yield harness
    await harness.server.aclose()


async def test_every_operation_sends_the_expected_command(harness: Harness) -> None:
    seen: dict[str, object] = {}

    async def scenario(call: AgiCallControl) -> None:
        await call.answer()
        seen["played"] = await call.play(["welcome", "menu"], "12")
        seen["cut"] = await call.play(["a", "b", "c"], "12")
        seen["none"] = await call.play([])
        seen["key"] = await call.wait_digit(2.5)
        seen["no_key"] = await call.wait_digit(-1)
        seen["said"] = await call.say("12.50", "amount", "#")
        seen["said_date"] = await call.say("2026-12-25", "date")
        seen["exec"] = await call.exec("VoiceMail", "100@default", "u")
        await call.set_variable("IVR_X", "1")
        seen["var"] = await call.get_variable("IVR_X")
        await call.hangup()

    asterisk = await harness.call(scenario)
    noon = int(dt.datetime(2026, 12, 25, 12, tzinfo=dt.UTC).timestamp())
    await asterisk.play(
        [
            (b"ANSWER\n", b"200 result=0\n"),
            (b'STREAM FILE "welcome" "12" "0"\n', b"200 result=0 endpos=100\n"),
            (b'STREAM FILE "menu" "12" "0"\n', b"200 result=0 endpos=100\n"),
            (b'STREAM FILE "a" "12" "0"\n', b"200 result=0 endpos=100\n"),
            (b'STREAM FILE "b" "12" "0"\n', b"200 result=50 endpos=40\n"),  # "2": c not played
            (b'WAIT FOR DIGIT "2500"\n', b"200 result=35\n"),
            (b'WAIT FOR DIGIT "0"\n', b"200 result=0\n"),
            (b'SAY NUMBER "12" "#"\n', b"200 result=0\n"),
            (b'STREAM FILE "digits/dollars" "#" "0"\n', b"200 result=0 endpos=1\n"),
            (b'STREAM FILE "vm-and" "#" "0"\n', b"200 result=0 endpos=1\n"),
            (b'SAY NUMBER "50" "#"\n', b"200 result=0\n"),
            (f'SAY DATE "{noon}" ""\n'.encode(), b"200 result=0\n"),
            (b'EXEC "VoiceMail" "100@default,u"\n', b"200 result=0\n"),
            (b'SET VARIABLE "IVR_X" "1"\n', b"200 result=1\n"),
            (b'GET VARIABLE "IVR_X"\n', b"200 result=1 (1)\n"),
            (b"HANGUP\n", b"200 result=1\n"),
        ]
    )
    summary = await harness.summary()
    await asterisk.close()
    assert summary.outcome is SessionOutcome.COMPLETED, summary.error
    assert seen == {
        "played": None,
        "cut": "2",
        "none": None,
        "key": "#",
        "no_key": None,
        "said": None,
        "said_date": None,
        "exec": "0",
        "var": "1",
    }


async def test_a_key_stops_a_say_plan_midway(harness: Harness) -> None:
    seen: dict[str, object] = {}

    async def scenario(call: AgiCallControl) -> None:
        seen["key"] = await call.say("125", "duration", "0")

    asterisk = await harness.call(scenario)
    await asterisk.play(
        [
            (b'SAY NUMBER "2" "0"\n', b"200 result=0\n"),
            (b'STREAM FILE "minutes" "0" "0"\n', b"200 result=48 endpos=10\n"),
        ]
    )
    await asterisk.expect_handled()
    await harness.summary()
    await asterisk.close()
    assert seen == {"key": "0"}


async def test_failures_propagate_to_the_engine(harness: Harness) -> None:
    seen: dict[str, object] = {}

    async def scenario(call: AgiCallControl) -> None:
        with pytest.raises(AgiError, match="file missing or channel hung up"):
            await call.play(["no-such-prompt"])
        with pytest.raises(AgiError, match="SAY DATE"):
            await call.say("2026-01-01", "date")
        with pytest.raises(AgiError, match="no such application"):
            await call.exec("NoSuchApp")
        with pytest.raises(AgiHangup):
            await call.wait_digit(1)
        seen["reached"] = True

    asterisk = await harness.call(scenario)
    await asterisk.play(
        [
            (b'STREAM FILE "no-such-prompt" "" "0"\n', b"200 result=-1 endpos=0\n"),
            (b'SAY DATE "1767268800" ""\n', b"200 result=-1\n"),
            (b'EXEC "NoSuchApp"\n', b"200 result=-2\n"),
            (b'WAIT FOR DIGIT "1000"\n', b"HANGUP\n511 Command Not Permitted on a dead channel\n"),
        ]
    )
    summary = await harness.summary()
    await asterisk.close()
    assert seen == {"reached": True}
    assert summary.hung_up


# -- against the sandbox Asterisk -----------------------------------------------------------


@pytest.fixture
def line(pbx: PbxHandle) -> Iterator[PbxHandle]:
    pbx.hangup_all()
    yield pbx
    pbx.hangup_all()


async def run_call(
    pbx: PbxHandle,
    handler: Callable[[AgiSession], Awaitable[None]],
    caller: Callable[[], SippProcess],
) -> SessionSummary:
    """Serve one SIPp call with ``handler`` on the sandbox's FastAGI port."""
    summaries: list[SessionSummary] = []
    ended = asyncio.Event()

    def on_end(summary: SessionSummary) -> None:
        summaries.append(summary)
        ended.set()

    config = AgiServerConfig(host=pbx.agi_host, port=pbx.agi_port, command_timeout=30)
    async with AgiServer(config, on_session_end=on_end) as server:
        server.route("ivr", handler)
        process = caller()
        try:
            await asyncio.wait_for(ended.wait(), 60)
            await asyncio.to_thread(process.wait, 30)
        finally:
            process.stop()
    return summaries[0]


@pytest.mark.pbx
async def test_every_say_plan_plays_on_the_real_asterisk(line: PbxHandle, tmp_path: Path) -> None:
    """Each sound the default plans use exists in asterisk-core-sounds-en (else -1)."""
    said: list[object] = []

    async def ivr(session: AgiSession) -> None:
        call = AgiCallControl(session)
        await call.answer()
        cases: list[tuple[str, SayAs]] = [
            ("-12.51", "amount"),  # minus, dollars, and
            ("1", "amount"),  # dollar
            ("61", "duration"),  # minute, second
            ("122", "duration"),  # minutes, seconds
            ("-3.5", "number"),  # dot
            ("*#5", "digits"),  # star, pound
            ("2026-12-25", "date"),
        ]
        for value, say_as in cases:
            said.append(await call.say(value, say_as))
        await call.hangup()

    summary = await run_call(
        line,
        ivr,
        lambda: start_caller(line.sip_port, "8000", hold_ms=60000, log_dir=tmp_path),
    )
    assert summary.outcome is SessionOutcome.COMPLETED, summary.error
    assert said == [None] * 7


@pytest.mark.pbx
async def test_voicemail_runs_for_the_demo_mailbox(line: PbxHandle, tmp_path: Path) -> None:
    seen: dict[str, object] = {}
    log_start = line.log_position()

    async def ivr(session: AgiSession) -> None:
        call = AgiCallControl(session)
        await call.answer()
        seen["result"] = await call.exec("VoiceMail", "100@default", "u")
        seen["status"] = await call.get_variable("VMSTATUS")

    # The caller listens to the greeting and the beep, then hangs up.
    summary = await run_call(
        line,
        ivr,
        lambda: start_caller(line.sip_port, "8000", hold_ms=9000, log_dir=tmp_path),
    )
    assert summary.outcome is SessionOutcome.COMPLETED, summary.error
    assert seen["result"] in ("0", "-1")  # -1: the caller hung up in it; never -2 (no app)
    assert seen["status"] in ("SUCCESS", "USEREXIT", "FAILED")
    log = line.log_since(log_start)
    # The unavailable greeting for mailbox 100 ("the person at extension 1 0 0 is
    # unavailable", apps/app_voicemail.c invent_message), then the instructions before the beep.
    greeting = ["vm-theperson", "digits/1", "digits/0", "digits/0", "vm-isunavail", "vm-intro"]
    played = re.findall(r"Playing '([^']+)\.gsm'", log)
    assert played[: len(greeting)] == greeting
