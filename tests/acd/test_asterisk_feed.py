"""Tests for acd/asterisk.py without Asterisk: ``AcdFeed.on_event`` maps AMI events (built
from header tuples, as the AMI client hands them over) onto ``AcdService``; ``list_channels``
reads ``CoreShowChannels`` and the ACD's channel variables through a scripted AMI stand-in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from support.fake_acd import T0, Harness, acd_config, agent, make_harness, queue, settle

from acd.agent_state import AgentStatus
from acd.asterisk import AcdFeed, list_channels
from acd.events import CallAbandoned, CallRequeued
from acd.service import (
    CALLBACK_CONTEXT,
    DELIVER_CONTEXT,
    WAIT_CONTEXT,
    AcdCall,
    WaitingState,
    encode_waiting,
)
from cti.ami import AmiClient, Event
from cti.ami.messages import Response
from cti.ami.protocol import ActionResult
from cti.errors import AmiActionError


def event(name: str, **headers: str) -> Event:
    return Event((("Event", name), *headers.items()))


def harness() -> tuple[Harness, AcdFeed]:
    config = acd_config(
        (queue("sales", wrap_up=100.0),),
        (agent("a1", {"sales": 5}, ("sales",)), agent("a2", {"sales": 5}, ("sales",))),
    )
    h = make_harness(config)
    # on_event never touches the AMI client; reconcile() is tested through list_channels.
    return h, AcdFeed(h.service, cast(AmiClient, object()))


def offered(h: Harness) -> None:
    h.ready("a1", "a2")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()


def status(h: Harness, agent_id: str) -> AgentStatus:
    return h.service.agents[agent_id].status


async def test_dial_begin_state_end_answer_hold_hangup() -> None:
    h, feed = harness()
    offered(h)
    feed.on_event(event("DialBegin", Uniqueid="c1", DestUniqueid="leg1"))
    assert h.service.calls["c1"].agent_leg == "leg1"
    feed.on_event(event("DialState", Uniqueid="c1", DestUniqueid="leg1", DialStatus="PROCEEDING"))
    assert status(h, "a1") is AgentStatus.RESERVED
    feed.on_event(event("DialState", Uniqueid="c1", DestUniqueid="leg1", DialStatus="RINGING"))
    assert status(h, "a1") is AgentStatus.RINGING
    feed.on_event(event("DialEnd", Uniqueid="c1", DestUniqueid="leg1", DialStatus="ANSWER"))
    assert status(h, "a1") is AgentStatus.ON_CALL
    feed.on_event(event("Hold", Uniqueid="leg1"))
    assert status(h, "a1") is AgentStatus.ON_HOLD
    feed.on_event(event("Unhold", Uniqueid="leg1"))
    assert status(h, "a1") is AgentStatus.ON_CALL
    feed.on_event(event("Hangup", Uniqueid="leg1"))
    assert status(h, "a1") is AgentStatus.WRAP_UP
    assert "c1" not in h.service.calls
    await h.service.aclose()


async def test_dial_end_no_answer_requeues() -> None:
    h, feed = harness()
    offered(h)
    feed.on_event(event("DialBegin", Uniqueid="c1", DestUniqueid="leg1"))
    feed.on_event(event("DialEnd", Uniqueid="c1", DestUniqueid="leg1", DialStatus="noanswer"))
    assert status(h, "a1") is AgentStatus.NOT_READY
    assert h.service.calls["c1"].state == "waiting"
    assert [r.status for r in h.of(CallRequeued)] == ["NOANSWER"]
    # The agent leg's late Hangup is not the caller's.
    feed.on_event(event("Hangup", Uniqueid="leg1"))
    assert "c1" in h.service.calls


async def test_dial_end_without_a_status_still_requeues() -> None:
    h, feed = harness()
    offered(h)
    feed.on_event(event("DialEnd", Uniqueid="c1"))
    assert [r.status for r in h.of(CallRequeued)] == ["UNKNOWN"]


async def test_dial_end_cancel_then_hangup_is_an_abandon_while_ringing() -> None:
    h, feed = harness()
    offered(h)
    feed.on_event(event("DialBegin", Uniqueid="c1", DestUniqueid="leg1"))
    feed.on_event(event("DialState", Uniqueid="c1", DestUniqueid="leg1", DialStatus="RINGING"))
    feed.on_event(event("DialEnd", Uniqueid="c1", DestUniqueid="leg1", DialStatus="CANCEL"))
    assert status(h, "a1") is AgentStatus.RINGING
    feed.on_event(event("Hangup", Uniqueid="c1"))
    assert [a.while_ringing for a in h.of(CallAbandoned)] == ["a1"]
    assert status(h, "a1") is AgentStatus.READY


async def test_events_about_unknown_channels_change_nothing() -> None:
    h, feed = harness()
    offered(h)
    before = list(h.events)
    for item in (
        event("Hangup", Uniqueid="zzz"),
        event("DialBegin", Uniqueid="zzz", DestUniqueid="yyy"),
        event("DialState", DestUniqueid="yyy", DialStatus="RINGING"),
        event("DialEnd", Uniqueid="zzz", DialStatus="ANSWER"),
        event("Hold", Uniqueid="zzz"),
        event("Newstate", Uniqueid="zzz", ChannelState="6", Context="default"),
        event("OriginateResponse", Uniqueid="zzz", Response="Failure"),
        event("VarSet", Uniqueid="c1", Variable="X", Value="1"),
        event("Hangup"),
    ):
        feed.on_event(item)
    assert h.events == before
    assert status(h, "a1") is AgentStatus.RESERVED


async def callback_offered(h: Harness) -> AcdCall:
    cb = h.service.request_callback("555", "sales")
    h.ready("a1", "a2")
    h.service.route_once()
    await settle()
    assert cb.agent_leg == "leg-1"
    return cb


async def test_callback_leg_newstate_ringing_then_up() -> None:
    h, feed = harness()
    cb = await callback_offered(h)
    feed.on_event(event("Newstate", Uniqueid="leg-1", ChannelState="5", Context=CALLBACK_CONTEXT))
    assert status(h, "a1") is AgentStatus.RINGING
    # Once known, the leg is followed whatever context it is in.
    feed.on_event(event("Newstate", Uniqueid="leg-1", ChannelState="6", Context="cti-originate"))
    assert status(h, "a1") is AgentStatus.ON_CALL
    assert cb.state == "connected"
    feed.on_event(event("DialEnd", Uniqueid="leg-1", DestUniqueid="cust", DialStatus="ANSWER"))
    assert (cb.attempts, cb.last_status) == (1, "ANSWER")
    assert cb.call_id not in h.store.callbacks
    feed.on_event(event("Hangup", Uniqueid="leg-1"))
    assert status(h, "a1") is AgentStatus.WRAP_UP
    assert h.service.calls == {}
    await h.service.aclose()


async def test_callback_originate_failure_is_no_answer() -> None:
    h, feed = harness()
    cb = await callback_offered(h)
    feed.on_event(event("OriginateResponse", Uniqueid="leg-1", Response="Success"))
    assert status(h, "a1") is AgentStatus.RESERVED
    feed.on_event(event("OriginateResponse", Uniqueid="leg-1", Response="Failure"))
    assert status(h, "a1") is AgentStatus.NOT_READY
    assert h.service.agents["a1"].state.reason == "no answer"
    assert cb.state == "waiting"


async def test_callback_customer_busy_is_recorded() -> None:
    h, feed = harness()
    cb = await callback_offered(h)
    feed.on_event(event("Newstate", Uniqueid="leg-1", ChannelState="6", Context=CALLBACK_CONTEXT))
    feed.on_event(event("DialEnd", Uniqueid="leg-1", DestUniqueid="cust", DialStatus="BUSY"))
    assert (cb.attempts, cb.last_status) == (1, "BUSY")
    assert h.store.callbacks[cb.call_id].last_status == "BUSY"


# -- list_channels ----------------------------------------------------------------------------


class ScriptedAmi:
    """Answers CoreShowChannels with the given channels and Getvar from ``variables``."""

    def __init__(
        self,
        channels: list[Mapping[str, str]],
        variables: Mapping[tuple[str, str], str],
        gone: frozenset[str] = frozenset(),
    ) -> None:
        self.channels = channels
        self.variables = variables
        self.gone = gone
        self.actions: list[tuple[str, dict[str, str]]] = []

    async def action(self, name: str, headers: Mapping[str, str] | None = None) -> ActionResult:
        headers = dict(headers or {})
        self.actions.append((name, headers))
        if name == "CoreShowChannels":
            items = tuple(
                Event((("Event", "CoreShowChannel"), *channel.items())) for channel in self.channels
            )
            return ActionResult(name, "1", Response((("Response", "Success"),)), items)
        assert name == "Getvar"
        channel = headers["Channel"]
        if channel in self.gone:
            raise AmiActionError("Getvar", "No such channel")
        value = self.variables.get((channel, headers["Variable"]), "")
        return ActionResult(name, "2", Response((("Response", "Success"), ("Value", value))))


async def test_list_channels_reads_the_acd_variables_of_acd_channels_only() -> None:
    state = encode_waiting(AcdCall("c1", "sales", T0 - 30, 2, {"sales": 3}, number="555"))
    ami = ScriptedAmi(
        [
            {"Uniqueid": "c1", "Channel": "PJSIP/c-1", "Context": WAIT_CONTEXT},
            {
                "Uniqueid": "c2",
                "Channel": "PJSIP/c-2",
                "Context": DELIVER_CONTEXT,
                "BridgeId": "b1",
                "ChannelStateDesc": "Up",
            },
            {"Uniqueid": "x", "Channel": "PJSIP/x-1", "Context": "default", "BridgeId": "b1"},
            {"Uniqueid": "g", "Channel": "PJSIP/g-1", "Context": WAIT_CONTEXT},
        ],
        {
            ("PJSIP/c-1", "CTI_ACD"): state,
            ("PJSIP/c-2", "CTI_ACD"): "junk",
            ("PJSIP/c-2", "CTI_ACD_AGENT"): "a1",
            ("PJSIP/x-1", "CTI_ACD"): state,
        },
        gone=frozenset({"PJSIP/g-1"}),
    )
    views = await list_channels(cast(AmiClient, ami))
    assert [v.uniqueid for v in views] == ["c1", "c2", "x", "g"]
    c1, c2, x, g = views
    assert c1.waiting == WaitingState("sales", T0 - 30, 2, {"sales": 3}, "555")
    assert (c2.waiting, c2.agent_id, c2.bridge_id, c2.state_desc) == (None, "a1", "b1", "Up")
    # Channels outside the ACD's contexts are not asked about.
    assert (x.waiting, x.agent_id, x.bridge_id) == (None, "", "b1")
    assert not [a for a in ami.actions if a[1].get("Channel") == "PJSIP/x-1"]
    # A channel gone between the list and the Getvar is just without variables.
    assert (g.waiting, g.agent_id, g.callback_id) == (None, "", "")


async def test_feed_reconcile_adopts_from_listed_channels() -> None:
    h, _ = harness()
    state = encode_waiting(AcdCall("c1", "sales", T0 - 30, number="555"))
    ami = ScriptedAmi(
        [{"Uniqueid": "c1", "Channel": "PJSIP/c-1", "Context": WAIT_CONTEXT}],
        {("PJSIP/c-1", "CTI_ACD"): state},
    )
    feed = AcdFeed(h.service, cast(AmiClient, ami))
    await feed.reconcile()
    assert feed.reconciliations == 1
    call = h.service.calls["c1"]
    assert (call.entered_at, call.channel, call.number) == (T0 - 30, "PJSIP/c-1", "555")
