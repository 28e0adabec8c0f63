"""Framing of the manager byte stream into messages. Pure: bytes in, messages out.

The stream (manager.c, ``session_do`` and ``astman_append``):

    Asterisk Call Manager/11.0.0\\r\\n        <- greeting: ONE line, no blank line after it
    Response: Success\\r\\n                   <- then blocks of "Key: Value" lines,
    ActionID: 1\\r\\n                            each ended by an empty line
    \\r\\n

Choices, each tested:

- Lines end in ``\\r\\n``; a bare ``\\n`` is accepted too (and a stray ``\\r`` before it dropped).
- Bytes are decoded as UTF-8 only once a message is complete, so a character split across two
  TCP reads survives; invalid bytes become U+FFFD rather than an exception, because one bad
  caller-ID name must not cost us the connection and every call's state with it.
- A value is what follows the first ``:``, minus ONE space: Asterisk writes ``"%s: %s"``, and
  the ``Output:`` lines of a ``Command`` reply keep the CLI's indentation and padding.
- A line without ``:`` is kept with the empty key (see ``messages``).
- Empty lines between messages are skipped: there are no empty messages.
- Limits on line length, message size and header count raise ``RemoteProtocolError`` naming
  the limit, before the buffer grows past it. After any error the parser stays failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from cti.ami.messages import Greeting, Message, classify
from cti.errors import RemoteProtocolError

__all__ = ["AmiLimits", "AmiParser"]

_GREETING_PREFIX = "Asterisk Call Manager"


@dataclass(frozen=True, slots=True)
class AmiLimits:
    """Bounds on what we accept from Asterisk; a peer past them is broken or hostile."""

    max_line: int = 64 * 1024
    """Bytes in one line, terminator excluded."""
    max_message: int = 1024 * 1024
    """Bytes in one message, terminators included."""
    max_headers: int = 20_000
    """Headers in one message (a ``Command`` reply has one per output line)."""

    def __post_init__(self) -> None:
        if min(self.max_line, self.max_message, self.max_headers) < 1:
            raise ValueError("AMI limits must be positive")


class AmiParser:
    """Turns bytes into ``Greeting`` then ``Message``/``Event``/``Response`` objects.

    ``expect_greeting=False`` parses the other direction (actions a client sends), which the
    fake Asterisk in ``sandbox.fake_ami`` uses.
    """

    def __init__(self, limits: AmiLimits | None = None, *, expect_greeting: bool = True) -> None:
        self._limits = limits or AmiLimits()
        self._buffer = bytearray()
        # Bytes at the start of the buffer already known to hold no b"\n": a line fed one byte
        # at a time is then scanned once, not once per byte.
        self._scanned = 0
        self._lines: list[bytes] = []
        self._size = 0
        self._need_greeting = expect_greeting
        self._failed: str | None = None
        self._eof = False

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buffer) + self._size

    def receive_data(self, data: bytes) -> list[Greeting | Message]:
        if self._failed is not None:
            raise RemoteProtocolError(f"AMI stream already failed: {self._failed}")
        if self._eof:
            raise RemoteProtocolError("AMI data after end of stream")
        self._buffer += data
        out: list[Greeting | Message] = []
        buffer = self._buffer
        start = 0
        search = self._scanned
        try:
            while True:
                newline = buffer.find(b"\n", search)
                if newline < 0:
                    break
                end = newline - 1 if newline > start and buffer[newline - 1] == 0x0D else newline
                line = bytes(buffer[start:end])
                self._check_line(len(line))
                self._take_line(line, newline + 1 - start, out)
                start = search = newline + 1
            # What is left is a partial line; refuse it as soon as it cannot fit (+1: its "\r").
            self._check_line(len(buffer) - start - 1)
        except RemoteProtocolError as exc:
            self._failed = str(exc)
            raise
        finally:
            del buffer[:start]
            self._scanned = len(buffer)
        return out

    def receive_eof(self) -> None:
        """The peer closed. Raises if it closed in the middle of a message."""
        self._eof = True
        if self._failed is None and (self._buffer.strip() or self._lines):
            self._failed = "connection closed in the middle of a message"
            raise RemoteProtocolError(f"AMI {self._failed} ({self.buffered} bytes unprocessed)")

    def _check_line(self, length: int) -> None:
        if length > self._limits.max_line:
            raise RemoteProtocolError(
                f"AMI line longer than max_line ({self._limits.max_line} bytes)"
            )

    def _take_line(self, line: bytes, raw_size: int, out: list[Greeting | Message]) -> None:
        if self._need_greeting:
            self._need_greeting = False
            out.append(_parse_greeting(line))
            return
        if not line:
            if self._lines:
                out.append(self._finish())
            return
        self._size += raw_size
        if self._size > self._limits.max_message:
            raise RemoteProtocolError(
                f"AMI message larger than max_message ({self._limits.max_message} bytes)"
            )
        if len(self._lines) >= self._limits.max_headers:
            raise RemoteProtocolError(
                f"AMI message with more than max_headers ({self._limits.max_headers}) headers"
            )
        self._lines.append(line)

    def _finish(self) -> Message:
        # One decode per complete message: a UTF-8 character split across reads is whole here.
        # b"\n" never occurs inside a UTF-8 sequence, so splitting after decoding is exact.
        text = b"\n".join(self._lines).decode("utf-8", errors="replace")
        self._lines = []
        self._size = 0
        headers: list[tuple[str, str]] = []
        for line in text.split("\n"):
            key, colon, value = line.partition(":")
            if not colon:
                headers.append(("", line))
                continue
            if value.startswith(" "):
                value = value[1:]
            headers.append((key.strip(), value))
        return classify(tuple(headers))


def _parse_greeting(line: bytes) -> Greeting:
    text = line.decode("utf-8", errors="replace")
    name, slash, version = text.partition("/")
    if not slash or not name.startswith(_GREETING_PREFIX) or not version.strip():
        raise RemoteProtocolError(f"not an Asterisk manager greeting: {text[:80]!r}")
    return Greeting(name=name, version=version.strip())
