"""Agent ready -> agent's phone rings: our ACD against Asterisk's app_queue, side by side.

Both sides run on one sandbox instance ("bench", its own ports, so the test suite's ``test``
instance can run at the same time), with the same SIPp caller and the same SIPp phone, which
sends 180 Ringing at once and never answers (the benchmark hangs up as soon as it rang):

- ACD: a caller dials 8101; the test IVR's queue node puts it into the ACD queue ``sales``
  (music, [cti-acd-wait]). agent1001 is logged in but not ready. The clock starts just before
  ``service.ready("agent1001")`` (in-process server); the ACD routes, sets CTI_ACD_OFFER and
  redirects the caller to [cti-acd-deliver], whose Dial() rings the phone.
- app_queue: the same caller, the same route, but the server runs with the ACD disabled, so the
  queue node runs ``Queue(sales)`` (ivr.services.AppQueueGateway). The member PJSIP/agent1001
  is paused in ``sales``; the clock starts just before the AMI ``QueuePause Paused=false``.

The phone has rung when the AMI says so for the agent's leg: ``Newstate`` with ChannelState 5
(Ringing) or ``DialState`` with DialStatus RINGING, whichever comes first; ``DialBegin`` (the
INVITE leaves) is recorded too. Times are taken when the server's AMI reader hands the event
to the bus, on the same connection for both sides. Between the caller joining and the ready,
each run waits a random 1-2 s, so the moment of the ready falls anywhere in app_queue's
once-a-second recheck (apps/app_queue.c, wait_our_turn(): RECHECK) rather than at one phase.

Under load (``--load N``, default 20) N more callers wait in ``support`` for the whole series,
served by nobody (agent1002 not ready / paused): the ACD polls them with its wait-loop AGI
visits, app_queue with one recheck thread per caller.

Run: .venv/bin/python bench/bench_ready_to_ring.py [--runs 40] [--load 20] [--side both]
(results: bench/RESULTS.md). Builds the sandbox root if needed (cached under
~/.cache/ctiserver), starts instance "bench" and stops it at the end.
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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# The sandbox and SIPp helpers are the tests' own (tests/support); mypy finds them through
# mypy_path, a script run needs the folder on sys.path. The repository root goes first: tests/
# mirrors the source tree, and its folders (tests/cti, no __init__.py) would otherwise be taken
# for namespace packages that shadow the real ones.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.pbx import PbxHandle, exclusive_instance, make_test_config, start_test_pbx
from support.server import eventually, real_server_settings, with_ivr_flows
from support.sipp import SippProcess, start_caller, start_phone

from acd.agent_state import AgentStatus
from acd.events import CallQueued
from app.server import Server
from cti.ami import Event
from cti.errors import CtiError
from sandbox import AgentPhone, SandboxConfig

Side = Literal["acd", "app_queue"]

AGENT = "agent1001"
IDLE_AGENT = "agent1002"
BENCH_AGENTS = (
    AgentPhone("agent1001", "bench-pw-1001", contact="sip:agent1001@127.0.0.1:35081"),
    AgentPhone("agent1002", "bench-pw-1002", contact="sip:agent1002@127.0.0.1:35082"),
)

ACD_YAML = """
timezone: UTC
fallback_after: 60
not_ready_reasons: [break]
defaults:
  ring_timeout: 20
  wrap_up: 1
  announce: {every: 10, position: false, estimated_wait: false}
queues:
  sales: {skills: {sales: 3}}
  support: {skills: {support: 1}}
agents:
  agent1001: {skills: {sales: 5}, queues: [sales]}
  agent1002: {skills: {support: 5}, queues: [support]}
"""

FLOWS_YAML = """
default_flow: to_sales
routes:
  - {dnis: "8101", flow: to_sales}
  - {dnis: "8102", flow: to_support}
flows:
  to_sales: {start: q, nodes: {q: {kind: queue, queue: sales}}}
  to_support: {start: q, nodes: {q: {kind: queue, queue: support}}}
"""


def bench_config() -> SandboxConfig:
    """The ``bench`` instance: the test instance's settings on ports of its own."""
    return make_test_config(
        "bench",
        ami_secret="bench-secret",
        ami_port=35038,
        sip_port=35060,
        agi_port=34573,
        rtp_start=36000,
        rtp_end=36999,
        agents=BENCH_AGENTS,
    )


@dataclass
class RingWatch:
    """AMI events of one agent's leg, time-stamped (perf_counter) as the bus delivers them."""

    endpoint: str
    dial_begin: float | None = None
    ringing: float | None = None
    caller_channel: str | None = None
    agent_channel: str | None = None
    joined: dict[str, int] = field(default_factory=dict)  # app_queue: QueueCallerJoin per queue

    def reset(self) -> None:
        self.dial_begin = self.ringing = None
        self.caller_channel = self.agent_channel = None

    def on_event(self, event: Event) -> None:
        now = time.perf_counter()
        prefix = f"PJSIP/{self.endpoint}-"
        name = event.name
        if name == "QueueCallerJoin":
            queue = event.get("Queue") or ""
            self.joined[queue] = self.joined.get(queue, 0) + 1
        elif (
            name == "DialBegin"
            and self.dial_begin is None
            and (event.get("DestChannel") or "").startswith(prefix)
        ):
            self.dial_begin = now
            self.caller_channel = event.get("Channel")
            self.agent_channel = event.get("DestChannel")
        elif self.ringing is None and (
            (
                name == "Newstate"
                and (event.get("Channel") or "").startswith(prefix)
                and event.get("ChannelState") == "5"
            )
            or (
                name == "DialState"
                and (event.get("DestChannel") or "").startswith(prefix)
                and event.get("DialStatus") == "RINGING"
            )
        ):
            self.ringing = now


@dataclass(frozen=True)
class Sample:
    # ready -> DialBegin. Dial() publishes it before ast_call() sends the INVITE (apps/app_dial.c),
    # app_queue only after ast_call() returned (ring_entry() in apps/app_queue.c), so on that
    # side it often follows the ringing.
    to_dial: float
    to_ring: float  # ready -> the phone's 180 is known to Asterisk


@dataclass
class Bench:
    pbx: PbxHandle
    server: Server
    watch: RingWatch
    log_dir: Path
    load: int
    queued: dict[str, int] = field(default_factory=dict)  # ACD: CallQueued per queue

    def caller(self, dnis: str, hold_s: float) -> SippProcess:
        return start_caller(
            self.pbx.sip_port,
            dnis,
            first_key_ms=1,
            hold_ms=int(hold_s * 1000),
            timeout=hold_s + 30,
            log_dir=self.log_dir,
        )

    async def hang_up(self, *channels: str | None) -> None:
        for channel in channels:
            if channel:
                # Already gone (the other leg's hangup took it along) is fine.
                with contextlib.suppress(CtiError):
                    await self.server.ami.action("Hangup", {"Channel": channel})

    async def channels(self) -> list[str]:
        result = await self.server.ami.action("CoreShowChannels")
        return [item.get("Channel") or "" for item in result.events]

    async def settled(self, caller_channel: str | None, within: float = 15) -> None:
        """Until neither the caller nor any leg of the agent's phone is left."""
        deadline = time.monotonic() + within
        prefix = f"PJSIP/{AGENT}-"
        while True:
            names = await self.channels()
            if not any(n.startswith(prefix) or n == caller_channel for n in names):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"channels left after {within} s: {names}")
            await asyncio.sleep(0.05)


async def one_run(
    bench: Bench, join: Callable[[], Awaitable[None]], go: Callable[[], object]
) -> Sample:
    """One caller waits, the agent becomes available (``go``), the phone rings, hang up."""
    watch = bench.watch
    watch.reset()
    caller = bench.caller("8101", hold_s=60)
    try:
        await join()
        await asyncio.sleep(random.uniform(1.0, 2.0))
        start = time.perf_counter()
        result = go()
        if asyncio.iscoroutine(result):
            await result
        await eventually("the agent's phone to ring", lambda: watch.ringing is not None, 10, 0.005)
        assert watch.ringing is not None
        # DialBegin travels on the caller's channel topic, Newstate on the agent leg's: the AMI
        # may deliver them in either order (stasis keeps order per topic only).
        await eventually("DialBegin", lambda: watch.dial_begin is not None, 5, 0.005)
        assert watch.dial_begin is not None
        dial = watch.dial_begin - start
        sample = Sample(dial, watch.ringing - start)
        await bench.hang_up(watch.caller_channel, watch.agent_channel)
        await bench.settled(watch.caller_channel)
    finally:
        # Off the event loop: the in-process server's AMI reader must not stall meanwhile.
        await asyncio.to_thread(caller.stop, timeout=5)
    return sample


async def run_acd(bench: Bench, runs: int) -> list[Sample]:
    acd = bench.server.acd
    assert acd is not None
    service = acd.service

    def status() -> AgentStatus:
        return service.agents[AGENT].status

    async def rest() -> None:
        """Back to not ready whatever the last run left (ready after the abandon, wrap-up)."""
        await eventually(
            "the agent to leave the offer",
            lambda: status() in (AgentStatus.READY, AgentStatus.NOT_READY, AgentStatus.WRAP_UP),
            15,
        )
        if status() is AgentStatus.WRAP_UP:
            service.end_wrap_up(AGENT)
        if status() is AgentStatus.READY:
            service.not_ready(AGENT, "break")

    for agent in (AGENT, IDLE_AGENT):
        service.login(agent)
        if service.agents[agent].status is not AgentStatus.NOT_READY:
            service.not_ready(agent, "break")
    await start_load(bench, "support", lambda: bench.queued.get("support", 0))
    samples = []
    for _ in range(runs):
        before = bench.queued.get("sales", 0)

        async def join(before: int = before) -> None:
            await eventually(
                "the caller in the ACD queue", lambda: bench.queued.get("sales", 0) > before, 20
            )

        samples.append(await one_run(bench, join, lambda: service.ready(AGENT)))
        await rest()
    return samples


async def run_app_queue(bench: Bench, runs: int) -> list[Sample]:
    ami = bench.server.ami

    async def pause(interface: str, paused: bool, queue: str | None = None) -> None:
        headers = {"Interface": interface, "Paused": "true" if paused else "false"}
        if queue is not None:
            headers["Queue"] = queue
        await ami.action("QueuePause", headers)

    await pause(f"PJSIP/{IDLE_AGENT}", True)  # every queue
    await pause(f"PJSIP/{AGENT}", True, "support")
    await pause(f"PJSIP/{AGENT}", True, "sales")
    await start_load(bench, "support", lambda: bench.watch.joined.get("support", 0))
    samples = []
    for _ in range(runs):
        before = bench.watch.joined.get("sales", 0)

        async def join(before: int = before) -> None:
            await eventually(
                "the caller in app_queue", lambda: bench.watch.joined.get("sales", 0) > before, 20
            )

        samples.append(await one_run(bench, join, lambda: pause(f"PJSIP/{AGENT}", False, "sales")))
        await pause(f"PJSIP/{AGENT}", True, "sales")
    return samples


async def start_load(bench: Bench, queue: str, count: Callable[[], int]) -> None:
    for _ in range(bench.load):
        bench.caller("8102", hold_s=1800)
        await asyncio.sleep(0.1)
    await eventually(f"{bench.load} callers waiting in {queue}", lambda: count() >= bench.load, 60)


@contextlib.asynccontextmanager
async def bench_server(pbx: PbxHandle, side: Side, folder: Path, load: int) -> AsyncIterator[Bench]:
    pbx.hangup_all()
    acd = folder / "acd.yaml"
    acd.write_text(textwrap.dedent(ACD_YAML).lstrip(), encoding="utf-8")
    flows = folder / "flows.yaml"
    flows.write_text(textwrap.dedent(FLOWS_YAML).lstrip(), encoding="utf-8")
    extra = (
        ("acd.enabled=true", f"acd.config={acd}", f"acd.state_dir={folder / 'state'}")
        if side == "acd"
        else ()
    )
    server = Server(with_ivr_flows(real_server_settings(pbx, *extra), flows))
    watch = RingWatch(AGENT)
    log_dir = folder / "sipp"
    log_dir.mkdir(exist_ok=True)
    bench = Bench(pbx, server, watch, log_dir, load)

    def on_queued(event: CallQueued) -> None:
        bench.queued[event.queue] = bench.queued.get(event.queue, 0) + 1

    unsubscribe = [server.pbx_feed.subscribe(Event, watch.on_event)]
    unsubscribe.append(server.bus.subscribe(CallQueued, on_queued))
    phones = [
        start_phone(pbx.phone_port(a.endpoint), ring_ms=60_000, talk_ms=1000, log_dir=log_dir)
        for a in BENCH_AGENTS
    ]
    try:
        async with server:
            await server.ami.wait_connected(15)
            yield bench
    finally:
        for stop in unsubscribe:
            stop()
        pbx.hangup_all()
        for phone in phones:
            phone.stop()


def describe(samples: list[Sample], pick: Callable[[Sample], float]) -> tuple[float, float, float]:
    """Median, p90, p99 in ms (p99 of a few dozen runs is about their maximum)."""
    values = sorted(pick(s) * 1000 for s in samples)
    if len(values) < 2:
        return values[0], values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.median(values), cuts[89], cuts[98]


async def main_async(args: argparse.Namespace) -> None:
    config = bench_config()
    sides: list[Side] = ["acd", "app_queue"] if args.side == "both" else [args.side]
    loads = [0, args.load] if args.load else [0]
    results: dict[tuple[Side, int], list[Sample]] = {}
    with exclusive_instance(config), tempfile.TemporaryDirectory(prefix="bench-ring-") as tmp:
        pbx = await asyncio.to_thread(start_test_pbx, config=config)
        try:
            for load in loads:
                for side in sides:
                    folder = Path(tmp) / f"{side}-{load}"
                    folder.mkdir()
                    async with bench_server(pbx, side, folder, load) as bench:
                        run = run_acd if side == "acd" else run_app_queue
                        results[side, load] = await run(bench, args.runs)
                    report(side, load, results[side, load])
        finally:
            await asyncio.to_thread(pbx.sandbox.down)
    print(
        f"\n{platform.python_implementation()} {platform.python_version()}, {args.runs} runs each"
    )
    for load in loads:
        if len(sides) == 2:
            ours = describe(results["acd", load], _ring)
            theirs = describe(results["app_queue", load], _ring)
            print(
                f"load {load}: app_queue / ACD ready->ring: median {theirs[0] / ours[0]:.0f}x, "
                f"p90 {theirs[1] / ours[1]:.0f}x, p99 {theirs[2] / ours[2]:.0f}x"
            )


def report(side: Side, load: int, samples: list[Sample]) -> None:
    for label, pick in (("ready->DialBegin", _dial), ("ready->ringing", _ring)):
        median, p90, p99 = describe(samples, pick)
        print(
            f"{side:9s} load {load:2d}  {label:16s} median {median:7.1f} ms  "
            f"p90 {p90:7.1f} ms  p99 {p99:7.1f} ms  (n={len(samples)})",
            flush=True,
        )


def _dial(sample: Sample) -> float:
    return sample.to_dial


def _ring(sample: Sample) -> float:
    return sample.to_ring


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--load", type=int, default=20, help="callers waiting elsewhere (0: none)")
    parser.add_argument("--side", choices=("both", "acd", "app_queue"), default="both")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
