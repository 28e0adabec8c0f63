"""Actions: serialisation and the limits manager.c puts on input."""

from __future__ import annotations

import pytest

from cti.ami.actions import MAX_ACTION_HEADERS, MAX_ACTION_LINE, Action, serialize_action
from cti.errors import LocalProtocolError


def test_serialises_in_order_with_repeated_headers() -> None:
    action = Action.build(
        "Originate",
        {"Channel": "PJSIP/100", "Variable": ["A=1", "B=2"], "Async": "true"},
    )
    assert serialize_action(action, "x-1") == (
        b"Action: Originate\r\nActionID: x-1\r\nChannel: PJSIP/100\r\n"
        b"Variable: A=1\r\nVariable: B=2\r\nAsync: true\r\n\r\n"
    )


def test_build_from_pairs_and_none() -> None:
    assert Action.build("Ping").headers == ()
    assert Action.build("A", [("K", "1"), ("K", "2")]).headers == (("K", "1"), ("K", "2"))
    assert Action.build("A", {"K": ("1", "2")}).get("k") == "1"


def test_values_are_utf8_on_the_wire() -> None:
    data = serialize_action(Action.build("Setvar", {"Value": "José"}), "1")
    assert "José".encode() in data


@pytest.mark.parametrize(
    ("name", "headers"),
    [
        ("", {}),
        ("   ", {}),
        ("Ping\r\n", {}),
        ("Command", {"Command": "core show uptime\r\nAction: Originate"}),
        ("Command", {"Command": "a\nb"}),
        ("Command", {"Comm\nand": "x"}),
        ("Command", {"": "x"}),
        ("Command", {"Key:": "x"}),
        ("Command", {"ActionID": "mine"}),
        ("Command", {"action": "Other"}),
    ],
)
def test_refuses_what_would_break_the_framing(name: str, headers: dict[str, str]) -> None:
    with pytest.raises(LocalProtocolError):
        Action.build(name, headers)


def test_non_string_values_are_refused() -> None:
    with pytest.raises(LocalProtocolError):
        Action.build("A", {"K": 5})  # type: ignore[arg-type]  # wrong on purpose
    with pytest.raises(LocalProtocolError):
        Action.build("A", {"K": b"bytes"})  # type: ignore[arg-type]  # wrong on purpose
    with pytest.raises(LocalProtocolError):
        Action.build("A", {"K": [1, 2]})  # type: ignore[arg-type]  # wrong on purpose


def test_line_limit_is_1024_bytes_with_crlf() -> None:
    fits = "x" * (MAX_ACTION_LINE - len("Data: ") - 2)
    data = serialize_action(Action.build("A", {"Data": fits}), "1")
    assert max(len(line) + 2 for line in data.split(b"\r\n")) == MAX_ACTION_LINE
    with pytest.raises(LocalProtocolError, match="1024 bytes"):
        Action.build("A", {"Data": fits + "x"})
    # Bytes, not characters: "é" is two bytes.
    with pytest.raises(LocalProtocolError):
        Action.build("A", {"Data": "é" * 510})


def test_header_limit_counts_action_and_action_id() -> None:
    Action.build("A", [("V", "x")] * (MAX_ACTION_HEADERS - 2))
    with pytest.raises(LocalProtocolError, match="128"):
        Action.build("A", [("V", "x")] * (MAX_ACTION_HEADERS - 1))


def test_action_id_is_checked() -> None:
    with pytest.raises(LocalProtocolError):
        serialize_action(Action("Ping"), "a\r\nb")
    with pytest.raises(LocalProtocolError):
        serialize_action(Action("Ping"), "")
    with pytest.raises(LocalProtocolError):
        serialize_action(Action("Ping"), "x" * 65)
