"""AmiProtocol: recorded Asterisk 22 transcripts, replayed whole and split everywhere.

The transcripts are the bytes a real Asterisk 22 manager writes (header sets as produced by
``ast_manager_build_channel_state_string`` and friends in main/manager.c); ActionIDs are the
ones our protocol allocates with the prefix "t-", so correlation can be checked end to end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.ami.actions import Action
from cti.ami.messages import Event, Greeting, Message, Response
from cti.ami.protocol import ActionResult, AmiOutput, AmiProtocol, ConnectionClosed

GREETING = b"Asterisk Call Manager/11.0.0\r\n"

LOGIN = (
    b"Response: Success\r\nActionID: t-1\r\nChallenge: 840164437\r\n\r\n"
    b"Response: Success\r\nActionID: t-2\r\nMessage: Authentication accepted\r\n\r\n"
    b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 15\r\nLastReload: 15\r\n"
    b"Status: Fully Booted\r\n\r\n"
)

_CHANNEL_A = (
    b"Channel: PJSIP/anonymous-00000000\r\nChannelState: 4\r\nChannelStateDesc: Ring\r\n"
    b"CallerIDNum: 5551234\r\nCallerIDName: <unknown>\r\nConnectedLineNum: <unknown>\r\n"
    b"ConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\nContext: from-pstn\r\n"
    b"Exten: 100\r\nPriority: 1\r\nUniqueid: 1732270000.0\r\nLinkedid: 1732270000.0\r\n"
)

CALL_EVENTS = (
    b"Event: Newchannel\r\nPrivilege: call,all\r\n"
    b"Channel: PJSIP/anonymous-00000000\r\nChannelState: 0\r\nChannelStateDesc: Down\r\n"
    b"CallerIDNum: 5551234\r\nCallerIDName: <unknown>\r\nConnectedLineNum: <unknown>\r\n"
    b"ConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\nContext: from-pstn\r\n"
    b"Exten: 100\r\nPriority: 1\r\nUniqueid: 1732270000.0\r\nLinkedid: 1732270000.0\r\n\r\n"
    b"Event: Newstate\r\nPrivilege: call,all\r\n" + _CHANNEL_A + b"\r\n"
    b"Event: DialBegin\r\nPrivilege: call,all\r\n"
    + _CHANNEL_A
    + b"DestChannel: PJSIP/agent1-00000001\r\nDestChannelState: 0\r\n"
    b"DestChannelStateDesc: Down\r\nDestCallerIDNum: 100\r\nDestCallerIDName: <unknown>\r\n"
    b"DestConnectedLineNum: 5551234\r\nDestConnectedLineName: <unknown>\r\nDestLanguage: en\r\n"
    b"DestAccountCode: \r\nDestContext: agents\r\nDestExten: 100\r\nDestPriority: 1\r\n"
    b"DestUniqueid: 1732270000.1\r\nDestLinkedid: 1732270000.0\r\nDialString: agent1\r\n\r\n"
    b"Event: BridgeEnter\r\nPrivilege: call,all\r\n"
    b"BridgeUniqueid: 6f1b6c0e-3f0e-4f7d-9d63-3c1f0a6d2b11\r\nBridgeType: basic\r\n"
    b"BridgeTechnology: simple_bridge\r\nBridgeCreator: <unknown>\r\nBridgeName: <unknown>\r\n"
    b"BridgeNumChannels: 1\r\nBridgeVideoSourceMode: none\r\n" + _CHANNEL_A + b"\r\n"
    b"Event: Hangup\r\nPrivilege: call,all\r\n"
    + _CHANNEL_A
    + b"Cause: 16\r\nCause-txt: Normal Clearing\r\n\r\n"
)

# Sent as action t-1: CoreShowChannels. A live VarSet (no ActionID) interleaves with the list.
CORE_SHOW_CHANNELS = (
    b"Response: Success\r\nActionID: t-1\r\nEventList: start\r\n"
    b"Message: Channels will follow\r\n\r\n"
    b"Event: CoreShowChannel\r\nActionID: t-1\r\n" + _CHANNEL_A + b"BridgeId: \r\n"
    b"Application: Queue\r\nApplicationData: support\r\nDuration: 00:00:07\r\n\r\n"
    b"Event: VarSet\r\nPrivilege: dialplan,all\r\n"
    + _CHANNEL_A
    + b"Variable: QUEUEPOSITION\r\nValue: 1\r\n\r\n"
    b"Event: CoreShowChannel\r\nActionID: t-1\r\n"
    b"Channel: PJSIP/agent1-00000001\r\nChannelState: 5\r\nChannelStateDesc: Ringing\r\n"
    b"CallerIDNum: 100\r\nCallerIDName: <unknown>\r\nConnectedLineNum: 5551234\r\n"
    b"ConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\nContext: agents\r\n"
    b"Exten: 100\r\nPriority: 1\r\nUniqueid: 1732270000.1\r\nLinkedid: 1732270000.0\r\n"
    b"BridgeId: \r\nApplication: AppQueue\r\nApplicationData: (Outgoing Line)\r\n"
    b"Duration: 00:00:02\r\n\r\n"
    b"Event: CoreShowChannelsComplete\r\nActionID: t-1\r\nEventList: Complete\r\n"
    b"ListItems: 2\r\n\r\n"
)

# Sent as action t-1: Command "core show channels". Output keeps CLI padding.
COMMAND = (
    b"Response: Success\r\nActionID: t-1\r\nMessage: Command output follows\r\n"
    b"Output: Channel                                                          Location        "
    b"         State   Application(Data)             \r\n"
    b"Output: PJSIP/anonymous-00000000                                         100@from-pstn:2 "
    b"         Up      Queue(support)                \r\n"
    b"Output: 1 active channel\r\n"
    b"Output: 1 active call\r\n"
    b"Output: 3 calls processed\r\n\r\n"
)

# Sent as action t-1: Originate (Async). The ack, then the broadcast OriginateResponse.
ORIGINATE = (
    b"Response: Success\r\nActionID: t-1\r\nMessage: Originate successfully queued\r\n\r\n"
    b"Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: t-1\r\nResponse: Success\r\n"
    b"Channel: PJSIP/agent1\r\nContext: agents\r\nExten: 100\r\nApplication: \r\nData: \r\n"
    b"Reason: 4\r\nUniqueid: 9a0c1e2f-0000-4000-8000-000000000001\r\n"
    b"CallerIDNum: <unknown>\r\nCallerIDName: <unknown>\r\n\r\n"
)

UTF8 = (
    "Event: NewCallerid\r\nPrivilege: call,all\r\nChannel: PJSIP/anonymous-00000002\r\n"
    "CallerIDNum: +33142685300\r\nCallerIDName: José Müller \u2013 李小龍 🎧\r\n"
    "CID-CallingPres: 0 (Presentation Allowed, Not Screened)\r\n\r\n"
).encode()

# Pitfall 12: queue and agent events exist only on AMI (app_queue.c); they pass through whole.
QUEUE_EVENTS = (
    b"Event: QueueCallerJoin\r\nPrivilege: agent,all\r\n" + _CHANNEL_A + b"Queue: support\r\n"
    b"Position: 1\r\nCount: 1\r\n\r\n"
    b"Event: AgentCalled\r\nPrivilege: agent,all\r\n"
    + _CHANNEL_A
    + b"DestChannel: PJSIP/agent1-00000001\r\nDestUniqueid: 1732270000.1\r\n"
    b"DestLinkedid: 1732270000.0\r\nQueue: support\r\nInterface: PJSIP/agent1\r\n"
    b"MemberName: Agent One\r\n\r\n"
    b"Event: AgentConnect\r\nPrivilege: agent,all\r\n"
    + _CHANNEL_A
    + b"DestChannel: PJSIP/agent1-00000001\r\nDestUniqueid: 1732270000.1\r\n"
    b"Queue: support\r\nInterface: PJSIP/agent1\r\nMemberName: Agent One\r\nHoldTime: 4\r\n"
    b"RingTime: 2\r\n\r\n"
    b"Event: QueueMemberStatus\r\nPrivilege: agent,all\r\nQueue: support\r\n"
    b"MemberName: Agent One\r\nInterface: PJSIP/agent1\r\nStateInterface: PJSIP/agent1\r\n"
    b"Membership: dynamic\r\nPenalty: 0\r\nCallsTaken: 3\r\nLastCall: 1732269000\r\n"
    b"LastPause: 0\r\nLoginTime: 1732260000\r\nInCall: 1\r\nStatus: 2\r\nPaused: 0\r\n"
    b"PausedReason: \r\nRinginuse: 0\r\nWrapuptime: 0\r\n\r\n"
)

TRANSCRIPTS = {
    "login": (("Challenge", "Login"), GREETING + LOGIN),
    "call-events": ((), GREETING + CALL_EVENTS),
    "core-show-channels": (("CoreShowChannels",), GREETING + CORE_SHOW_CHANNELS),
    "command": (("Command",), GREETING + COMMAND),
    "originate": (("Originate",), GREETING + ORIGINATE),
    "utf8": ((), GREETING + UTF8),
    "queue": ((), GREETING + QUEUE_EVENTS),
}


def new_protocol(actions: tuple[str, ...]) -> AmiProtocol:
    protocol = AmiProtocol(action_id_prefix="t-")
    for name in actions:
        protocol.send_action(Action(name))
    return protocol


def replay(actions: tuple[str, ...], chunks: Iterator[bytes] | list[bytes]) -> list[AmiOutput]:
    protocol = new_protocol(actions)
    out: list[AmiOutput] = []
    for chunk in chunks:
        out.extend(protocol.receive_data(chunk))
    out.extend(protocol.receive_eof())
    return out


def whole(name: str) -> list[AmiOutput]:
    actions, data = TRANSCRIPTS[name]
    return replay(actions, [data])


@pytest.mark.parametrize("name", sorted(TRANSCRIPTS))
def test_every_two_way_split_gives_the_same_messages(name: str) -> None:
    actions, data = TRANSCRIPTS[name]
    expected = whole(name)
    for cut in range(len(data) + 1):
        assert replay(actions, [data[:cut], data[cut:]]) == expected, f"split at byte {cut}"


@pytest.mark.parametrize("name", sorted(TRANSCRIPTS))
def test_one_byte_at_a_time_gives_the_same_messages(name: str) -> None:
    actions, data = TRANSCRIPTS[name]
    assert replay(actions, (data[i : i + 1] for i in range(len(data)))) == whole(name)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(TRANSCRIPTS)),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=30),
)
def test_random_splits_give_the_same_messages(name: str, cuts: list[int]) -> None:
    actions, data = TRANSCRIPTS[name]
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert replay(actions, chunks) == whole(name)


def test_bare_newlines_parse_like_crlf() -> None:
    for name, (actions, data) in TRANSCRIPTS.items():
        assert replay(actions, [data.replace(b"\r\n", b"\n")]) == whole(name), name


def test_greeting_is_one_line_without_blank_line() -> None:
    # Pitfall 1: what follows the greeting line is already the first message.
    out = whole("login")
    assert out[0] == Greeting(name="Asterisk Call Manager", version="11.0.0")
    assert isinstance(out[1], ActionResult)


def test_login_transcript_correlates_challenge_and_login() -> None:
    out = whole("login")
    challenge, login, booted, closed = out[1:]
    assert isinstance(challenge, ActionResult)
    assert (challenge.action, challenge.action_id) == ("Challenge", "t-1")
    assert challenge.response.get("Challenge") == "840164437"
    assert isinstance(login, ActionResult)
    assert login.action == "Login"
    assert login.message == "Authentication accepted"
    assert isinstance(booted, Event)
    assert booted.name == "FullyBooted"
    assert closed == ConnectionClosed(lost=())


def test_call_events_keep_every_header_in_order() -> None:
    out = whole("call-events")
    events = [m for m in out if isinstance(m, Event)]
    assert [e.name for e in events] == [
        "Newchannel",
        "Newstate",
        "DialBegin",
        "BridgeEnter",
        "Hangup",
    ]
    newchannel, _, dial, bridge, hangup = events
    assert newchannel.headers[:3] == (
        ("Event", "Newchannel"),
        ("Privilege", "call,all"),
        ("Channel", "PJSIP/anonymous-00000000"),
    )
    assert len(newchannel.headers) == 16  # Event, Privilege, 14 channel fields
    assert newchannel.get("AccountCode") == ""  # "AccountCode: " is an empty value
    assert dial.get("DestUniqueid") == "1732270000.1"
    assert dial.get("destuniqueid") == "1732270000.1"  # keys are case-insensitive
    assert bridge.get("BridgeUniqueid") == "6f1b6c0e-3f0e-4f7d-9d63-3c1f0a6d2b11"
    assert hangup.get("Cause-txt") == "Normal Clearing"
    assert hangup.get("Missing") is None
    assert hangup.get("Missing", "x") == "x"


def test_list_action_collects_items_and_passes_live_events_through() -> None:
    # Pitfalls 2 and 3: correlate by ActionID, items end at EventList: Complete.
    out = whole("core-show-channels")
    assert [type(m).__name__ for m in out] == [
        "Greeting",
        "Event",
        "ActionResult",
        "ConnectionClosed",
    ]
    live, result = out[1], out[2]
    assert isinstance(live, Event)
    assert live.name == "VarSet"
    assert isinstance(result, ActionResult)
    assert result.response.starts_list
    assert [e.get("Channel") for e in result.events] == [
        "PJSIP/anonymous-00000000",
        "PJSIP/agent1-00000001",
    ]
    assert all(e.name == "CoreShowChannel" for e in result.events)
    assert result.complete is not None
    assert result.complete.name == "CoreShowChannelsComplete"
    assert result.complete.get("ListItems") == "2"


def test_command_output_is_one_entry_per_line_with_padding_kept() -> None:
    # Pitfall 4: one Output: header per line, repeated headers kept as a list.
    out = whole("command")
    result = out[1]
    assert isinstance(result, ActionResult)
    assert result.ok
    assert len(result.output) == 5
    assert result.output[0].startswith("Channel     ")
    assert result.output[0].endswith("Application(Data)             ")
    assert result.output[2:] == ("1 active channel", "1 active call", "3 calls processed")
    assert result.response.get("Output") == result.output[0]


def test_originate_response_is_an_event_not_a_response() -> None:
    # Pitfall 7: it carries Event: and Response:; it is an event. The action was already
    # answered by its ack, so the event goes to the application.
    out = whole("originate")
    ack, event = out[1], out[2]
    assert isinstance(ack, ActionResult)
    assert ack.message == "Originate successfully queued"
    assert isinstance(event, Event)
    assert not isinstance(event, Response)
    assert event.name == "OriginateResponse"
    assert event.get("Response") == "Success"
    assert event.action_id == "t-1"


def test_queue_and_agent_events_pass_through_whole() -> None:
    events = [m for m in whole("queue") if isinstance(m, Event)]
    assert [e.name for e in events] == [
        "QueueCallerJoin",
        "AgentCalled",
        "AgentConnect",
        "QueueMemberStatus",
    ]
    assert events[2].get("HoldTime") == "4"
    assert events[3].get("PausedReason") == ""
    assert len(events[3].headers) == 18


def test_utf8_split_inside_a_character_is_decoded_whole() -> None:
    # Pitfall 10: decode per complete message.
    out = whole("utf8")
    event = out[1]
    assert isinstance(event, Event)
    assert event.get("CallerIDName") == "José Müller \u2013 李小龍 🎧"
    data = TRANSCRIPTS["utf8"][1]
    inside = data.index("李".encode()) + 1  # between the bytes of one character
    assert replay((), [data[:inside], data[inside:]]) == out


def test_invalid_utf8_becomes_replacement_characters() -> None:
    data = GREETING + b"Event: NewCallerid\r\nCallerIDName: Jos\xe9 \xff\xfe\r\n\r\n"
    event = replay((), [data])[1]
    assert isinstance(event, Event)
    assert event.get("CallerIDName") == "Jos\ufffd \ufffd\ufffd"


def test_response_error_completes_a_list_action_at_once() -> None:
    data = GREETING + b"Response: Error\r\nActionID: t-1\r\nMessage: Permission denied\r\n\r\n"
    result = replay(("CoreShowChannels",), [data])[1]
    assert isinstance(result, ActionResult)
    assert not result.ok
    assert result.events == ()
    assert result.complete is None
    assert result.error_text == "Permission denied"


def test_replies_out_of_order_are_matched_by_action_id() -> None:
    protocol = new_protocol(("Ping", "Command"))
    out = protocol.receive_data(
        GREETING + b"Response: Success\r\nActionID: t-2\r\nMessage: Command output follows\r\n"
        b"Output: hi\r\n\r\n"
        b"Response: Success\r\nActionID: t-1\r\nPing: Pong\r\nTimestamp: 1.0\r\n\r\n"
    )
    assert [(r.action, r.action_id) for r in out if isinstance(r, ActionResult)] == [
        ("Command", "t-2"),
        ("Ping", "t-1"),
    ]
    assert protocol.pending == ()


def test_events_with_foreign_or_no_action_id_are_plain_events() -> None:
    protocol = new_protocol(("CoreShowChannels",))
    out = protocol.receive_data(
        GREETING
        + b"Response: Success\r\nActionID: t-1\r\nEventList: start\r\n\r\n"
        + b"Event: CoreShowChannel\r\nActionID: other-1\r\nChannel: X\r\n\r\n"
        + b"Event: Hangup\r\nChannel: Y\r\n\r\n"
    )
    assert [m.get("Channel") for m in out if isinstance(m, Event)] == ["X", "Y"]
    assert protocol.pending == ("t-1",)


def test_event_for_a_pending_action_before_its_reply_is_a_plain_event() -> None:
    protocol = new_protocol(("Originate",))
    out = protocol.receive_data(
        GREETING + b"Event: OriginateResponse\r\nActionID: t-1\r\nResponse: Failure\r\n\r\n"
    )
    assert isinstance(out[1], Event)
    assert protocol.pending == ("t-1",)


def test_unmatched_response_is_returned_bare() -> None:
    out = replay((), [GREETING + b"Response: Success\r\nActionID: nobody\r\n\r\n"])
    assert out[1] == Response((("Response", "Success"), ("ActionID", "nobody")))


def test_block_without_event_or_response_is_a_plain_message() -> None:
    out = replay((), [GREETING + b"Foo: bar\r\n\r\n"])
    assert type(out[1]) is Message
    assert out[1] == Message((("Foo", "bar"),))


def test_abandoned_action_late_reply_and_items_are_swallowed() -> None:
    protocol = new_protocol(("CoreShowChannels", "Ping"))
    protocol.abandon("t-1")
    protocol.abandon("t-2")
    assert protocol.pending == ()
    out = protocol.receive_data(
        GREETING
        + b"Response: Success\r\nActionID: t-1\r\nEventList: start\r\n\r\n"
        + b"Event: CoreShowChannel\r\nActionID: t-1\r\nChannel: X\r\n\r\n"
        + b"Event: CoreShowChannelsComplete\r\nActionID: t-1\r\nEventList: Complete\r\n\r\n"
        + b"Response: Success\r\nActionID: t-2\r\nPing: Pong\r\n\r\n"
        + b"Event: CoreShowChannel\r\nActionID: t-1\r\nChannel: late\r\n\r\n"
    )
    # Everything of t-1 and t-2 swallowed; once t-1's list is complete, it is forgotten.
    assert [type(m).__name__ for m in out] == ["Greeting", "Event"]
    assert isinstance(out[1], Event)
    assert out[1].get("Channel") == "late"


def test_abandoned_originate_still_delivers_originate_response() -> None:
    protocol = new_protocol(("Originate",))
    protocol.abandon("t-1")
    out = protocol.receive_data(GREETING + ORIGINATE)
    assert [type(m).__name__ for m in out] == ["Greeting", "Event"]


def test_abandoned_memory_is_bounded() -> None:
    protocol = AmiProtocol(action_id_prefix="t-", abandoned_memory=2)
    for _ in range(3):
        protocol.send_action(Action("Ping"))
    for action_id in ("t-1", "t-2", "t-3"):
        protocol.abandon(action_id)
    out = protocol.receive_data(GREETING + b"Response: Success\r\nActionID: t-1\r\n\r\n")
    assert isinstance(out[1], Response)  # t-1 was forgotten: unmatched, not swallowed


def test_eof_reports_lost_actions() -> None:
    protocol = new_protocol(("Originate", "Ping"))
    protocol.receive_data(GREETING + b"Response: Success\r\nActionID: t-2\r\n\r\n")
    assert protocol.receive_eof() == [ConnectionClosed(lost=("t-1",), truncated=False)]
    assert protocol.pending == ()
    assert protocol.receive_eof() == []


def test_eof_in_the_middle_of_a_message_is_reported_truncated() -> None:
    protocol = new_protocol(("Ping",))
    protocol.receive_data(GREETING + b"Response: Success\r\nActionID: t-1\r\n")
    assert protocol.receive_eof() == [ConnectionClosed(lost=("t-1",), truncated=True)]


def test_action_ids_are_unique_and_prefixed() -> None:
    protocol = AmiProtocol(action_id_prefix="ab12-")
    ids = [protocol.send_action(Action("Ping"))[0] for _ in range(100)]
    assert len(set(ids)) == 100
    assert all(i.startswith("ab12-") for i in ids)


def test_send_action_returns_wire_bytes() -> None:
    protocol = AmiProtocol(action_id_prefix="t-")
    action_id, data = protocol.send_action(Action.build("Command", {"Command": "core show uptime"}))
    assert action_id == "t-1"
    assert data == b"Action: Command\r\nActionID: t-1\r\nCommand: core show uptime\r\n\r\n"
    assert protocol.pending == ("t-1",)


def test_greeting_property() -> None:
    protocol = AmiProtocol()
    assert protocol.greeting is None
    protocol.receive_data(GREETING)
    assert protocol.greeting == Greeting("Asterisk Call Manager", "11.0.0")
