"""Agent's phone rings -> screen-pop at the agent's websocket, at a sustained call rate.

Everything real: the sandbox Asterisk (its own instance "bench", the ports of
bench_ready_to_ring.py, so the test suite's ``test`` instance can run meanwhile), the whole
``Server`` in-process with the ACD, the CRM store (SQLite in a temporary folder, CUSTOMERS
customers imported at start, every caller's number one of theirs) and the consoles; AGENTS SIPp
phones that ring RING_MS then answer and hang up TALK_MS later; one logged-in websocket client
per agent on ``/api/ws`` (aiohttp, session cookie, same-origin ``Origin``); SIPp callers started
at RATE calls/s for DURATION seconds, each walking a one-node IVR flow straight into the ACD
queue ``sales``.

For every offer (bus ``CallOffered``), on one clock (``time.perf_counter``, one process):
- ``t_offer``: ``CallOffered`` published by the ACD (the routing decision, before the
  Redirect that makes Asterisk dial the agent);
- ``t_ring``: the server's AMI reader delivered ``DialBegin`` whose ``DestChannel`` is the
  agent's endpoint and whose ``Uniqueid`` is the call's (Dial() publishes it just before it
  sends the INVITE: apps/app_dial.c); ``t_ringing`` = the agent leg's ``Newstate`` Ringing
  (ChannelState 5: the phone's 180 reached Asterisk), matched by ``Linkedid``;
- ``t_pop``: the agent's websocket client received the ``screen_pop`` frame for that call.

The websocket clients run in the server's own process and event loop (a browser would not
share the server's CPU; here they do, so the figures include that small cost).

Run: .venv/bin/python bench/bench_screen_pop.py [--rate 1] [--duration 90] [--agents 8]
     [--customers 3000]
(results: bench/RESULTS.md). Builds the sandbox root if needed, starts instance "bench" and
stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import random
import statistics
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import yaml
from _timing import percentile
from support.console import cookie_session, sign_in
from support.pbx import PbxHandle, exclusive_instance, make_test_config, start_test_pbx
from support.server import eventually, real_server_settings, with_ivr_flows
from support.sipp import SippProcess, start_caller, start_phone

from acd.events import CallOffered
from app.server import Server
from cti.ami import Event
from sandbox import AgentPhone, SandboxConfig

FIRST_AGENT = 1001
FIRST_PHONE_PORT = 35081
NUMBER_BASE = 5_550_000  # customer i has the phone number 5550000 + i

FLOWS_YAML = """
default_flow: to_sales
routes:
  - {dnis: "8101", flow: to_sales}
flows:
  to_sales: {start: q, nodes: {q: {kind: queue, queue: sales}}}
"""

CONSOLE_YAML = """
dispositions:
  - {code: resolved, label: Resolved}
"""


def agent_ids(count: int) -> list[str]:
    return [f"agent{FIRST_AGENT + i}" for i in range(count)]


def bench_config(agents: int) -> SandboxConfig:
    phones = tuple(
        AgentPhone(
            agent,
            f"bench-pw-{agent}",
            contact=f"sip:{agent}@127.0.0.1:{FIRST_PHONE_PORT + i}",
        )
        for i, agent in enumerate(agent_ids(agents))
    )
    return make_test_config(
        "bench",
        ami_secret="bench-secret",
        ami_port=35038,
        sip_port=35060,
        agi_port=34573,
        rtp_start=36000,
        rtp_end=36999,
        agents=phones,
    )


def acd_yaml(agents: int) -> str:
    lines = [
        "timezone: UTC",
        "fallback_after: 120",
        "not_ready_reasons: [break]",
        "defaults:",
        "  ring_timeout: 15",
        "  wrap_up: 1",
        "  announce: {every: 30, position: false, estimated_wait: false}",
        "queues:",
        "  sales: {skills: {sales: 1}}",
        "agents:",
    ]
    lines += [f"  {a}: {{skills: {{sales: 5}}, queues: [sales]}}" for a in agent_ids(agents)]
    return "\n".join(lines) + "\n"


def customers_yaml(count: int) -> str:
    """``count`` customers, each with a number of their own; every tenth has an open case."""
    rng = random.Random(6)
    tiers = ["standard", "silver", "gold"]
    records: list[dict[str, Any]] = []
    for i in range(count):
        record: dict[str, Any] = {
            "id": f"B{i:06d}",
            "name": f"Customer {i:05d}",
            "phone": [str(NUMBER_BASE + i)],
            "account": f"{100000 + i}",
            "tier": rng.choice(tiers),
        }
        if i % 10 == 0:
            record["cases"] = [{"subject": f"Case of customer {i}", "status": "open"}]
        records.append(record)
    return yaml.safe_dump({"customers": records}, sort_keys=False)


@dataclass
class Offer:
    call_id: str
    agent_id: str
    number: str
    t_offer: float
    t_ring: float | None = None  # DialBegin towards the agent
    t_ringing: float | None = None  # Newstate Ringing of the agent leg
    t_pop: float | None = None
    t_composed: float | None = None  # ScreenPops.compose returned (the CRM lookups done)
    compose_ms: float | None = None
    pop_number: str | None = None
    customer_ref: str | None = None


@dataclass
class Recorder:
    server: Server
    offers: dict[tuple[str, str], Offer] = field(default_factory=dict)
    # Events that came before their offer (should not happen: the offer precedes the Redirect).
    early_rings: int = 0
    stream_seconds: float = 0.0  # how long starting every caller took
    idle_compose_ms: list[float] = field(default_factory=list)

    def on_offered(self, event: CallOffered) -> None:
        now = time.perf_counter()
        acd = self.server.acd
        call = acd.service.calls.get(event.call_id) if acd is not None else None
        number = call.number if call is not None else ""
        self.offers[event.call_id, event.agent_id] = Offer(
            event.call_id, event.agent_id, number, now
        )

    def _latest(self, call_id: str, channel: str) -> Offer | None:
        # "PJSIP/agent1001-0000002a" -> agent1001
        agent = channel.removeprefix("PJSIP/").rsplit("-", 1)[0]
        return self.offers.get((call_id, agent))

    def on_event(self, event: Event) -> None:
        now = time.perf_counter()
        if event.name == "DialBegin":
            dest = event.get("DestChannel") or ""
            if not dest.startswith("PJSIP/agent"):
                return
            offer = self._latest(event.get("Uniqueid") or "", dest)
            if offer is None:
                self.early_rings += 1
            elif offer.t_ring is None:
                offer.t_ring = now
        elif event.name == "Newstate" and event.get("ChannelState") == "5":
            channel = event.get("Channel") or ""
            if channel.startswith("PJSIP/agent"):
                offer = self._latest(event.get("Linkedid") or "", channel)
                if offer is not None and offer.t_ringing is None:
                    offer.t_ringing = now

    def watch_compose(self) -> None:
        """Time ``ScreenPops.compose`` (the CRM lookups) by wrapping it on the instance."""
        live = self.server.live
        assert live is not None
        pops = live.pops
        compose = pops.compose

        async def timed(call_id: str, number: str, queue: str) -> dict[str, Any]:
            begin = time.perf_counter()
            pop = await compose(call_id, number, queue)
            end = time.perf_counter()
            for offer in self.offers.values():
                if offer.call_id == call_id and offer.t_composed is None:
                    offer.t_composed = end
                    offer.compose_ms = (end - begin) * 1000.0
            return pop

        pops.compose = timed  # type: ignore[method-assign]  # instance-level timing wrapper

    def on_pop(self, agent_id: str, data: dict[str, Any], at: float) -> None:
        offer = self.offers.get((str(data.get("call_id")), agent_id))
        if offer is None or offer.t_pop is not None:
            return
        offer.t_pop = at
        offer.pop_number = data.get("number")
        customer = data.get("customer")
        offer.customer_ref = customer.get("ref") if isinstance(customer, dict) else None


async def agent_client(
    base: str, server: Server, agent_id: str, recorder: Recorder, started: asyncio.Event
) -> None:
    """One agent's console page: log in, follow /api/ws, note when each screen-pop arrives."""
    assert server.accounts is not None
    async with cookie_session() as http:
        await sign_in(http, base, server.accounts, agent_id, "agent", agent_id=agent_id)
        ws_url = base.replace("http", "ws", 1) + "/api/ws"
        async with http.ws_connect(ws_url, origin=base, autoping=True) as ws:
            started.set()
            async for message in ws:
                at = time.perf_counter()
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                frame = message.json()
                if frame.get("type") == "screen_pop":
                    recorder.on_pop(agent_id, frame["data"], at)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


async def run(pbx: PbxHandle, args: argparse.Namespace, folder: Path) -> Recorder:
    pbx.hangup_all()
    agents = agent_ids(args.agents)
    settings = with_ivr_flows(
        real_server_settings(
            pbx,
            "acd.enabled=true",
            f"acd.config={write(folder, 'acd.yaml', acd_yaml(args.agents))}",
            f"acd.state_dir={folder / 'state'}",
            "crm.enabled=true",
            f"crm.url=sqlite+aiosqlite:///{folder / 'crm.sqlite3'}",
            f"ivr.customers={write(folder, 'customers.yaml', customers_yaml(args.customers))}",
            f"console.config={write(folder, 'console.yaml', CONSOLE_YAML)}",
        ),
        write(folder, "flows.yaml", FLOWS_YAML),
    )
    log_dir = folder / "sipp"
    log_dir.mkdir()
    server = Server(settings)
    recorder = Recorder(server)
    recorder.watch_compose()
    unsubscribe = [
        server.bus.subscribe(CallOffered, recorder.on_offered),
        server.pbx_feed.subscribe(Event, recorder.on_event),
    ]
    phones = [
        start_phone(
            pbx.phone_port(agent), ring_ms=args.ring_ms, talk_ms=args.talk_ms, log_dir=log_dir
        )
        for agent in agents
    ]
    callers: list[SippProcess] = []
    clients: list[asyncio.Task[None]] = []
    try:
        async with server:
            await server.ami.wait_connected(15)
            acd = server.acd
            assert acd is not None
            base = f"http://127.0.0.1:{server.http_port}"
            for agent in agents:
                started = asyncio.Event()
                clients.append(
                    asyncio.create_task(agent_client(base, server, agent, recorder, started))
                )
                await asyncio.wait_for(started.wait(), 15)
                acd.service.login(agent)
                acd.service.ready(agent)
            rng = random.Random(7)
            total = int(args.rate * args.duration)
            print(f"{total} callers at {args.rate}/s, {args.agents} agents", flush=True)
            start = time.perf_counter()
            last_start = start
            for n in range(total):
                await asyncio.sleep(max(0.0, start + n / args.rate - time.perf_counter()))
                number = str(NUMBER_BASE + rng.randrange(args.customers))
                callers.append(
                    start_caller(
                        pbx.sip_port,
                        "8101",
                        first_key_ms=1,
                        hold_ms=300_000,  # the agent's phone hangs up first
                        ani=number,
                        timeout=400,
                        log_dir=log_dir,
                    )
                )
                last_start = time.perf_counter()
                # Reap finished callers so the process table stays small.
                callers = [c for c in callers if c.process.poll() is None]
            recorder.stream_seconds = last_start - start

            def served() -> bool:
                offered = {call_id for call_id, _ in recorder.offers}
                return len(offered) >= total and all(
                    o.t_pop is not None and o.t_ring is not None for o in recorder.offers.values()
                )

            # Calls still waiting are offered as agents free up; then the pops and rings arrive.
            with contextlib.suppress(AssertionError):
                await eventually("every call offered and popped", served, 120, 0.2)
            await asyncio.sleep(2.0)
            # The same composition with nothing else going on (calls over, store idle).
            assert server.live is not None
            for i in range(50):
                begin = time.perf_counter()
                await server.live.pops.compose(f"idle-{i}", str(NUMBER_BASE + i * 7), "sales")
                recorder.idle_compose_ms.append((time.perf_counter() - begin) * 1000.0)
    finally:
        for task in clients:
            task.cancel()
        for stop in unsubscribe:
            stop()
        for caller in callers:
            caller.stop(timeout=2)
        pbx.hangup_all()
        for phone in phones:
            phone.stop()
    return recorder


def line(label: str, values: list[float]) -> None:
    if not values:
        print(f"{label:34s} no samples")
        return
    print(
        f"{label:34s} median {statistics.median(values):8.2f} ms  "
        f"p99 {percentile(values, 0.99):8.2f} ms"
        f"  min {min(values):8.2f}  max {max(values):8.2f}  (n={len(values)})"
    )


def spans(offers: list[Offer], end: str, start: str) -> list[float]:
    """``end - start`` in ms for every offer that has both times."""
    values = []
    for offer in offers:
        a, b = getattr(offer, end), getattr(offer, start)
        if a is not None and b is not None:
            values.append((a - b) * 1000.0)
    return values


def report(recorder: Recorder, args: argparse.Namespace) -> None:
    offers = list(recorder.offers.values())
    calls = {o.call_id for o in offers}
    popped = [o for o in offers if o.t_pop is not None]
    lost = [o for o in offers if o.t_pop is None]
    wrong = [
        o
        for o in popped
        if o.customer_ref != f"B{int(o.number) - NUMBER_BASE:06d}" or o.pop_number != o.number
    ]
    total = int(args.rate * args.duration)
    stream_s = recorder.stream_seconds
    rate = (total - 1) / stream_s if stream_s > 0 else float("nan")
    print(
        f"\ncallers started: {total}, first to last {stream_s:.1f} s = {rate:.2f} calls/s; "
        f"calls offered: {len(calls)}, offers: {len(offers)}, pops received: {len(popped)}"
    )
    print(
        f"lost pops (offered, no pop frame): {len(lost)}; pops with the wrong customer: "
        f"{len(wrong)}; DialBegin before its offer: {recorder.early_rings}"
    )
    pop_ring = spans(offers, "t_pop", "t_ring")
    line("pop - DialBegin (ring)", pop_ring)
    line("pop - Newstate Ringing (180)", spans(offers, "t_pop", "t_ringing"))
    line("pop - CallOffered", spans(offers, "t_pop", "t_offer"))
    line("DialBegin - CallOffered", spans(offers, "t_ring", "t_offer"))
    line("compose (CRM lookups)", [o.compose_ms for o in offers if o.compose_ms is not None])
    line("pop - compose done (hub + ws)", spans(offers, "t_pop", "t_composed"))
    line("compose, idle server (50 lookups)", recorder.idle_compose_ms)
    before = sum(1 for v in pop_ring if v < 0)
    print(f"pops that arrived before DialBegin: {before} of {len(pop_ring)}")
    print(f"{platform.python_implementation()} {platform.python_version()} {platform.machine()}")


async def main_async(args: argparse.Namespace) -> None:
    config = bench_config(args.agents)
    with exclusive_instance(config), tempfile.TemporaryDirectory(prefix="bench-pop-") as tmp:
        pbx = await asyncio.to_thread(start_test_pbx, config=config)
        try:
            recorder = await run(pbx, args, Path(tmp))
        finally:
            await asyncio.to_thread(pbx.sandbox.down)
    report(recorder, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=1.0, help="new callers per second")
    parser.add_argument("--duration", type=float, default=90.0, help="seconds of callers")
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--ring-ms", type=int, default=1000, help="phone rings, then answers")
    parser.add_argument("--talk-ms", type=int, default=1000, help="then hangs up")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
