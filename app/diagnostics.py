"""FastAGI handlers that check a line end to end, for admins and for the test suite.

``line_check`` answers, plays a prompt that any key interrupts, waits for a key if none was
pressed, says the key back, stores it in the channel variable ``LINECHECK_DIGIT`` and hangs
up. Dialing it proves the whole path: the dialplan reaches the FastAGI server, prompts play,
and the phone's RFC 2833 DTMF reaches Asterisk and us.
"""

from __future__ import annotations

import logging

from cti.agi import AgiSession

__all__ = ["LINE_CHECK_PROMPT", "line_check"]

_log = logging.getLogger(__name__)

# Ships with asterisk-core-sounds-en-gsm, so the check depends on nothing we install.
LINE_CHECK_PROMPT = "hello-world"
_ALL_KEYS = "0123456789*#"


async def line_check(session: AgiSession) -> None:
    await session.answer()
    digit = await session.stream_file(LINE_CHECK_PROMPT, _ALL_KEYS)
    if digit is None:
        digit = await session.wait_for_digit(10_000)
    _log.info(
        "line check on %s: key %s",
        session.env.channel,
        digit or "none",
        extra={"channel": session.env.channel, "digit": digit or ""},
    )
    await session.set_variable("LINECHECK_DIGIT", digit or "")
    if digit is not None and digit.isdigit():
        await session.say_digits(digit)
    await session.hangup()
