"""``AgiSession``: the async API a FastAGI handler uses for one call.

The session owns the protocol core and the socket of one connection. It reads only while a
command waits for its reply, so there is no background reader per call; the ``HANGUP`` lines
that arrive between commands sit in the socket and are seen (and flagged) on the next command.

Hang-up policy (chosen, and tested):

- After Asterisk's ``HANGUP`` notice, commands are still **sent**: the ones Asterisk allows on a
  dead channel (GET/SET VARIABLE, GET FULL VARIABLE, VERBOSE, EXEC, DATABASE ...) still work,
  which is what clean-up code wants; the others are answered 511 and raise ``AgiHangup``.
- Once the connection is closed (EOF, or a write fails), commands raise ``AgiHangup`` at once
  without writing anything.

Errors: 511 -> ``AgiHangup``; 510 and 520 -> ``AgiCommandError``; a command that gets no reply
in time -> ``AgiError`` and the session is unusable afterwards (a late reply could otherwise
be paired with the next command). A peer that breaks the protocol -> ``RemoteProtocolError``.
A bad argument (newline, too long) -> ``LocalProtocolError`` before anything is written.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from typing import Final

from cti.agi.environment import AgiEnvironment
from cti.agi.protocol import AgiConnection, ConnectionClosed, HangupNotice
from cti.agi.replies import AgiReply
from cti.errors import (
    AgiCommandError,
    AgiError,
    AgiHangup,
    ConfigError,
    LocalProtocolError,
    RemoteProtocolError,
)

__all__ = ["DEFAULT", "AgiSession", "AgiTimeouts"]

_log = logging.getLogger(__name__)


class _Default(enum.Enum):
    DEFAULT = "default"


DEFAULT: Final = _Default.DEFAULT
"""Use the session's configured timeout for this kind of command."""


@dataclass(frozen=True)
class AgiTimeouts:
    """How long to wait for a reply, in seconds; ``None`` means no per-command limit.

    ``command`` bounds quick commands (ANSWER, GET/SET VARIABLE, VERBOSE, HANGUP and raw
    ``command()`` calls). ``media`` bounds commands whose duration the caller controls
    (STREAM FILE, GET DATA, SAY ..., EXEC of Dial or Queue): unbounded by default. ``idle``
    bounds *every* wait, so no session can hang forever on a silent peer.
    """

    command: float | None = 60.0
    media: float | None = None
    idle: float | None = 3600.0

    def __post_init__(self) -> None:
        for name in ("command", "media", "idle"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError("must be positive or None", source="AgiTimeouts", key=name)

    def bound(self, timeout: float | None) -> float | None:
        if timeout is None:
            return self.idle
        if self.idle is None:
            return timeout
        return min(timeout, self.idle)


class AgiSession:
    """One FastAGI call. Commands run one at a time; a second concurrent command is refused
    with ``LocalProtocolError`` rather than queued."""

    def __init__(
        self,
        connection: AgiConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        timeouts: AgiTimeouts | None = None,
        read_size: int = 65536,
    ) -> None:
        if connection.environment is None:
            raise LocalProtocolError("AgiSession needs a connection past its environment block")
        self.env: AgiEnvironment = connection.environment
        self._conn = connection
        self._reader = reader
        self._writer = writer
        self._timeouts = timeouts or AgiTimeouts()
        self._read_size = read_size
        self._hung_up = False
        self._gone = False
        self._broken: str | None = None

    # -- state --------------------------------------------------------------------------------

    @property
    def hung_up(self) -> bool:
        """The channel is known to be gone: HANGUP seen, 511 received, the connection closed,
        or ``hangup()`` called."""
        return self._hung_up

    @property
    def closed(self) -> bool:
        """The connection is gone; every command raises ``AgiHangup`` without writing."""
        return self._gone

    @property
    def connection(self) -> AgiConnection:
        return self._conn

    # -- the raw command ----------------------------------------------------------------------

    async def command(
        self, name: str, *args: str, reply_timeout: float | _Default | None = DEFAULT
    ) -> AgiReply:
        """Send one command and return its final 200 reply.

        510/520 -> ``AgiCommandError``; 511 -> ``AgiHangup``; any other code -> ``AgiError``.
        ``reply_timeout`` defaults to the ``command`` timeout; pass ``None`` for long commands
        (it is still bounded by the ``idle`` timeout).
        """
        wanted = self._timeouts.command if reply_timeout is DEFAULT else reply_timeout
        reply = await self._exchange(name, args, wanted)
        if reply.code == 200:
            return reply
        if reply.code == 511:
            self._hung_up = True
            raise AgiHangup(f"{name}: {reply.text}")
        if reply.code in (510, 520):
            raise AgiCommandError(reply.code, f"{name}: {reply.text}")
        raise AgiError(f"{name}: unexpected reply {reply.raw!r}")

    async def _exchange(self, name: str, args: tuple[str, ...], wanted: float | None) -> AgiReply:
        if self._gone:
            raise AgiHangup(f"{name}: the connection to Asterisk is closed")
        if self._broken is not None:
            raise AgiError(f"{name}: session unusable ({self._broken})")
        pending = self._conn.pending_command
        if pending is not None:
            # Another task's command is in flight; its reply must not be taken for ours.
            raise LocalProtocolError(f"{name}: {pending} is still waiting for its reply")
        self._take_queued_events()
        if self._gone:
            raise AgiHangup(f"{name}: the connection to Asterisk is closed")
        data = self._conn.send_command(name, *args)
        limit = self._timeouts.bound(wanted)
        _log.debug("%s AGI >> %s", self.env.channel, data[:200])
        try:
            async with asyncio.timeout(limit):
                self._writer.write(data)
                await self._writer.drain()
                return await self._read_reply(name)
        except TimeoutError as exc:
            self._broken = f"no reply to {name} within {limit} s"
            raise AgiError(f"{name}: no reply within {limit} s") from exc
        except ConnectionError as exc:
            self._gone = self._hung_up = True
            raise AgiHangup(f"{name}: connection to Asterisk lost: {exc}") from exc
        except RemoteProtocolError as exc:
            self._broken = str(exc)
            raise
        except asyncio.CancelledError:
            # Cancelled from outside (e.g. the handler's own wait_for): the reply may still
            # come, so the next command could be paired with it. Refuse from now on.
            self._broken = f"{name} was cancelled while waiting for its reply"
            raise

    async def _read_reply(self, name: str) -> AgiReply:
        while True:
            event = self._conn.next_event()
            if event is None:
                try:
                    data = await self._reader.read(self._read_size)
                except ConnectionError:
                    data = b""
                if data:
                    self._conn.receive_data(data)
                else:
                    self._conn.receive_eof()
            elif isinstance(event, HangupNotice):
                self._note_hangup()
            elif isinstance(event, ConnectionClosed):
                self._gone = self._hung_up = True
                raise AgiHangup(f"{name}: Asterisk closed the connection before replying")
            elif isinstance(event, AgiReply) and not event.interim:
                _log.debug("%s AGI << %s", self.env.channel, event.raw[:200])
                return event

    def _take_queued_events(self) -> None:
        """Act on what was parsed after the last reply (HANGUP, EOF) without reading."""
        while True:
            event = self._conn.next_event()
            if event is None:
                return
            if isinstance(event, HangupNotice):
                self._note_hangup()
            elif isinstance(event, ConnectionClosed):
                self._gone = self._hung_up = True
                return

    def _note_hangup(self) -> None:
        if not self._hung_up:
            _log.info("%s hung up", self.env.channel)
        self._hung_up = True

    # -- typed helpers ------------------------------------------------------------------------

    async def answer(self) -> None:
        """ANSWER; result -1 means the channel could not be answered (it hung up)."""
        reply = await self.command("ANSWER")
        if _result(reply, "ANSWER") < 0:
            self._hung_up = True
            raise AgiHangup("ANSWER failed: the channel hung up")

    async def stream_file(
        self, prompt: str, escape_digits: str = "", offset: int = 0
    ) -> str | None:
        """Play ``prompt``; return the escape digit pressed, or ``None`` if it played out.

        Result -1 means a missing sound file or a hang-up during playback. The ``endpos`` tells
        them apart (res_agi.c, ``handle_streamfile``): a file that cannot be opened is answered
        with ``endpos=<offset>`` (the position asked for), a playback cut short by a hang-up
        with the position it reached. So -1 with ``endpos`` past ``offset`` raises
        ``AgiHangup`` (the caller left mid-prompt: no error of ours), and any other -1
        ``AgiError`` (a missing file, or a hang-up before the first frame, which the next
        command then reports as ``AgiHangup``). A missing file is also remembered by
        Asterisk: when the AGI ends, ``AGISTATUS`` is ``FAILURE`` (res_agi.c, ``run_agi``), so
        the dialplan takes its fallback unless the handler moves or hangs up the call.
        """
        reply = await self.command(
            "STREAM FILE", prompt, escape_digits, str(offset), reply_timeout=self._timeouts.media
        )
        if reply.result_int == -1 and reply.endpos is not None and reply.endpos > offset:
            self._note_hangup()
            raise AgiHangup(
                f"STREAM FILE {prompt!r}: the channel hung up during playback "
                f"(endpos={reply.endpos})"
            )
        return _digit(reply, f"STREAM FILE {prompt!r}")

    async def get_data(
        self, prompt: str, timeout_ms: int | None = None, max_digits: int | None = None
    ) -> str:
        """GET DATA: play ``prompt`` and collect digits up to ``#``, ``max_digits`` or timeout.

        Returns the digits, ``""`` if none were entered (Asterisk then sends ``(timeout)`` as
        data; use ``command()`` to see it). ``timeout_ms`` None keeps Asterisk's default (2 s
        between digits after the prompt), a negative value waits without limit. -1 raises
        ``AgiError`` (missing prompt or hang-up, as for ``stream_file``).
        """
        args = [prompt]
        if timeout_ms is not None or max_digits is not None:
            args.append(str(0 if timeout_ms is None else timeout_ms))
        if max_digits is not None:
            args.append(str(max_digits))
        reply = await self.command("GET DATA", *args, reply_timeout=self._timeouts.media)
        if reply.result.startswith("-"):
            raise AgiError(f"GET DATA {prompt!r} failed: prompt missing or channel hung up")
        return reply.result

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """The digit pressed within ``timeout_ms`` (negative: forever), or ``None``."""
        limit: float | None
        if timeout_ms < 0:
            limit = self._timeouts.media
        elif self._timeouts.command is None:
            limit = None
        else:
            # Asterisk's own wait, plus the usual allowance for a quick command.
            limit = timeout_ms / 1000 + self._timeouts.command
        reply = await self.command("WAIT FOR DIGIT", str(timeout_ms), reply_timeout=limit)
        if _result(reply, "WAIT FOR DIGIT") < 0:
            # ast_waitfordigit_full fails only when the channel goes away.
            self._hung_up = True
            raise AgiHangup("WAIT FOR DIGIT failed: the channel hung up")
        return _digit(reply, "WAIT FOR DIGIT")

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        """Say ``digits`` one by one; the escape digit pressed or ``None`` (-1 as stream_file)."""
        reply = await self.command(
            "SAY DIGITS", digits, escape_digits, reply_timeout=self._timeouts.media
        )
        return _digit(reply, f"SAY DIGITS {digits!r}")

    async def say_number(self, number: int, escape_digits: str = "") -> str | None:
        """Say ``number``; the escape digit pressed or ``None`` (-1 as stream_file)."""
        reply = await self.command(
            "SAY NUMBER", str(int(number)), escape_digits, reply_timeout=self._timeouts.media
        )
        return _digit(reply, f"SAY NUMBER {number}")

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET VARIABLE", name, value)

    async def get_variable(self, name: str) -> str | None:
        """The value (``""`` if set but empty) or ``None`` if the variable is not set."""
        reply = await self.command("GET VARIABLE", name)
        return (reply.data or "") if reply.result == "1" else None

    async def get_full_variable(self, expr: str, channel: str | None = None) -> str | None:
        """``${...}`` expression evaluated on this (or the named) channel; ``None`` if the
        channel does not exist."""
        args = (expr,) if channel is None else (expr, channel)
        reply = await self.command("GET FULL VARIABLE", *args)
        return (reply.data or "") if reply.result == "1" else None

    async def exec(self, app: str, *args: str) -> str:
        """EXEC ``app`` with ``args`` joined by commas, as the dialplan would write them.

        Commas or quotes inside an argument are not escaped: the application parses them as
        it would in the dialplan. Returns the application's result (e.g. ``"0"``, ``"-1"`` if
        the caller hung up during it). ``-2`` (no such application) raises ``AgiError``.
        """
        call = (app, ",".join(args)) if args else (app,)
        reply = await self.command("EXEC", *call, reply_timeout=self._timeouts.media)
        if reply.result == "-2":
            raise AgiError(f"EXEC {app}: no such application")
        return reply.result

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command("VERBOSE", message, str(level))

    async def hangup(self) -> None:
        """Hang up the channel. The AGI goes on in dead mode until the handler returns."""
        await self.command("HANGUP")
        self._hung_up = True


def _result(reply: AgiReply, what: str) -> int:
    value = reply.result_int
    if value is None:
        raise RemoteProtocolError(f"{what}: result is not a number: {reply.raw!r}")
    return value


def _digit(reply: AgiReply, what: str) -> str | None:
    value = _result(reply, what)
    if value < 0:
        raise AgiError(f"{what} failed (result={value}): file missing or channel hung up")
    if value == 0:
        return None
    try:
        return chr(value)
    except (ValueError, OverflowError) as exc:
        raise RemoteProtocolError(f"{what}: result {value} is not a digit") from exc
