"""A size-limited line reader that parser generators pull from.

The parser is written as a generator (python-websockets ``streams.py`` style): it asks
``yield from reader.read_line(limit)`` for the next line and is suspended (``yield``) until the
transport has fed enough bytes. This keeps every "is the line complete yet?" question in one
place, so a reply split at any byte position parses exactly like a whole one.

FastAGI is ``\\n``-terminated (res_agi.c, ``ast_agi_send`` callers). A line longer than the limit
is rejected as soon as the buffer grows past the limit *without* a newline: we never buffer an
unbounded amount waiting for one.
"""

from __future__ import annotations

from collections.abc import Generator

from cti.errors import RemoteProtocolError

__all__ = ["LineReader", "TruncatedLine"]


class TruncatedLine(Exception):
    """The stream ended in the middle of a line (internal signal, never leaves the package)."""

    def __init__(self, partial: bytes) -> None:
        self.partial = partial
        super().__init__(f"stream ended inside a line ({len(partial)} bytes)")


class LineReader:
    def __init__(self) -> None:
        self._buffer = bytearray()
        self._eof = False

    @property
    def at_eof(self) -> bool:
        return self._eof

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed_data(self, data: bytes) -> None:
        self._buffer += data

    def feed_eof(self) -> None:
        self._eof = True

    def read_line(self, limit: int) -> Generator[None, None, bytes | None]:
        """Return the next line without its ``\\n`` (and without a ``\\r`` before it).

        Returns ``None`` at a clean end of stream (EOF with nothing buffered); raises
        ``TruncatedLine`` if the stream ends inside a line and ``RemoteProtocolError`` if the
        line (terminator included) is longer than ``limit`` bytes.
        """
        scanned = 0
        while True:
            newline = self._buffer.find(b"\n", scanned)
            if newline >= 0:
                break
            scanned = len(self._buffer)
            if scanned > limit:
                raise RemoteProtocolError(f"line longer than {limit} bytes")
            if self._eof:
                if not self._buffer:
                    return None
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise TruncatedLine(partial)
            yield
        if newline + 1 > limit:
            raise RemoteProtocolError(f"line longer than {limit} bytes")
        line = bytes(self._buffer[:newline])
        del self._buffer[: newline + 1]
        # Asterisk sends bare "\n"; tolerate "\r\n" from proxies or hand-written test peers.
        return line[:-1] if line.endswith(b"\r") else line
