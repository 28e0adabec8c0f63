"""Interim services: the in-memory customer directory, the app_queue gateway (with a fake
CallControl, then against the sandbox's app_queue) and the callback list."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from support.pbx import PbxHandle
from support.sipp import SippProcess, start_caller, start_phone

from cti.agi import (
    AgiServer,
    AgiServerConfig,
    AgiSession,
    Handler,
    SessionOutcome,
    SessionSummary,
)
from cti.errors import AgiHangup, ConfigError
from ivr.agi_control import AgiCallControl
from ivr.model import SayAs
from ivr.ports import CallbackRequest, CallInfo, QueueFigures, QueueOutcome, QueueRequest
from ivr.services import (
    AppQueueGateway,
    InMemoryCustomers,
    MemoryCallbacks,
    normalise_phone,
    pop_variables,
)

DEMO_CUSTOMERS = Path(__file__).resolve().parents[2] / "config" / "customers.yaml"
CALL = CallInfo(ani="5551234", dnis="8000", channel="PJSIP/anonymous-00000001")

# -- phone numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "country", "expected"),
    [
        ("+49 (30) 123-45", None, "+493012345"),
        ("0049 30 12345", None, "+493012345"),
        ("030 12345", "49", "+493012345"),
        ("030 12345", None, "03012345"),  # no country code: no guess
        ("5551234", "49", "5551234"),  # local numbers stay local
        ("555.1234", None, "5551234"),
        ("unknown", None, ""),
        ("anonymous", "49", ""),
        ("", None, ""),
        ("+", None, ""),
        ("12+34", None, ""),
    ],
)
def test_phone_normalisation(number: str, country: str | None, expected: str) -> None:
    assert normalise_phone(number, country) == expected


# -- the customer directory -----------------------------------------------------------------

RECORDS: list[Mapping[str, object]] = [
    {"id": "C1", "phone": ["5551234", "+49 30 1234567"], "account": "100200", "tier": "gold"},
    {"id": "C2", "phone": "0049 89 7654321", "account": "100300", "tier": "standard"},
    {"id": "C3", "phone": [], "account": "100400", "tier": "gold", "cases": [{"id": "X"}]},
]


async def test_find_by_phone_in_any_notation() -> None:
    customers = InMemoryCustomers(RECORDS, country_code="49")
    assert len(customers) == 3
    for number, expected in [
        ("5551234", "C1"),
        ("+4930 1234567", "C1"),
        ("030-1234567", "C1"),  # national form, thanks to the country code
        ("+49 89 7654321", "C2"),
        ("089 7654321", "C2"),
    ]:
        record = await customers.find("phone", number)
        assert record is not None, number
        assert record["id"] == expected, number
    assert await customers.find("phone", "5559999") is None
    assert await customers.find("phone", "unknown") is None


async def test_find_by_other_fields() -> None:
    customers = InMemoryCustomers(RECORDS)
    found = await customers.find("account", " 100300 ")
    assert found is not None
    assert found["id"] == "C2"
    first_gold = await customers.find("tier", "gold")  # not unique: the first one wins
    assert first_gold is not None
    assert first_gold["id"] == "C1"
    assert await customers.find("account", "999") is None
    assert await customers.find("no_such_field", "x") is None


async def test_records_handed_out_are_read_only_copies() -> None:
    source = [{"id": "C9", "phone": "5550000", "cases": [{"id": "X"}]}]
    customers = InMemoryCustomers(source)
    source[0]["id"] = "changed later"
    record = await customers.find("phone", "5550000")
    assert record is not None
    assert record["id"] == "C9"
    with pytest.raises(TypeError):
        record["id"] = "C10"  # type: ignore[index]  # a Mapping: the test proves it is frozen
    assert record["cases"] == ({"id": "X"},)
    cases = record["cases"]
    assert isinstance(cases, tuple)
    with pytest.raises(TypeError):
        cases[0]["id"] = "Y"


@pytest.mark.parametrize(
    ("records", "key", "message"),
    [
        (
            [{"id": "A", "phone": "+49 30 1"}, {"id": "B", "phone": "0049301"}],
            "phone",
            r"'0049301' also belongs to an earlier customer \(A\)",
        ),
        (
            [{"id": "A", "account": "1"}, {"id": "B", "account": "1"}],
            "account",
            "also belongs",
        ),
        ([{"id": "A"}, {"id": "A"}], "id", "also belongs"),
    ],
)
def test_ambiguous_records_are_refused(
    records: list[Mapping[str, object]], key: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        InMemoryCustomers(records)
    assert error.value.key == key


def test_a_record_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ConfigError, match="a customer is a mapping"):
        InMemoryCustomers(["C1"])  # type: ignore[list-item]  # the mistake under test


async def test_the_demo_customer_file() -> None:
    customers = InMemoryCustomers.from_yaml(DEMO_CUSTOMERS, country_code="49")
    caller = await customers.find("phone", "5551234")  # the SIPp test callers' number
    assert caller is not None
    assert caller["tier"] == "gold"
    assert caller["open_cases"] == 1
    tiers = set()
    for account in ("100200", "100300", "100400", "100500"):
        record = await customers.find("account", account)
        assert record is not None, account
        tiers.add(record["tier"])
        assert {"name", "balance", "language", "open_cases"} <= set(record), account
    assert tiers == {"standard", "gold", "platinum"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("customers:\n  - id: A\n    phone: 5551234\n", r"customers\.yaml:2: phone: 5551234 must"),
        (
            "customers:\n  - id: A\n    phone: ['1']\n  - id: B\n    account: 0012\n",
            r"customers\.yaml:4: account: 10 must be a quoted string",  # octal!
        ),
        ("customers:\n  - id: A\n    phone: [1\n", r"customers\.yaml:\d+: not valid YAML"),
        ("people: []\n", "expected a top-level 'customers:' list"),
        ("customers:\n  - just a name\n", r"customers\.yaml:2: a customer is a mapping"),
        (
            "customers:\n  - {id: A, phone: '1'}\n  - {id: B, phone: '1'}\n",
            r"customers\.yaml:3: phone: '1' also belongs",
        ),
    ],
)
def test_customer_file_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "customers.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        InMemoryCustomers.from_yaml(path)


def test_a_missing_customer_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        InMemoryCustomers.from_yaml(tmp_path / "nope.yaml")


# -- screen-pop variables -------------------------------------------------------------------


def test_pop_variables_flatten_and_sanitise() -> None:
    data = {
        "account": "100200",
        "customer": {"tier": "gold", "open-cases": 2, "vip": True, "notes": None},
        "path": ["welcome", "main_menu"],
        "comment": "line one\nline two",
        "long": "x" * 300,
    }
    assert pop_variables(data, max_value=256) == {
        "CTI_POP_ACCOUNT": "100200",
        "CTI_POP_CUSTOMER_TIER": "gold",
        "CTI_POP_CUSTOMER_OPEN_CASES": "2",
        "CTI_POP_CUSTOMER_VIP": "true",
        "CTI_POP_CUSTOMER_NOTES": "",
        "CTI_POP_PATH": "welcome,main_menu",
        "CTI_POP_COMMENT": "line one line two",
        "CTI_POP_LONG": "x" * 256,
    }


# -- the queue gateway with a fake call -----------------------------------------------------


class FakeCall:
    """A CallControl that records what it is asked and answers from a variable table;
    ``on_exec`` is how app_queue would leave the channel's variables."""

    def __init__(
        self,
        on_exec: Mapping[str, str] | None = None,
        result: str = "0",
        hang_up_in: str | None = None,
    ) -> None:
        self.variables: dict[str, str] = {}
        self.log: list[tuple[str, ...]] = []
        self.on_exec = dict(on_exec or {})
        self.result = result
        self.hang_up_in = hang_up_in

    async def answer(self) -> None:
        self.log.append(("answer",))

    async def play(self, playables: Sequence[str], interrupt: str = "") -> str | None:
        self.log.append(("play", *playables))
        return None

    async def wait_digit(self, seconds: float) -> str | None:
        return None

    async def say(self, value: str, say_as: SayAs, interrupt: str = "") -> str | None:
        return None

    async def exec(self, app: str, *args: str) -> str:
        self.log.append(("exec", app, *args))
        if self.hang_up_in == "exec":
            raise AgiHangup("EXEC: Asterisk closed the connection before replying")
        self.variables.update(self.on_exec)
        return self.result

    async def get_variable(self, name: str) -> str | None:
        self.log.append(("get", name))
        if self.hang_up_in == "get":
            raise AgiHangup("GET VARIABLE: the connection to Asterisk is closed")
        return self.variables.get(name)

    async def set_variable(self, name: str, value: str) -> None:
        self.log.append(("set", name, value))
        # Asterisk drops leading underscores from the name (they only mark inheritance).
        self.variables[name.lstrip("_")] = value

    async def hangup(self) -> None:
        self.log.append(("hangup",))


def request(queue: str = "support", **data: object) -> QueueRequest:
    return QueueRequest(
        call=CALL, queue=queue, skills={"english": 3, "billing": 1}, priority=5, data=data
    )


async def test_enqueue_sets_pop_data_then_runs_queue() -> None:
    call = FakeCall(on_exec={"MEMBERINTERFACE": "PJSIP/agent1001"})
    outcome = await AppQueueGateway(timeout=120).enqueue(
        request(account="100200", customer={"tier": "gold"}), call
    )
    assert outcome == QueueOutcome("answered", "PJSIP/agent1001")
    assert call.log == [
        ("set", "__CTI_POP_ACCOUNT", "100200"),
        ("set", "__CTI_POP_CUSTOMER_TIER", "gold"),
        ("set", "__CTI_POPS", "ACCOUNT,CUSTOMER_TIER"),
        ("set", "__CTI_SKILLS", "english:3,billing:1"),
        ("set", "QUEUE_PRIO", "5"),
        ("set", "QUEUESTATUS", ""),
        ("set", "MEMBERINTERFACE", ""),
        ("exec", "Queue", "support", "", "", "", "120"),
        ("get", "QUEUESTATUS"),
        ("get", "ABANDONED"),
        ("get", "MEMBERINTERFACE"),
    ]


@pytest.mark.parametrize(
    ("left", "result", "expected"),
    [
        ({"QUEUESTATUS": "JOINEMPTY"}, "0", QueueOutcome("unavailable", "JOINEMPTY")),
        ({"QUEUESTATUS": "JOINUNAVAIL"}, "0", QueueOutcome("unavailable", "JOINUNAVAIL")),
        ({"QUEUESTATUS": "FULL"}, "0", QueueOutcome("unavailable", "FULL")),
        (
            {"QUEUESTATUS": "LEAVEEMPTY", "ABANDONED": "TRUE"},
            "0",
            QueueOutcome("unavailable", "LEAVEEMPTY"),
        ),
        (
            {"QUEUESTATUS": "LEAVEUNAVAIL", "ABANDONED": "TRUE"},
            "0",
            QueueOutcome("unavailable", "LEAVEUNAVAIL"),
        ),
        ({"QUEUESTATUS": "UNKNOWN"}, "0", QueueOutcome("unavailable", "UNKNOWN")),
        (
            {"QUEUESTATUS": "TIMEOUT", "ABANDONED": "TRUE"},
            "0",
            QueueOutcome("timeout", "TIMEOUT"),
        ),
        ({"QUEUESTATUS": "CONTINUE"}, "0", QueueOutcome("answered", "CONTINUE")),
        (
            {"ABANDONED": "TRUE"},
            "-1",
            QueueOutcome("abandoned", "caller hung up in queue (result -1)"),
        ),
        ({}, "-1", QueueOutcome("answered", "answered")),  # talked, then someone hung up
    ],
)
async def test_queue_status_maps_to_an_outcome(
    left: dict[str, str], result: str, expected: QueueOutcome
) -> None:
    call = FakeCall(on_exec=left, result=result)
    assert await AppQueueGateway().enqueue(request(), call) == expected


async def test_a_stale_status_from_an_earlier_queue_is_not_read_again() -> None:
    call = FakeCall()
    call.variables["QUEUESTATUS"] = "TIMEOUT"  # left by a first Queue() in this call
    call.variables["MEMBERINTERFACE"] = "PJSIP/agent1002"
    outcome = await AppQueueGateway().enqueue(request(), call)
    assert outcome == QueueOutcome("answered", "answered")


@pytest.mark.parametrize("where", ["exec", "get"])
async def test_a_caller_hanging_up_is_abandoned(where: str) -> None:
    outcome = await AppQueueGateway().enqueue(request(), FakeCall(hang_up_in=where))
    assert outcome.status == "abandoned"
    assert "caller hung up" in outcome.detail


async def test_a_queue_name_that_would_break_the_arguments_is_refused() -> None:
    call = FakeCall()
    outcome = await AppQueueGateway().enqueue(request(queue="sales,t"), call)
    assert outcome == QueueOutcome("unavailable", "invalid queue name 'sales,t'")
    assert call.log == []


def test_figures_default_to_nobody_and_follow_updates() -> None:
    gateway = AppQueueGateway()
    assert gateway.figures("sales") == QueueFigures(agents_available=0, estimated_wait=None)
    gateway.update("sales", QueueFigures(agents_available=2, estimated_wait=45.0))
    assert gateway.figures("sales") == QueueFigures(2, 45.0)
    assert gateway.figures("support") == QueueFigures(0, None)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"timeout": 0}, "ivr.queue.timeout"), ({"options": "t,x"}, "ivr.queue.options")],
)
def test_gateway_settings_are_checked(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as error:
        AppQueueGateway(**kwargs)  # type: ignore[arg-type]  # values vary by case on purpose
    assert error.value.key == key


# -- callbacks ------------------------------------------------------------------------------


async def test_callbacks_are_kept_in_order() -> None:
    store = MemoryCallbacks()
    first = CallbackRequest(number="5551234", call=CALL, queue="support", requested_at=10.0)
    second = CallbackRequest(number="5552000", call=CALL, queue=None, requested_at=11.0)
    await store.add(first)
    await store.add(second)
    assert store.pending() == (first, second)
    assert store.take() == first
    assert store.pending() == (second,)
    assert store.take() == second
    assert store.take() is None
    assert store.pending() == ()


# -- app_queue in the sandbox ---------------------------------------------------------------


@pytest.fixture
def line(pbx: PbxHandle) -> Iterator[PbxHandle]:
    pbx.hangup_all()
    yield pbx
    pbx.hangup_all()


async def serve_one_call(pbx: PbxHandle, handler: Handler, caller: SippProcess) -> SessionSummary:
    summaries: list[SessionSummary] = []
    ended = asyncio.Event()

    def on_end(summary: SessionSummary) -> None:
        summaries.append(summary)
        ended.set()

    config = AgiServerConfig(host=pbx.agi_host, port=pbx.agi_port, command_timeout=30)
    async with AgiServer(config, on_session_end=on_end) as server:
        server.route("ivr", handler)
        try:
            await asyncio.wait_for(ended.wait(), 60)
            await asyncio.to_thread(caller.wait, 30)
        finally:
            caller.stop()
    return summaries[0]


@pytest.mark.pbx
async def test_app_queue_refuses_times_out_and_connects(line: PbxHandle, tmp_path: Path) -> None:
    """One call, three Queue() runs: no such queue, nobody answers within the timeout, and an
    agent phone answers (the screen-pop data then is on the caller's channel)."""
    outcomes: list[QueueOutcome] = []
    seen: dict[str, object] = {}
    gateway = AppQueueGateway(timeout=3)
    phones: list[SippProcess] = []

    async def ivr(session: AgiSession) -> None:
        call = AgiCallControl(session)
        await call.answer()
        outcomes.append(await gateway.enqueue(request(queue="no-such-queue"), call))
        # Both phones ring for a minute: nobody answers within the 3 s timeout.
        for agent in ("agent1001", "agent1002"):
            port = line.phone_port(agent)
            phones.append(
                await asyncio.to_thread(start_phone, port, ring_ms=60000, log_dir=tmp_path)
            )
        outcomes.append(await gateway.enqueue(request(queue="sales"), call))
        for phone in phones:
            await asyncio.to_thread(phone.stop)
        port = line.phone_port("agent1001")
        phones.append(
            await asyncio.to_thread(start_phone, port, ring_ms=300, talk_ms=1500, log_dir=tmp_path)
        )
        answered = AppQueueGateway(timeout=20)
        outcomes.append(await answered.enqueue(request(queue="support", account="100200"), call))
        seen["pop"] = await call.get_variable("CTI_POP_ACCOUNT")
        seen["keys"] = await call.get_variable("CTI_POPS")

    caller = start_caller(line.sip_port, "8000", hold_ms=40000, log_dir=tmp_path)
    try:
        summary = await serve_one_call(line, ivr, caller)
    finally:
        for phone in phones:
            phone.stop()
    assert summary.outcome is SessionOutcome.COMPLETED, summary.error
    assert outcomes[0] == QueueOutcome("unavailable", "UNKNOWN")
    assert outcomes[1] == QueueOutcome("timeout", "TIMEOUT")
    assert outcomes[2] == QueueOutcome("answered", "PJSIP/agent1001")
    assert seen == {"pop": "100200", "keys": "ACCOUNT"}
