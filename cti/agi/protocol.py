"""The FastAGI protocol core: bytes in, events out, bytes to send. No sockets, no clock.

Theory of operation
-------------------
A FastAGI session is strictly one command at a time. Asterisk writes the environment block,
then loops: read one command line, run it, write its reply (res_agi.c, ``run_agi``). Replies
carry no id, so the only way to pair a reply with its command is to never have two commands
outstanding, and to make sure that nothing *else* Asterisk writes is mistaken for a reply:

- ``HANGUP`` lines arrive unprompted when the channel hangs up, between commands or while a
  command runs, and once more when the AGI ends (``run_agi``, ``needhup`` and the final
  "Notify process"). They are events of their own and never consume the pending command.
- GOSUB writes ``100 result=0 Trying...`` before its real reply (apps/app_stack.c): interim,
  the command stays pending.
- A 520 reply spans lines (``520-...`` up to ``520 ...``): joined into one reply.
- GET VARIABLE writes the value raw in ``(...)``; a value with a newline spreads the reply over
  several lines. If the first line opens ``(`` and never closes it, following lines are read
  as part of the same reply instead of being taken for the next one.

Sending while a reply is pending is refused (``LocalProtocolError``) for a second reason:
STREAM FILE and friends watch the AGI socket while they play, and a new line makes them stop
*without writing any reply* (``handle_streamfile``: "don't print a result line, as there is
a new command"). Queueing behind it would leave the pairing off by one forever.

The state machine (``_TRANSITIONS``) is a table from (state, input) to the next state. Inputs
that come from the peer raise ``RemoteProtocolError`` when they are not allowed, inputs that
come from us raise ``LocalProtocolError``::

    AWAITING_ENV --env--> READY --command--> AWAITING_REPLY --final reply--> READY
         |                  |  ^ hangup           |  ^ hangup, interim reply
         +------------------+--------------------+--> CLOSED (eof, error, failure sent, close)

Bytes are parsed as soon as they arrive (a generator pulls lines from ``LineReader``), so
``state`` is always the true protocol state. Events queue up for ``next_event()``; a parse
error is queued behind the events that preceded it and raised when reached. Once the peer's
EOF or an error is reached, ``next_event()`` never returns ``None`` again (it returns
``ConnectionClosed`` or raises), so a caller that reads on ``None`` cannot spin on a dead
socket.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass

from cti.agi._lines import LineReader, TruncatedLine
from cti.agi.commands import FAILURE_LINE, format_command
from cti.agi.environment import AgiEnvironment, EnvironmentLimits, read_environment
from cti.agi.replies import AgiReply, parse_reply
from cti.errors import ConfigError, LocalProtocolError, ProtocolError, RemoteProtocolError

__all__ = [
    "AgiConnection",
    "AgiEvent",
    "AgiLimits",
    "ConnectionClosed",
    "HangupNotice",
    "Input",
    "State",
]


class State(enum.Enum):
    AWAITING_ENV = "awaiting_env"
    READY = "ready"
    AWAITING_REPLY = "awaiting_reply"
    CLOSED = "closed"


class Input(enum.Enum):
    # from the peer
    ENV_RECEIVED = "env_received"
    INTERIM_REPLY = "interim_reply"
    FINAL_REPLY = "final_reply"
    HANGUP_RECEIVED = "hangup_received"
    EOF_RECEIVED = "eof_received"
    PROTOCOL_ERROR = "protocol_error"
    # from us
    COMMAND_SENT = "command_sent"
    FAILURE_SENT = "failure_sent"
    LOCAL_CLOSE = "local_close"


_LOCAL_INPUTS = frozenset({Input.COMMAND_SENT, Input.FAILURE_SENT, Input.LOCAL_CLOSE})

_S, _I = State, Input
_TRANSITIONS: dict[tuple[State, Input], State] = {
    (_S.AWAITING_ENV, _I.ENV_RECEIVED): _S.READY,
    (_S.AWAITING_ENV, _I.EOF_RECEIVED): _S.CLOSED,
    (_S.AWAITING_ENV, _I.PROTOCOL_ERROR): _S.CLOSED,
    (_S.AWAITING_ENV, _I.LOCAL_CLOSE): _S.CLOSED,
    # Refusing a connection: Asterisk writes the whole block before it reads anything
    # (setup_env), so a FAILURE sent early simply waits in its socket to be read.
    (_S.AWAITING_ENV, _I.FAILURE_SENT): _S.CLOSED,
    (_S.READY, _I.COMMAND_SENT): _S.AWAITING_REPLY,
    (_S.READY, _I.HANGUP_RECEIVED): _S.READY,
    (_S.READY, _I.FAILURE_SENT): _S.CLOSED,
    (_S.READY, _I.EOF_RECEIVED): _S.CLOSED,
    (_S.READY, _I.PROTOCOL_ERROR): _S.CLOSED,
    (_S.READY, _I.LOCAL_CLOSE): _S.CLOSED,
    (_S.AWAITING_REPLY, _I.INTERIM_REPLY): _S.AWAITING_REPLY,
    (_S.AWAITING_REPLY, _I.FINAL_REPLY): _S.READY,
    (_S.AWAITING_REPLY, _I.HANGUP_RECEIVED): _S.AWAITING_REPLY,
    # FAILURE while a prompt plays interrupts it: Asterisk stops the prompt, reads FAILURE and
    # ends the AGI with AGISTATUS=FAILURE.
    (_S.AWAITING_REPLY, _I.FAILURE_SENT): _S.CLOSED,
    (_S.AWAITING_REPLY, _I.EOF_RECEIVED): _S.CLOSED,
    (_S.AWAITING_REPLY, _I.PROTOCOL_ERROR): _S.CLOSED,
    (_S.AWAITING_REPLY, _I.LOCAL_CLOSE): _S.CLOSED,
    (_S.CLOSED, _I.LOCAL_CLOSE): _S.CLOSED,
}
del _S, _I


@dataclass(frozen=True)
class HangupNotice:
    """Asterisk wrote ``HANGUP``: the channel is gone. Commands that need a live channel will
    get 511 from now on; those allowed on a dead channel (GET/SET VARIABLE, VERBOSE, EXEC...)
    still run."""


@dataclass(frozen=True)
class ConnectionClosed:
    """The peer closed the connection (after the environment block).

    ``awaiting_reply`` tells whether a command was still waiting for its reply; a partial line
    before the close is dropped (the channel is gone either way).
    """

    awaiting_reply: bool = False


AgiEvent = AgiEnvironment | AgiReply | HangupNotice | ConnectionClosed


@dataclass(frozen=True)
class AgiLimits:
    """Bounds on what we accept from the peer, in bytes unless named otherwise."""

    max_line: int = 8192
    max_env_lines: int = 512
    max_env_bytes: int = 65536
    max_reply_bytes: int = 65536

    def __post_init__(self) -> None:
        for name in ("max_line", "max_env_lines", "max_env_bytes", "max_reply_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError("must be positive", source="AgiLimits", key=name)


_STATUS_LINE = re.compile(r"(\d{3})([ -])(.*)", re.DOTALL)
_HANGUP = b"HANGUP"


class AgiConnection:
    """One FastAGI session, sans I/O. Feed it bytes, read events, send what it returns."""

    def __init__(self, limits: AgiLimits | None = None) -> None:
        self._limits = limits or AgiLimits()
        self._state = State.AWAITING_ENV
        self._reader = LineReader()
        self._events: deque[AgiEvent] = deque()
        self._final: AgiEvent | ProtocolError | None = None
        self._environment: AgiEnvironment | None = None
        self._hangup_seen = False
        self._pending: str | None = None
        self._commands_sent = 0
        self._bytes_received = 0
        self._parser = self._parse()
        self._advance()

    # -- introspection ------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def environment(self) -> AgiEnvironment | None:
        return self._environment

    @property
    def hangup_seen(self) -> bool:
        """True once Asterisk has written ``HANGUP`` (parsed, even if not yet consumed)."""
        return self._hangup_seen

    @property
    def pending_command(self) -> str | None:
        """The name of the command waiting for its reply, if any."""
        return self._pending

    @property
    def commands_sent(self) -> int:
        return self._commands_sent

    @property
    def bytes_received(self) -> int:
        return self._bytes_received

    @property
    def eof_received(self) -> bool:
        return self._reader.at_eof

    # -- receiving ----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self._reader.at_eof:
            raise LocalProtocolError("receive_data after receive_eof")
        if self._final is not None:
            # Parsing has ended (peer EOF, error or local close): later bytes are not ours to
            # interpret (e.g. the final HANGUP after we sent FAILURE). Drop them.
            return
        self._bytes_received += len(data)
        self._reader.feed_data(data)
        self._advance()

    def receive_eof(self) -> None:
        if self._reader.at_eof:
            return
        self._reader.feed_eof()
        self._advance()

    def next_event(self) -> AgiEvent | None:
        """The next event, or ``None`` if more bytes are needed.

        Raises the ``RemoteProtocolError`` that ended parsing once the events before it have
        been handed out, and again on every later call.
        """
        if self._events:
            return self._events.popleft()
        if isinstance(self._final, ProtocolError):
            raise self._final.with_traceback(None)
        return self._final

    # -- sending ------------------------------------------------------------------------------

    def send_command(self, name: str, *args: str) -> bytes:
        data = format_command(name, *args)  # validate before changing state
        self._apply(Input.COMMAND_SENT)
        self._pending = name
        self._commands_sent += 1
        return data

    def send_failure(self) -> bytes:
        """End the session with ``AGISTATUS=FAILURE`` (the dialplan continues); close after."""
        self._apply(Input.FAILURE_SENT)
        self._stop_parsing(ConnectionClosed(awaiting_reply=False))
        return FAILURE_LINE

    def close(self) -> None:
        """We are closing the connection; nothing more will be parsed."""
        self._apply(Input.LOCAL_CLOSE)
        self._stop_parsing(ConnectionClosed(awaiting_reply=False))

    # -- internals ----------------------------------------------------------------------------

    def _apply(self, event: Input) -> None:
        try:
            self._state = _TRANSITIONS[(self._state, event)]
        except KeyError:
            error = LocalProtocolError if event in _LOCAL_INPUTS else RemoteProtocolError
            raise error(f"{event.value} not allowed in state {self._state.value}") from None
        if self._state is not State.AWAITING_REPLY:
            self._pending = None

    def _stop_parsing(self, final: AgiEvent | ProtocolError) -> None:
        if self._final is None:
            self._final = final
            self._parser.close()

    def _advance(self) -> None:
        if self._final is not None:
            return
        try:
            next(self._parser)
        except StopIteration:
            pass
        except ProtocolError as exc:
            # The end of the stream inside the environment block is the peer closing early;
            # anything else (garbage, oversized, unprompted reply) is a protocol error.
            clean_eof = self._reader.at_eof and not self._reader.buffered
            self._apply(Input.EOF_RECEIVED if clean_eof else Input.PROTOCOL_ERROR)
            self._final = exc

    def _parse(self) -> Generator[None, None, None]:
        limits = self._limits
        env_limits = EnvironmentLimits(
            max_line=limits.max_line, max_lines=limits.max_env_lines, max_bytes=limits.max_env_bytes
        )
        environment = yield from read_environment(self._reader, env_limits)
        self._apply(Input.ENV_RECEIVED)
        self._environment = environment
        self._events.append(environment)
        while True:
            try:
                line = yield from self._reader.read_line(limits.max_line)
            except TruncatedLine:
                line = None
            if line is None:
                awaiting = self._state is State.AWAITING_REPLY
                self._apply(Input.EOF_RECEIVED)
                self._final = ConnectionClosed(awaiting_reply=awaiting)
                return
            if line == _HANGUP:
                self._apply(Input.HANGUP_RECEIVED)
                self._hangup_seen = True
                self._events.append(HangupNotice())
                continue
            try:
                reply = yield from self._read_reply(line)
            except TruncatedLine:
                # The peer closed inside a multi-line reply: same as closing before it.
                awaiting = self._state is State.AWAITING_REPLY
                self._apply(Input.EOF_RECEIVED)
                self._final = ConnectionClosed(awaiting_reply=awaiting)
                return
            self._apply(Input.INTERIM_REPLY if reply.interim else Input.FINAL_REPLY)
            self._events.append(reply)

    def _read_reply(self, first: bytes) -> Generator[None, None, AgiReply]:
        text = first.decode("utf-8", errors="replace")
        match = _STATUS_LINE.fullmatch(text)
        if match is None:
            raise RemoteProtocolError(f"unexpected line from Asterisk: {text[:80]!r}")
        if self._state is not State.AWAITING_REPLY:
            raise RemoteProtocolError(f"reply with no command outstanding: {text[:80]!r}")
        code, separator, body = match.groups()
        lines = [body]
        raw = [text]
        size = len(first)
        if separator == "-":
            # "NNN-first line" ... "NNN last line" (res_agi.c, agi_handle_command, 520).
            end = f"{code} "
            while True:
                more = yield from self._more_line(size)
                size += len(more) + 1
                raw.append(more)
                if more.startswith(end):
                    lines.append(more[len(end) :])
                    break
                lines.append(more)
        elif body.startswith("result=") and _opens_unclosed_data(body):
            # GET VARIABLE of a value with a newline: keep reading until the ")" arrives.
            while True:
                more = yield from self._more_line(size)
                size += len(more) + 1
                raw.append(more)
                lines.append(more)
                if ")" in more:
                    break
        return parse_reply(int(code), "\n".join(lines), "\n".join(raw))

    def _more_line(self, size: int) -> Generator[None, None, str]:
        if size > self._limits.max_reply_bytes:
            raise RemoteProtocolError(f"reply longer than {self._limits.max_reply_bytes} bytes")
        line = yield from self._reader.read_line(self._limits.max_line)
        if line is None:
            raise TruncatedLine(b"")
        return line.decode("utf-8", errors="replace")


def _opens_unclosed_data(body: str) -> bool:
    _, _, rest = body[len("result=") :].partition(" ")
    return rest.startswith("(") and ")" not in rest
