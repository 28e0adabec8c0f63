"""Encoding FastAGI commands: ``STREAM FILE "welcome" "0123456789#" "0"\\n``.

Asterisk splits a command line with ``parse_args`` (res_agi.c): whitespace separates words,
``"`` toggles quoting, ``\\`` makes the next character literal. So we send the command words
bare and every argument in double quotes with ``"`` and ``\\`` escaped; an empty argument is
``""`` and still counts as an argument.

Hard limits, all on our side of the wire so Asterisk never sees a bad line:

- a line ends at the first ``\\n``, so an argument with CR or LF would smuggle in a second
  command; NUL would cut the line short (Asterisk handles it as a C string). Both rejected.
- the line (newline included) must fit ``fgets`` into the ``AGI_BUF_LEN`` (8192) buffer of
  ``run_agi``: at most 8191 bytes. Longer, and the tail is read as a *separate* command.
- ``parse_args`` keeps at most ``MAX_ARGS - 1`` = 127 words (command words included) and does
  not bounds-check a word that starts with a quote: more would overflow its array.
"""

from __future__ import annotations

import re

from cti.errors import LocalProtocolError

__all__ = [
    "AGI_BUF_LEN",
    "FAILURE_LINE",
    "MAX_ARGS",
    "MAX_WORDS",
    "format_command",
    "quote_argument",
]

AGI_BUF_LEN = 8192
MAX_ARGS = 128
MAX_WORDS = MAX_ARGS - 1

# A line starting with "failure" makes run_agi stop with AGISTATUS=FAILURE, and the dialplan
# continues at the next priority (res_agi.c, run_agi: "Special case for inability to execute
# child process"). It is how a FastAGI server says "I could not run this script".
FAILURE_LINE = b"FAILURE\n"

_COMMAND_NAME = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
_FORBIDDEN = ("\r", "\n", "\x00")


def quote_argument(argument: str) -> str:
    """``he said "hi"`` -> ``"he said \\"hi\\""``; raises for CR, LF or NUL."""
    for char in _FORBIDDEN:
        if char in argument:
            raise LocalProtocolError(
                f"AGI argument contains {char!r}, which would end the command line: {argument!r}"
            )
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def format_command(name: str, *args: str) -> bytes:
    """The bytes of one command line, ``\\n`` included."""
    if not _COMMAND_NAME.fullmatch(name):
        raise LocalProtocolError(f"not an AGI command name: {name!r}")
    words = len(name.split(" ")) + len(args)
    if words > MAX_WORDS:
        raise LocalProtocolError(
            f"{name}: {words} words, Asterisk accepts at most {MAX_WORDS} per command"
        )
    for arg in args:
        if not isinstance(arg, str):
            raise LocalProtocolError(f"{name}: argument {arg!r} is not a str")
    text = " ".join((name, *(quote_argument(arg) for arg in args)))
    try:
        line = text.encode("utf-8") + b"\n"
    except UnicodeEncodeError as exc:  # a lone surrogate has no UTF-8 form
        raise LocalProtocolError(f"{name}: argument is not valid Unicode: {exc}") from exc
    if len(line) >= AGI_BUF_LEN:
        raise LocalProtocolError(
            f"{name}: command line of {len(line)} bytes, Asterisk reads at most {AGI_BUF_LEN - 1}"
        )
    return line
