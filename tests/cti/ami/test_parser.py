"""AmiParser: limits and malformed input."""

from __future__ import annotations

import pytest

from cti.ami.messages import Event, Greeting, Message
from cti.ami.parser import AmiLimits, AmiParser
from cti.errors import RemoteProtocolError

GREETING = b"Asterisk Call Manager/11.0.0\r\n"


def parser(**limits: int) -> AmiParser:
    p = AmiParser(AmiLimits(**limits))
    assert p.receive_data(GREETING) == [Greeting("Asterisk Call Manager", "11.0.0")]
    return p


def test_not_an_ami_greeting_is_refused() -> None:
    with pytest.raises(RemoteProtocolError, match="not an Asterisk manager greeting"):
        AmiParser().receive_data(b"HTTP/1.1 400 Bad Request\r\n")


def test_empty_first_line_is_not_a_greeting() -> None:
    with pytest.raises(RemoteProtocolError, match="greeting"):
        AmiParser().receive_data(b"\r\n")


def test_greeting_without_version_is_refused() -> None:
    with pytest.raises(RemoteProtocolError):
        AmiParser().receive_data(b"Asterisk Call Manager/\r\n")


def test_greeting_with_bare_newline() -> None:
    assert AmiParser().receive_data(b"Asterisk Call Manager/2.10.6\n") == [
        Greeting("Asterisk Call Manager", "2.10.6")
    ]


def test_line_too_long_is_refused_before_its_end_arrives() -> None:
    p = parser(max_line=100)
    p.receive_data(b"Event: X\r\nValue: " + b"a" * 90)  # 97 bytes so far: still fine
    with pytest.raises(RemoteProtocolError, match="max_line"):
        p.receive_data(b"a" * 10)


def test_complete_line_too_long_is_refused() -> None:
    p = parser(max_line=40)
    with pytest.raises(RemoteProtocolError, match=r"max_line \(40 bytes\)"):
        p.receive_data(b"Event: " + b"x" * 40 + b"\r\n")


def test_line_of_exactly_max_line_is_accepted() -> None:
    p = parser(max_line=40)
    line = b"Event: " + b"x" * 33
    assert len(line) == 40
    (event,) = p.receive_data(line + b"\r\n\r\n")
    assert isinstance(event, Event)


def test_greeting_line_is_limited_too() -> None:
    with pytest.raises(RemoteProtocolError, match="max_line"):
        AmiParser(AmiLimits(max_line=10)).receive_data(b"Asterisk Call Manager/1.0")


def test_message_too_large_is_refused() -> None:
    p = parser(max_message=200)
    with pytest.raises(RemoteProtocolError, match=r"max_message \(200 bytes\)"):
        p.receive_data(b"Event: X\r\n" + b"Output: 0123456789\r\n" * 20)


def test_too_many_headers_is_refused() -> None:
    p = parser(max_headers=5)
    p.receive_data(b"Event: X\r\n" + b"A: 1\r\n" * 4 + b"\r\n")  # exactly 5: fine
    with pytest.raises(RemoteProtocolError, match=r"max_headers \(5\)"):
        p.receive_data(b"Event: X\r\n" + b"A: 1\r\n" * 5)


def test_default_limits() -> None:
    limits = AmiLimits()
    assert (limits.max_line, limits.max_message) == (64 * 1024, 1024 * 1024)
    with pytest.raises(ValueError, match="positive"):
        AmiLimits(max_line=0)


def test_after_an_error_the_parser_stays_failed() -> None:
    p = parser(max_line=30)
    with pytest.raises(RemoteProtocolError):
        p.receive_data(b"x" * 50)
    with pytest.raises(RemoteProtocolError, match="already failed"):
        p.receive_data(b"Event: X\r\n\r\n")


def test_data_after_eof_is_refused() -> None:
    p = parser()
    p.receive_eof()
    with pytest.raises(RemoteProtocolError, match="after end"):
        p.receive_data(b"Event: X\r\n\r\n")


def test_eof_mid_message_raises() -> None:
    p = parser()
    p.receive_data(b"Event: X\r\nChannel: Y")
    with pytest.raises(RemoteProtocolError, match="middle of a message"):
        p.receive_eof()


def test_eof_between_messages_is_clean() -> None:
    p = parser()
    (event,) = p.receive_data(b"Event: X\r\nChannel: Y\r\n\r\n\r\n")  # a spare blank line too
    assert isinstance(event, Event)
    assert event.get("Channel") == "Y"
    assert p.buffered == 0
    p.receive_eof()  # does not raise: nothing was cut off
    # Clean means the stream ended, not that it failed: later data is refused as data after
    # the end, not as the continuation of a failed stream.
    with pytest.raises(RemoteProtocolError, match="after end") as refused:
        p.receive_data(b"Event: Z\r\n\r\n")
    assert "failed" not in str(refused.value)


def test_line_without_colon_is_kept_with_empty_key() -> None:
    p = parser()
    (event,) = p.receive_data(
        b"Event: UserEvent\r\nUserEvent: Note\r\nBody: first line\r\nsecond line\r\n\r\n"
    )
    assert isinstance(event, Event)
    assert event.headers[-1] == ("", "second line")
    assert event.get_all("") == ("second line",)
    assert event.get("Body") == "first line"


def test_value_keeps_colons_and_all_but_one_leading_space() -> None:
    p = parser()
    (event,) = p.receive_data(
        b"Event: X\r\nAddress: 127.0.0.1:5060\r\nOutput:   indented  \r\nNoSpace:v\r\n\r\n"
    )
    assert isinstance(event, Event)
    assert event.get("Address") == "127.0.0.1:5060"
    assert event.get("Output") == "  indented  "
    assert event.get("NoSpace") == "v"


def test_blank_lines_between_messages_make_no_empty_messages() -> None:
    p = parser()
    out = p.receive_data(b"\r\n\r\nEvent: A\r\n\r\n\r\n\n\r\nEvent: B\r\n\r\n")
    assert [m.get("Event") for m in out if isinstance(m, Message)] == ["A", "B"]


def test_lone_cr_inside_a_line_is_kept() -> None:
    p = parser()
    (event,) = p.receive_data(b"Event: X\r\nValue: a\rb\r\n\r\n")
    assert isinstance(event, Event)
    assert event.get("Value") == "a\rb"


def test_actions_can_be_parsed_without_greeting() -> None:
    p = AmiParser(expect_greeting=False)
    (action,) = p.receive_data(b"Action: Ping\r\nActionID: 1\r\n\r\n")
    assert type(action) is Message
    assert action.get("Action") == "Ping"


def test_buffered_counts_unfinished_bytes() -> None:
    p = parser()
    p.receive_data(b"Event: X\r\nPartial")
    assert p.buffered == len(b"Event: X\r\n") + len(b"Partial")
