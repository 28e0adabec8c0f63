"""Throughput of the IVR flow engine alone: nodes (steps) per second with a fake session.

Each call walks the demo's busiest path: menu -> input (account number) -> lookup -> branch
(customer tier, queue figures, business hours) -> say (balance) -> queue, with TTS prompts
whose text uses templates, every step published on a real ``EventBus`` with one subscriber.
The fake session and services answer at once and record nothing, so what is measured is the
engine: template rendering, condition evaluation, the path record, masking, events.

Run: .venv/bin/python bench/bench_ivr.py   (results: bench/RESULTS.md)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import platform
from collections.abc import Mapping, Sequence

# bench/ is on sys.path when this file is run as a script; cti and ivr come from the venv.
from _timing import median_seconds

from cti.bus import EventBus
from ivr.engine import FlowEngine
from ivr.model import (
    Branch,
    Calendar,
    Case,
    Compare,
    Flow,
    Input,
    IvrConfig,
    Lookup,
    Menu,
    Open,
    Prompt,
    Queue,
    Route,
    Say,
    SayAs,
)
from ivr.path import IvrStepped
from ivr.ports import (
    CallbackRequest,
    CallControl,
    CallInfo,
    QueueFigures,
    QueueOutcome,
    QueueRequest,
)

CALLS = 5_000
STEPS_PER_CALL = 6
KEYS: tuple[str, ...] = ("2", *"12345678", "#")  # option 2, then the account number


def demo_config() -> IvrConfig:
    nodes = (
        Menu(
            id="main_menu",
            prompts=(Prompt(tts="For sales press 1. For your balance press 2."),),
            options={"1": "find", "2": "account"},
            repeat="*",
            no_input=(Prompt(sound="please-try-again"),),
            invalid=(Prompt(sound="pbx-invalid"),),
            on_exceeded="find",
        ),
        Input(
            id="account",
            prompts=(Prompt(tts="Please enter your account number, then the hash key."),),
            variable="account",
            min_length=6,
            max_length=10,
            pattern="^[0-9]{6,10}$",
            sensitive=True,
            next="find",
            on_exceeded="find",
        ),
        Lookup(id="find", by="var.account", field="account", next="route", not_found="route"),
        Branch(
            id="route",
            cases=(
                Case(Compare("customer.tier", "in", ["gold", "platinum"]), "vip"),
                Case(Compare("queue.support.agents_available", "gt", 5), "balance"),
                Case(Open("office"), "balance"),
            ),
            otherwise="balance",
        ),
        Say(
            id="balance",
            value="${customer.balance}",
            say_as="amount",
            prompts_before=(Prompt(tts="Your balance, ${customer.first_name}, is"),),
            next="support",
        ),
        Queue(
            id="support",
            queue="support",
            skills={"support": 1},
            data={"reason": "balance", "tier": "${customer.tier}"},
        ),
        Queue(id="vip", queue="support", priority=10),
    )
    office = Calendar(
        name="office",
        timezone="Europe/Berlin",
        weekly={d: ((dt.time(8, 0), dt.time(18, 0)),) for d in range(5)},
    )
    return IvrConfig(
        flows={"main": Flow(name="main", start="main_menu", nodes={n.id: n for n in nodes})},
        routes=(Route(flow="main", dnis="8000"),),
        default_flow="main",
        calendars={"office": office},
        version="bench",
    )


class BenchCall:
    """The leanest CallControl: presses the scripted keys, everything else succeeds."""

    def __init__(self) -> None:
        self._keys: list[str] = list(reversed(KEYS))

    async def answer(self) -> None:
        return None

    async def play(self, playables: Sequence[str], interrupt: str = "") -> str | None:
        if interrupt and self._keys and self._keys[-1] in interrupt:
            return self._keys.pop()
        return None

    async def wait_digit(self, seconds: float) -> str | None:
        return self._keys.pop() if self._keys else None

    async def say(self, value: str, say_as: SayAs, interrupt: str = "") -> str | None:
        return None

    async def exec(self, app: str, *args: str) -> str:
        return "0"

    async def get_variable(self, name: str) -> str | None:
        return None

    async def set_variable(self, name: str, value: str) -> None:
        return None

    async def hangup(self) -> None:
        return None


class Services:
    def __init__(self) -> None:
        self.record = {"account": "12345678", "tier": "standard", "balance": "12.50"}
        self.record["first_name"] = "Ann"

    async def resolve(self, prompt: Prompt, text: str | None) -> str:
        return prompt.sound or f"tts/{hash(text) & 0xFFFF:x}"

    async def find(self, field: str, value: str) -> Mapping[str, object] | None:
        return self.record if value == self.record.get(field) else None

    async def enqueue(self, request: QueueRequest, control: CallControl) -> QueueOutcome:
        return QueueOutcome("answered")

    def figures(self, queue: str) -> QueueFigures:
        return QueueFigures(agents_available=2, estimated_wait=40.0)

    async def add(self, request: CallbackRequest) -> None:
        return None


def bench_engine(calls: int) -> float:
    services = Services()
    config = demo_config()

    async def walk() -> None:
        bus = EventBus()
        seen: list[int] = [0]

        def count(event: IvrStepped) -> None:
            seen[0] += 1

        bus.subscribe(IvrStepped, count)
        clock = asyncio.get_running_loop().time
        engine = FlowEngine(
            config,
            prompts=services,
            customers=services,
            queues=services,
            callbacks=services,
            clock=lambda: 1_768_384_800.0 + clock(),  # a Wednesday, 11:00 in Berlin
            publish=bus.publish,
        )
        info = CallInfo(ani="5551234", dnis="8000", channel="PJSIP/trunk-1")
        for _ in range(calls):
            path = await engine.run(BenchCall(), info)
            assert path.outcome == "queued", path
        assert seen[0] == calls * STEPS_PER_CALL, seen

    return calls * STEPS_PER_CALL / median_seconds(lambda: asyncio.run(walk()), repeat=5)


def main() -> None:
    print(f"python {platform.python_version()} on {platform.machine()}, {CALLS} calls")
    steps = bench_engine(CALLS)
    print(f"IVR engine: {steps:,.0f} steps/s ({steps / STEPS_PER_CALL:,.0f} calls/s)")


if __name__ == "__main__":
    main()
