"""A fake Asterisk for the FastAGI server tests (fixtures in tests/cti/agi/conftest.py).

The fake plays Asterisk's side of res_agi.c over a real TCP socket: it writes the environment
block, reads command lines and answers each from a script of expected command -> reply.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from cti.agi import AgiServer, SessionSummary

STEP_TIMEOUT = 5.0


def env_block(
    script: str = "ivr?lang=en",
    *,
    channel: str = "PJSIP/anonymous-00000000",
    uniqueid: str = "1732300000.0",
    args: Sequence[str] = (),
    host: str = "127.0.0.1:4573",
) -> bytes:
    """An environment block shaped like Asterisk 22's (launch_netscript + setup_env)."""
    lines = ["agi_network: yes"]
    if script:
        lines.append(f"agi_network_script: {script}")
    lines += [
        f"agi_request: agi://{host}/{script}",
        f"agi_channel: {channel}",
        "agi_language: en",
        "agi_type: PJSIP",
        f"agi_uniqueid: {uniqueid}",
        "agi_version: 22.10.1+dfsg+~cs6.17.60671434-1",
        "agi_callerid: 5551234",
        "agi_calleridname: unknown",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        "agi_dnid: 100",
        "agi_rdnis: unknown",
        "agi_context: from-pstn",
        "agi_extension: 100",
        "agi_priority: 2",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        "agi_threadid: 140245023545024",
    ]
    lines += [f"agi_arg_{n}: {value}" for n, value in enumerate(args, start=1)]
    return ("\n".join(lines) + "\n\n").encode()


class FakeAsterisk:
    """Asterisk's end of one FastAGI connection."""

    HANDLED_MARK = b'SET VARIABLE "CTI_HANDLED" "1"\n'
    """What the server sends when a handler returns on a live channel (HANDLED_VARIABLE)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received: list[bytes] = []

    @classmethod
    async def connect(cls, port: int) -> FakeAsterisk:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def start(
        self,
        script: str = "ivr?lang=en",
        *,
        args: Sequence[str] = (),
        channel: str = "PJSIP/anonymous-00000000",
    ) -> None:
        await self.send(env_block(script, args=args, channel=channel))

    async def read_line(self) -> bytes:
        line = await asyncio.wait_for(self.reader.readline(), STEP_TIMEOUT)
        self.received.append(line)
        return line

    async def expect(self, command: bytes, reply: bytes) -> None:
        """Read one command line, check it, answer it (``reply`` may hold several lines)."""
        line = await self.read_line()
        assert line == command, f"expected {command!r}, got {line!r}"
        if reply:
            await self.send(reply)

    async def play(self, script: Sequence[tuple[bytes, bytes]]) -> None:
        for command, reply in script:
            await self.expect(command, reply)

    async def expect_handled(self) -> None:
        """Read the handled mark and answer it as Asterisk does (res_agi.c handle_setvariable)."""
        await self.expect(self.HANDLED_MARK, b"200 result=1\n")

    async def read_rest(self) -> bytes:
        """Everything the server still sends, up to its close (an RST counts as a close)."""
        chunks: list[bytes] = []

        async def until_closed() -> None:
            try:
                while chunk := await self.reader.read(65536):
                    chunks.append(chunk)
            except ConnectionResetError:
                pass

        await asyncio.wait_for(until_closed(), STEP_TIMEOUT)
        return b"".join(chunks)

    async def close(self) -> None:
        if self.writer.is_closing():
            return
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@dataclass
class ServerHarness:
    server: AgiServer
    summaries: list[SessionSummary] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    fakes: list[FakeAsterisk] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.port

    async def connect(self) -> FakeAsterisk:
        fake = await FakeAsterisk.connect(self.port)
        self.fakes.append(fake)  # closed at teardown if the test did not
        return fake

    async def until_active(self, count: int) -> None:
        """Wait until the server is serving ``count`` connections."""

        async def until() -> None:
            # No hook fires on "connection accepted" (by design), so poll the counter.
            while self.server.stats.sessions_active != count:  # noqa: ASYNC110
                await asyncio.sleep(0.01)

        await asyncio.wait_for(until(), STEP_TIMEOUT)

    async def wait_sessions(self, count: int) -> list[SessionSummary]:
        """Wait until ``count`` sessions have been reported as ended."""

        async def until() -> None:
            while len(self.summaries) < count:
                self.ended.clear()
                await self.ended.wait()

        await asyncio.wait_for(until(), STEP_TIMEOUT)
        return self.summaries


MakeServer = Callable[..., Awaitable[ServerHarness]]
