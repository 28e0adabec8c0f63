"""Messages: ordered, repeatable, case-insensitive headers; classification."""

from __future__ import annotations

import dataclasses

import pytest

from cti.ami.messages import Event, Message, Response, classify

CHANVARS = (
    ("Event", "Newexten"),
    ("Channel", "PJSIP/a-1"),
    ("ChanVariable", "CDR(src)=100"),
    ("chanvariable", "QUEUE=support"),
    ("ChanVariable", "LANG=fr"),
)


def test_repeated_headers_are_kept_in_order() -> None:
    event = classify(CHANVARS)
    assert event.get_all("ChanVariable") == ("CDR(src)=100", "QUEUE=support", "LANG=fr")
    assert event.get("CHANVARIABLE") == "CDR(src)=100"
    assert event.get_all("nothing") == ()


def test_classification_looks_at_event_first() -> None:
    assert type(classify((("Response", "Success"), ("Event", "OriginateResponse")))) is Event
    assert type(classify((("Response", "Success"),))) is Response
    assert type(classify((("Foo", "bar"),))) is Message


def test_messages_are_frozen_and_compare_by_kind_and_headers() -> None:
    event = Event((("Event", "X"),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.headers = ()  # type: ignore[misc]  # assigning on purpose, to see it refused
    assert event == Event((("Event", "X"),))
    assert event != Message((("Event", "X"),))


def test_response_helpers() -> None:
    ok = Response((("Response", "Success"), ("EventList", "start"), ("Message", "m")))
    assert ok.ok
    assert ok.starts_list
    assert ok.message == "m"
    assert Response((("Response", "Goodbye"),)).ok
    assert Response((("Response", "Follows"),)).ok
    assert not Response((("Response", "Error"),)).ok
    assert not Response((("Response", "Error"),)).starts_list


def test_event_helpers() -> None:
    complete = Event((("Event", "XComplete"), ("EventList", "Complete"), ("ActionID", "a")))
    assert complete.completes_list
    assert complete.name == "XComplete"
    assert complete.action_id == "a"
    assert not Event((("Event", "X"),)).completes_list


def test_contains_and_to_dict() -> None:
    event = classify(CHANVARS)
    assert "channel" in event
    assert "Missing" not in event
    assert 3 not in event
    assert event.to_dict() == {
        "Event": "Newexten",
        "Channel": "PJSIP/a-1",
        "ChanVariable": "CDR(src)=100",
    }
