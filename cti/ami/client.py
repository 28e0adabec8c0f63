"""The asyncio manager client: a thin transport around ``AmiProtocol``.

One ``run()`` keeps one manager session alive forever: connect, read the greeting, log in
(``auth.login_flow``), run the resync hooks, read, and on any loss back off and start again.

Tasks per session (one ``asyncio.TaskGroup``, cancelled together):

- the reader: reads, feeds the core, calls ``on_event`` synchronously and resolves action
  futures. It never awaits anything but the socket: Asterisk drops a session whose reader is
  more than ``writetimeout`` (100 ms by default) behind (manager.c, ``ast_carefulwrite``), so
  ``on_event`` must be quick (publish to the bus, put on a queue) and application work runs
  elsewhere;
- the keepalive: ``Ping`` every ``ping_interval``; no answer within ``ping_timeout`` means the
  session is dead (a half-open TCP connection reads nothing forever) and it is aborted;
- the resync: the hooks, in order, after every login, while events keep flowing.

Actions are never queued and never re-sent. One requested while not logged in fails at once
with ``AmiNotConnected`` (callers that want to wait use ``wait_connected`` first, knowingly);
one in flight when the session drops fails with ``AmiConnectionLost``. An ``Originate`` sent
twice is two phone calls, so only the caller can decide that a retry is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import uuid
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from cti.ami.actions import Action
from cti.ami.auth import login_flow
from cti.ami.backoff import backoff_delay
from cti.ami.config import AmiClientConfig, AmiStats
from cti.ami.messages import Event, Greeting
from cti.ami.protocol import ActionResult, AmiOutput, AmiProtocol, ConnectionClosed
from cti.ami.session import Session
from cti.ami.state import ConnectionState, check_transition
from cti.errors import (
    AmiActionError,
    AmiAuthError,
    AmiConnectionLost,
    AmiError,
    AmiNotConnected,
    AmiTimeout,
    CtiError,
    LocalProtocolError,
    ProtocolError,
)

__all__ = ["AmiClient", "AmiClientConfig", "AmiStats", "OriginateResult", "ResyncHook"]

_log = logging.getLogger(__name__)
_READ_SIZE = 256 * 1024
_LOGIN_MIN_TIMEOUT = 2.0
_T = TypeVar("_T")

ResyncHook = Callable[["AmiClient"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OriginateResult:
    """Asterisk queued the call. ``channel_id`` is the new channel's Uniqueid; the outcome
    comes later as an ``OriginateResponse`` event carrying ``action_id``."""

    channel_id: str
    result: ActionResult

    @property
    def action_id(self) -> str:
        return self.result.action_id


class AmiClient:
    def __init__(
        self,
        config: AmiClientConfig,
        *,
        on_event: Callable[[Event], None],
        on_state: Callable[[ConnectionState], None] | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._config = config
        self._on_event = on_event
        self._on_state = on_state
        self._jitter = jitter
        self._state = ConnectionState.DISCONNECTED
        self._conn: Session | None = None
        self._hooks: list[ResyncHook] = []
        self._connected = asyncio.Event()
        self._stats = AmiStats()
        self._running = False
        self._last_error: str | None = None
        self._greeting: Greeting | None = None

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def connected(self) -> bool:
        """Logged in, and actions can be sent."""
        return self._state is ConnectionState.CONNECTED

    @property
    def stats(self) -> AmiStats:
        return replace(self._stats)

    @property
    def last_error(self) -> str | None:
        """Why the last session attempt failed or ended (for /healthz and logs)."""
        return self._last_error

    @property
    def greeting(self) -> Greeting | None:
        """The greeting of the current or last session (the AMI version)."""
        return self._greeting

    def add_resync_hook(self, hook: ResyncHook) -> None:
        """Run ``hook(client)`` after every successful login, after the hooks added before."""
        self._hooks.append(hook)

    # The public methods take ``timeout=`` (not only ``asyncio.timeout``) because the deadline
    # also decides what the core forgets: an abandoned ActionID's late answer is swallowed.
    async def wait_connected(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError as exc:
            raise AmiTimeout(f"not connected to Asterisk within {timeout:g} s") from exc

    # ---- actions -------------------------------------------------------------------------

    async def action(
        self,
        name: str,
        headers: Mapping[str, str | Sequence[str]] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> ActionResult:
        """Send an action and wait for its complete answer (list actions: every item).

        Raises ``AmiActionError`` on ``Response: Error``, ``AmiNotConnected``,
        ``AmiConnectionLost``, ``AmiTimeout``, or ``LocalProtocolError`` for an action that
        cannot be sent as asked.
        """
        return await self._checked(Action.build(name, headers), timeout)

    async def command(self, cli: str, *, timeout: float | None = None) -> list[str]:  # noqa: ASYNC109
        """Run a CLI command; its output, one string per line."""
        result = await self.action("Command", {"Command": cli}, timeout=timeout)
        return list(result.output)

    async def originate(
        self,
        channel: str,
        *,
        context: str | None = None,
        exten: str | None = None,
        priority: int | str = 1,
        application: str | None = None,
        data: str | None = None,
        caller_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (ring time sent to Asterisk)
        account: str | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        action_timeout: float | None = None,
    ) -> OriginateResult:
        """Start a call: ``channel`` to either ``context``/``exten``/``priority`` or
        ``application``/``data``. Always ``Async: true`` (without it Asterisk blocks the whole
        manager session until the call is answered, manager.c ``action_originate``). A
        ``ChannelId`` is generated when not given so the caller knows the channel at once.
        ``timeout`` is the ring time in seconds. Never retried: see ``AmiConnectionLost``.
        """
        if (application is None) == (exten is None):
            raise LocalProtocolError("Originate: give either exten (with context) or application")
        if exten is not None and context is None:
            raise LocalProtocolError("Originate: exten needs a context")
        channel_id = channel_id or str(uuid.uuid4())
        headers: list[tuple[str, str]] = [("Channel", channel)]
        if exten is not None and context is not None:
            headers += [("Context", context), ("Exten", exten), ("Priority", str(priority))]
        elif application is not None:
            headers.append(("Application", application))
            if data is not None:
                headers.append(("Data", data))
        if caller_id is not None:
            headers.append(("CallerID", caller_id))
        if timeout is not None:
            headers.append(("Timeout", str(round(timeout * 1000))))
        if account is not None:
            headers.append(("Account", account))
        headers.append(("ChannelId", channel_id))
        if other_channel_id is not None:
            headers.append(("OtherChannelId", other_channel_id))
        for key, value in (variables or {}).items():
            if not key or "=" in key:
                raise LocalProtocolError(f"Originate: bad variable name {key!r}")
            headers.append(("Variable", f"{key}={value}"))
        headers.append(("Async", "true"))
        result = await self._checked(Action("Originate", tuple(headers)), action_timeout)
        return OriginateResult(channel_id, result)

    async def _checked(self, action: Action, seconds: float | None) -> ActionResult:
        conn = self._conn
        if conn is None or not conn.logged_in:
            raise AmiNotConnected(f"{action.name}: not logged in to Asterisk ({self._state.value})")
        seconds = self._config.action_timeout if seconds is None else seconds
        result = await self._exchange(conn, action, seconds)
        if not result.ok:
            raise AmiActionError(action.name, result.error_text)
        return result

    async def _exchange(self, conn: Session, action: Action, seconds: float) -> ActionResult:
        """Send on ``conn`` and wait up to ``seconds`` for the answer, whatever it says."""
        action_id, future = conn.send(action)
        self._stats.actions_sent += 1
        try:
            async with asyncio.timeout(seconds):
                await conn.drain(action.name)
                return await future
        except TimeoutError as exc:
            self._stats.action_timeouts += 1
            raise AmiTimeout(f"{action.name}: no answer within {seconds:g} s") from exc
        finally:
            conn.forget(action_id)

    async def _drive(
        self, conn: Session, flow: Generator[Action, ActionResult, _T], seconds: float
    ) -> _T:
        """Run a multi-step exchange: send what it yields, send it back what came."""
        try:
            action = next(flow)
            while True:
                result = await self._exchange(conn, action, seconds)
                try:
                    action = flow.send(result)
                except StopIteration as stop:
                    value: _T = stop.value
                    return value
        finally:
            flow.close()

    # ---- the session loop ----------------------------------------------------------------

    async def run(self) -> None:
        """Connect, log in, resync, read; reconnect forever. Cancel to stop."""
        if self._running:
            raise RuntimeError("AmiClient.run() is already running")
        self._running = True
        attempt = 0
        try:
            while True:
                self._set_state(ConnectionState.CONNECTING)
                logged_in, error = await self._session()
                self._last_error = str(error)
                if isinstance(error, AmiAuthError):
                    self._stats.login_failures += 1
                    _log.error("AMI login to %s failed: %s", self._where, error)
                    self._set_state(ConnectionState.AUTH_FAILED)
                else:
                    if not logged_in:
                        self._stats.connect_failures += 1
                    _log.warning("AMI session with %s ended: %s", self._where, error)
                    self._set_state(ConnectionState.DISCONNECTED)
                if logged_in:
                    attempt = 0
                delay = backoff_delay(
                    attempt,
                    minimum=self._config.reconnect_min,
                    maximum=self._config.reconnect_max,
                    jitter=self._jitter(),
                )
                attempt += 1
                await asyncio.sleep(delay)
        finally:
            self._running = False
            self._set_state(ConnectionState.DISCONNECTED)

    @property
    def _where(self) -> str:
        return f"{self._config.host}:{self._config.port}"

    async def _session(self) -> tuple[bool, CtiError]:
        """One session; returns whether it logged in and why it ended."""
        cfg = self._config
        try:
            async with asyncio.timeout(cfg.connect_timeout):
                reader, writer = await asyncio.open_connection(cfg.host, cfg.port)
        except (OSError, TimeoutError) as exc:
            return False, AmiNotConnected(f"cannot connect to {self._where}: {exc!r}")
        # Random per-connection prefix: OriginateResponse events (ActionID included) go to
        # every manager session, so another client's "1" must never look like ours.
        protocol = AmiProtocol(action_id_prefix=f"{secrets.token_hex(4)}-", limits=cfg.limits)
        conn = Session(reader, writer, protocol, self._stats)
        self._conn = conn
        error: CtiError | None = None
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._read_loop(conn), name="ami-reader")
                error = await self._handshake(conn)
                if error is None:
                    self._logged_in(conn)
                    helpers = (
                        tasks.create_task(self._keepalive(conn), name="ami-keepalive"),
                        tasks.create_task(self._resync(conn), name="ami-resync"),
                    )
                    await conn.closed.wait()
                    for task in helpers:
                        task.cancel()
                else:
                    conn.abort(str(error))
        finally:
            self._conn = None
            self._connected.clear()
            conn.mark_closed("client stopped")
            if self._state is ConnectionState.CONNECTED:
                self._stats.disconnects += 1
                self._set_state(ConnectionState.DISCONNECTED)
            with contextlib.suppress(OSError):
                await conn.writer.wait_closed()
        if error is not None:
            return False, error
        return True, AmiConnectionLost(conn.reason)

    async def _handshake(self, conn: Session) -> CtiError | None:
        cfg = self._config
        try:
            try:
                async with asyncio.timeout(cfg.connect_timeout):
                    await conn.greeted.wait()
            except TimeoutError:
                return AmiTimeout(f"no AMI greeting from {self._where}")
            self._greeting = conn.protocol.greeting
            if self._greeting is None:
                return AmiConnectionLost(f"closed before the greeting: {conn.reason}")
            flow = login_flow(cfg.username, cfg.secret, events=cfg.events, method=cfg.auth)
            # Asterisk sleeps 1 s before it answers a refused Login (manager.c, action_login):
            # a shorter deadline would report a wrong secret as a timeout.
            await self._drive(conn, flow, max(cfg.action_timeout, _LOGIN_MIN_TIMEOUT))
        except (AmiError, ProtocolError) as exc:
            return exc
        return None

    def _logged_in(self, conn: Session) -> None:
        conn.logged_in = True
        self._stats.connects += 1
        if self._stats.connects > 1:
            self._stats.reconnects += 1
        greeting = self._greeting.version if self._greeting else "?"
        _log.info("AMI logged in to %s (manager %s)", self._where, greeting)
        self._set_state(ConnectionState.CONNECTED)

    async def _read_loop(self, conn: Session) -> None:
        reason = "connection closed by Asterisk"
        try:
            while True:
                data = await conn.reader.read(_READ_SIZE)
                outputs = conn.protocol.receive_data(data) if data else conn.protocol.receive_eof()
                for item in outputs:
                    self._dispatch(conn, item)
                if not data:
                    break
        except ProtocolError as exc:
            reason = f"protocol error: {exc}"
            _log.warning("AMI %s: %s", self._where, reason)
        except OSError as exc:
            reason = f"connection error: {exc!r}"
        except Exception as exc:
            # A bug of ours, not the peer's: log it loudly, but let run() reconnect rather
            # than take the whole server down with the session.
            reason = f"internal error: {exc!r}"
            _log.exception("AMI reader for %s crashed", self._where)
        finally:
            conn.mark_closed(reason)

    def _dispatch(self, conn: Session, item: AmiOutput) -> None:
        if isinstance(item, Event):
            self._stats.events_received += 1
            try:
                self._on_event(item)
            except Exception:
                # A consumer bug must not cost the session (and every call's state with it).
                self._stats.event_handler_errors += 1
                _log.exception("AMI on_event failed on %s", item.name)
        elif isinstance(item, ActionResult):
            conn.resolve(item)
        elif isinstance(item, Greeting):
            conn.greeted.set()
        elif isinstance(item, ConnectionClosed):
            if item.truncated:
                conn.set_reason("connection closed in the middle of a message")
        else:
            _log.debug("AMI unmatched message: %r", item)

    async def _keepalive(self, conn: Session) -> None:
        cfg = self._config
        while True:
            await asyncio.sleep(cfg.ping_interval)
            try:
                await self._exchange(conn, Action("Ping"), cfg.ping_timeout)
            except AmiTimeout:
                self._stats.ping_timeouts += 1
                _log.warning("AMI %s: no answer to Ping within %g s", self._where, cfg.ping_timeout)
                conn.abort(f"no answer to Ping within {cfg.ping_timeout:g} s")
                return
            except AmiError:
                return

    async def _resync(self, conn: Session) -> None:
        for hook in tuple(self._hooks):
            if conn.closed.is_set():
                return
            try:
                await hook(self)
            except AmiError as exc:
                _log.warning("AMI resync hook %r failed: %s", hook, exc)
            except Exception:
                _log.exception("AMI resync hook %r crashed", hook)
        if not conn.closed.is_set():
            self._stats.resyncs += 1

    def _set_state(self, new: ConnectionState) -> None:
        if new is self._state:
            return
        self._state = check_transition(self._state, new)
        if new is ConnectionState.CONNECTED:
            self._connected.set()
        else:
            self._connected.clear()
        if self._on_state is not None:
            try:
                self._on_state(new)
            except Exception:
                _log.exception("AMI on_state failed on %s", new.name)
