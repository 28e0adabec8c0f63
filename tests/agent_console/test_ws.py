"""The aiohttp adapter over real loopback websockets, with `websockets` as an independent client."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from agent_console.http import error_middleware
from agent_console.hub import CLOSE_SLOW_CONSUMER, Hub
from agent_console.ws import CLOSE_BAD_JSON, CLOSE_POLICY, CLOSE_UNSUPPORTED, serve_websocket

ORIGIN = Origin("http://console.test")


class Console:
    """A tiny server: one hub, one route, in-memory queue figures as the snapshot."""

    def __init__(self, *, queue_size: int = 256, sndbuf: int | None = None) -> None:
        self.hub = Hub(queue_size=queue_size)
        self.sndbuf = sndbuf
        self.state: dict[str, int] = {"sales": 0}
        self.app = web.Application(middlewares=[error_middleware])
        self.app.router.add_get("/ws", self._handler)

    async def _handler(self, request: web.Request) -> web.WebSocketResponse:
        if self.sndbuf is not None and request.transport is not None:
            # Small kernel buffers: a stalled reader backs up after kilobytes, not megabytes,
            # and the backlog it reads afterwards stays small.
            sock = request.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
        return await serve_websocket(
            request,
            self.hub,
            topics=["queues"],
            snapshot=lambda: [dict(self.state)],
            origin_ok=lambda origin: origin == ORIGIN,
            heartbeat=5.0,
            max_msg_size=1024,
            close_timeout=0.5,
        )

    def set(self, waiting: int) -> None:
        self.state["sales"] = waiting
        self.hub.publish("queues", "stats", {"sales": waiting})


@pytest.fixture
async def console() -> AsyncIterator[tuple[Console, str]]:
    server_side = Console()
    server = TestServer(server_side.app)
    await server.start_server()
    try:
        yield server_side, f"ws://{server.host}:{server.port}/ws"
    finally:
        server_side.hub.close_all()
        await server.close()


async def _frame(client: ClientConnection) -> dict[str, Any]:
    text = await asyncio.wait_for(client.recv(), 5)
    assert isinstance(text, str)
    frame: dict[str, Any] = json.loads(text)
    return frame


async def _close_code(client: ClientConnection) -> int | None:
    """Read until the server closes; the close code it sent (None: cut without a close frame)."""
    try:
        while True:
            await asyncio.wait_for(client.recv(), 5)
    except ConnectionClosed as closed:
        return None if closed.rcvd is None else closed.rcvd.code


async def _until_clients(hub: Hub, n: int) -> None:
    for _ in range(500):
        if hub.stats.clients == n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{hub.stats.clients} clients, expected {n}")


async def test_snapshot_then_deltas_over_a_real_socket(console: tuple[Console, str]) -> None:
    server, url = console
    server.set(3)
    async with connect(url, origin=ORIGIN) as client:
        snapshot = await _frame(client)
        assert snapshot == {"seq": 1, "topic": None, "type": "snapshot", "data": [{"sales": 3}]}
        server.set(4)
        server.set(5)
        assert await _frame(client) == {
            "seq": 2,
            "topic": "queues",
            "type": "stats",
            "data": {"sales": 4},
        }
        assert (await _frame(client))["seq"] == 3
        await client.send(json.dumps({"type": "ping"}))
        assert (await _frame(client))["type"] == "pong"
    await _until_clients(server.hub, 0)


@pytest.mark.parametrize("origin", ["http://evil.test", None])
async def test_foreign_or_missing_origin_refused_before_upgrade(
    console: tuple[Console, str], origin: str | None
) -> None:
    server, url = console
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin=None if origin is None else Origin(origin)):
            pass
    assert refused.value.response.status_code == 403
    assert server.hub.stats.clients == 0


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json{", CLOSE_BAD_JSON),
        (json.dumps({"type": "force_logout", "agent": "a2"}), CLOSE_POLICY),
        (json.dumps(["ping"]), CLOSE_POLICY),
        (b"\x00\x01", CLOSE_UNSUPPORTED),
        (json.dumps({"type": "ping", "pad": "x" * 2000}), 1009),  # over max_msg_size
    ],
)
async def test_hostile_messages_close_with_clear_code(
    console: tuple[Console, str], message: str | bytes, code: int
) -> None:
    server, url = console
    async with connect(url, origin=ORIGIN) as client:
        await _frame(client)
        await client.send(message)
        assert await _close_code(client) == code
    await _until_clients(server.hub, 0)
    # The server is still serving.
    async with connect(url, origin=ORIGIN) as client:
        assert (await _frame(client))["type"] == "snapshot"


async def test_reconnect_gets_fresh_snapshot(console: tuple[Console, str]) -> None:
    server, url = console
    async with connect(url, origin=ORIGIN) as client:
        assert (await _frame(client))["data"] == [{"sales": 0}]
        server.set(1)
        await _frame(client)
    server.set(7)  # missed while disconnected
    async with connect(url, origin=ORIGIN) as client:
        frame = await _frame(client)
        assert frame == {"seq": 2, "topic": None, "type": "snapshot", "data": [{"sales": 7}]}


async def test_stalled_socket_dropped_while_others_get_everything() -> None:
    server_side = Console(queue_size=8, sndbuf=8192)
    server = TestServer(server_side.app)
    await server.start_server()
    url = f"ws://{server.host}:{server.port}/ws"
    # A page that never reads: `websockets` stops reading the socket once one frame waits.
    try:
        async with (
            connect(url, origin=ORIGIN, max_queue=1) as stalled,
            connect(url, origin=ORIGIN, max_size=None) as healthy,
        ):
            await _until_clients(server_side.hub, 2)
            assert (await _frame(healthy))["type"] == "snapshot"
            received: list[int] = []
            pad = "x" * 8192
            for n in range(300):
                server_side.hub.publish("queues", "stats", {"n": n, "pad": pad})
                while len(received) < n + 1:  # the healthy page keeps up, as a browser would
                    received.append((await _frame(healthy))["data"]["n"])
            assert received == list(range(300))
            assert server_side.hub.stats.dropped == 1
            await _until_clients(server_side.hub, 1)
            # When the stalled page reads again it finds, after its backlog, why it was closed:
            # the close frame was buffered behind it and the transport flushes before closing.
            assert await _close_code(stalled) == CLOSE_SLOW_CONSUMER
    finally:
        server_side.hub.close_all()
        await server.close()
