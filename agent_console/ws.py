"""aiohttp adapter of the live-push hub: one websocket per page.

``serve_websocket`` is called by a route handler that has already authenticated the user and
chosen the topics and snapshot the user may see (the lead's sessions/roles code). It:

1. refuses a cross-site page with 403 BEFORE the upgrade (browsers send ``Origin`` on every
   websocket handshake and websockets have no same-origin policy of their own);
2. prepares the websocket with ``heartbeat=``: aiohttp pings every ``heartbeat`` seconds and
   closes the connection when no pong comes within half of it, so a browser that went to sleep
   is noticed and its writer ends (the page's script reconnects when it wakes up);
3. connects the page to the hub (snapshot queued first) and runs its writer as a child task;
4. reads what the page sends. Pages only send ``{"type": "ping"}`` (answered by a ``pong``
   frame, to let a page measure its own lag); anything else is hostile or a bug and closes the
   connection with a clear code: binary 1003, not JSON 1007, too large 1009 (aiohttp itself,
   from ``max_msg_size``), unknown type 1008.

Compression is off on purpose: permessage-deflate compresses each frame once PER CLIENT, which
would undo the hub's serialise-once fan-out (and compressing attacker-influenced text next to
secrets is the BREACH/CRIME pattern).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Final

from aiohttp import WSMsgType, web

from agent_console.hub import CLOSE_GOING_AWAY, Hub, SnapshotSource, Subscription
from cti.errors import Forbidden

__all__ = [
    "CLOSE_BAD_JSON",
    "CLOSE_POLICY",
    "CLOSE_UNSUPPORTED",
    "serve_websocket",
]

log = logging.getLogger(__name__)

# RFC 6455 section 7.4.1.
CLOSE_UNSUPPORTED: Final = 1003
CLOSE_BAD_JSON: Final = 1007
CLOSE_POLICY: Final = 1008

_PONG: Final = '{"seq":null,"topic":null,"type":"pong","data":null}'


async def serve_websocket(
    request: web.Request,
    hub: Hub,
    *,
    topics: Iterable[str],
    snapshot: SnapshotSource,
    origin_ok: Callable[[str | None], bool],
    client_id: str | None = None,
    heartbeat: float = 20.0,
    max_msg_size: int = 4096,
    close_timeout: float = 2.0,
) -> web.WebSocketResponse:
    """Serve one page's websocket until either side closes it; see the module docstring."""
    origin = request.headers.get("Origin")
    if not origin_ok(origin):
        raise Forbidden("websocket origin not allowed")
    ws = web.WebSocketResponse(
        heartbeat=heartbeat, max_msg_size=max_msg_size, compress=False, timeout=close_timeout
    )
    await ws.prepare(request)

    async def close(code: int, reason: str) -> None:
        # A dropped page may not read at all: its close frame may never be written. aiohttp
        # closes the transport when the wait is cancelled, which is what we want then.
        try:
            async with asyncio.timeout(close_timeout):
                await ws.close(code=code, message=reason.encode())
        except TimeoutError:
            log.debug("close of a websocket timed out; transport closed")

    sub = hub.connect(client_id or uuid.uuid4().hex, topics, snapshot)
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(sub.run(ws.send_str, close))
            await _read(ws, sub)
    finally:
        hub.disconnect(sub)
    return ws


async def _read(ws: web.WebSocketResponse, sub: Subscription) -> None:
    """Read the page's messages until it closes, or we refuse one (then stop the writer)."""
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            refusal = _check(msg.data)
            if refusal is None:
                sub.offer_reply(_PONG)
                continue
            sub.stop(*refusal)
            return
        if msg.type is WSMsgType.BINARY:
            sub.stop(CLOSE_UNSUPPORTED, "binary frames not accepted")
            return
        # ERROR: aiohttp already closed it (1009 for max_msg_size, 1002 for a bad frame).
        break
    # The page closed (or the transport failed): the writer has nobody to write to.
    sub.stop(CLOSE_GOING_AWAY, "peer closed")


def _check(text: str) -> tuple[int, str] | None:
    """None for an accepted message, else the close code and reason to refuse it with."""
    try:
        message = json.loads(text)
    except ValueError:
        return CLOSE_BAD_JSON, "not JSON"
    if not isinstance(message, dict) or message.get("type") != "ping":
        return CLOSE_POLICY, "unknown message type"
    return None
