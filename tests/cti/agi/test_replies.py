from __future__ import annotations

import pytest

from cti.agi.replies import AgiReply, parse_reply


def reply(line: str) -> AgiReply:
    code, _, text = line.partition(" ")
    return parse_reply(int(code), text, line)


@pytest.mark.parametrize(
    ("line", "result", "data", "endpos"),
    [
        ("200 result=0", "0", None, None),
        ("200 result=-1", "-1", None, None),
        ("200 result=-1 endpos=0", "-1", None, 0),
        ("200 result=35 endpos=16000", "35", None, 16000),
        ("200 result=1 (value with spaces)", "1", "value with spaces", None),
        ("200 result=1 ()", "1", "", None),
        ("200 result=1 (f(x) = (y))", "1", "f(x) = (y)", None),
        ("200 result=1 (a) b) endpos=7", "1", "a) b", 7),
        ("200 result= (timeout)", "", "timeout", None),
        ("200 result=123 (timeout)", "123", "timeout", None),
        ("200 result=0 (randomerror) endpos=100", "0", "randomerror", 100),
        ("200 result=53 (dtmf) endpos=4000", "53", "dtmf", 4000),
    ],
)
def test_result_data_endpos(line: str, result: str, data: str | None, endpos: int | None) -> None:
    parsed = reply(line)
    assert (parsed.code, parsed.result, parsed.data, parsed.endpos) == (200, result, data, endpos)
    assert parsed.raw == line


def test_result_int() -> None:
    assert reply("200 result=-1").result_int == -1
    assert reply("200 result= (timeout)").result_int is None
    assert reply("200 result=49").result_int == 49


def test_speech_fields_with_quoted_text() -> None:
    parsed = reply(
        '200 result=1 (speech) endpos=900 results=2 score0=870 text0="yes (please)" '
        'grammar0=yn score1=100 text1="no" grammar1=yn'
    )
    assert parsed.data == "speech"
    assert parsed.endpos == 900
    assert parsed.field("results") == "2"
    assert parsed.field("text0") == "yes (please)"
    assert parsed.field("grammar1") == "yn"
    assert parsed.field("missing") is None


def test_digit_field() -> None:
    parsed = reply("200 result=1 (digit) digit=5 endpos=300")
    assert (parsed.data, parsed.field("digit"), parsed.endpos) == ("digit", "5", 300)


def test_free_text_after_result() -> None:
    assert reply("200 result=0 Gosub complete").text == "Gosub complete"
    assert reply("200 result=-1 Gosub failed").result == "-1"
    interim = reply("100 result=0 Trying...")
    assert interim.interim
    assert interim.text == "Trying..."
    assert not reply("200 result=0").interim


def test_replies_without_result() -> None:
    invalid = reply("510 Invalid or unknown command")
    assert (invalid.code, invalid.result, invalid.text) == (510, "", "Invalid or unknown command")
    dead = reply("511 Command Not Permitted on a dead channel or intercept routine")
    assert dead.code == 511
    assert dead.text.startswith("Command Not Permitted")


def test_memory_failure_reply_keeps_its_result() -> None:
    parsed = reply("503 result=-2 Memory allocation failure")
    assert (parsed.code, parsed.result, parsed.text) == (503, "-2", "Memory allocation failure")


def test_unclosed_data_keeps_what_there_is() -> None:
    assert reply("200 result=1 (never closed").data == "never closed"


def test_many_parentheses_are_bounded_work() -> None:
    value = "x)" * 5000 + " junk"
    parsed = reply(f"200 result=1 ({value}")
    assert parsed.data == "x"  # falls back to the first ")" rather than scanning forever
