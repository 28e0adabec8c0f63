"""A fake Asterisk manager on 127.0.0.1, for tests of anything that speaks AMI.

It replaces the whole interface (the httpx ``MockTransport`` idea), not a chain of mocks: a
real TCP listener that greets, answers the MD5 challenge, logs in, answers ``Ping``,
``Command``, ``CoreShowChannels``, ``Originate`` (async, then an ``OriginateResponse``) and
``Logoff`` the way Asterisk 22 does, and records every action it receives so a test can prove
what was (and was not) sent. Knobs let a test drop connections, refuse logins, stop answering
pings, hold chosen actions unanswered, or script answers for any other action.

    async with FakeAsterisk() as fake:
        client = AmiClient(AmiClientConfig(port=fake.port, username=fake.username,
                                           secret=fake.secret), on_event=...)

Not a test of Asterisk itself: the project's ``pbx`` tests run against the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

from cti.ami.auth import md5_key
from cti.ami.messages import Message
from cti.ami.parser import AmiParser
from cti.errors import RemoteProtocolError

__all__ = ["FakeAsterisk", "ReceivedAction", "Responder", "encode_block"]

Pairs = Sequence[tuple[str, str]]
Responder = Callable[[Message], Sequence[Pairs]]
"""Scripted answer: given the action, the blocks to send back (ActionID is not added)."""


@dataclass(frozen=True, slots=True)
class ReceivedAction:
    session: int
    """1 for the first TCP connection the fake accepted, 2 for the next, ..."""
    message: Message

    @property
    def name(self) -> str:
        return self.message.get("Action") or ""


def encode_block(pairs: Iterable[tuple[str, str]]) -> bytes:
    """Bytes of one message as Asterisk writes it: ``Key: Value\\r\\n`` lines, blank line."""
    return "".join(f"{key}: {value}\r\n" for key, value in pairs).encode("utf-8") + b"\r\n"


class _Session:
    def __init__(self, number: int, writer: asyncio.StreamWriter) -> None:
        self.number = number
        self.writer = writer
        self.challenge: str | None = None
        self.authenticated = False
        self.events = True
        self.closing = False


class FakeAsterisk:
    def __init__(
        self,
        *,
        username: str = "cti",
        secret: str = "s3cret",
        version: str = "11.0.0",
        auth_fail_delay: float = 0.02,
    ) -> None:
        self.username = username
        self.secret = secret
        self.version = version
        self.auth_fail_delay = auth_fail_delay
        """Asterisk waits 1 s before refusing a login; tests need less."""
        self.reject_logins = False
        self.answer_pings = True
        self.send_fully_booted = True
        """False plays a manager user without ``system`` read permission."""
        self.hold: set[str] = set()
        """Action names (any case) that are recorded and never answered."""
        self.commands: dict[str, list[str]] = {}
        """CLI command -> output lines; unknown commands get Asterisk's error."""
        self.channels: list[Pairs] = []
        """Items of ``CoreShowChannels`` (headers after ``Event`` and ``ActionID``)."""
        self.list_interleave: Pairs | None = None
        """An unrelated live event sent between the first and second list item."""
        self.responders: dict[str, Responder] = {}
        self.received: list[ReceivedAction] = []
        self.sessions_opened = 0
        self.logins = 0
        self._sessions: set[_Session] = set()
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Event()

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self.drop()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeAsterisk:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeAsterisk not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    # ---- what tests look at and do -------------------------------------------------------

    @property
    def session_count(self) -> int:
        """Connections open right now."""
        return len(self._sessions)

    def actions(self, name: str) -> list[ReceivedAction]:
        return [a for a in self.received if a.name.lower() == name.lower()]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``predicate()`` holds; it is checked after every change the fake sees."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._changed.wait()

    def emit(self, name: str, headers: Pairs | Mapping[str, str] = ()) -> int:
        """Send an event to every logged-in session that asked for events; how many got it."""
        return self.emit_raw(encode_block(self._event(name, headers)))

    def emit_raw(self, data: bytes) -> int:
        """Send bytes as they are to every logged-in session that asked for events."""
        count = 0
        for session in self._sessions:
            if session.authenticated and session.events and not session.closing:
                session.writer.write(data)
                count += 1
        return count

    async def drop(self) -> None:
        """Cut every connection at once (like a crash or a cable pulled), keep listening."""
        for session in tuple(self._sessions):
            session.closing = True
            session.writer.transport.abort()
        await self.wait_until(lambda: not self._sessions)

    # ---- the server ----------------------------------------------------------------------

    def _touch(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions_opened += 1
        session = _Session(self.sessions_opened, writer)
        self._sessions.add(session)
        self._touch()
        parser = AmiParser(expect_greeting=False)
        try:
            writer.write(f"Asterisk Call Manager/{self.version}\r\n".encode())
            while not session.closing:
                data = await reader.read(65536)
                if not data:
                    break
                for message in parser.receive_data(data):
                    if not isinstance(message, Message):
                        continue
                    self.received.append(ReceivedAction(session.number, message))
                    self._touch()
                    await self._answer(session, message)
                    if session.closing:
                        break
        except (OSError, RemoteProtocolError):
            pass
        finally:
            self._sessions.discard(session)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self._touch()

    def _send(self, session: _Session, *blocks: Pairs) -> None:
        if not session.closing:
            session.writer.write(b"".join(encode_block(block) for block in blocks))

    @staticmethod
    def _event(name: str, headers: Pairs | Mapping[str, str]) -> list[tuple[str, str]]:
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        return [("Event", name), *pairs]

    async def _answer(self, session: _Session, action: Message) -> None:
        name = (action.get("Action") or "").lower()
        if name in {held.lower() for held in self.hold}:
            return
        id_pairs = [("ActionID", action.action_id)] if action.action_id is not None else []

        def reply(response: str, *pairs: tuple[str, str]) -> list[tuple[str, str]]:
            return [("Response", response), *id_pairs, *pairs]

        if name == "challenge":
            if (action.get("AuthType") or "").lower() != "md5":
                self._send(session, reply("Error", ("Message", "Must specify AuthType")))
                return
            session.challenge = str(secrets.randbelow(10**9)).zfill(9)
            self._send(session, reply("Success", ("Challenge", session.challenge)))
        elif name == "login":
            await self._login(session, action, reply)
        elif name == "logoff":
            self._send(session, reply("Goodbye", ("Message", "Thanks for all the fish.")))
            session.closing = True
        elif not session.authenticated:
            self._send(session, reply("Error", ("Message", "Permission denied")))
        elif name == "ping":
            if self.answer_pings:
                stamp = f"{time.time():.6f}"
                self._send(session, reply("Success", ("Ping", "Pong"), ("Timestamp", stamp)))
        elif name == "command":
            cli = action.get("Command") or ""
            output = self.commands.get(cli)
            follows = ("Message", "Command output follows")
            if output is None:
                error = f"No such command '{cli}' (type 'core show help {cli}' for other possible"
                self._send(session, reply("Error", follows, ("Output", error + " commands)")))
            else:
                self._send(session, reply("Success", follows, *(("Output", o) for o in output)))
        elif name == "coreshowchannels":
            self._core_show_channels(session, id_pairs, reply)
        elif name == "originate":
            self._originate(session, action, id_pairs, reply)
        elif name in self.responders:
            self._send(session, *self.responders[name](action))
        else:
            self._send(session, reply("Error", ("Message", "Invalid/unknown command")))

    async def _login(
        self,
        session: _Session,
        action: Message,
        reply: Callable[..., list[tuple[str, str]]],
    ) -> None:
        user_ok = (action.get("Username") or "") == self.username
        if (action.get("AuthType") or "").lower() == "md5":
            expected = md5_key(session.challenge or "", self.secret)
            secret_ok = session.challenge is not None and action.get("Key") == expected
        else:
            secret_ok = action.get("Secret") == self.secret
        if self.reject_logins or not (user_ok and secret_ok):
            # Asterisk sleeps before it answers, then hangs up (manager.c, action_login).
            await asyncio.sleep(self.auth_fail_delay)
            self._send(session, reply("Error", ("Message", "Authentication failed")))
            session.closing = True
            return
        session.authenticated = True
        session.events = (action.get("Events") or "on").lower() not in ("off", "no", "false")
        self.logins += 1
        self._touch()
        self._send(session, reply("Success", ("Message", "Authentication accepted")))
        # Only for users with "system" read permission in real life (pitfall 6).
        if session.events and self.send_fully_booted:
            booted = self._event(
                "FullyBooted",
                [
                    ("Privilege", "system,all"),
                    ("Uptime", "12"),
                    ("LastReload", "12"),
                    ("Status", "Fully Booted"),
                ],
            )
            self._send(session, booted)

    def _core_show_channels(
        self,
        session: _Session,
        id_pairs: list[tuple[str, str]],
        reply: Callable[..., list[tuple[str, str]]],
    ) -> None:
        blocks: list[Pairs] = [
            reply("Success", ("EventList", "start"), ("Message", "Channels will follow"))
        ]
        for index, channel in enumerate(self.channels):
            blocks.append([("Event", "CoreShowChannel"), *id_pairs, *channel])
            if index == 0 and self.list_interleave is not None:
                blocks.append(list(self.list_interleave))
        blocks.append(
            [
                ("Event", "CoreShowChannelsComplete"),
                *id_pairs,
                ("EventList", "Complete"),
                ("ListItems", str(len(self.channels))),
            ]
        )
        self._send(session, *blocks)

    def _originate(
        self,
        session: _Session,
        action: Message,
        id_pairs: list[tuple[str, str]],
        reply: Callable[..., list[tuple[str, str]]],
    ) -> None:
        if (action.get("Async") or "").lower() != "true":
            # Real Asterisk would block this whole session until the call ends (pitfall 8).
            self._send(session, reply("Error", ("Message", "fake: Originate without Async")))
            return
        self._send(session, reply("Success", ("Message", "Originate successfully queued")))
        # Asterisk broadcasts OriginateResponse to every session with "call" permission.
        if action.get("Application") is not None:
            target = [("Application", action.get("Application") or ""), ("Data", "")]
            if action.get("Data") is not None:
                target[1] = ("Data", action.get("Data") or "")
        else:
            target = [
                ("Context", action.get("Context") or ""),
                ("Exten", action.get("Exten") or ""),
            ]
        self.emit(
            "OriginateResponse",
            [
                ("Privilege", "call,all"),
                *id_pairs,
                ("Response", "Success"),
                ("Channel", action.get("Channel") or ""),
                *target,
                ("Reason", "4"),
                ("Uniqueid", action.get("ChannelId") or ""),
                ("CallerIDNum", "<unknown>"),
                ("CallerIDName", "<unknown>"),
            ],
        )
