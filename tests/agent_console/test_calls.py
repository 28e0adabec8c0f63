"""Call control against a fake AMI: which actions and fields are sent, what is refused, and
that nothing typed by a user reaches an AMI header or a dialplan argument."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from support.fake_acd import Harness, acd_config, agent, make_harness, queue, settle

from acd.agent_state import AgentStatus
from acd.events import CallEnded, CallQueued
from acd.service import decode_waiting
from agent_console.accounts import AccountStore
from agent_console.auth import CSRF_HEADER, add_auth_routes, security_middleware
from agent_console.call_api import add_call_routes
from agent_console.calls import (
    CallConflict,
    CallControl,
    CallControlError,
    CallNotFound,
    InvalidCallRequest,
    PbxUnavailable,
)
from agent_console.http import error_middleware
from crm_bridge.db import create_engine, migrate
from cti.ami.messages import Response
from cti.ami.protocol import ActionResult
from cti.contracts.console import CallControlled, SupervisorAction
from cti.errors import AmiActionError, AmiNotConnected

Headers = Mapping[str, str | Sequence[str]]


@dataclass
class FakeAmi:
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refuse: dict[str, Exception] = field(default_factory=dict)

    async def action(self, name: str, headers: Headers | None = None) -> ActionResult:
        fields = dict(headers or {})
        self.sent.append((name, fields))
        if name in self.refuse:
            raise self.refuse[name]
        return ActionResult(name, "1", Response((("Response", "Success"),)))

    def names(self) -> list[str]:
        return [name for name, _ in self.sent]

    def last(self, name: str) -> dict[str, Any]:
        return next(f for n, f in reversed(self.sent) if n == name)


def make_acd() -> Harness:
    config = acd_config(
        (queue("sales"), queue("support")),
        (agent("a1", {"sales": 5, "support": 5}, ("sales",)), agent("a2", {"sales": 5}, ())),
    )
    config = dataclasses.replace(config, not_ready_reasons=("break", "outbound"))
    return make_harness(config)


async def connected_call(acd: Harness, call_id: str = "1700.1", leg: str = "1700.2") -> None:
    """a1 ready, a customer in sales, offered to a1 and answered on leg ``leg``."""
    acd.ready("a1")
    acd.service.enqueue(call_id, "PJSIP/trunk-0001", "sales", ani="5551234")
    acd.service.route_once()
    await settle()
    acd.service.dial_began(call_id, leg)
    acd.service.answered(call_id)
    assert acd.service.agents["a1"].status is AgentStatus.ON_CALL


@dataclass
class Rig:
    acd: Harness
    ami: FakeAmi
    control: CallControl
    events: list[object]

    def status(self, agent_id: str = "a1") -> AgentStatus:
        # A call, not an attribute: mypy would narrow an attribute across awaits.
        return self.acd.service.agents[agent_id].status

    def controlled(self) -> list[CallControlled]:
        return [e for e in self.events if isinstance(e, CallControlled)]


@pytest.fixture
async def rig() -> Rig:
    acd = make_acd()
    ami = FakeAmi()
    events: list[object] = []
    control = CallControl(ami, acd.service, events.append, clock=lambda: 1000.0)
    await connected_call(acd)
    return Rig(acd, ami, control, events)


async def test_hold_moves_both_legs_and_counts_hold_time(rig: Rig) -> None:
    await rig.control.hold("a1", "1700.1")
    redirect = rig.ami.last("Redirect")
    assert redirect == {
        "Channel": "1700.1",
        "Context": "cti-hold",
        "Exten": "s",
        "Priority": "1",
        "ExtraChannel": "1700.2",
        "ExtraContext": "cti-held",
        "ExtraExten": "s",
        "ExtraPriority": "1",
    }
    setvars = {(f["Channel"], f["Variable"]): f["Value"] for n, f in rig.ami.sent if n == "Setvar"}
    assert setvars == {
        ("1700.1", "CTI_HOLD_PEER"): "1700.2",
        ("1700.1", "CTI_HOLD_MOH"): "default",
        ("1700.2", "CTI_HOLD_PEER"): "1700.1",
    }
    assert rig.status() is AgentStatus.ON_HOLD
    with pytest.raises(CallControlError) as twice:
        await rig.control.hold("a1", "1700.1")
    assert type(twice.value) is CallConflict

    rig.acd.clock.advance(7)
    await rig.control.resume("a1", "1700.1")
    assert rig.ami.last("Bridge") == {"Channel1": "1700.1", "Channel2": "1700.2", "Tone": "no"}
    assert rig.status() is AgentStatus.ON_CALL
    assert rig.acd.service.calls["1700.1"].hold_total == 7
    assert [e.action for e in rig.controlled()] == ["hold", "resume"]
    with pytest.raises(CallControlError) as not_held:
        await rig.control.resume("a1", "1700.1")
    assert type(not_held.value) is CallConflict


async def test_only_the_agents_current_connected_call(rig: Rig) -> None:
    for agent_id, call_id, status in (
        ("a2", "1700.1", CallConflict),  # not theirs
        ("a1", "nope", CallNotFound),
        ("zz", "1700.1", CallNotFound),
    ):
        with pytest.raises(CallControlError) as refused:
            await rig.control.hold(agent_id, call_id)
        assert type(refused.value) is status
    rig.acd.service.enqueue("1800.1", "PJSIP/trunk-0002", "sales")
    with pytest.raises(CallControlError) as waiting:
        await rig.control.hangup("a1", "1800.1")
    assert type(waiting.value) is CallConflict
    assert rig.ami.sent == []


async def test_hangup_ends_both_legs_and_a_gone_channel_is_fine(rig: Rig) -> None:
    rig.ami.refuse["Hangup"] = AmiActionError("Hangup", "No such channel")
    with pytest.raises(CallControlError) as gone:
        await rig.control.hangup("a1", "1700.1")
    assert type(gone.value) is CallConflict
    rig.ami.refuse.clear()
    rig.ami.sent.clear()
    await rig.control.hangup("a1", "1700.1")
    assert [(n, f["Channel"]) for n, f in rig.ami.sent] == [
        ("Hangup", "1700.1"),
        ("Hangup", "1700.2"),
    ]


async def test_asterisk_unreachable_is_503(rig: Rig) -> None:
    rig.ami.refuse["Setvar"] = AmiNotConnected("not logged in")
    with pytest.raises(CallControlError) as down:
        await rig.control.hold("a1", "1700.1")
    assert type(down.value) is PbxUnavailable
    assert rig.status() is AgentStatus.ON_CALL


async def test_blind_transfer_to_a_number(rig: Rig) -> None:
    await rig.control.transfer("a1", "1700.1", "blind", "number", "+4420*7#")
    assert rig.ami.names() == ["Redirect"]
    assert rig.ami.last("Redirect") == {
        "Channel": "1700.1",
        "Context": "sandbox-pstn",
        "Exten": "+4420*7#",
        "Priority": "1",
        "ExtraChannel": "1700.2",
        "ExtraContext": "cti-xfer",
        "ExtraExten": "done",
        "ExtraPriority": "1",
    }
    # The agent's part ended at once: wrap-up, the call is no longer the ACD's.
    assert rig.status() is AgentStatus.WRAP_UP
    assert "1700.1" not in rig.acd.service.calls
    assert len(rig.acd.of(CallEnded)) == 1
    event = rig.controlled()[-1]
    assert (event.action, event.mode, event.kind, event.target) == (
        "transfer",
        "blind",
        "number",
        "+4420*7#",
    )


async def test_blind_transfer_to_an_agent_dials_their_endpoint(rig: Rig) -> None:
    rig.acd.service.login("a2")
    await rig.control.transfer("a1", "1700.1", "blind", "agent", "a2")
    setvars = {f["Variable"]: f["Value"] for n, f in rig.ami.sent if n == "Setvar"}
    assert setvars == {"CTI_XFER_TARGET": "PJSIP/a2", "CTI_XFER_RING": "30"}
    assert (rig.ami.last("Redirect")["Context"], rig.ami.last("Redirect")["Exten"]) == (
        "cti-xfer",
        "agent",
    )


async def test_blind_transfer_to_a_queue_queues_the_caller_again(rig: Rig) -> None:
    await rig.control.transfer("a1", "1700.1", "blind", "queue", "support")
    setvars = {f["Variable"]: f["Value"] for n, f in rig.ami.sent if n == "Setvar"}
    state = decode_waiting(setvars["CTI_ACD"])
    assert state is not None
    assert (state.queue, state.ani, state.entered_at) == ("support", "5551234", 1000.0)
    assert setvars["CTI_ACD_MOH"] == "default"
    assert rig.ami.last("Redirect")["Context"] == "cti-acd-wait"
    call = rig.acd.service.calls["1700.1"]
    assert (call.queue, call.state, call.agent_id) == ("support", "waiting", None)
    assert rig.acd.of(CallQueued)[-1].queue == "support"


@pytest.mark.parametrize(
    ("kind", "target", "status"),
    [
        ("number", "123,Hangup", InvalidCallRequest),
        ("number", "555\r\nAction: Originate", InvalidCallRequest),
        ("number", "5(55)", InvalidCallRequest),
        ("number", "55|5", InvalidCallRequest),
        ("number", "", InvalidCallRequest),
        ("number", "1" * 33, InvalidCallRequest),
        ("number", 5551234, InvalidCallRequest),
        ("agent", "nobody", InvalidCallRequest),
        ("agent", "a2", CallConflict),  # logged out
        ("agent", "a1", InvalidCallRequest),  # themselves
        ("queue", "sales\r\nx", InvalidCallRequest),
        ("queue", "nope", InvalidCallRequest),
        ("fax", "123", InvalidCallRequest),
    ],
)
async def test_hostile_or_unknown_targets_are_refused(
    rig: Rig, kind: str, target: object, status: type[CallControlError]
) -> None:
    with pytest.raises(CallControlError) as refused:
        await rig.control.transfer("a1", "1700.1", "blind", kind, target)
    assert type(refused.value) is status
    assert rig.ami.sent == []


async def test_attended_transfer_consults_then_completes(rig: Rig) -> None:
    await rig.control.transfer("a1", "1700.1", "attended", "number", "5550100")
    originate = rig.ami.last("Originate")
    consult = originate["ChannelId"]
    assert originate["Channel"] == "Local/5550100@sandbox-pstn"
    assert (originate["Context"], originate["Async"]) == ("cti-consult", "true")
    assert originate["Variable"] == ["CTI_CONSULT_AGENT=1700.2"]
    assert rig.status() is AgentStatus.ON_HOLD
    with pytest.raises(CallControlError):
        await rig.control.resume("a1", "1700.1")  # complete or cancel first
    rig.ami.sent.clear()
    await rig.control.complete_transfer("a1", "1700.1")
    assert rig.ami.names() == ["Setvar", "Bridge", "Hangup"]
    assert rig.ami.last("Bridge")["Channel2"] == consult
    assert rig.ami.last("Hangup")["Channel"] == "1700.2"
    assert rig.status() is AgentStatus.WRAP_UP
    assert [e.action for e in rig.controlled()] == ["transfer", "transfer-complete"]


async def test_attended_transfer_cancelled_goes_back_to_the_customer(rig: Rig) -> None:
    rig.acd.service.login("a2")
    await rig.control.transfer("a1", "1700.1", "attended", "agent", "a2")
    consult = rig.ami.last("Originate")["ChannelId"]
    assert rig.ami.last("Originate")["Channel"] == "PJSIP/a2"
    rig.ami.sent.clear()
    await rig.control.cancel_transfer("a1", "1700.1")
    assert rig.ami.sent == [
        ("Bridge", {"Channel1": "1700.1", "Channel2": "1700.2", "Tone": "no"}),
        ("Hangup", {"Channel": consult, "Cause": "16"}),
    ]
    assert rig.status() is AgentStatus.ON_CALL
    with pytest.raises(CallControlError) as none:
        await rig.control.complete_transfer("a1", "1700.1")
    assert type(none.value) is CallConflict


async def test_a_consult_that_cannot_start_puts_the_customer_back(rig: Rig) -> None:
    rig.ami.refuse["Originate"] = AmiActionError("Originate", "Originate failed")
    with pytest.raises(CallControlError):
        await rig.control.transfer("a1", "1700.1", "attended", "number", "5550100")
    assert rig.ami.names()[-1] == "Bridge"
    assert rig.status() is AgentStatus.ON_CALL


async def test_click_to_dial_rings_the_agent_then_the_number() -> None:
    acd = make_acd()
    ami = FakeAmi()
    events: list[object] = []
    control = CallControl(ami, acd.service, events.append, outbound_context="out")
    with pytest.raises(CallControlError) as logged_out:
        await control.dial("a1", "5551234")
    assert type(logged_out.value) is CallConflict
    acd.ready("a1")
    call_id = await control.dial("a1", "5551234", "cust-1")
    originate = ami.last("Originate")
    assert originate["Channel"] == "PJSIP/a1"
    assert (originate["Context"], originate["Exten"], originate["Priority"]) == (
        "out",
        "5551234",
        "1",
    )
    assert originate["ChannelId"] == call_id
    assert originate["Async"] == "true"
    assert originate["Variable"] == ["CTI_DIAL_AGENT=a1", "CTI_DIAL_CUSTOMER=cust-1"]
    agent_state = acd.service.agents["a1"]
    assert (agent_state.status, agent_state.state.reason) == (AgentStatus.NOT_READY, "outbound")
    with pytest.raises(CallControlError) as bad:
        await control.dial("a1", "555;1234")
    assert type(bad.value) is InvalidCallRequest


async def test_spy_originates_chanspy_on_the_agents_phone(rig: Rig) -> None:
    channel = await rig.control.spy("PJSIP/super1", "a1", "whisper")
    originate = rig.ami.last("Originate")
    assert (originate["Channel"], originate["Application"], originate["Data"]) == (
        "PJSIP/super1",
        "ChanSpy",
        "PJSIP/a1-,qEw",
    )
    assert originate["ChannelId"] == channel
    await rig.control.spy("PJSIP/super1", "a1", "barge")
    assert rig.ami.last("Originate")["Data"] == "PJSIP/a1-,qEB"
    for endpoint, mode, status in (
        ("PJSIP/super1,x", "listen", InvalidCallRequest),
        ("PJSIP/super1\r\n", "listen", InvalidCallRequest),
        ("PJSIP/super1", "shout", InvalidCallRequest),
        ("PJSIP/a1", "listen", InvalidCallRequest),
    ):
        with pytest.raises(CallControlError) as refused:
            await rig.control.spy(endpoint, "a1", mode)
        assert type(refused.value) is status
    with pytest.raises(CallControlError) as idle:
        await rig.control.spy("PJSIP/super1", "a2", "listen")
    assert type(idle.value) is CallConflict


# -- the HTTP API ---------------------------------------------------------------------------


@dataclass
class Api:
    client: TestClient[web.Request, web.Application]
    rig: Rig
    csrf: str = ""

    async def login(self, username: str) -> None:
        response = await self.client.post(
            "/api/login", json={"username": username, "password": f"{username}-password"}
        )
        assert response.status == 200
        self.csrf = (await response.json())["csrf"]

    async def post(self, path: str, body: object = None) -> ClientResponse:
        return await self.client.post(path, json=body, headers={CSRF_HEADER: self.csrf})


@pytest.fixture
async def api(rig: Rig, tmp_path: Path) -> AsyncIterator[Api]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}")
    await migrate(engine)
    accounts = AccountStore(engine, log2_n=10)
    await accounts.add_user("ann", "ann-password", "agent", agent_id="a1")
    await accounts.add_user("bob", "bob-password", "agent", agent_id="a2")
    await accounts.add_user("sam", "sam-password", "supervisor")
    app = web.Application(middlewares=[error_middleware, security_middleware])
    add_auth_routes(app, accounts)
    phones = {"sam": "PJSIP/super1"}
    add_call_routes(app, rig.control, rig.events.append, supervisor_phone=phones.get)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Api(client, rig)
    finally:
        await client.close()
        await engine.dispose()


async def test_api_agent_holds_resumes_and_transfers_their_call(api: Api) -> None:
    await api.login("ann")
    held = await api.post("/api/calls/1700.1/hold")
    assert (held.status, await held.json()) == (202, {"ok": True})
    twice = await api.post("/api/calls/1700.1/hold")
    assert (twice.status, await twice.json()) == (
        409,
        {"error": "call_conflict", "detail": "the call is already on hold"},
    )
    assert (await api.post("/api/calls/1700.1/resume")).status == 202
    bad = await api.post("/api/calls/1700.1/transfer", {"mode": "blind", "to": "5551234"})
    assert bad.status == 422
    answer = await bad.json()
    assert (answer["error"], answer["fields"]) == ("invalid_body", ["to"])
    assert answer["detail"].startswith("to: ")
    hostile = await api.post(
        "/api/calls/1700.1/transfer",
        {"mode": "blind", "to": {"kind": "number", "target": "1,Hangup()"}},
    )
    assert (hostile.status, await hostile.json()) == (
        422,
        {
            "error": "invalid_call_request",
            "detail": "a number is 1-32 of 0-9 * # with an optional leading +",
        },
    )
    done = await api.post(
        "/api/calls/1700.1/transfer",
        {"mode": "blind", "to": {"kind": "number", "target": "5550100"}},
    )
    assert done.status == 202
    assert api.rig.ami.last("Redirect")["Exten"] == "5550100"


async def test_api_another_agent_gets_409_and_no_login_401(api: Api) -> None:
    assert (await api.client.post("/api/calls/1700.1/hangup")).status == 401
    await api.login("bob")
    assert (await api.post("/api/calls/1700.1/hangup")).status == 409
    assert (await api.client.post("/api/calls/1700.1/hangup")).status == 403  # no CSRF
    spy = await api.post("/api/agents/a1/spy", {"mode": "listen"})
    assert spy.status == 403
    assert api.rig.ami.sent == []


async def test_api_dial_and_supervisor_spy_is_audited(api: Api) -> None:
    await api.login("sam")
    spy = await api.post("/api/agents/a1/spy", {"mode": "barge"})
    body = await spy.json()
    assert spy.status == 202
    assert body["call_id"] == api.rig.ami.last("Originate")["ChannelId"]
    audit = [e for e in api.rig.events if isinstance(e, SupervisorAction)]
    assert [(a.username, a.action, a.agent_id, a.detail) for a in audit] == [
        ("sam", "barge", "a1", "PJSIP/super1")
    ]
    assert (await api.post("/api/dial", {"number": "5551234"})).status == 403  # no agent
    other = await api.post("/api/agents/a1/spy", {"mode": "listen", "endpoint": "x,y"})
    assert other.status == 422

    api.rig.acd.ready("a2")
    await api.login("bob")
    dialed = await api.post("/api/dial", {"number": "5551234", "customer_ref": "c-9"})
    assert dialed.status == 202
    assert (await dialed.json())["call_id"] == api.rig.ami.last("Originate")["ChannelId"]
    assert (await api.post("/api/dial", {"number": "12;34"})).status == 422
    assert (await api.post("/api/dial", [1, 2])).status == 422
