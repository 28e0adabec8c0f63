"""Tests for the live call model (cti/calls/model.py).

AMI events are built the way Asterisk 22 writes them: the standard channel snapshot of
main/manager_channels.c (``ast_manager_build_channel_state_string_prefix``), the bridge
snapshot of main/manager_bridges.c in front of it for BridgeEnter/BridgeLeave, a second,
"Dest"-prefixed snapshot in DialBegin/DialEnd, Rename with only Channel/Newname/Uniqueid
(main/channel.c) and the CoreShowChannel items of main/manager.c for a resync.

The changes ``apply`` returns are exactly what the tracker publishes, so the tests assert on
the whole list, in order.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.calls import (
    Call,
    CallEnded,
    CallEvent,
    CallModel,
    CallPhase,
    CallStarted,
    CallUpdated,
    Channel,
    ChannelCreated,
    ChannelEvent,
    ChannelHungUp,
    ChannelPhase,
    ChannelUpdated,
    IllegalTransition,
    ModelResynced,
)
from cti.calls.model import HANDLED_EVENTS, TRANSITIONS, EventKind

P = ChannelPhase
K = EventKind
DOWN, RING, RINGING, UP = 0, 4, 5, 6
_STATE_DESC = {DOWN: "Down", RING: "Ring", RINGING: "Ringing", UP: "Up"}


# -- building AMI events -------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """One channel as a test sees it: the parts of its snapshot that do not change."""

    uniqueid: str
    name: str
    linkedid: str = ""  # empty: the channel is the oldest of its call
    caller_num: str = "<unknown>"
    caller_name: str = "<unknown>"
    context: str = "from-pstn"
    exten: str = "s"

    def snapshot(self, state: int = UP, **headers: str) -> dict[str, str]:
        """The standard channel snapshot, header for header as Asterisk 22 prints it."""
        fields = {
            "Channel": self.name,
            "ChannelState": str(state),
            "ChannelStateDesc": _STATE_DESC[state],
            "CallerIDNum": self.caller_num,
            "CallerIDName": self.caller_name,
            "ConnectedLineNum": "<unknown>",
            "ConnectedLineName": "<unknown>",
            "Language": "en",
            "AccountCode": "",
            "Context": self.context,
            "Exten": self.exten,
            "Priority": "1",
            "Uniqueid": self.uniqueid,
            "Linkedid": self.linkedid or self.uniqueid,
        }
        fields.update(headers)
        return fields


def bridge_event(peer: Peer, bridge_id: str, members: int, state: int = UP) -> dict[str, str]:
    """BridgeEnter/BridgeLeave: the bridge snapshot, then the channel snapshot."""
    return {
        "BridgeUniqueid": bridge_id,
        "BridgeType": "basic",
        "BridgeTechnology": "simple_bridge",
        "BridgeCreator": "<unknown>",
        "BridgeName": "<unknown>",
        "BridgeNumChannels": str(members),
        "BridgeVideoSourceMode": "none",
        **peer.snapshot(state),
    }


def hangup_event(
    peer: Peer, state: int = UP, cause: int = 16, text: str = "Normal Clearing"
) -> dict[str, str]:
    return {**peer.snapshot(state), "Cause": str(cause), "Cause-txt": text}


def dial_event(
    caller: Peer | None,
    caller_state: int,
    dest: Peer,
    dest_state: int,
    **extra: str,
) -> dict[str, str]:
    """DialBegin/DialEnd: the caller's snapshot (none for an Originate), then the callee's
    prefixed "Dest", then DialString or DialStatus."""
    fields = caller.snapshot(caller_state) if caller else {}
    fields.update({f"Dest{k}": v for k, v in dest.snapshot(dest_state).items()})
    fields.update(extra)
    return fields


def core_show_channel(peer: Peer, state: int = UP, bridge_id: str = "") -> dict[str, str]:
    """One item of the CoreShowChannels list (main/manager.c, action_coreshowchannels)."""
    return {
        "Event": "CoreShowChannel",
        "ActionID": "resync-1",
        **peer.snapshot(state),
        "Application": "Queue",
        "ApplicationData": "support",
        "Duration": "00:00:42",
        "BridgeId": bridge_id,
    }


def rename_event(peer: Peer, new_name: str) -> dict[str, str]:
    return {"Channel": peer.name, "Newname": new_name, "Uniqueid": peer.uniqueid}


# -- looking at the results ------------------------------------------------------------------

Summary = tuple[object, ...]


def summary(changes: Sequence[object]) -> list[Summary]:
    """A compact, exact picture of a list of changes (type, subject, phase, cause, members)."""
    out: list[Summary] = []
    for change in changes:
        if isinstance(change, ChannelEvent):
            ch = change.channel
            out.append((type(change).__name__, ch.uniqueid, ch.phase, change.cause))
        elif isinstance(change, CallEvent):
            call = change.call
            members = tuple(c.uniqueid for c in call.channels)
            out.append((type(change).__name__, call.linkedid, call.phase, change.cause, members))
        elif isinstance(change, ModelResynced):
            out.append(("ModelResynced", change.added, change.removed, change.channels))
        else:
            raise AssertionError(f"unexpected change {change!r}")
    return out


def apply(model: CallModel, event: str, fields: Mapping[str, str], now: float) -> list[object]:
    changes = model.apply(event, fields, now)
    assert all(getattr(c, "at", None) == now for c in changes), changes
    return changes


def only(changes: Sequence[object], kind: type[object]) -> list[object]:
    return [c for c in changes if type(c) is kind]


def frozen(model: CallModel) -> tuple[dict[str, Channel], list[Call]]:
    return dict(model.channels), model.calls()


CALLER = Peer(
    "1732300000.1",
    "PJSIP/trunk-00000001",
    caller_num="5551234",
    caller_name="Alice Caller",
    exten="5551000",
)
AGENT = Peer(
    "1732300000.2",
    "PJSIP/agent1001-00000002",
    linkedid=CALLER.uniqueid,
    caller_num="5551234",
    caller_name="Alice Caller",
    context="from-queue",
    exten="agent1001",
)


# -- the transition table --------------------------------------------------------------------

# Every AMI event the model classifies, by kind. Snapshot-only events take their kind from
# ChannelState; the state used here is the one that yields the kind.
_SNAPSHOT_EVENTS = (
    "Newchannel",
    "Newstate",
    "Newexten",
    "NewCallerid",
    "NewConnectedLine",
    "NewAccountCode",
    "Hold",
    "Unhold",
    "HangupRequest",
    "SoftHangupRequest",
)
EVENTS_BY_KIND: dict[EventKind, list[tuple[str, int]]] = {
    K.SEEN_PRE_ANSWER: [(name, RINGING) for name in _SNAPSHOT_EVENTS],
    K.SEEN_UP: [(name, UP) for name in _SNAPSHOT_EVENTS],
    K.BRIDGE_ENTER: [("BridgeEnter", UP)],
    K.BRIDGE_LEAVE: [("BridgeLeave", UP)],
    K.HANGUP: [("Hangup", UP)],
}


def make_event(event: str, peer: Peer, state: int) -> dict[str, str]:
    """An event of that name for ``peer``; Priority 7 makes it differ from the set-up events."""
    if event in ("BridgeEnter", "BridgeLeave"):
        return {**bridge_event(peer, "bridge-edge", 2, state), "Priority": "7"}
    if event == "Hangup":
        return hangup_event(peer, state)
    return peer.snapshot(state, Priority="7")


def bring_to(model: CallModel, peer: Peer, phase: ChannelPhase) -> None:
    """Put ``peer`` in ``phase`` with ordinary events."""
    if phase is P.ABSENT:
        return
    model.apply("Newchannel", peer.snapshot(RING), 1.0)
    if phase in (P.UP, P.BRIDGED):
        model.apply("Newstate", peer.snapshot(UP), 2.0)
    if phase is P.BRIDGED:
        model.apply("BridgeEnter", bridge_event(peer, "bridge-setup", 1), 3.0)
    if phase is P.GONE:
        model.apply("Hangup", hangup_event(peer, RING), 4.0)
    if phase is P.GONE:
        assert peer.uniqueid not in model.channels
    else:
        assert model.channels[peer.uniqueid].phase is phase


EDGES = [
    pytest.param(phase, kind, event, state, id=f"{phase.value}-{kind.value}-{event}")
    for (phase, kind) in TRANSITIONS
    for event, state in EVENTS_BY_KIND[kind]
]


@pytest.mark.parametrize(("phase", "kind", "event", "state"), EDGES)
def test_every_edge_of_the_table(
    phase: ChannelPhase, kind: EventKind, event: str, state: int
) -> None:
    model = CallModel()
    bring_to(model, CALLER, phase)
    target = TRANSITIONS[(phase, kind)]

    changes = apply(model, event, make_event(event, CALLER, state), 10.0)

    assert model.illegal_transitions == 0
    if target is P.GONE:
        assert CALLER.uniqueid not in model.channels
        assert model.calls() == []
        if phase is P.ABSENT:
            assert changes == []  # a hangup for a channel never seen leaves a tombstone only
        else:
            assert summary(changes) == [
                ("ChannelHungUp", CALLER.uniqueid, P.GONE, event),
                ("CallEnded", CALLER.uniqueid, CallPhase.ENDED, event, ()),
            ]
        # The tombstone drops whatever comes later.
        assert model.apply("Newstate", CALLER.snapshot(UP), 11.0) == []
        assert model.late_events == 1
        return
    channel = model.channels[CALLER.uniqueid]
    assert channel.phase is target
    assert channel.priority == 7
    first = changes[0]
    assert isinstance(first, ChannelCreated if phase is P.ABSENT else ChannelUpdated)
    assert first.channel == channel
    assert first.cause == event
    if phase is P.ABSENT:
        assert isinstance(changes[1], CallStarted)


def test_table_shape() -> None:
    # Any event can be the first one seen (we may connect mid-call), nothing follows GONE,
    # and nothing leads back to ABSENT.
    assert all((P.ABSENT, kind) in TRANSITIONS for kind in K)
    assert all((P.PRE_ANSWER, kind) in TRANSITIONS for kind in K)
    assert not any(phase is P.GONE for phase, _ in TRANSITIONS)
    assert P.ABSENT not in set(TRANSITIONS.values())
    assert all(TRANSITIONS[(phase, K.HANGUP)] is P.GONE for phase in P if phase is not P.GONE)


ILLEGAL = [
    pytest.param(phase, kind, event, state, id=f"{phase.value}-{kind.value}-{event}")
    for phase, kind in itertools.product(P, K)
    if (phase, kind) not in TRANSITIONS and phase is not P.GONE
    for event, state in EVENTS_BY_KIND[kind]
]


def test_the_illegal_pairs_are_an_answered_channel_ringing_again() -> None:
    missing = {
        (phase, kind)
        for phase, kind in itertools.product(P, K)
        if (phase, kind) not in TRANSITIONS and phase is not P.GONE
    }
    assert missing == {(P.UP, K.SEEN_PRE_ANSWER), (P.BRIDGED, K.SEEN_PRE_ANSWER)}


@pytest.mark.parametrize(("phase", "kind", "event", "state"), ILLEGAL)
def test_every_pair_not_in_the_table_is_refused(
    phase: ChannelPhase, kind: EventKind, event: str, state: int
) -> None:
    model = CallModel()
    bring_to(model, CALLER, phase)
    before = frozen(model)

    with pytest.raises(IllegalTransition) as info:
        model.apply(event, make_event(event, CALLER, state), 10.0)

    assert (info.value.uniqueid, info.value.phase, info.value.kind) == (
        CALLER.uniqueid,
        phase,
        kind,
    )
    assert info.value.event == event
    assert CALLER.uniqueid in str(info.value)
    assert frozen(model) == before
    assert model.illegal_transitions == 1


@pytest.mark.parametrize("kind", list(K))
def test_events_after_gone_are_dropped_by_the_tombstone(kind: EventKind) -> None:
    # (GONE, kind) is missing from the table too, but a dead channel's late events never reach
    # the table: the tombstone drops them first and counts them.
    for event, state in EVENTS_BY_KIND[kind]:
        model = CallModel()
        bring_to(model, CALLER, P.GONE)
        before = frozen(model)
        assert model.apply(event, make_event(event, CALLER, state), 10.0) == []
        assert frozen(model) == before
        assert (model.late_events, model.illegal_transitions) == (1, 0)


def test_handled_events_use_the_names_asterisk_sends() -> None:
    # manager_channels.c raises "Newexten" (lower-case e) although its XML docs say NewExten.
    wire_names = {*_SNAPSHOT_EVENTS, "BridgeEnter", "BridgeLeave", "Hangup", "Rename"}
    assert wire_names | {"DialBegin", "DialEnd"} <= HANDLED_EVENTS


def test_unhandled_events_and_events_without_uniqueid_change_nothing() -> None:
    model = CallModel()
    assert model.apply("VarSet", {**CALLER.snapshot(UP), "Variable": "X", "Value": "1"}, 1) == []
    fields = CALLER.snapshot(UP)
    del fields["Uniqueid"]
    assert model.apply("Newchannel", fields, 1.0) == []
    assert model.channels == {}


# -- an inbound call that stays in the IVR ---------------------------------------------------


def test_inbound_ivr_call() -> None:
    model = CallModel()
    lid = CALLER.uniqueid

    ringing = apply(model, "Newchannel", CALLER.snapshot(RING), 100.0)
    assert summary(ringing) == [
        ("ChannelCreated", lid, P.PRE_ANSWER, "Newchannel"),
        ("CallStarted", lid, CallPhase.RINGING, "Newchannel", (lid,)),
    ]
    created = ringing[0]
    assert isinstance(created, ChannelCreated)
    assert created.channel == Channel(
        uniqueid=lid,
        linkedid=lid,
        name="PJSIP/trunk-00000001",
        phase=P.PRE_ANSWER,
        state=RING,
        state_desc="Ring",
        caller_num="5551234",
        caller_name="Alice Caller",
        context="from-pstn",
        exten="5551000",
        priority=1,
        language="en",
        created_at=100.0,
    )
    started = ringing[1]
    assert isinstance(started, CallStarted)
    assert started.call == Call(
        linkedid=lid,
        phase=CallPhase.RINGING,
        channels=(created.channel,),
        started_at=100.0,
        answered_at=None,
        ended_at=None,
        caller_num="5551234",
        caller_name="Alice Caller",
        dnis="5551000",
    )

    answered = apply(model, "Newstate", CALLER.snapshot(UP), 101.0)
    assert summary(answered) == [
        ("ChannelUpdated", lid, P.UP, "Newstate"),
        ("CallUpdated", lid, CallPhase.ACTIVE, "Newstate", (lid,)),
    ]
    assert model.channels[lid].answered_at == 101.0
    assert model.channels[lid].state_desc == "Up"
    active = model.call(lid)
    assert active is not None
    assert (active.answered_at, active.phase) == (101.0, CallPhase.ACTIVE)

    ivr = CALLER.snapshot(UP, Context="ivr-main", Exten="s", Priority="1")
    menu = apply(model, "Newexten", {**ivr, "Application": "AGI", "AppData": "agi://ivr"}, 102.0)
    assert summary(menu) == [("ChannelUpdated", lid, P.UP, "Newexten")]
    assert (model.channels[lid].context, model.channels[lid].exten) == ("ivr-main", "s")
    in_menu = model.call(lid)
    assert in_menu is not None
    assert in_menu.dnis == "5551000"  # the number dialled, not where the dialplan went

    gone = apply(model, "Hangup", hangup_event(CALLER), 130.0)
    assert summary(gone) == [
        ("ChannelHungUp", lid, P.GONE, "Hangup"),
        ("CallEnded", lid, CallPhase.ENDED, "Hangup", ()),
    ]
    hung = gone[0]
    assert isinstance(hung, ChannelHungUp)
    assert (hung.channel.hangup_cause, hung.channel.hangup_cause_text) == (16, "Normal Clearing")
    ended = gone[1]
    assert isinstance(ended, CallEnded)
    assert (ended.call.started_at, ended.call.answered_at, ended.call.ended_at) == (
        100.0,
        101.0,
        130.0,
    )
    assert (ended.call.caller_num, ended.call.caller_name, ended.call.dnis) == (
        "5551234",
        "Alice Caller",
        "5551000",
    )
    assert model.channels == {}
    assert model.calls() == []
    assert model.call(lid) is None

    everything = ringing + answered + menu + gone
    assert [len(only(everything, kind)) for kind in (CallStarted, CallUpdated, CallEnded)] == [
        1,
        1,
        1,
    ]


def test_newexten_is_also_accepted_with_its_documented_spelling() -> None:
    model = CallModel()
    model.apply("Newchannel", CALLER.snapshot(UP), 1.0)
    changes = model.apply("NewExten", CALLER.snapshot(UP, Exten="200"), 2.0)
    assert summary(changes) == [("ChannelUpdated", CALLER.uniqueid, P.UP, "NewExten")]


# -- a queue call answered by an agent -------------------------------------------------------


def test_queue_call_to_an_agent() -> None:
    model = CallModel()
    lid, caller, agent = CALLER.uniqueid, CALLER.uniqueid, AGENT.uniqueid
    steps: list[tuple[str, Mapping[str, str], list[Summary]]] = [
        (
            "Newchannel",
            CALLER.snapshot(RING),
            [
                ("ChannelCreated", caller, P.PRE_ANSWER, "Newchannel"),
                ("CallStarted", lid, CallPhase.RINGING, "Newchannel", (caller,)),
            ],
        ),
        (
            "Newstate",
            CALLER.snapshot(UP),
            [
                ("ChannelUpdated", caller, P.UP, "Newstate"),
                ("CallUpdated", lid, CallPhase.ACTIVE, "Newstate", (caller,)),
            ],
        ),
        (
            "Newexten",
            CALLER.snapshot(UP, Context="queues", Exten="support", Priority="2"),
            [("ChannelUpdated", caller, P.UP, "Newexten")],
        ),
        (
            "Newchannel",
            AGENT.snapshot(DOWN),
            [
                ("ChannelCreated", agent, P.PRE_ANSWER, "Newchannel"),
                ("CallUpdated", lid, CallPhase.ACTIVE, "Newchannel", (caller, agent)),
            ],
        ),
        (
            "DialBegin",
            dial_event(CALLER, UP, AGENT, DOWN, DialString="agent1001"),
            [("ChannelUpdated", agent, P.PRE_ANSWER, "DialBegin")],
        ),
        (
            "Newstate",
            AGENT.snapshot(RINGING),
            [("ChannelUpdated", agent, P.PRE_ANSWER, "Newstate")],
        ),
        ("Newstate", AGENT.snapshot(UP), [("ChannelUpdated", agent, P.UP, "Newstate")]),
        (
            "DialEnd",
            dial_event(CALLER, UP, AGENT, UP, DialStatus="ANSWER"),
            [("ChannelUpdated", agent, P.UP, "DialEnd")],
        ),
        (
            "BridgeEnter",
            bridge_event(CALLER, "bridge-q1", 1),
            [("ChannelUpdated", caller, P.BRIDGED, "BridgeEnter")],
        ),
        (
            "BridgeEnter",
            bridge_event(AGENT, "bridge-q1", 2),
            [
                ("ChannelUpdated", agent, P.BRIDGED, "BridgeEnter"),
                ("CallUpdated", lid, CallPhase.CONNECTED, "BridgeEnter", (caller, agent)),
            ],
        ),
        (
            "Hold",
            {**AGENT.snapshot(UP), "MusicClass": "default"},
            [
                ("ChannelUpdated", agent, P.BRIDGED, "Hold"),
                ("CallUpdated", lid, CallPhase.HELD, "Hold", (caller, agent)),
            ],
        ),
        (
            "Unhold",
            AGENT.snapshot(UP),
            [
                ("ChannelUpdated", agent, P.BRIDGED, "Unhold"),
                ("CallUpdated", lid, CallPhase.CONNECTED, "Unhold", (caller, agent)),
            ],
        ),
        (
            "BridgeLeave",
            bridge_event(CALLER, "bridge-q1", 1),
            [
                ("ChannelUpdated", caller, P.UP, "BridgeLeave"),
                ("CallUpdated", lid, CallPhase.ACTIVE, "BridgeLeave", (caller, agent)),
            ],
        ),
        (
            "BridgeLeave",
            bridge_event(AGENT, "bridge-q1", 0),
            [("ChannelUpdated", agent, P.UP, "BridgeLeave")],
        ),
        (
            "Hangup",
            hangup_event(CALLER),
            [
                ("ChannelHungUp", caller, P.GONE, "Hangup"),
                ("CallUpdated", lid, CallPhase.ACTIVE, "Hangup", (agent,)),
            ],
        ),
        (
            "Hangup",
            hangup_event(AGENT),
            [
                ("ChannelHungUp", agent, P.GONE, "Hangup"),
                ("CallEnded", lid, CallPhase.ENDED, "Hangup", ()),
            ],
        ),
    ]
    everything: list[object] = []
    for now, (event, fields, expected) in enumerate(steps, start=100):
        changes = apply(model, event, fields, float(now))
        assert summary(changes) == expected, event
        everything += changes
        if event == "DialBegin":
            assert model.channels[agent].dialed_by == caller
            assert model.channels[agent].dial_status is None
        if event == "DialEnd":
            assert model.channels[agent].dial_status == "ANSWER"
            assert model.channels[agent].dialed_by == caller  # DialEnd keeps who dialed
        if event == "BridgeEnter":
            assert model.channels[fields["Uniqueid"]].bridge_id == "bridge-q1"
        if event == "BridgeLeave":
            assert model.channels[fields["Uniqueid"]].bridge_id is None

    assert model.channels == {}
    assert model.calls() == []
    assert len(only(everything, CallStarted)) == 1
    assert len(only(everything, CallEnded)) == 1
    assert isinstance(everything[-1], CallEnded)
    ended = everything[-1].call
    assert (ended.answered_at, ended.ended_at, ended.dnis) == (101.0, 115.0, "5551000")
    # The hold flag is on the channel that asked for it, and back off after Unhold.
    hold_updates = [
        c.channel.on_hold
        for c in everything
        if isinstance(c, ChannelUpdated) and c.cause in ("Hold", "Unhold")
    ]
    assert hold_updates == [True, False]


def test_dial_end_with_no_answer_keeps_the_call_ringing_until_hangup() -> None:
    model = CallModel()
    model.apply("Newchannel", CALLER.snapshot(UP), 1.0)
    model.apply("Newchannel", AGENT.snapshot(DOWN), 2.0)
    model.apply("DialBegin", dial_event(CALLER, UP, AGENT, DOWN, DialString="agent1001"), 2.0)
    changes = apply(
        model, "DialEnd", dial_event(CALLER, UP, AGENT, RINGING, DialStatus="NOANSWER"), 20.0
    )
    assert summary(changes) == [("ChannelUpdated", AGENT.uniqueid, P.PRE_ANSWER, "DialEnd")]
    assert model.channels[AGENT.uniqueid].dial_status == "NOANSWER"
    hung = apply(model, "Hangup", hangup_event(AGENT, RINGING, 19, "No answer"), 20.0)
    assert summary(hung) == [
        ("ChannelHungUp", AGENT.uniqueid, P.GONE, "Hangup"),
        ("CallUpdated", CALLER.uniqueid, CallPhase.ACTIVE, "Hangup", (CALLER.uniqueid,)),
    ]


# -- an Originate ----------------------------------------------------------------------------

ORIGINATED = Peer(
    "1732300000.7",
    "PJSIP/agent1001-00000007",
    caller_num="1001",
    caller_name="Agent One",
    context="from-internal",
    exten="s",
)


def test_originate_dial_begin_without_caller_for_an_unknown_channel() -> None:
    model = CallModel()
    uid = ORIGINATED.uniqueid
    changes = apply(
        model, "DialBegin", dial_event(None, 0, ORIGINATED, DOWN, DialString="agent1001"), 50.0
    )
    assert summary(changes) == [
        ("ChannelCreated", uid, P.PRE_ANSWER, "DialBegin"),
        ("CallStarted", uid, CallPhase.RINGING, "DialBegin", (uid,)),
    ]
    channel = model.channels[uid]
    assert (channel.name, channel.dialed_by, channel.dial_status) == (
        "PJSIP/agent1001-00000007",
        None,
        None,
    )
    assert (channel.caller_num, channel.caller_name, channel.context) == (
        "1001",
        "Agent One",
        "from-internal",
    )


def test_originate_after_newchannel() -> None:
    model = CallModel()
    uid = ORIGINATED.uniqueid
    apply(model, "Newchannel", ORIGINATED.snapshot(DOWN), 50.0)
    # Nothing new: no caller, and the channel already has no dialer.
    assert apply(model, "DialBegin", dial_event(None, 0, ORIGINATED, DOWN), 50.0) == []
    assert summary(apply(model, "Newstate", ORIGINATED.snapshot(RINGING), 51.0)) == [
        ("ChannelUpdated", uid, P.PRE_ANSWER, "Newstate")
    ]
    assert summary(apply(model, "Newstate", ORIGINATED.snapshot(UP), 54.0)) == [
        ("ChannelUpdated", uid, P.UP, "Newstate"),
        ("CallUpdated", uid, CallPhase.ACTIVE, "Newstate", (uid,)),
    ]
    ended = apply(model, "DialEnd", dial_event(None, 0, ORIGINATED, UP, DialStatus="ANSWER"), 54)
    assert summary(ended) == [("ChannelUpdated", uid, P.UP, "DialEnd")]
    assert model.channels[uid].dial_status == "ANSWER"
    assert model.channels[uid].dialed_by is None


def test_dial_begin_reveals_an_unknown_caller_and_callee() -> None:
    model = CallModel()
    changes = apply(
        model, "DialBegin", dial_event(CALLER, UP, AGENT, DOWN, DialString="agent1001"), 7.0
    )
    assert summary(changes) == [
        ("ChannelCreated", CALLER.uniqueid, P.UP, "DialBegin"),
        ("CallStarted", CALLER.uniqueid, CallPhase.ACTIVE, "DialBegin", (CALLER.uniqueid,)),
        ("ChannelCreated", AGENT.uniqueid, P.PRE_ANSWER, "DialBegin"),
        (
            "CallUpdated",
            CALLER.uniqueid,
            CallPhase.ACTIVE,
            "DialBegin",
            (CALLER.uniqueid, AGENT.uniqueid),
        ),
        ("ChannelUpdated", AGENT.uniqueid, P.PRE_ANSWER, "DialBegin"),
    ]
    assert model.channels[AGENT.uniqueid].dialed_by == CALLER.uniqueid


def test_dial_events_for_a_dead_callee_are_late() -> None:
    model = CallModel()
    model.apply("Newchannel", CALLER.snapshot(UP), 1.0)
    model.apply("Newchannel", AGENT.snapshot(DOWN), 1.0)
    model.apply("Hangup", hangup_event(AGENT, DOWN), 2.0)
    before = frozen(model)
    late = dial_event(CALLER, UP, AGENT, DOWN, DialStatus="CANCEL")
    assert model.apply("DialEnd", late, 3.0) == []
    assert frozen(model) == before
    assert model.late_events == 1


# -- connecting in the middle of a call ------------------------------------------------------


def test_first_event_is_a_bridge_enter() -> None:
    model = CallModel()
    agent, lid = AGENT.uniqueid, CALLER.uniqueid
    first = apply(model, "BridgeEnter", bridge_event(AGENT, "bridge-m", 2), 500.0)
    assert summary(first) == [
        ("ChannelCreated", agent, P.BRIDGED, "BridgeEnter"),
        ("CallStarted", lid, CallPhase.ACTIVE, "BridgeEnter", (agent,)),
    ]
    channel = model.channels[agent]
    assert channel == Channel(
        uniqueid=agent,
        linkedid=lid,
        name="PJSIP/agent1001-00000002",
        phase=P.BRIDGED,
        state=UP,
        state_desc="Up",
        caller_num="5551234",
        caller_name="Alice Caller",
        context="from-queue",
        exten="agent1001",
        priority=1,
        language="en",
        created_at=500.0,
        answered_at=500.0,
        bridge_id="bridge-m",
    )
    started = first[1]
    assert isinstance(started, CallStarted)
    # Only the agent's side is known: the call has no dialled number yet.
    assert (started.call.started_at, started.call.answered_at, started.call.dnis) == (
        500.0,
        500.0,
        "",
    )

    second = apply(model, "BridgeEnter", bridge_event(CALLER, "bridge-m", 2), 501.0)
    assert summary(second) == [
        ("ChannelCreated", lid, P.BRIDGED, "BridgeEnter"),
        ("CallUpdated", lid, CallPhase.CONNECTED, "BridgeEnter", (agent, lid)),
    ]
    updated = second[1]
    assert isinstance(updated, CallUpdated)
    assert updated.call.dnis == "5551000"


def test_originating_channel_seen_late_provides_the_calls_caller_id() -> None:
    # The call record was opened by the agent's channel; once the originating channel (the one
    # whose uniqueid is the linkedid) appears, the call's caller id is that channel's.
    agent = Peer("77.2", "PJSIP/agent1002-0000000a", linkedid="77.1", caller_num="1002")
    caller = Peer("77.1", "PJSIP/trunk-00000009", caller_num="5559876", caller_name="Bob")
    model = CallModel()
    model.apply("BridgeEnter", bridge_event(agent, "b", 2), 1.0)
    changes = apply(model, "BridgeEnter", bridge_event(caller, "b", 2), 2.0)
    updated = changes[-1]
    assert isinstance(updated, CallUpdated)
    assert (updated.call.caller_num, updated.call.caller_name) == ("5559876", "Bob")
    call = model.call("77.1")
    assert call is not None
    assert (call.caller_num, call.caller_name) == ("5559876", "Bob")


def test_first_event_is_a_newstate_up() -> None:
    model = CallModel()
    changes = apply(model, "Newstate", CALLER.snapshot(UP), 9.0)
    assert summary(changes) == [
        ("ChannelCreated", CALLER.uniqueid, P.UP, "Newstate"),
        ("CallStarted", CALLER.uniqueid, CallPhase.ACTIVE, "Newstate", (CALLER.uniqueid,)),
    ]
    channel = model.channels[CALLER.uniqueid]
    assert (channel.state, channel.answered_at, channel.created_at) == (UP, 9.0, 9.0)


def test_first_event_is_a_field_event_for_a_ringing_channel() -> None:
    model = CallModel()
    changes = apply(model, "NewCallerid", CALLER.snapshot(RINGING, **{"CID-CallingPres": "0"}), 3)
    assert summary(changes) == [
        ("ChannelCreated", CALLER.uniqueid, P.PRE_ANSWER, "NewCallerid"),
        ("CallStarted", CALLER.uniqueid, CallPhase.RINGING, "NewCallerid", (CALLER.uniqueid,)),
    ]


# -- late events, caller id, renames ---------------------------------------------------------


def test_late_events_after_hangup_are_ignored_and_do_not_resurrect() -> None:
    model = CallModel()
    model.apply("Newchannel", CALLER.snapshot(RING), 1.0)
    model.apply("Newstate", CALLER.snapshot(UP), 2.0)
    model.apply("BridgeEnter", bridge_event(CALLER, "b1", 1), 3.0)
    model.apply("Hangup", hangup_event(CALLER), 4.0)
    late = [
        ("BridgeLeave", bridge_event(CALLER, "b1", 0)),
        ("Newstate", CALLER.snapshot(UP)),
        ("SoftHangupRequest", {**CALLER.snapshot(UP), "Cause": "16"}),
        ("Hangup", hangup_event(CALLER)),
        ("Newexten", CALLER.snapshot(UP, Exten="h")),
    ]
    for event, fields in late:
        assert model.apply(event, fields, 5.0) == []
    assert model.late_events == len(late)
    assert model.channels == {}
    assert model.calls() == []


def test_a_hangup_for_a_never_seen_channel_blocks_its_late_events() -> None:
    model = CallModel()
    assert model.apply("Hangup", hangup_event(CALLER), 1.0) == []
    assert model.apply("BridgeLeave", bridge_event(CALLER, "b", 0), 2.0) == []
    assert (model.late_events, model.channels) == (1, {})


def test_tombstones_are_bounded() -> None:
    model = CallModel(tombstones=2)
    peers = [Peer(f"5.{n}", f"PJSIP/x-{n}") for n in range(3)]
    for peer in peers:
        model.apply("Newchannel", peer.snapshot(UP), 1.0)
        model.apply("Hangup", hangup_event(peer), 2.0)
    # The oldest tombstone was evicted: a late event for it is taken as a new channel (the
    # next resync removes it); the two newest still drop theirs.
    assert model.apply("Newstate", peers[1].snapshot(UP), 3.0) == []
    assert model.apply("Newstate", peers[2].snapshot(UP), 3.0) == []
    assert summary(model.apply("Newstate", peers[0].snapshot(UP), 3.0))[0] == (
        "ChannelCreated",
        "5.0",
        P.UP,
        "Newstate",
    )


def test_unknown_caller_id_is_normalised_to_empty() -> None:
    anonymous = Peer("8.1", "PJSIP/trunk-00000008")  # caller id and name are "<unknown>"
    model = CallModel()
    changes = apply(
        model,
        "Newchannel",
        anonymous.snapshot(RING, ConnectedLineNum="<unknown>", ConnectedLineName="<unknown>"),
        1.0,
    )
    channel = model.channels["8.1"]
    assert (channel.caller_num, channel.caller_name) == ("", "")
    assert (channel.connected_num, channel.connected_name) == ("", "")
    started = changes[1]
    assert isinstance(started, CallStarted)
    assert (started.call.caller_num, started.call.caller_name) == ("", "")

    # A later NewCallerid fills it in; the connected line the same way (every event carries
    # the whole snapshot, so the second one repeats the caller id).
    apply(model, "NewCallerid", anonymous.snapshot(RING, CallerIDNum="5550000"), 2.0)
    later = anonymous.snapshot(RING, CallerIDNum="5550000", ConnectedLineNum="1001")
    apply(model, "NewConnectedLine", later, 2.0)
    channel = model.channels["8.1"]
    assert (channel.caller_num, channel.connected_num) == ("5550000", "1001")


def test_rename_changes_only_the_name_whatever_the_phase() -> None:
    # Rename carries Channel, Newname and Uniqueid only (main/channel.c): no ChannelState, so
    # it must not be read as "not answered" for an answered or bridged channel.
    model = CallModel()
    bring_to(model, CALLER, P.BRIDGED)
    before = model.channels[CALLER.uniqueid]
    changes = apply(model, "Rename", rename_event(CALLER, "PJSIP/trunk-00000001<ZOMBIE>"), 9.0)
    assert summary(changes) == [("ChannelUpdated", CALLER.uniqueid, P.BRIDGED, "Rename")]
    after = model.channels[CALLER.uniqueid]
    assert after.name == "PJSIP/trunk-00000001<ZOMBIE>"
    assert after == replace(before, name="PJSIP/trunk-00000001<ZOMBIE>")
    assert model.illegal_transitions == 0


def test_rename_of_an_unknown_or_dead_channel_creates_nothing() -> None:
    model = CallModel()
    assert model.apply("Rename", rename_event(CALLER, "Local/x"), 1.0) == []
    assert model.channels == {}
    model.apply("Newchannel", AGENT.snapshot(DOWN), 1.0)
    model.apply("Hangup", hangup_event(AGENT, DOWN), 2.0)
    assert model.apply("Rename", rename_event(AGENT, "Local/y"), 3.0) == []
    assert model.late_events == 1


# -- a channel moving between calls ----------------------------------------------------------


def test_linkedid_change_moves_a_channel_between_calls() -> None:
    first = Peer("3.1", "PJSIP/trunk-00000031")
    second = Peer("3.2", "PJSIP/trunk-00000032")
    third = Peer("3.3", "PJSIP/agent1003-00000033", linkedid="3.1")
    model = CallModel()
    model.apply("Newchannel", first.snapshot(UP), 1.0)
    model.apply("Newchannel", third.snapshot(UP), 1.0)
    model.apply("Newchannel", second.snapshot(UP), 1.0)

    # The agent's channel is transferred into the second call: it leaves one, joins the other.
    moved = apply(model, "Newexten", third.snapshot(UP, Linkedid="3.2", Exten="2"), 5.0)
    assert summary(moved) == [
        ("ChannelUpdated", "3.3", P.UP, "Newexten"),
        ("CallUpdated", "3.1", CallPhase.ACTIVE, "Newexten", ("3.1",)),
        ("CallUpdated", "3.2", CallPhase.ACTIVE, "Newexten", ("3.2", "3.3")),
    ]
    assert model.channels["3.3"].linkedid == "3.2"

    # Moving the last channel of a call ends it; a linkedid nobody has yet starts a call.
    moved = apply(model, "Newstate", first.snapshot(UP, Linkedid="3.9"), 6.0)
    assert summary(moved) == [
        ("ChannelUpdated", "3.1", P.UP, "Newstate"),
        ("CallEnded", "3.1", CallPhase.ENDED, "Newstate", ()),
        ("CallStarted", "3.9", CallPhase.ACTIVE, "Newstate", ("3.1",)),
    ]
    assert sorted(c.linkedid for c in model.calls()) == ["3.2", "3.9"]


# -- resync after a reconnect ----------------------------------------------------------------

GHOST = Peer("9.1", "PJSIP/trunk-00000091")
KEPT = Peer("9.2", "PJSIP/trunk-00000092")
HUNG = Peer("9.3", "PJSIP/trunk-00000093")
MISSING = Peer("9.4", "PJSIP/agent1004-00000094", linkedid="9.2")
NEWCOMER = Peer("9.5", "PJSIP/trunk-00000095")


def test_resync_reconciles_with_the_snapshot() -> None:
    model = CallModel()
    model.apply("Newchannel", GHOST.snapshot(UP), 100.0)
    model.apply("Newchannel", KEPT.snapshot(RING), 100.0)
    model.apply("Newchannel", HUNG.snapshot(UP), 100.0)

    token = model.begin_resync()
    # Events keep coming while CoreShowChannels is on its way.
    model.apply("Hangup", hangup_event(HUNG), 201.0)
    model.apply("Newchannel", NEWCOMER.snapshot(RING), 202.0)
    items = [
        core_show_channel(KEPT, UP, bridge_id="bridge-7"),
        core_show_channel(MISSING, UP, bridge_id="bridge-7"),
        core_show_channel(HUNG, UP),  # stale: hung up after the resync began
    ]
    changes = model.finish_resync(token, items, 203.0)

    assert summary(changes) == [
        ("ChannelUpdated", "9.2", P.BRIDGED, "resync"),
        ("CallUpdated", "9.2", CallPhase.ACTIVE, "resync", ("9.2",)),
        ("ChannelCreated", "9.4", P.BRIDGED, "resync"),
        ("CallUpdated", "9.2", CallPhase.CONNECTED, "resync", ("9.2", "9.4")),
        ("ChannelHungUp", "9.1", P.GONE, "resync"),
        ("CallEnded", "9.1", CallPhase.ENDED, "resync", ()),
        ("ModelResynced", ("9.4",), ("9.1",), 3),
    ]
    assert all(getattr(c, "at", None) == 203.0 for c in changes)
    ghost = changes[4]
    assert isinstance(ghost, ChannelHungUp)
    assert (ghost.channel.hangup_cause, ghost.channel.hangup_cause_text) == (None, "")
    assert sorted(model.channels) == ["9.2", "9.4", "9.5"]  # the newcomer is kept
    assert "9.3" not in model.channels  # not resurrected by the stale item
    kept, added = model.channels["9.2"], model.channels["9.4"]
    assert (kept.bridge_id, kept.answered_at, kept.state) == ("bridge-7", 203.0, UP)
    assert (added.bridge_id, added.linkedid, added.created_at) == ("bridge-7", "9.2", 203.0)
    assert added.name == "PJSIP/agent1004-00000094"
    # The ghost's late events stay dropped, like any hung-up channel's.
    assert model.apply("Newstate", GHOST.snapshot(UP), 204.0) == []


def test_resync_takes_bridging_from_bridge_id() -> None:
    model = CallModel()
    bring_to(model, CALLER, P.BRIDGED)
    bring_to(model, AGENT, P.UP)
    token = model.begin_resync()
    changes = model.finish_resync(
        token,
        [core_show_channel(CALLER, UP, bridge_id=""), core_show_channel(AGENT, UP, "bridge-9")],
        50.0,
    )
    assert summary(changes) == [
        ("ChannelUpdated", CALLER.uniqueid, P.UP, "resync"),
        ("ChannelUpdated", AGENT.uniqueid, P.BRIDGED, "resync"),
        ("ModelResynced", (), (), 2),
    ]
    assert model.channels[CALLER.uniqueid].bridge_id is None
    assert model.channels[AGENT.uniqueid].bridge_id == "bridge-9"


def test_resync_with_a_matching_snapshot_only_reports() -> None:
    model = CallModel()
    bring_to(model, CALLER, P.UP)
    snapshot_before = frozen(model)
    token = model.begin_resync()
    # What the earlier events said, except what CoreShowChannel adds (Application ...).
    item = core_show_channel(CALLER, UP)
    item["Priority"] = "1"
    changes = model.finish_resync(token, [item], 9.0)
    assert summary(changes) == [("ModelResynced", (), (), 1)]
    assert frozen(model) == snapshot_before


def test_resync_removes_ghosts_in_the_order_they_were_created() -> None:
    model = CallModel()
    peers = [Peer(f"4.{n}", f"PJSIP/trunk-{n:08}") for n in (3, 1, 2, 10)]
    for peer in peers:
        model.apply("Newchannel", peer.snapshot(UP), 1.0)
    token = model.begin_resync()
    changes = model.finish_resync(token, [], 2.0)
    assert summary(changes)[-1] == ("ModelResynced", (), ("4.3", "4.1", "4.2", "4.10"), 0)
    hung = [c.channel.uniqueid for c in changes if isinstance(c, ChannelHungUp)]
    assert hung == ["4.3", "4.1", "4.2", "4.10"]
    assert model.calls() == []


def test_resync_brings_back_a_channel_whose_hangup_predates_it() -> None:
    # A tombstone from before the resync does not veto the snapshot: Asterisk lists only
    # live channels, so if it lists one, it is live.
    model = CallModel()
    model.apply("Newchannel", CALLER.snapshot(UP), 1.0)
    model.apply("Hangup", hangup_event(CALLER), 2.0)
    token = model.begin_resync()
    changes = model.finish_resync(token, [core_show_channel(CALLER, UP)], 3.0)
    assert summary(changes) == [
        ("ChannelCreated", CALLER.uniqueid, P.UP, "resync"),
        ("CallStarted", CALLER.uniqueid, CallPhase.ACTIVE, "resync", (CALLER.uniqueid,)),
        ("ModelResynced", (CALLER.uniqueid,), (), 1),
    ]
    # ... and its tombstone is gone: its events apply again.
    assert model.apply("Newexten", CALLER.snapshot(UP, Exten="9"), 4.0) != []


def test_resync_skips_items_without_uniqueid() -> None:
    model = CallModel()
    token = model.begin_resync()
    item = core_show_channel(CALLER, UP)
    del item["Uniqueid"]
    assert summary(model.finish_resync(token, [item], 1.0)) == [("ModelResynced", (), (), 0)]


# -- properties ------------------------------------------------------------------------------

_UIDS = ("1.1", "1.2", "1.3", "1.4")
_LINKS = ("1.1", "1.2")  # few linkedids: channels share calls and move between them
_EVENTS = (*_SNAPSHOT_EVENTS, "BridgeEnter", "BridgeLeave", "Hangup", "Rename", "DialBegin")
_STATES = (DOWN, RING, RINGING, UP)


def _peer(uid: str, linkedid: str) -> Peer:
    return Peer(uid, f"PJSIP/p-{uid}", linkedid=linkedid, caller_num=f"55{uid}")


Op = tuple[str, str, str, int, str]  # event, uniqueid, linkedid, ChannelState, callee


@dataclass(frozen=True)
class Resync:
    """A step of the random walk: begin a resync, apply ``during``, finish with ``items``."""

    items: dict[str, tuple[str, int, str]]  # uniqueid -> (linkedid, ChannelState, BridgeId)
    during: list[Op]


_ops = st.tuples(
    st.sampled_from(_EVENTS),
    st.sampled_from(_UIDS),
    st.sampled_from(_LINKS),
    st.sampled_from(_STATES),
    st.sampled_from(_UIDS),  # the callee of a DialBegin
)
_items = st.dictionaries(
    st.sampled_from(_UIDS),
    st.tuples(st.sampled_from(_LINKS), st.sampled_from(_STATES), st.sampled_from(("", "b1"))),
)
_steps = st.lists(
    st.one_of(_ops, st.builds(Resync, _items, st.lists(_ops, max_size=4))),
    max_size=40,
)


class Mirror:
    """What a subscriber rebuilds from the published changes alone."""

    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}
        self.calls: dict[str, Call] = {}

    def feed(self, changes: Sequence[object]) -> None:
        for change in changes:
            if isinstance(change, ChannelCreated):
                assert change.channel.uniqueid not in self.channels
                self.channels[change.channel.uniqueid] = change.channel
            elif isinstance(change, ChannelUpdated):
                assert change.channel.uniqueid in self.channels
                self.channels[change.channel.uniqueid] = change.channel
            elif isinstance(change, ChannelHungUp):
                assert change.channel.phase is P.GONE
                del self.channels[change.channel.uniqueid]
            elif isinstance(change, CallStarted):
                assert change.call.linkedid not in self.calls
                self.calls[change.call.linkedid] = change.call
            elif isinstance(change, CallUpdated):
                assert change.call.linkedid in self.calls
                self.calls[change.call.linkedid] = change.call
            elif isinstance(change, CallEnded):
                assert change.call.phase is CallPhase.ENDED
                assert change.call.channels == ()
                del self.calls[change.call.linkedid]
            else:
                assert isinstance(change, ModelResynced)


def _event(model: CallModel, op: Op, now: float) -> list[object]:
    event, uid, link, state, dest = op
    peer = _peer(uid, link)
    if event == "DialBegin":
        fields = dial_event(peer, state, _peer(dest, link), DOWN, DialString="x")
    elif event == "Rename":
        fields = rename_event(peer, f"Local/renamed-{uid}")
    else:
        fields = make_event(event, peer, state)
    before = frozen(model)
    try:
        return model.apply(event, fields, now)
    except IllegalTransition:
        assert frozen(model) == before
        return []


def check(model: CallModel, mirror: Mirror) -> None:
    calls = model.calls()
    members: dict[str, str] = {}
    for call in calls:
        assert call.channels, f"call {call.linkedid} has no channels"
        assert call.phase is not CallPhase.ENDED
        assert model.call(call.linkedid) == call
        for channel in call.channels:
            assert channel.linkedid == call.linkedid
            assert model.channels[channel.uniqueid] == channel
            assert channel.uniqueid not in members
            members[channel.uniqueid] = call.linkedid
    assert set(members) == set(model.channels)
    assert all(c.phase in (P.PRE_ANSWER, P.UP, P.BRIDGED) for c in model.channels.values())
    # The published changes are enough to follow the model.
    assert mirror.channels == dict(model.channels)
    assert {
        lid: (call.phase, tuple(c.uniqueid for c in call.channels))
        for lid, call in mirror.calls.items()
    } == {call.linkedid: (call.phase, tuple(c.uniqueid for c in call.channels)) for call in calls}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_steps)
def test_random_event_sequences_keep_the_model_consistent(steps: list[Op | Resync]) -> None:
    model = CallModel()
    mirror = Mirror()
    now = 0.0
    for step in steps:
        now += 1.0
        if not isinstance(step, Resync):
            mirror.feed(_event(model, step, now))
        else:
            token = model.begin_resync()
            for op in step.during:
                mirror.feed(_event(model, op, now))
            snapshot = [
                core_show_channel(_peer(uid, link), state, bridge)
                for uid, (link, state, bridge) in step.items.items()
            ]
            changes = model.finish_resync(token, snapshot, now)
            assert isinstance(changes[-1], ModelResynced)
            assert changes[-1].channels == len(model.channels)
            mirror.feed(changes)
        check(model, mirror)

    for uid, channel in list(model.channels.items()):
        mirror.feed(model.apply("Hangup", hangup_event(_peer(uid, channel.linkedid)), now + 1))
        check(model, mirror)
    assert model.channels == {}
    assert model.calls() == []
    assert mirror.channels == {}
    assert mirror.calls == {}
