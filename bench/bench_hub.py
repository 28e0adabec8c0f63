"""Wallboard update latency: 2,000 monitor pages on real websockets, one of them stalled.

Two processes on the loopback interface, so client work does not steal the server's core:
the server (aiohttp + ``agent_console.ws.serve_websocket`` + ``Hub``) and one client process
holding 1,999 healthy ``websockets`` connections and one stalled one (it never calls ``recv``;
``websockets`` stops reading the socket once a frame waits, so its TCP buffers fill). The server
publishes UPDATES queue-figure frames (about 300 bytes each, like ``QueueStatsChanged``) at RATE
per second; each carries its publish time (CLOCK_MONOTONIC, shared by both processes). A client
notes the time ``recv`` returned the frame. Latency = receipt - publish, for every (page, update)
pair; "last page" = the latest receipt of each update (time for one update to reach all pages).

``--through-server``: the full path instead of the hub alone. The server process runs the real
``app.server.Server`` (ACD, CRM store in a temporary SQLite file, consoles; Asterisk played by
``sandbox.fake_ami.FakeAsterisk``), logs in one supervisor and hands its session cookie to the
client process, whose pages all use it on the real console route ``/api/ws`` (session check,
Origin check, the supervisor's topics and snapshot). Each update is an ``acd.events``
``QueueStatsChanged`` published on the server's bus, so ``ConsoleLive`` builds the frame (the
30-minute service level) and evaluates the alerts, exactly as for the ACD's own figures. Its
``at`` is the wall clock at publish time (``time.time()``, shared by both processes), which is
what the latency is measured from; ``offered`` carries 1,000,000 + the update's number so the
bench's frames are told apart from the ACD's own.

Run: .venv/bin/python bench/bench_hub.py [--clients 2000] [--updates 300] [--rate 10]
     [--no-stalled] [--through-server]
(results: bench/RESULTS.md)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from _timing import percentile
from aiohttp import web
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from acd.events import QueueStatsChanged
from acd.figures import QueueStats
from agent_console.auth import SESSION_COOKIE
from agent_console.hub import Hub
from agent_console.ws import serve_websocket
from app.server import Server
from app.settings import load_settings
from sandbox.fake_ami import FakeAsterisk

ORIGIN = Origin("http://wallboard.bench")
ROOT = Path(__file__).resolve().parents[1]
MARK = 1_000_000  # QueueStats.offered of the bench's updates: MARK + update number


def _now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def _figures(n: int, published_ns: int) -> dict[str, Any]:
    return {
        "queue": f"q{n % 20:02d}",
        "waiting": n % 7,
        "longest_wait": 12.5,
        "answered": 100 + n,
        "abandoned": 3,
        "sl_today": 0.87,
        "sl_30min": 0.91,
        "asa": 14.2,
        "agents": {"ready": 4, "busy": 11, "wrap_up": 2, "not_ready": 1, "offered": 1},
        "published_ns": published_ns,
    }


async def _server(pipe: Connection, clients: int, updates: int, rate: float) -> None:
    hub = Hub(queue_size=256)

    async def handler(request: web.Request) -> web.WebSocketResponse:
        return await serve_websocket(
            request,
            hub,
            topics=["queues"],
            snapshot=lambda: [_figures(0, 0)],
            origin_ok=lambda origin: origin == ORIGIN,
        )

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]
    pipe.send(port)
    # The client process says when all its pages are connected (relayed by main()).
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    connected = hub.stats.clients
    await asyncio.sleep(1.0)
    publish_cost: list[float] = []
    cpu_start = time.process_time()
    start = time.perf_counter()
    for n in range(updates):
        due = start + n / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        before = time.perf_counter()
        hub.publish("queues", "stats", _figures(n, _now_ns()))
        publish_cost.append(time.perf_counter() - before)
    await asyncio.sleep(2.0)
    cpu = time.process_time() - cpu_start
    wall = time.perf_counter() - start
    stats = hub.stats
    hub.publish("queues", "done", None)
    pipe.send(
        {
            "publish_ms_median": statistics.median(publish_cost) * 1e3,
            "cpu_share": cpu / wall,
            "clients_start": connected,
            "clients_end": stats.clients,  # 2 s after the last update
            "dropped": stats.dropped,
            "sent": stats.sent,
            "serialisations": stats.serialisations,
        }
    )
    hub.close_all()
    await runner.cleanup()


def _queue_stats(queue: str, n: int) -> QueueStats:
    """Figures of one queue as the ACD computes them (acd.figures.QueueStats), stamped now."""
    return QueueStats(
        queue=queue,
        at=time.time(),
        waiting=n % 7,
        longest_wait=float(n % 90),  # passes the 60 s long-wait alert now and then
        agents={"ready": 4, "on_call": 11, "wrap_up": 2, "not_ready": 1, "ringing": 1},
        offered=MARK + n,
        answered=100 + n,
        abandoned=3,
        short_abandoned=0,
        overflowed=0,
        callbacks=0,
        answered_within=90 + n,
        abandoned_within=1,
        service_level=0.87,
        service_levels={"answered_only": 0.9},
        sl_variant="abandons_ignored",
        sl_threshold=20.0,
        sl_goal=0.8,
        asa=14.2,
        abandon_rate=0.03,
        aht=180.0,
        estimated_wait=30.0,
    )


async def _server_through(pipe: Connection, clients: int, updates: int, rate: float) -> None:
    """The full path: a real Server (fake Asterisk) and QueueStatsChanged on its bus."""
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        async with FakeAsterisk() as fake:
            settings = load_settings(
                environ={},
                overrides=(
                    f"ami.port={fake.port}",
                    f"ami.username={fake.username}",
                    f"ami.secret={fake.secret}",
                    "agi.port=0",
                    "http.host=127.0.0.1",
                    "http.port=0",
                    "acd.enabled=true",
                    f"acd.state_dir={tmp}/state",
                    f"crm.url=sqlite+aiosqlite:///{tmp}/crm.sqlite3",
                    f"config_dir={ROOT / 'config'}",
                ),
            )
            async with Server(settings) as server:
                await server.ami.wait_connected(5)
                assert server.accounts is not None
                assert server.hub is not None
                acd = server.acd
                assert acd is not None
                queues = sorted(acd.service.config.queues)
                base = f"http://127.0.0.1:{server.http_port}"
                await server.accounts.add_user("wall", "bench-password-1", "supervisor")
                jar = aiohttp.CookieJar(unsafe=True)
                async with (
                    aiohttp.ClientSession(cookie_jar=jar) as http,
                    http.post(
                        f"{base}/api/login",
                        json={"username": "wall", "password": "bench-password-1"},
                    ) as response,
                ):
                    assert response.status == 200, await response.text()
                token = next(c.value for c in jar if c.key == SESSION_COOKIE)
                pipe.send((f"ws://127.0.0.1:{server.http_port}/api/ws", base, token))
                hub = server.hub
                await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
                connected = hub.stats.clients
                await asyncio.sleep(1.0)
                publish_cost: list[float] = []
                cpu_start = time.process_time()
                start = time.perf_counter()
                for n in range(updates):
                    due = start + n / rate
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    before = time.perf_counter()
                    stats = _queue_stats(queues[n % len(queues)], n)
                    server.bus.publish(QueueStatsChanged(stats, stats.at))
                    publish_cost.append(time.perf_counter() - before)
                await asyncio.sleep(2.0)
                cpu = time.process_time() - cpu_start
                wall = time.perf_counter() - start
                end = hub.stats
                hub.publish("queues", "done", None)
                await asyncio.sleep(0.5)
                pipe.send(
                    {
                        "publish_ms_median": statistics.median(publish_cost) * 1e3,
                        "cpu_share": cpu / wall,
                        "clients_start": connected,
                        "clients_end": end.clients,
                        "dropped": end.dropped,
                        "sent": end.sent,
                        "serialisations": end.serialisations,
                    }
                )


async def _client(pipe: Connection, clients: int, stalled: bool, through: bool) -> None:
    headers: dict[str, str] = {}
    if through:
        # The real console route: the supervisor's session cookie and the server's own origin.
        url, base, token = pipe.recv()
        origin = Origin(base)
        headers["Cookie"] = f"cti_session={token}"
    else:
        url, origin = f"ws://127.0.0.1:{pipe.recv()}/ws", ORIGIN
    latencies: list[float] = []
    published: dict[int, int] = {}
    last_receipt: dict[int, int] = {}

    async def healthy(ws: ClientConnection) -> None:
        async for text in ws:
            received = _now_ns()
            frame = json.loads(text)
            if frame["type"] == "done":
                return
            if through:
                data = frame["data"]
                if frame["type"] == "queue" and data["offered"] >= MARK:
                    wall_ns = time.time_ns()  # publish time is wall-clock here
                    n = data["offered"] - MARK
                    published[n] = int(data["at"] * 1e9)
                    latencies.append((wall_ns - published[n]) / 1e6)
                    last_receipt[n] = max(last_receipt.get(n, 0), wall_ns)
            elif frame["type"] == "stats":
                n = frame["data"]["answered"] - 100
                published[n] = frame["data"]["published_ns"]
                latencies.append((received - published[n]) / 1e6)
                last_receipt[n] = max(last_receipt.get(n, 0), received)

    connections: list[ClientConnection] = []
    for i in range(clients):
        queue = 1 if i == 0 and stalled else 16  # page 0 is the stalled one
        ws = await connect(
            url,
            origin=origin,
            additional_headers=headers,
            max_queue=queue,
            open_timeout=60,
            close_timeout=1,
        )
        connections.append(ws)
    pipe.send("ready")
    cpu_start = time.process_time()
    start = time.perf_counter()
    async with asyncio.TaskGroup() as tasks:
        for ws in connections[1:] if stalled else connections:
            tasks.create_task(healthy(ws))
    cpu_share = (time.process_time() - cpu_start) / (time.perf_counter() - start)
    last = [(last_receipt[n] - published[n]) / 1e6 for n in last_receipt]
    stalled_open = connections[0].close_code is None
    for ws in connections:
        await ws.close()
    pipe.send(
        {
            "latencies": latencies,
            "last": last,
            "stalled_open": stalled_open,
            "cpu_share": cpu_share,
        }
    )


def _run_server(pipe: Connection, clients: int, updates: int, rate: float, through: bool) -> None:
    serve = _server_through if through else _server
    asyncio.run(serve(pipe, clients, updates, rate))


def _run_client(pipe: Connection, clients: int, stalled: bool, through: bool) -> None:
    asyncio.run(_client(pipe, clients, stalled, through))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--no-stalled", action="store_true", help="all pages read (baseline)")
    parser.add_argument(
        "--through-server",
        action="store_true",
        help="real Server, /api/ws as a supervisor, QueueStatsChanged on the bus",
    )
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    server_end, server_pipe = ctx.Pipe()
    client_end, client_pipe = ctx.Pipe()
    server = ctx.Process(
        target=_run_server,
        args=(server_pipe, args.clients, args.updates, args.rate, args.through_server),
    )
    client = ctx.Process(
        target=_run_client,
        args=(client_pipe, args.clients, not args.no_stalled, args.through_server),
    )
    server.start()
    client.start()
    client_end.send(server_end.recv())
    server_end.send(client_end.recv())
    server_report = server_end.recv()
    client_report = client_end.recv()
    server.join()
    client.join()
    lat: list[float] = client_report["latencies"]
    last: list[float] = client_report["last"]
    healthy = args.clients if args.no_stalled else args.clients - 1
    expected = healthy * args.updates
    stalled = args.clients - healthy
    path = "through the server (/api/ws, QueueStatsChanged)" if args.through_server else "hub"
    print(
        f"{args.clients} pages ({stalled} stalled), {args.updates} updates at {args.rate}/s, {path}"
    )
    print(f"frames received by healthy pages: {len(lat)} of {expected}")
    print(
        f"per page latency ms: median {statistics.median(lat):.2f}  p99 {percentile(lat, 0.99):.2f}"
    )
    print(f"last page ms: median {statistics.median(last):.2f}  p99 {percentile(last, 0.99):.2f}")
    what = "bus.publish(QueueStatsChanged)" if args.through_server else "publish()"
    print(f"{what} cost ms (median): {server_report['publish_ms_median']:.3f}")
    hub = server_report
    print(f"hub: {hub['clients_start']} pages at start, {hub['clients_end']} at end")
    print(f"hub: dropped {hub['dropped']}, serialisations {hub['serialisations']}")
    print(f"hub: frames written {hub['sent']}")
    if not args.no_stalled:
        print(f"stalled page still open at the end: {client_report['stalled_open']}")
    print(
        f"CPU busy while publishing: server {hub['cpu_share']:.0%} of a core, "
        f"clients {client_report['cpu_share']:.0%}"
    )
    print(f"{platform.python_version()} {platform.machine()}")


if __name__ == "__main__":
    main()
