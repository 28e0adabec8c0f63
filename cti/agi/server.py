"""``AgiServer``: the asyncio FastAGI listener that routes each call to a handler.

One task per connection, owned by the server (kept in a set, cancelled and awaited by
``aclose``; nothing is fire-and-forget). Each task reads the environment block within
``env_timeout``, picks the handler by the script path, runs it with an ``AgiSession`` and
closes the connection when the handler returns.

What Asterisk does with the ways a session can end (res_agi.c, ``run_agi`` and
``agi_exec_full``):

- we close the socket -> ``AGISTATUS=SUCCESS`` (``HANGUP`` if the channel hung up) and the
  dialplan goes on at the next priority. That is the normal end of a handler, but it is also
  all Asterisk sees of a server that crashed or was killed mid-call (``run_agi`` takes EOF as
  "script completed"). So when a handler returns on a live channel we first set
  ``CTI_HANDLED=1`` (``HANDLED_VARIABLE``), and the dialplan sends a call that comes back
  without it to the fallback too (config/asterisk/extensions.conf, ``[from-trunk]``).
- we write ``FAILURE`` -> ``AGISTATUS=FAILURE`` and the dialplan goes on, so it can fall back
  (``GotoIf($["${AGISTATUS}" = "FAILURE"]?fallback)``), just as when the server is down.
  We send it for an unknown route, a handler that raised, a session cut short by ``aclose``
  and a connection refused over ``max_sessions``, unless the channel has already hung up.

After ``FAILURE`` we half-close and read until Asterisk closes (bounded by ``linger``): closing
a socket with unread input makes the kernel send RST, which can destroy the ``FAILURE`` line
before Asterisk reads it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, fields
from types import TracebackType

from cti.agi.environment import AgiEnvironment
from cti.agi.protocol import AgiConnection, AgiLimits, State
from cti.agi.session import AgiSession, AgiTimeouts
from cti.errors import (
    AgiError,
    AgiHangup,
    ConfigError,
    CtiError,
    ProtocolError,
    RemoteProtocolError,
)

__all__ = [
    "HANDLED_VARIABLE",
    "AgiServer",
    "AgiServerConfig",
    "AgiServerStats",
    "Handler",
    "SessionOutcome",
    "SessionSummary",
]

_log = logging.getLogger(__name__)

Handler = Callable[[AgiSession], Awaitable[None]]


@dataclass(frozen=True)
class AgiServerConfig:
    """Server settings; the application maps its validated settings onto this.

    Timeouts are in seconds. ``command_timeout`` bounds quick commands, ``media_timeout``
    prompts and applications (``None``: as long as the caller takes), ``idle_timeout`` every
    single wait for a reply. ``max_sessions`` counts open connections, including those still
    sending their environment block.
    """

    host: str = "127.0.0.1"
    port: int = 4573
    max_sessions: int = 500
    env_timeout: float = 5.0
    command_timeout: float | None = 60.0
    media_timeout: float | None = None
    idle_timeout: float | None = 3600.0
    linger: float = 2.0
    max_line: int = 8192
    max_env_lines: int = 512
    max_env_bytes: int = 65536
    max_reply_bytes: int = 65536
    backlog: int = 100

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError("must be 0..65535", source="AgiServerConfig", key="port")
        for name in ("max_sessions", "env_timeout", "linger", "backlog"):
            if getattr(self, name) <= 0:
                raise ConfigError("must be positive", source="AgiServerConfig", key=name)
        # Checked by the constructors; raise here, at start, rather than on the first call.
        self.limits()
        self.timeouts()

    def limits(self) -> AgiLimits:
        return AgiLimits(
            max_line=self.max_line,
            max_env_lines=self.max_env_lines,
            max_env_bytes=self.max_env_bytes,
            max_reply_bytes=self.max_reply_bytes,
        )

    def timeouts(self) -> AgiTimeouts:
        return AgiTimeouts(
            command=self.command_timeout, media=self.media_timeout, idle=self.idle_timeout
        )


HANDLED_VARIABLE = "CTI_HANDLED"
"""Channel variable set to ``1`` when a handler returns normally on a live channel.

The dialplan falls back unless it finds this mark, so the name is part of the contract with
config/asterisk/extensions.conf (and the README's dialplan for an existing Asterisk).
"""


class SessionOutcome(enum.Enum):
    COMPLETED = "completed"  # the handler returned (and the call was marked handled if live)
    HANGUP = "hangup"  # the handler ended on AgiHangup (the caller went away)
    HANDLER_ERROR = "handler_error"  # the handler raised anything else
    UNKNOWN_ROUTE = "unknown_route"
    EARLY_DISCONNECT = "early_disconnect"  # closed before the end of the environment block
    ENV_TIMEOUT = "env_timeout"
    PROTOCOL_ERROR = "protocol_error"  # garbage or oversized input
    REJECTED = "rejected"  # over max_sessions, or the server is closing
    CANCELLED = "cancelled"  # cut short by aclose()


@dataclass(frozen=True)
class SessionSummary:
    """Handed to ``on_session_end`` once per accepted connection."""

    outcome: SessionOutcome
    env: AgiEnvironment | None
    route: str | None
    peer: str
    duration: float
    commands: int
    hung_up: bool
    error: str | None = None


@dataclass(frozen=True)
class AgiServerStats:
    connections: int = 0
    sessions_started: int = 0
    sessions_active: int = 0
    sessions_completed: int = 0
    hangups: int = 0
    early_disconnects: int = 0
    env_timeouts: int = 0
    protocol_errors: int = 0
    unknown_routes: int = 0
    handler_errors: int = 0
    rejected: int = 0
    cancelled: int = 0


_COUNTER_OF_OUTCOME = {
    SessionOutcome.COMPLETED: "sessions_completed",
    SessionOutcome.HANGUP: "hangups",
    SessionOutcome.HANDLER_ERROR: "handler_errors",
    SessionOutcome.UNKNOWN_ROUTE: "unknown_routes",
    SessionOutcome.EARLY_DISCONNECT: "early_disconnects",
    SessionOutcome.ENV_TIMEOUT: "env_timeouts",
    SessionOutcome.PROTOCOL_ERROR: "protocol_errors",
    SessionOutcome.REJECTED: "rejected",
    SessionOutcome.CANCELLED: "cancelled",
}
_SEND_FAILURE_ON = frozenset(
    {
        SessionOutcome.HANDLER_ERROR,
        SessionOutcome.UNKNOWN_ROUTE,
        SessionOutcome.REJECTED,
        SessionOutcome.CANCELLED,
    }
)


class AgiServer:
    def __init__(
        self,
        config: AgiServerConfig,
        *,
        on_session_end: Callable[[SessionSummary], None] | None = None,
    ) -> None:
        self._config = config
        self._limits = config.limits()
        self._timeouts = config.timeouts()
        self._on_session_end = on_session_end
        self._routes: dict[str, Handler] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._active = 0  # connections being served (refusals excluded)
        self._closing = False
        self._counts = dict.fromkeys((f.name for f in fields(AgiServerStats)), 0)

    # -- configuration ------------------------------------------------------------------------

    def route(self, path: str, handler: Handler) -> None:
        """Serve ``agi://host:port/<path>[/more][?query]`` with ``handler``.

        ``path`` may have several components (``ivr/sales``); the longest registered prefix
        of the request's path, by whole components, wins.
        """
        key = path.strip("/")
        if not key or "?" in key:
            raise ConfigError("route must be a non-empty path without '?'", key=repr(path))
        if key in self._routes:
            raise ConfigError("route registered twice", key=key)
        self._routes[key] = handler

    def handler_for(self, path: str) -> Handler | None:
        parts = path.strip("/").split("/")
        for end in range(len(parts), 0, -1):
            handler = self._routes.get("/".join(parts[:end]))
            if handler is not None:
                return handler
        return None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            raise CtiError("AgiServer is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def stats(self) -> AgiServerStats:
        return AgiServerStats(**{**self._counts, "sessions_active": self._active})

    async def start(self) -> None:
        if self._server is not None:
            raise CtiError("AgiServer already started")
        self._closing = False
        self._server = await asyncio.start_server(
            self._accept, self._config.host, self._config.port, backlog=self._config.backlog
        )
        _log.info("FastAGI server listening on %s:%d", self._config.host, self.port)

    async def aclose(self) -> None:
        """Stop accepting, cancel running sessions (they send FAILURE), wait for every task."""
        server, self._server = self._server, None
        self._closing = True
        if server is not None:
            server.close()
        for task in tuple(self._tasks):
            task.cancel()
        while self._tasks:
            await asyncio.gather(*tuple(self._tasks), return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> AgiServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- one connection -----------------------------------------------------------------------

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback rather than a coroutine: the task is then ours, in our set (the
        # task asyncio makes for a coroutine callback is not, and its done-callback logs a
        # cancelled task as an error).
        self._counts["connections"] += 1
        coro: Coroutine[None, None, None]
        if self._closing or self._active >= self._config.max_sessions:
            if len(self._tasks) - self._active >= self._config.max_sessions:
                # A flood: even the polite refusal (FAILURE, then linger) is too much.
                self._counts["rejected"] += 1
                writer.transport.abort()
                return
            coro = self._reject(reader, writer)
        else:
            self._active += 1
            coro = self._serve(reader, writer)
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reject(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        _log.warning("FastAGI connection from %s refused: %d sessions open", peer, self._active)
        report = _Report(peer=peer, started=asyncio.get_running_loop().time())
        report.outcome = SessionOutcome.REJECTED
        await self._finish(AgiConnection(self._limits), reader, writer, report)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = AgiConnection(self._limits)
        report = _Report(peer=_peer(writer), started=asyncio.get_running_loop().time())
        try:
            await self._run(conn, reader, writer, report)
        except asyncio.CancelledError:
            report.outcome = SessionOutcome.CANCELLED
            raise
        finally:
            self._active -= 1
            await self._finish(conn, reader, writer, report)

    async def _run(
        self,
        conn: AgiConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        report: _Report,
    ) -> None:
        peer = report.peer
        try:
            env = await asyncio.wait_for(
                self._read_environment(conn, reader), self._config.env_timeout
            )
        except TimeoutError:
            report.end(SessionOutcome.ENV_TIMEOUT, "no environment block in time")
            _log.warning("FastAGI %s: %s", peer, report.error)
            return
        except RemoteProtocolError as exc:
            early = conn.eof_received
            report.end(
                SessionOutcome.EARLY_DISCONNECT if early else SessionOutcome.PROTOCOL_ERROR,
                str(exc),
            )
            # A bare connect-and-close is what TCP health checks do: not worth a warning.
            level = logging.INFO if conn.bytes_received == 0 else logging.WARNING
            _log.log(level, "FastAGI %s: %s", peer, exc)
            return
        handler = self.handler_for(env.path)
        if handler is None:
            report.end(SessionOutcome.UNKNOWN_ROUTE, f"no handler for {env.script!r}")
            _log.warning("FastAGI %s %s: %s", peer, env.channel, report.error)
            return
        session = AgiSession(conn, reader, writer, timeouts=self._timeouts)
        report.session = session
        self._counts["sessions_started"] += 1
        _log.info("FastAGI %s %s: %s", env.channel, env.uniqueid, env.script)
        try:
            await handler(session)
        except AgiHangup as exc:
            report.end(SessionOutcome.HANGUP, str(exc))
        except RemoteProtocolError as exc:
            report.end(SessionOutcome.PROTOCOL_ERROR, str(exc))
            _log.warning("FastAGI %s %s: %s", peer, env.channel, exc)
        except CtiError as exc:
            # One of ours, raised on purpose with a message that says what went wrong (e.g.
            # an IVR flow with no exit for an error): a traceback would only add noise.
            report.end(SessionOutcome.HANDLER_ERROR, f"{type(exc).__name__}: {exc}")
            _log.warning(
                "FastAGI handler for %r gave up on %s (%s): %s",
                env.path,
                env.channel,
                env.uniqueid,
                exc,
            )
        except Exception as exc:
            report.end(SessionOutcome.HANDLER_ERROR, f"{type(exc).__name__}: {exc}")
            _log.exception(
                "FastAGI handler for %r failed on %s (%s)", env.path, env.channel, env.uniqueid
            )
        else:
            await self._mark_handled(session, report)

    async def _mark_handled(self, session: AgiSession, report: _Report) -> None:
        """Tell the dialplan the handler finished the call on purpose (``HANDLED_VARIABLE``).

        A server that dies mid-call also ends the AGI with ``AGISTATUS=SUCCESS``, so the
        dialplan sends every call without this mark to the fallback. Not sent once the
        channel is gone: the dialplan then only runs the ``h`` extension anyway.
        """
        if session.hung_up or session.closed:
            return
        try:
            await session.set_variable(HANDLED_VARIABLE, "1")
        except AgiHangup as exc:
            report.end(SessionOutcome.HANGUP, str(exc))
        except RemoteProtocolError as exc:
            report.end(SessionOutcome.PROTOCOL_ERROR, str(exc))
            _log.warning("FastAGI %s %s: %s", report.peer, session.env.channel, exc)
        except (AgiError, ProtocolError) as exc:
            # The handler returned but left the session unusable: it swallowed a command
            # timeout, or left a command of its own still waiting. The call goes to the
            # fallback (no mark, and FAILURE on top); a handler bug, so count it as one.
            report.end(SessionOutcome.HANDLER_ERROR, f"call not marked handled: {exc}")
            _log.warning(
                "FastAGI handler for %r returned on %s (%s) but %s",
                session.env.path,
                session.env.channel,
                session.env.uniqueid,
                report.error,
            )

    async def _read_environment(
        self, conn: AgiConnection, reader: asyncio.StreamReader
    ) -> AgiEnvironment:
        while True:
            # Raises RemoteProtocolError at EOF or on bad input, and never returns None
            # after EOF: this loop cannot spin on a closed socket.
            event = conn.next_event()
            if isinstance(event, AgiEnvironment):
                return event
            try:
                data = await reader.read(65536)
            except ConnectionError:
                data = b""
            if data:
                conn.receive_data(data)
            else:
                conn.receive_eof()

    async def _finish(
        self,
        conn: AgiConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        report: _Report,
    ) -> None:
        """Close the connection (saying FAILURE where that helps the dialplan), then report."""
        self._counts[_COUNTER_OF_OUTCOME[report.outcome]] += 1
        hung_up = report.session.hung_up if report.session is not None else conn.hangup_seen
        try:
            await asyncio.wait_for(
                self._close(conn, reader, writer, report.outcome, hung_up), self._config.linger
            )
        except (TimeoutError, OSError) as exc:
            _log.debug("FastAGI %s: unclean close: %r", report.peer, exc)
        finally:
            # Also reached when aclose() cancels us mid-linger: never leave a socket open.
            if not writer.transport.is_closing():
                writer.transport.abort()
            self._report(conn, report, hung_up)

    async def _close(
        self,
        conn: AgiConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        outcome: SessionOutcome,
        hung_up: bool,
    ) -> None:
        say_failure = (
            outcome in _SEND_FAILURE_ON
            and not hung_up
            and conn.state is not State.CLOSED
            and not conn.eof_received
        )
        if say_failure:
            writer.write(conn.send_failure())
        elif conn.state is not State.CLOSED:
            conn.close()
        if writer.can_write_eof() and not writer.transport.is_closing():
            writer.write_eof()
        await writer.drain()
        if say_failure:
            # Read and drop until Asterisk closes, so our close cannot RST the FAILURE away.
            while await reader.read(65536):
                pass
        writer.close()
        await writer.wait_closed()

    def _report(self, conn: AgiConnection, report: _Report, hung_up: bool) -> None:
        if self._on_session_end is None:
            return
        env = conn.environment
        summary = SessionSummary(
            outcome=report.outcome,
            env=env,
            route=env.path if env is not None else None,
            peer=report.peer,
            duration=asyncio.get_running_loop().time() - report.started,
            commands=conn.commands_sent,
            hung_up=hung_up,
            error=report.error,
        )
        try:
            self._on_session_end(summary)
        except Exception:
            _log.exception("on_session_end failed for %r", summary)


@dataclass
class _Report:
    """What one connection task learns about its session, for the summary."""

    peer: str
    started: float
    outcome: SessionOutcome = SessionOutcome.COMPLETED
    error: str | None = None
    session: AgiSession | None = None

    def end(self, outcome: SessionOutcome, error: str | None) -> None:
        self.outcome, self.error = outcome, error


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
