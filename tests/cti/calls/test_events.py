"""Tests for the call model's bus events (cti/calls/events.py)."""

from __future__ import annotations

import dataclasses

import pytest

from cti.bus import EventBus
from cti.calls import (
    CallEvent,
    CallModel,
    CallStarted,
    ChannelCreated,
    ChannelEvent,
    ChannelHungUp,
    ChannelUpdated,
    ModelResynced,
)

SNAPSHOT = {
    "Channel": "PJSIP/trunk-00000001",
    "ChannelState": "4",
    "ChannelStateDesc": "Ring",
    "CallerIDNum": "5551234",
    "CallerIDName": "Alice Caller",
    "ConnectedLineNum": "<unknown>",
    "ConnectedLineName": "<unknown>",
    "Language": "en",
    "AccountCode": "",
    "Context": "from-pstn",
    "Exten": "5551000",
    "Priority": "1",
    "Uniqueid": "1732300000.1",
    "Linkedid": "1732300000.1",
}


def test_events_are_frozen() -> None:
    [created, started] = CallModel().apply("Newchannel", SNAPSHOT, 1.0)
    assert isinstance(created, ChannelCreated)
    assert isinstance(started, CallStarted)
    with pytest.raises(dataclasses.FrozenInstanceError):
        created.cause = "x"  # type: ignore[misc]  # assigning to a frozen dataclass is the test
    with pytest.raises(dataclasses.FrozenInstanceError):
        started.call.channels[0].name = "x"  # type: ignore[misc]  # same, one level down
    resynced = ModelResynced(at=1.0, added=(), removed=(), channels=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        resynced.channels = 1  # type: ignore[misc]  # same


def test_subscribers_can_listen_to_a_family_of_events() -> None:
    # The bus delivers by class including bases: ChannelEvent catches created/updated/hung up.
    bus = EventBus()
    channel_events: list[ChannelEvent] = []
    call_events: list[CallEvent] = []
    bus.subscribe(ChannelEvent, channel_events.append)
    bus.subscribe(CallEvent, call_events.append)
    model = CallModel()
    changes = [
        *model.apply("Newchannel", SNAPSHOT, 1.0),
        *model.apply("Newstate", {**SNAPSHOT, "ChannelState": "6", "ChannelStateDesc": "Up"}, 2),
        *model.apply("Hangup", {**SNAPSHOT, "Cause": "16", "Cause-txt": "Normal Clearing"}, 3),
    ]
    for change in changes:
        bus.publish(change)
    assert [type(e) for e in channel_events] == [ChannelCreated, ChannelUpdated, ChannelHungUp]
    assert [type(e).__name__ for e in call_events] == ["CallStarted", "CallUpdated", "CallEnded"]
