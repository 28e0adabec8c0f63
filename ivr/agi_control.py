"""``AgiCallControl``: the engine's ``CallControl`` port over a FastAGI ``AgiSession``.

Most operations are one AGI command each (ANSWER, STREAM FILE, WAIT FOR DIGIT, EXEC, GET/SET
VARIABLE, HANGUP). ``say`` is the exception: an amount or a duration is several commands
(a number, then a unit sound, ...). What to say is planned by ``say_plan``, a pure function
from the value to a list of ``SayStep``; the adapter only plays the plan and stops at the
first key the caller presses.

Sounds used by the plans come from ``SaySounds``. The defaults are files that exist in
asterisk-core-sounds-en 1.6.1 (checked in the sandbox root, and played by a test call):
``digits/dollars``, ``letters/dollar`` (the name of "$", i.e. "dollar"), ``vm-and``,
``letters/dot``, ``digits/minus``, ``digits/star``, ``digits/pound``, ``minute(s)``,
``second(s)``. There is no "cents" file in that set, so by default 12.50 is said "twelve
dollars and fifty"; give ``SaySounds(cents=...)`` (for example a TTS rendering of "cents",
see ``ivr.tts``) to say the unit.

Errors: ``AgiHangup`` and ``AgiError`` from the session propagate unchanged (the engine takes
its hang-up or error path). A value that cannot be said as asked (``"abc"`` as a number) is
also an ``AgiError``: the port's contract is "raises AgiError when Asterisk cannot do it", and
the engine then takes the node's error exit.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

from cti.agi import AgiSession
from cti.errors import AgiError
from ivr.model import SayAs
from ivr.ports import CallControl

__all__ = ["AgiCallControl", "SaySounds", "SayStep", "say_plan"]

# SAY NUMBER reads its argument with sscanf("%30d") (res_agi.c, handle_saynumber): anything
# outside a C int is garbage on the line.
_INT_LIMIT = 2**31 - 1
# Formatting characters a phone or account number may carry; SAY DIGITS would skip most of
# them silently, we drop them on purpose.
_DIGIT_NOISE = re.compile(r"[\s().+/-]")
_SAYABLE_DIGITS = re.compile(r"[0-9*#]+")


@dataclass(frozen=True)
class SaySounds:
    """Sound files the say plans use (names as STREAM FILE takes them)."""

    dollars: str = "digits/dollars"
    dollar: str = "letters/dollar"
    and_: str = "vm-and"
    #: said after the cents; None: the core English sounds have no such file
    cents: str | None = None
    point: str = "letters/dot"
    minus: str = "digits/minus"
    star: str = "digits/star"
    pound: str = "digits/pound"
    minute: str = "minute"
    minutes: str = "minutes"
    second: str = "second"
    seconds: str = "seconds"


@dataclass(frozen=True)
class SayStep:
    """One AGI command of a say plan: SAY NUMBER, SAY DIGITS, SAY DATE or STREAM FILE."""

    kind: Literal["number", "digits", "date", "sound"]
    arg: str


def _fail(value: str, say_as: str, why: str) -> AgiError:
    return AgiError(f"cannot say {value!r} as {say_as}: {why}")


def _decimal(value: str, say_as: str) -> Decimal:
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise _fail(value, say_as, "not a number") from None
    if not number.is_finite():
        raise _fail(value, say_as, "not a finite number")
    return number


def _whole(number: int, value: str, say_as: str) -> SayStep:
    if number > _INT_LIMIT:
        raise _fail(value, say_as, "too large for SAY NUMBER")
    return SayStep("number", str(number))


def _plan_number(value: str, sounds: SaySounds) -> list[SayStep]:
    number = _decimal(value, "number")
    steps = [SayStep("sound", sounds.minus)] if number < 0 else []
    number = abs(number)
    whole = int(number)
    steps.append(_whole(whole, value, "number"))
    # The fraction as written ("3.50" -> "three dot five zero"), trailing zeros kept: the
    # caller hears what the data says.
    text = format(number, "f")
    if "." in text:
        steps += [SayStep("sound", sounds.point), SayStep("digits", text.split(".", 1)[1])]
    return steps


def _plan_amount(value: str, sounds: SaySounds) -> list[SayStep]:
    amount = _decimal(value, "amount").quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    steps = [SayStep("sound", sounds.minus)] if amount < 0 else []
    cents_total = int(abs(amount) * 100)
    whole, cents = divmod(cents_total, 100)
    steps.append(_whole(whole, value, "amount"))
    steps.append(SayStep("sound", sounds.dollar if whole == 1 else sounds.dollars))
    if cents:
        steps += [SayStep("sound", sounds.and_), SayStep("number", str(cents))]
        if sounds.cents is not None:
            steps.append(SayStep("sound", sounds.cents))
    return steps


def _plan_duration(value: str, sounds: SaySounds) -> list[SayStep]:
    seconds_total = _decimal(value, "duration")
    if seconds_total < 0:
        raise _fail(value, "duration", "negative")
    rounded = int(seconds_total.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    minutes, seconds = divmod(rounded, 60)
    steps: list[SayStep] = []
    if minutes:
        steps.append(_whole(minutes, value, "duration"))
        steps.append(SayStep("sound", sounds.minute if minutes == 1 else sounds.minutes))
    if seconds or not minutes:
        if minutes:
            steps.append(SayStep("sound", sounds.and_))
        steps.append(SayStep("number", str(seconds)))
        steps.append(SayStep("sound", sounds.second if seconds == 1 else sounds.seconds))
    return steps


def _plan_digits(value: str, sounds: SaySounds) -> list[SayStep]:
    digits = _DIGIT_NOISE.sub("", value)
    if not _SAYABLE_DIGITS.fullmatch(digits):
        raise _fail(value, "digits", "only 0-9, * and # can be said as digits")
    # SAY DIGITS refuses (520 usage) a string that does not start with a number: it checks
    # the argument with sscanf("%30d") first (res_agi.c, handle_saydigits). Leading * and #
    # are played as sounds; from the first digit on, SAY DIGITS says * and # itself.
    rest = digits.lstrip("*#")
    symbols = digits[: len(digits) - len(rest)]
    steps = [SayStep("sound", sounds.star if key == "*" else sounds.pound) for key in symbols]
    if rest:
        steps.append(SayStep("digits", rest))
    return steps


def _date_epoch(value: str) -> int:
    """Seconds since the epoch for SAY DATE.

    SAY DATE says the weekday, month and day of the instant in *Asterisk's* time zone
    (res_agi.c handle_saydate -> ast_say_date with no zone). A calendar date is therefore sent
    as noon UTC of that day, which is the same date in every zone from UTC-11 to UTC+12. A
    date-time with an offset is reduced to its own calendar date first; an epoch number is
    taken as is (an instant: Asterisk's zone decides its date).
    """
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        if "T" in text or " " in text:
            day = dt.datetime.fromisoformat(text).date()
        else:
            day = dt.date.fromisoformat(text)
    except ValueError:
        raise _fail(value, "date", "expected an ISO date (2026-12-25) or epoch seconds") from None
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    return int(noon.timestamp())


def say_plan(value: str, say_as: SayAs, sounds: SaySounds | None = None) -> tuple[SayStep, ...]:
    """The AGI commands that say ``value`` as ``say_as``; ``AgiError`` if it cannot be said.

    - number: ``-3.5`` -> minus, SAY NUMBER 3, "dot", SAY DIGITS 5
    - digits: spaces, ``+ - ( ) . /`` dropped; 0-9, * and # said one by one (SAY DIGITS;
      leading * and # as sounds)
    - date: ISO date, ISO date-time or epoch seconds -> SAY DATE
    - amount: rounded to cents; ``12.50`` -> SAY NUMBER 12, "dollars", "and", SAY NUMBER 50
      (then ``sounds.cents`` if set)
    - duration: seconds, rounded; ``125`` -> 2 "minutes" "and" 5 "seconds"; ``0`` -> 0 seconds
    """
    sounds = sounds or SaySounds()
    if say_as == "number":
        steps = _plan_number(value, sounds)
    elif say_as == "digits":
        steps = _plan_digits(value, sounds)
    elif say_as == "date":
        steps = [SayStep("date", str(_date_epoch(value)))]
    elif say_as == "amount":
        steps = _plan_amount(value, sounds)
    elif say_as == "duration":
        steps = _plan_duration(value, sounds)
    else:
        raise _fail(value, str(say_as), "unknown way of saying it")
    return tuple(steps)


class AgiCallControl(CallControl):
    """``CallControl`` for one FastAGI call."""

    def __init__(self, session: AgiSession, *, sounds: SaySounds | None = None) -> None:
        self.session = session
        self.sounds = sounds or SaySounds()

    async def answer(self) -> None:
        await self.session.answer()

    async def play(self, playables: Sequence[str], interrupt: str = "") -> str | None:
        for playable in playables:
            key = await self.session.stream_file(playable, interrupt)
            if key is not None:
                return key
        return None

    async def wait_digit(self, seconds: float) -> str | None:
        # WAIT FOR DIGIT takes milliseconds; a negative value would mean "forever".
        return await self.session.wait_for_digit(max(0, round(seconds * 1000)))

    async def say(self, value: str, say_as: SayAs, interrupt: str = "") -> str | None:
        for step in say_plan(value, say_as, self.sounds):
            key = await self._say_step(step, interrupt)
            if key is not None:
                return key
        return None

    async def _say_step(self, step: SayStep, interrupt: str) -> str | None:
        if step.kind == "number":
            return await self.session.say_number(int(step.arg), interrupt)
        if step.kind == "digits":
            return await self.session.say_digits(step.arg, interrupt)
        if step.kind == "sound":
            return await self.session.stream_file(step.arg, interrupt)
        return await self._say_date(step.arg, interrupt)

    async def _say_date(self, epoch: str, interrupt: str) -> str | None:
        # AgiSession has no say_date helper; the reply is read like SAY NUMBER's (res_agi.c
        # handle_saydate: result = the key's code, 0 when said to the end, -1 on failure).
        reply = await self.session.command("SAY DATE", epoch, interrupt)
        code = reply.result_int
        if code is None or code < 0:
            raise AgiError(f"SAY DATE {epoch} failed (result={reply.result!r})")
        return chr(code) if code else None

    async def exec(self, app: str, *args: str) -> str:
        return await self.session.exec(app, *args)

    async def get_variable(self, name: str) -> str | None:
        return await self.session.get_variable(name)

    async def set_variable(self, name: str, value: str) -> None:
        await self.session.set_variable(name, value)

    async def hangup(self) -> None:
        await self.session.hangup()
