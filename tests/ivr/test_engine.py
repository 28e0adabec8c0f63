"""The flow engine against the fake caller and fake services (tests/support/fake_call.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pytest
from support.fake_call import (
    HANGUP,
    FakeCall,
    FakeCallbacks,
    FakeClock,
    FakeCustomers,
    FakePrompts,
    FakeQueues,
    Key,
    Late,
)

from cti.errors import AgiError, ConfigError, CtiError
from ivr.engine import MAX_ERRORS, FlowEngine, dial_target
from ivr.model import (
    Branch,
    Calendar,
    Callback,
    Case,
    Compare,
    Flow,
    Goto,
    Hangup,
    Input,
    IvrConfig,
    Lookup,
    Menu,
    Node,
    Open,
    Play,
    Prompt,
    Prompts,
    Queue,
    Return,
    Route,
    Say,
    Subflow,
    Transfer,
    Voicemail,
)
from ivr.path import MASK, CallerPath, IvrFinished, IvrStarted, IvrStepped
from ivr.ports import CallInfo, QueueFigures, QueueOutcome

CALL = CallInfo(ani="5551234", dnis="8000", channel="PJSIP/trunk-00000001", uniqueid="1.1")


def sounds(*names: str) -> Prompts:
    return tuple(Prompt(sound=n) for n in names)


def tts(text: str) -> Prompts:
    return (Prompt(tts=text),)


def flow(name: str, *nodes: Node, on_error: str | None = None) -> Flow:
    return Flow(name=name, start=nodes[0].id, nodes={n.id: n for n in nodes}, on_error=on_error)


def config(*flows: Flow, routes: tuple[Route, ...] = (), **calendars: Calendar) -> IvrConfig:
    return IvrConfig(
        flows={f.name: f for f in flows},
        routes=routes,
        default_flow=flows[0].name,
        calendars=calendars,
        version="v1",
    )


def bye(node_id: str = "bye") -> Hangup:
    return Hangup(id=node_id, prompts=sounds("goodbye"))


MENU = Menu(
    id="menu",
    prompts=sounds("menu-prompt"),
    options={"1": "sales", "2": "support"},
    timeout=5.0,
    no_input=sounds("please-try-again"),
    invalid=sounds("option-is-invalid"),
    retries=3,
    repeat="*",
    on_exceeded="operator",
)
ACCOUNT = Input(
    id="account",
    prompts=tts("Enter your account number"),
    variable="account",
    next="done",
    min_length=4,
    max_length=6,
    terminator="#",
    timeout=5.0,
    pattern="^[0-9]+$",
    retries=3,
    no_input=sounds("please-try-again"),
    invalid=sounds("invalid-number"),
    on_exceeded="operator",
)


def menu(node_id: str = "menu", **changes: Any) -> Menu:
    return replace(MENU, id=node_id, **changes)


def account_input(node_id: str = "account", **changes: Any) -> Input:
    return replace(ACCOUNT, id=node_id, **changes)


MENU_EXITS: tuple[Node, ...] = (
    Hangup(id="sales", prompts=sounds("sales")),
    Hangup(id="support", prompts=sounds("support")),
    Hangup(id="operator", prompts=sounds("operator")),
)


@dataclass
class Rig:
    clock: FakeClock = field(default_factory=FakeClock)
    prompts: FakePrompts = field(default_factory=FakePrompts)
    customers: FakeCustomers = field(default_factory=FakeCustomers)
    queues: FakeQueues = field(default_factory=FakeQueues)
    callbacks: FakeCallbacks = field(default_factory=FakeCallbacks)
    events: list[object] = field(default_factory=list)

    def engine(self, cfg: IvrConfig, max_steps: int = 500) -> FlowEngine:
        return FlowEngine(
            cfg,
            prompts=self.prompts,
            customers=self.customers,
            queues=self.queues,
            callbacks=self.callbacks,
            clock=self.clock,
            publish=self.events.append,
            max_steps=max_steps,
        )

    def call(
        self,
        keys: tuple[Key, ...] = (),
        *,
        variables: Mapping[str, str] | None = None,
        missing: Iterable[str] = (),
        hangup_after: int | None = None,
    ) -> FakeCall:
        return FakeCall(
            keys,
            variables=variables,
            missing=missing,
            hangup_after=hangup_after,
            clock=self.clock,
        )

    async def run(
        self, cfg: IvrConfig, fake: FakeCall, info: CallInfo = CALL, name: str | None = None
    ) -> CallerPath:
        return await self.engine(cfg).run(fake, info, name)


@pytest.fixture
def rig() -> Rig:
    return Rig()


def results(path: CallerPath) -> list[tuple[str, str]]:
    return [(s.node, s.result) for s in path.steps]


def pressed(keys: tuple[Key, ...]) -> str:
    return "".join(k.key if isinstance(k, Late) else k for k in keys if isinstance(k, str | Late))


# -- routing --------------------------------------------------------------------------------


def test_select_flow_routes_first_match_then_default(rig: Rig) -> None:
    routes = (
        Route(flow="exact", dnis="8000"),
        Route(flow="german", dnis="^81[0-9]{2}$", ani=r"^\+?49"),
        Route(flow="regex", dnis="^81[0-9]{2}$"),
        Route(flow="ani_only", ani="^555"),
    )
    flows = [flow(n, bye()) for n in ("main", "exact", "german", "regex", "ani_only")]
    engine = rig.engine(config(*flows, routes=routes))

    def pick(dnis: str, ani: str) -> str:
        return engine.select_flow(CallInfo(ani=ani, dnis=dnis)).name

    assert pick("8000", "5551234") == "exact"
    assert pick("8100", "+4930111") == "german"
    assert pick("8100", "4930111") == "german"
    assert pick("8100", "3312345") == "regex"
    assert pick("81000", "+4930111") == "main"  # the pattern is anchored at both ends
    assert pick("9000", "5559999") == "ani_only"
    assert pick("9000", "0301234") == "main"
    assert pick("80000", "0301234") == "main"  # exact means exact


def test_a_bad_route_pattern_is_a_config_error(rig: Rig) -> None:
    with pytest.raises(ConfigError) as info:
        rig.engine(
            config(flow("main", bye()), routes=(Route(flow="main", dnis="^8(", origin="f:3"),))
        )
    assert info.value.source == "f:3"
    assert info.value.key == "routes[0]"


async def test_unknown_flow_ends_in_error_without_touching_the_call(rig: Rig) -> None:
    fake = rig.call()
    path = await rig.run(config(flow("main", bye())), fake, name="nope")
    assert path.outcome == "error"
    assert "no flow 'nope'" in path.detail
    assert fake.ops == []
    assert [type(e) for e in rig.events] == [IvrStarted, IvrFinished]


# -- play, events, timings ------------------------------------------------------------------


async def test_play_answers_first_and_publishes_every_step_in_order(rig: Rig) -> None:
    cfg = config(
        flow(
            "main",
            Play(
                id="welcome", prompts=(*sounds("hello-world"), *tts("Hi ${call.ani}")), next="bye"
            ),
            bye(),
        )
    )
    fake = rig.call()
    start = rig.clock()
    path = await rig.run(cfg, fake)

    assert fake.names() == ["answer", "play", "play", "hangup"]
    assert fake.plays[0] == (["hello-world", "tts:Hi 5551234"], "")
    assert path.outcome == "hangup"
    assert [s.node for s in path.steps] == ["welcome", "bye"]
    assert [s.kind for s in path.steps] == ["play", "hangup"]
    # The fake clock moves 1 s per prompt played.
    assert path.steps[0].started_at == start
    assert path.steps[0].duration == 2.0
    assert path.steps[1].started_at == start + 2.0
    assert (path.started_at, path.ended_at) == (start, start + 3.0)
    assert (path.flow, path.version, path.call) == ("main", "v1", CALL)

    assert [type(e) for e in rig.events] == [IvrStarted, IvrStepped, IvrStepped, IvrFinished]
    started, *stepped, finished = rig.events
    assert started == IvrStarted(CALL, "main", "v1", start)
    assert [e.step for e in stepped if isinstance(e, IvrStepped)] == list(path.steps)
    assert finished == IvrFinished(path)


async def test_play_interrupt_key_cuts_the_prompt(rig: Rig) -> None:
    cfg = config(
        flow("main", Play(id="p", prompts=sounds("a", "b"), next="bye", interrupt="#"), bye())
    )
    fake = rig.call(("#",))
    path = await rig.run(cfg, fake)
    assert fake.plays[0] == (["a", "b"], "#")
    assert path.steps[0].keys == "#"
    assert path.steps[0].result == "interrupted"


# -- menu -----------------------------------------------------------------------------------


MENU_CFG = config(flow("main", menu(), *MENU_EXITS))


@pytest.mark.parametrize(
    ("keys", "plays", "waits", "result", "end"),
    [
        # pressed during the prompt: no wait at all
        (("2",), ["menu-prompt"], 0, "option 2", "support"),
        # pressed after the prompt played out
        ((Late("1"),), ["menu-prompt"], 1, "option 1", "sales"),
        # silence, then a key during "please try again": the next attempt, no replay
        ((None, "2"), ["menu-prompt", "please-try-again"], 1, "no_input, option 2", "support"),
        # silence, then a key after the replayed prompt
        ((None, Late("2")), ["menu-prompt", "please-try-again", "menu-prompt"], 2,
         "no_input, option 2", "support"),
        # an invalid key only counts after the prompt (the prompt cannot be cut by it)
        (("9", "1"), ["menu-prompt", "option-is-invalid"], 1, "invalid, option 1", "sales"),
        (("9", Late("1")), ["menu-prompt", "option-is-invalid", "menu-prompt"], 2,
         "invalid, option 1", "sales"),
        # repeat replays the menu and is not a failed attempt
        (("*", "*", "2"), ["menu-prompt"] * 3, 0, "repeat, repeat, option 2", "support"),
        # three failures in all -> on_exceeded, without a retry prompt after the last
        ((None, None, None),
         ["menu-prompt", "please-try-again", "menu-prompt", "please-try-again", "menu-prompt"], 3,
         "no_input, no_input, no_input, exceeded", "operator"),
        ((None, "7", None),
         ["menu-prompt", "please-try-again", "menu-prompt", "option-is-invalid", "menu-prompt"], 3,
         "no_input, invalid, no_input, exceeded", "operator"),
    ],
)  # fmt: skip
async def test_menu_paths(
    rig: Rig, keys: tuple[Key, ...], plays: list[str], waits: int, result: str, end: str
) -> None:
    fake = rig.call(keys)
    path = await rig.run(MENU_CFG, fake)
    assert results(path)[0] == ("menu", result)
    assert path.steps[1].node == end
    assert fake.played()[:-1] == plays  # the last one is the exit's goodbye
    assert fake.names().count("wait_digit") == waits
    assert fake.plays[0][1] == "12*"  # interruptible by the options and the repeat key only
    assert path.steps[0].keys == pressed(keys)
    assert fake.script == type(fake.script)()  # the whole script was used


async def test_menu_retry_prompt_cut_short_by_a_valid_key(rig: Rig) -> None:
    # "9" after the prompt is invalid; "2" cuts "option-is-invalid" short: no replay of the menu.
    fake = rig.call((None, "9", "2"))
    path = await rig.run(MENU_CFG, fake)
    assert results(path)[0] == ("menu", "no_input, invalid, option 2")
    assert fake.played()[:-1] == [
        "menu-prompt",
        "please-try-again",
        "menu-prompt",
        "option-is-invalid",
    ]


async def test_menu_with_a_single_attempt_and_its_timeout(rig: Rig) -> None:
    cfg = config(flow("main", menu(retries=1, timeout=2.5, repeat=None), *MENU_EXITS))
    fake = rig.call((None,))
    path = await rig.run(cfg, fake)
    assert results(path)[0] == ("menu", "no_input, exceeded")
    assert [op.args for op in fake.ops if op.name == "wait_digit"] == [(2.5,)]
    assert fake.plays[0][1] == "12"
    assert path.steps[0].duration == 1.0 + 2.5  # prompt, then the whole silent wait


async def test_menu_repeat_does_not_use_up_attempts(rig: Rig) -> None:
    cfg = config(flow("main", menu(retries=2), *MENU_EXITS))
    path = await rig.run(cfg, rig.call(("*", "*", None, Late("1"))))
    assert results(path)[0] == ("menu", "repeat, repeat, no_input, option 1")


# -- input ----------------------------------------------------------------------------------


INPUT_CFG = config(
    flow(
        "main",
        account_input(),
        Say(id="done", value="${var.account}", say_as="digits", next="bye"),
        bye(),
        Hangup(id="operator"),
    )
)


@pytest.mark.parametrize(
    ("keys", "value", "result", "recorded"),
    [
        # the terminator ends the input and is not part of the value
        (tuple("1234#"), "1234", "accepted", "1234#"),
        # max_length ends it: the 7th key is left for whatever comes next
        (tuple("1234567"), "123456", "accepted", "123456"),
        # silence ends it, and what was entered is long enough
        ((*"1234", None), "1234", "accepted", "1234"),
        # too short, then again ("5" cuts the "invalid" prompt short and is the first digit)
        (tuple("12#5678#"), "5678", "invalid, accepted", "12#5678#"),
        # the terminator alone is no input
        (tuple("#9876#"), "9876", "no_input, accepted", "#9876#"),
        ((None, *"1111#"), "1111", "no_input, accepted", "1111#"),
        # the pattern refuses "*"
        (tuple("12*4#4321#"), "4321", "invalid, accepted", "12*4#4321#"),
    ],
)
async def test_input_paths(
    rig: Rig, keys: tuple[Key, ...], value: str, result: str, recorded: str
) -> None:
    fake = rig.call(keys)
    path = await rig.run(INPUT_CFG, fake)
    assert results(path)[0] == ("account", result)
    assert path.variables == {"account": value}
    assert fake.said() == [(value, "digits")]
    assert path.steps[0].keys == recorded


async def test_input_first_key_cuts_the_prompt_and_counts(rig: Rig) -> None:
    fake = rig.call(("5", "5", "5", "5", "#"))
    await rig.run(INPUT_CFG, fake)
    assert fake.plays[0] == (["tts:Enter your account number"], "0123456789*#")
    assert fake.names()[:3] == ["answer", "play", "wait_digit"]
    assert fake.said() == [("5555", "digits")]


async def test_input_retry_prompts_and_exceeded(rig: Rig) -> None:
    fake = rig.call((None, "1", "#", None))
    path = await rig.run(INPUT_CFG, fake)
    assert results(path)[0] == ("account", "no_input, invalid, no_input, exceeded")
    assert path.steps[1].node == "operator"
    assert path.variables == {}
    # "1" cut "please-try-again" short, so the prompt was not replayed before it
    assert fake.played() == [
        "tts:Enter your account number",
        "please-try-again",
        "invalid-number",
        "tts:Enter your account number",
    ]


SECRET = "908172"


async def test_sensitive_input_never_leaves_the_live_scope(rig: Rig) -> None:
    """The secret is used (lookup, TTS, queue data rendering) but appears nowhere in the path,
    the events, the screen-pop data or the callback request."""
    rig.customers = FakeCustomers([{"pin": SECRET, "name": "Ann", "note": f"pin is {SECRET}"}])
    rig.queues = FakeQueues(outcome=QueueOutcome("unavailable"))
    cfg = config(
        flow(
            "main",
            account_input(
                "pin", variable="pin", sensitive=True, next="check", min_length=6, max_length=10
            ),
            Lookup(id="check", by="var.pin", field="pin", next="echo", not_found="bye"),
            Play(id="echo", prompts=tts("You entered ${var.pin}"), next="q"),
            Queue(id="q", queue="support", data={"pin": "${var.pin}"}, on_failure="cb"),
            Callback(id="cb", number="${call.ani}", next="fail"),
            Say(id="fail", value="${customer.missing}", say_as="number", next="bye"),
            bye(),
            Hangup(id="operator"),
            on_error="bye",
        )
    )
    # a wrong first attempt (too short) is masked as well
    fake = rig.call(("1", "2", "#", *SECRET, "#"))
    path = await rig.run(cfg, fake)

    # it was used for real
    assert rig.customers.lookups == [("pin", SECRET)]
    assert f"tts:You entered {SECRET}" in fake.played()
    # and recorded masked
    assert path.steps[0].keys == MASK * 10
    assert path.variables == {"pin": MASK * 6}
    assert path.customer is not None
    assert path.customer["note"] == "pin is " + MASK * 6
    assert path.customer["pin"] == MASK * 6
    request = rig.queues.requests[0]
    assert request.data["pin"] == MASK * 6
    assert request.data["variables"] == {"pin": MASK * 6}
    assert [s.node for s in path.steps] == ["pin", "check", "echo", "q", "cb", "fail", "bye"]
    for record in (path, rig.events, rig.queues.requests, rig.callbacks.requests):
        assert SECRET not in repr(record)
    assert path.outcome == "callback"


# -- lookup ---------------------------------------------------------------------------------


LOOKUP_FLOW = (
    Lookup(id="find", by="ani", next="hello", not_found="stranger", timeout=0.05, on_error="sorry"),
    Play(id="hello", prompts=tts("Hello ${customer.name}"), next="bye"),
    Play(id="stranger", prompts=sounds("hello"), next="bye"),
    Play(id="sorry", prompts=sounds("sorry"), next="bye"),
    bye(),
)


async def test_lookup_by_ani_found_makes_the_record_available(rig: Rig) -> None:
    rig.customers = FakeCustomers([{"phone": "5551234", "name": "Ann", "tier": "gold"}])
    fake = rig.call()
    path = await rig.run(config(flow("main", *LOOKUP_FLOW)), fake)
    assert rig.customers.lookups == [("phone", "5551234")]
    assert results(path)[:2] == [("find", "found"), ("hello", "")]
    assert "tts:Hello Ann" in fake.played()
    assert path.customer == {"phone": "5551234", "name": "Ann", "tier": "gold"}


async def test_lookup_by_variable_and_field(rig: Rig) -> None:
    rig.customers = FakeCustomers([{"account": "4444", "name": "Bo"}])
    cfg = config(
        flow(
            "main",
            account_input(next="find"),
            Lookup(id="find", by="var.account", field="account", next="hello", not_found="bye"),
            *LOOKUP_FLOW[1:],
            Hangup(id="operator"),
        )
    )
    path = await rig.run(cfg, rig.call(("4", "4", "4", "4", "#")))
    assert rig.customers.lookups == [("account", "4444")]
    assert results(path)[1] == ("find", "found")
    assert path.customer == {"account": "4444", "name": "Bo"}


async def test_lookup_not_found(rig: Rig) -> None:
    rig.customers = FakeCustomers([{"phone": "999"}])
    path = await rig.run(config(flow("main", *LOOKUP_FLOW)), rig.call())
    assert results(path)[:2] == [("find", "not_found"), ("stranger", "")]
    assert path.customer is None


async def test_lookup_without_a_value_is_not_found_without_asking(rig: Rig) -> None:
    path = await rig.run(config(flow("main", *LOOKUP_FLOW)), rig.call(), CallInfo(ani="", dnis="1"))
    assert results(path)[0] == ("find", "not_found (no ani)")
    assert rig.customers.lookups == []


async def test_lookup_timeout_takes_its_on_error(rig: Rig) -> None:
    rig.customers = FakeCustomers(hang=True)
    fake = rig.call()
    path = await rig.run(config(flow("main", *LOOKUP_FLOW)), fake)
    assert results(path)[:2] == [
        ("find", "error: CtiError: customer lookup timed out after 0.05 s"),
        ("sorry", ""),
    ]
    assert path.outcome == "hangup"


async def test_lookup_error_without_exits_ends_in_error(rig: Rig) -> None:
    rig.customers = FakeCustomers(error=ConnectionError("CRM down"))
    cfg = config(flow("main", Lookup(id="find", by="ani", next="bye", not_found="bye"), bye()))
    fake = rig.call()
    path = await rig.run(cfg, fake)
    assert path.outcome == "error"
    assert path.detail == "ConnectionError: CRM down"
    assert fake.names() == ["answer"]  # the adapter decides about the fallback


async def test_lookup_error_takes_the_flows_on_error(rig: Rig) -> None:
    rig.customers = FakeCustomers(error=CtiError("CRM down"))
    cfg = config(
        flow(
            "main", Lookup(id="find", by="ani", next="bye", not_found="bye"), bye(), on_error="bye"
        )
    )
    path = await rig.run(cfg, rig.call())
    assert results(path) == [("find", "error: CtiError: CRM down"), ("bye", "")]
    assert path.outcome == "hangup"


# -- branch ---------------------------------------------------------------------------------

OFFICE = Calendar(
    name="office",
    timezone="Europe/Berlin",
    weekly={d: ((dt.time(9, 0), dt.time(17, 0)),) for d in range(5)},
)
WEDNESDAY_11H = dt.datetime(2026, 1, 14, 10, 0, tzinfo=dt.UTC).timestamp()


def branch_cfg() -> IvrConfig:
    cases = (
        Case(Compare("var.account", "eq", "1111"), "by_var"),
        Case(Compare("customer.tier", "in", ["gold", "platinum"]), "vip"),
        Case(Compare("queue.support.agents_available", "gt", 0), "agents"),
        Case(Open("office"), "open"),
    )
    ends = [Hangup(id=n) for n in ("by_var", "vip", "agents", "open", "closed", "operator")]
    return config(
        flow(
            "main",
            Lookup(id="find", by="ani", next="input", not_found="input"),
            account_input("input", next="route", min_length=1),
            Branch(id="route", cases=cases, otherwise="closed"),
            *ends,
        ),
        office=OFFICE,
    )


@pytest.mark.parametrize(
    ("keys", "customers", "agents", "at", "expected"),
    [
        (
            ("1", "1", "1", "1", "#"),
            [{"phone": "5551234", "tier": "gold"}],
            1,
            WEDNESDAY_11H,
            "by_var",
        ),
        (("2", "#"), [{"phone": "5551234", "tier": "gold"}], 1, WEDNESDAY_11H, "vip"),
        (("2", "#"), [{"phone": "5551234", "tier": "silver"}], 1, WEDNESDAY_11H, "agents"),
        (("2", "#"), [], 0, WEDNESDAY_11H, "open"),
        (("2", "#"), [], 0, WEDNESDAY_11H + 8 * 3600, "closed"),
    ],
)
async def test_branch_on_variables_customer_queue_figures_and_calendar(
    keys: tuple[Key, ...],
    customers: list[Mapping[str, object]],
    agents: int,
    at: float,
    expected: str,
) -> None:
    rig = Rig(clock=FakeClock(at), customers=FakeCustomers(customers))
    rig.queues.live["support"] = QueueFigures(agents_available=agents, estimated_wait=None)
    path = await rig.run(branch_cfg(), rig.call(keys))
    assert path.steps[-1].node == expected
    number = {"by_var": 1, "vip": 2, "agents": 3, "open": 4}.get(expected)
    assert path.steps[2].result == (f"case {number}" if number else "otherwise")


async def test_branch_on_an_unknown_calendar_takes_the_error_path(rig: Rig) -> None:
    cfg = config(
        flow(
            "main",
            Branch(id="b", cases=(Case(Open("nowhere"), "bye"),), otherwise="bye"),
            bye(),
            Hangup(id="sorry"),
            on_error="sorry",
        )
    )
    path = await rig.run(cfg, rig.call())
    assert results(path) == [
        ("b", "error: ConfigError: open: unknown calendar 'nowhere'"),
        ("sorry", ""),
    ]


# -- say ------------------------------------------------------------------------------------


async def test_say_with_prompts_around(rig: Rig) -> None:
    rig.customers = FakeCustomers([{"phone": "5551234", "balance": 12.5}])
    cfg = config(
        flow(
            "main",
            Lookup(id="find", by="ani", next="say", not_found="bye"),
            Say(
                id="say",
                value="${customer.balance}",
                say_as="amount",
                next="bye",
                prompts_before=tts("Your balance is"),
                prompts_after=sounds("thank-you"),
            ),
            bye(),
        )
    )
    fake = rig.call()
    await rig.run(cfg, fake)
    assert fake.names() == ["answer", "play", "say", "play", "play", "hangup"]
    assert fake.said() == [("12.5", "amount")]
    assert fake.played() == ["tts:Your balance is", "thank-you", "goodbye"]


async def test_say_of_a_missing_value_is_an_error_and_noted(rig: Rig) -> None:
    cfg = config(
        flow(
            "main",
            Say(id="say", value="${customer.balance}", say_as="amount", next="bye"),
            bye(),
            Hangup(id="sorry"),
            on_error="sorry",
        )
    )
    fake = rig.call()
    path = await rig.run(cfg, fake)
    assert results(path) == [
        ("say", "missing ${customer.balance}, error: CtiError: nothing to say: "
                "'${customer.balance}' is empty"),
        ("sorry", ""),
    ]  # fmt: skip
    assert fake.said() == []


async def test_missing_refs_in_tts_are_noted_in_the_step(rig: Rig) -> None:
    cfg = config(
        flow("main", Play(id="p", prompts=tts("Hi ${customer.name}${var.x}"), next="bye"), bye())
    )
    fake = rig.call()
    path = await rig.run(cfg, fake)
    assert fake.played()[0] == "tts:Hi "
    assert path.steps[0].result == "missing ${customer.name}, missing ${var.x}"


# -- queue ----------------------------------------------------------------------------------


def queue_cfg(on_failure: str | None = "vm") -> IvrConfig:
    return config(
        flow(
            "main",
            Lookup(id="find", by="ani", next="menu", not_found="menu"),
            menu(options={"2": "account"}),
            account_input(next="q"),
            Queue(
                id="q",
                queue="support",
                skills={"english": 3},
                priority=5,
                data={"account": "${var.account}", "reason": "support", "nodes": "mine"},
                on_failure=on_failure,
            ),
            Voicemail(id="vm", mailbox="100@default"),
            Hangup(id="operator"),
        )
    )


async def test_queue_request_carries_the_screen_pop(rig: Rig) -> None:
    rig.customers = FakeCustomers([{"phone": "5551234", "tier": "gold"}])
    fake = rig.call(("2", "1", "2", "3", "4", "#"))
    path = await rig.run(queue_cfg(), fake)
    assert path.outcome == "queued"
    assert path.detail == "support: answered"
    (request,) = rig.queues.requests
    assert request.call == CALL
    assert (request.queue, dict(request.skills), request.priority) == ("support", {"english": 3}, 5)
    assert request.data == {
        "variables": {"account": "1234"},
        "customer": {"phone": "5551234", "tier": "gold"},
        "keys": "21234#",
        "nodes": "mine",  # the node's own data wins over the standard keys
        "account": "1234",
        "reason": "support",
    }
    assert path.steps[-1].result == "answered"


async def test_queue_request_lists_the_nodes_visited(rig: Rig) -> None:
    cfg = config(
        flow(
            "main", Goto(id="a", next="q"), Queue(id="q", queue="sales", data={"x": "${call.dnis}"})
        )
    )
    await rig.run(cfg, rig.call())
    (request,) = rig.queues.requests
    assert request.data["nodes"] == ["a", "q"]
    assert request.data["x"] == "8000"
    assert request.data["customer"] is None


@pytest.mark.parametrize(
    ("status", "on_failure", "outcome", "last"),
    [
        ("abandoned", "vm", "queued", "q"),
        ("unavailable", "vm", "voicemail", "vm"),
        ("timeout", "vm", "voicemail", "vm"),
        ("timeout", None, "queued", "q"),
        ("unavailable", None, "queued", "q"),
    ],
)
async def test_queue_outcomes(
    rig: Rig,
    status: Literal["answered", "unavailable", "timeout", "abandoned"],
    on_failure: str | None,
    outcome: str,
    last: str,
) -> None:
    rig.queues.outcome = QueueOutcome(status, "why")
    fake = rig.call(("2", "1", "2", "3", "4", "#"), variables={"VMSTATUS": "SUCCESS"})
    path = await rig.run(queue_cfg(on_failure), fake)
    assert path.outcome == outcome
    assert path.steps[-1].node == last
    if outcome == "queued":
        assert path.detail == f"support: {status} (why)"


async def test_queue_gateway_failure_takes_on_failure(rig: Rig) -> None:
    rig.queues.error = CtiError("ACD unreachable")
    path = await rig.run(queue_cfg(), rig.call(("2", "1", "2", "3", "4", "#")))
    assert results(path)[-2:] == [("q", "error: CtiError: ACD unreachable"), ("vm", "")]


# -- transfer and voicemail -----------------------------------------------------------------


def transfer_cfg(on_failure: str | None = "vm", to: str = "1001") -> IvrConfig:
    return config(
        flow(
            "main",
            Transfer(id="op", to=to, timeout=20.5, on_failure=on_failure),
            Voicemail(id="vm", mailbox="100@default", on_failure="bye"),
            bye(),
            Play(id="sorry", prompts=sounds("sorry"), next="bye"),
            on_error="sorry",
        )
    )


async def test_transfer_answered(rig: Rig) -> None:
    fake = rig.call(variables={"DIALSTATUS": "ANSWER"})
    path = await rig.run(transfer_cfg(), fake)
    assert fake.execs() == [("Dial", "Local/1001@from-agents", "21")]
    assert path.outcome == "transferred"
    assert path.detail == "1001 (Local/1001@from-agents)"
    assert results(path) == [("op", "ANSWER")]


async def test_transfer_target_from_a_template(rig: Rig) -> None:
    fake = rig.call(variables={"DIALSTATUS": "ANSWER"})
    await rig.run(transfer_cfg(to="9${call.ani}"), fake)
    assert fake.execs()[0][1] == "Local/95551234@from-agents"


@pytest.mark.parametrize("status", ["BUSY", "NOANSWER", "CHANUNAVAIL", "CONGESTION"])
async def test_transfer_failure_takes_on_failure(rig: Rig, status: str) -> None:
    fake = rig.call(variables={"DIALSTATUS": status, "VMSTATUS": "SUCCESS"})
    path = await rig.run(transfer_cfg(), fake)
    assert results(path) == [("op", status), ("vm", "SUCCESS")]
    assert fake.execs()[1] == ("VoiceMail", "100@default", "u")
    assert path.outcome == "voicemail"
    assert path.detail == "100@default"


async def test_transfer_failure_without_on_failure_takes_the_error_path(rig: Rig) -> None:
    fake = rig.call(variables={"DIALSTATUS": "BUSY"})
    path = await rig.run(transfer_cfg(on_failure=None), fake)
    assert results(path) == [
        ("op", "BUSY, error: CtiError: transfer to 1001 failed: BUSY"),
        ("sorry", ""),
        ("bye", ""),
    ]


async def test_transfer_cancelled_by_the_caller(rig: Rig) -> None:
    fake = rig.call(variables={"DIALSTATUS": "CANCEL"})
    path = await rig.run(transfer_cfg(), fake)
    assert path.outcome == "caller_hangup"
    assert results(path) == [("op", "CANCEL, caller_hangup")]
    assert fake.names() == ["answer", "exec", "get_variable"]


async def test_voicemail_failure_paths(rig: Rig) -> None:
    fake = rig.call(variables={"DIALSTATUS": "BUSY", "VMSTATUS": "FAILED"})
    path = await rig.run(transfer_cfg(), fake)
    assert [s.node for s in path.steps] == ["op", "vm", "bye"]
    cfg = config(flow("main", Voicemail(id="vm", mailbox="1@x"), bye()))
    path = await rig.run(cfg, rig.call(variables={"VMSTATUS": "FAILED"}))
    assert path.outcome == "error"
    assert path.detail == "CtiError: voicemail 1@x failed"


def test_dial_target() -> None:
    assert dial_target("1001") == "Local/1001@from-agents"
    assert dial_target(" +4930123 ", "outbound") == "Local/+4930123@outbound"
    assert dial_target("PJSIP/agent1001") == "PJSIP/agent1001"
    assert dial_target("Local/600@from-agents") == "Local/600@from-agents"
    for bad in ("", "1001&PJSIP/evil", "1001,5,G(x)", "PJSIP/a,30", "10 01"):
        with pytest.raises(CtiError):
            dial_target(bad)


async def test_a_bad_transfer_target_takes_the_error_path(rig: Rig) -> None:
    fake = rig.call(variables={"VMSTATUS": "SUCCESS"})
    path = await rig.run(transfer_cfg(to="${call.channel},G"), fake)
    assert path.steps[0].result.startswith("error: CtiError: transfer target")
    assert [app for app, *_ in fake.execs()] == ["VoiceMail"]  # on_failure, no Dial


# -- callback, hangup -----------------------------------------------------------------------


def callback_cfg(after: Node) -> IvrConfig:
    return config(
        flow(
            "main",
            Callback(
                id="cb",
                number="${call.ani}",
                queue="support",
                prompts=tts("We will call you back"),
                next=after.id,
            ),
            after,
        )
    )


async def test_callback_then_hangup_ends_as_callback(rig: Rig) -> None:
    fake = rig.call()
    path = await rig.run(callback_cfg(bye()), fake)
    (request,) = rig.callbacks.requests
    assert (request.number, request.queue, request.call) == ("5551234", "support", CALL)
    assert request.requested_at == rig.clock() - 2.0  # the confirmation and goodbye followed
    assert request.data["nodes"] == ["cb"]
    assert path.outcome == "callback"
    assert results(path) == [("cb", "requested"), ("bye", "")]
    assert fake.names() == ["answer", "play", "play", "hangup"]


async def test_callback_survives_a_hangup_during_the_confirmation(rig: Rig) -> None:
    path = await rig.run(callback_cfg(bye()), rig.call(hangup_after=1))
    assert len(rig.callbacks.requests) == 1
    assert path.outcome == "callback"
    assert results(path) == [("cb", "requested, caller_hangup")]


async def test_callback_then_transfer_ends_as_transferred(rig: Rig) -> None:
    fake = rig.call(variables={"DIALSTATUS": "ANSWER"})
    path = await rig.run(callback_cfg(Transfer(id="t", to="1001")), fake)
    assert path.outcome == "transferred"


async def test_callback_without_a_number_fails(rig: Rig) -> None:
    path = await rig.run(callback_cfg(bye()), rig.call(), CallInfo(ani="", dnis="8000"))
    assert path.outcome == "error"
    assert rig.callbacks.requests == []


async def test_hangup_node(rig: Rig) -> None:
    fake = rig.call()
    path = await rig.run(config(flow("main", bye())), fake)
    assert fake.names() == ["answer", "play", "hangup"]
    assert (path.outcome, path.detail) == ("hangup", "")
    assert fake.after_hangup == []


# -- goto, subflow, return ------------------------------------------------------------------


def subflow_cfg(inner_on_error: str | None = None) -> IvrConfig:
    main = flow(
        "main",
        Goto(id="start", next="sub"),
        Subflow(id="sub", flow="account_menu", next="after"),
        Play(id="after", prompts=sounds("back-in-main"), next="bye"),
        bye(),
        Play(id="sorry", prompts=sounds("sorry"), next="bye"),
        on_error="sorry",
    )
    inner = flow(
        "account_menu",
        Play(id="intro", prompts=sounds("account-menu"), next="nested"),
        Subflow(id="nested", flow="leaf", next="done"),
        Return(id="done"),
        Hangup(id="oops"),
        on_error=inner_on_error,
    )
    leaf = flow(
        "leaf", Play(id="leaf_play", prompts=sounds("leaf"), next="leaf_ret"), Return(id="leaf_ret")
    )
    return config(main, inner, leaf)


async def test_subflow_and_return(rig: Rig) -> None:
    fake = rig.call()
    path = await rig.run(subflow_cfg(), fake)
    assert [(s.flow, s.node, s.kind) for s in path.steps] == [
        ("main", "start", "goto"),
        ("main", "sub", "subflow"),
        ("account_menu", "intro", "play"),
        ("account_menu", "nested", "subflow"),
        ("leaf", "leaf_play", "play"),
        ("leaf", "leaf_ret", "return"),
        ("account_menu", "done", "return"),
        ("main", "after", "play"),
        ("main", "bye", "hangup"),
    ]
    assert path.steps[1].result == "enter account_menu"
    assert fake.played() == ["account-menu", "leaf", "back-in-main", "goodbye"]
    assert path.outcome == "hangup"


async def test_return_in_a_top_level_flow_hangs_up(rig: Rig) -> None:
    fake = rig.call()
    path = await rig.run(subflow_cfg(), fake, name="leaf")
    assert path.outcome == "hangup"
    assert path.detail == "return from the top-level flow 'leaf'"
    assert fake.names() == ["answer", "play", "hangup"]


async def test_an_error_in_a_subflow_without_on_error_goes_to_the_caller_flows(rig: Rig) -> None:
    fake = rig.call(missing={"leaf"})
    path = await rig.run(subflow_cfg(), fake)
    assert [(s.flow, s.node) for s in path.steps][-3:] == [
        ("leaf", "leaf_play"),
        ("main", "sorry"),
        ("main", "bye"),
    ]
    # the subflow stack was unwound: nothing returns into account_menu later
    assert path.outcome == "hangup"


async def test_an_error_in_a_subflow_with_its_own_on_error_stays_there(rig: Rig) -> None:
    path = await rig.run(subflow_cfg(inner_on_error="oops"), rig.call(missing={"leaf"}))
    assert [(s.flow, s.node) for s in path.steps][-2:] == [
        ("leaf", "leaf_play"),
        ("account_menu", "oops"),
    ]


async def test_a_subflow_to_an_unknown_flow_takes_the_error_path(rig: Rig) -> None:
    cfg = config(
        flow("main", Subflow(id="s", flow="ghost", next="bye"), bye(), Hangup(id="e"), on_error="e")
    )
    path = await rig.run(cfg, rig.call())
    assert results(path) == [("s", "error: ConfigError: flows: no flow 'ghost'"), ("e", "")]


# -- errors, hang-ups, limits ---------------------------------------------------------------


async def test_missing_prompt_takes_the_flows_on_error(rig: Rig) -> None:
    fake = rig.call(missing={"menu-prompt"})
    cfg = config(
        flow(
            "main",
            menu(),
            *MENU_EXITS,
            Play(id="sorry", prompts=sounds("sorry"), next="operator"),
            on_error="sorry",
        )
    )
    path = await rig.run(cfg, fake)
    assert results(path)[0][1].startswith("error: AgiError: STREAM FILE 'menu-prompt'")
    assert [s.node for s in path.steps] == ["menu", "sorry", "operator"]
    assert path.outcome == "hangup"


async def test_an_error_in_the_error_node_ends_in_error(rig: Rig) -> None:
    fake = rig.call(missing={"menu-prompt", "sorry"})
    cfg = config(
        flow(
            "main",
            menu(),
            *MENU_EXITS,
            Play(id="sorry", prompts=sounds("sorry"), next="operator"),
            on_error="sorry",
        )
    )
    path = await rig.run(cfg, fake)
    assert [s.node for s in path.steps] == ["menu", "sorry"]
    assert path.outcome == "error"
    assert "'sorry'" in path.detail
    assert fake.names() == ["answer", "play", "play"]


async def test_a_resolver_failure_is_a_node_error(rig: Rig) -> None:
    rig.prompts = FakePrompts(failing={"Welcome"})
    cfg = config(
        flow("main", Play(id="p", prompts=tts("Welcome"), next="bye"), bye(), on_error="bye")
    )
    path = await rig.run(cfg, rig.call())
    assert results(path) == [("p", "error: CtiError: TTS failed for 'Welcome'"), ("bye", "")]


async def test_errors_are_capped_per_call(rig: Rig) -> None:
    # The apology works but leads back to the broken menu: round and round without a cap.
    cfg = config(
        flow(
            "main",
            menu(),
            *MENU_EXITS,
            Play(id="sorry", prompts=sounds("sorry"), next="menu"),
            on_error="sorry",
        )
    )
    path = await rig.run(cfg, rig.call(missing={"menu-prompt"}))
    assert MAX_ERRORS == 3
    assert [s.node for s in path.steps] == ["menu", "sorry", "menu", "sorry", "menu"]
    assert path.outcome == "error"


async def test_caller_hangup_mid_menu_sends_no_further_commands(rig: Rig) -> None:
    fake = rig.call((None, "9", HANGUP))
    path = await rig.run(MENU_CFG, fake)
    assert path.outcome == "caller_hangup"
    assert path.detail == "caller hung up in main/menu"
    assert results(path) == [("menu", "no_input, invalid, caller_hangup")]
    assert path.steps[0].keys == "9"
    assert fake.after_hangup == []
    assert fake.names()[-1] == "play"  # the retry prompt that met the hang-up
    assert isinstance(rig.events[-1], IvrFinished)


@pytest.mark.parametrize("after", range(1, 6))
async def test_caller_hangup_at_any_operation_ends_cleanly(rig: Rig, after: int) -> None:
    fake = rig.call(("2",), hangup_after=after, variables={"DIALSTATUS": "ANSWER"})
    cfg = config(
        flow(
            "main",
            Play(id="w", prompts=sounds("welcome"), next="m"),
            menu("m", options={"2": "op"}),
            Transfer(id="op", to="1001", on_failure="bye"),
            bye(),
            Hangup(id="operator"),
        )
    )
    path = await rig.run(cfg, fake)
    ops = ["answer", "play", "play", "exec", "get_variable"]
    assert path.outcome == ("caller_hangup" if after < len(ops) else "transferred")
    assert fake.after_hangup == []
    assert fake.names()[:after] == ops[:after]


async def test_hangup_before_answer(rig: Rig) -> None:
    fake = rig.call((HANGUP,))
    path = await rig.run(MENU_CFG, fake)
    assert path.outcome == "caller_hangup"
    assert path.steps == ()
    assert fake.names() == ["answer"]
    assert [type(e) for e in rig.events] == [IvrStarted, IvrFinished]


async def test_answer_failure_is_an_error(rig: Rig) -> None:
    class NoAnswer(FakeCall):
        async def answer(self) -> None:
            raise AgiError("ANSWER failed")

    path = await rig.run(MENU_CFG, NoAnswer())
    assert path.outcome == "error"
    assert path.detail == "answer failed: ANSWER failed"


async def test_step_limit(rig: Rig) -> None:
    cfg = config(flow("main", Goto(id="a", next="b"), Goto(id="b", next="a")))
    path = await rig.engine(cfg, max_steps=7).run(rig.call(), CALL)
    assert path.outcome == "error"
    assert path.detail == "step limit (7 steps)"
    assert len(path.steps) == 7


async def test_cancellation_publishes_the_path_and_propagates(rig: Rig) -> None:
    rig.customers = FakeCustomers(hang=True)
    cfg = config(flow("main", Lookup(id="f", by="ani", next="f", not_found="f", timeout=60)))
    task = asyncio.create_task(rig.run(cfg, rig.call()))
    await rig.customers.asked.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    finished = rig.events[-1]
    assert isinstance(finished, IvrFinished)
    assert (finished.path.outcome, finished.path.detail) == ("error", "cancelled")


async def test_concurrent_calls_do_not_share_state(rig: Rig) -> None:
    engine = rig.engine(INPUT_CFG)
    calls = [FakeCall((*f"{n:04d}", "#")) for n in range(1000, 1010)]
    paths = await asyncio.gather(*(engine.run(c, CALL) for c in calls))
    assert [p.variables["account"] for p in paths] == [f"{n:04d}" for n in range(1000, 1010)]
