"""Command encoding, checked against a re-implementation of Asterisk's own splitter.

``asterisk_parse_args`` follows the rules of ``parse_args`` in res_agi.c (written from its
behaviour, not copied): whitespace separates words, ``"`` toggles quoting and starts a word,
``\\`` makes the next character literal.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti.agi.commands import AGI_BUF_LEN, MAX_WORDS, format_command, quote_argument
from cti.errors import LocalProtocolError


def asterisk_parse_args(line: str) -> list[str]:
    words: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if current is None:
                current = []
            continue
        if char in " \t" and not quoted and not escaped:
            if current is not None:
                words.append("".join(current))
                current = None
            continue
        if char == "\\" and not escaped:
            escaped = True
            continue
        if current is None:
            current = []
        current.append(char)
        escaped = False
    if current is not None:
        words.append("".join(current))
    return words


@pytest.mark.parametrize(
    ("args", "wire"),
    [
        ((), b"ANSWER\n"),
        (("welcome",), b'ANSWER "welcome"\n'),
        (("",), b'ANSWER ""\n'),
        (("two words",), b'ANSWER "two words"\n'),
        (('say "hi"',), b'ANSWER "say \\"hi\\""\n'),
        (("C:\\dir\\",), b'ANSWER "C:\\\\dir\\\\"\n'),
        (("Jürgen",), 'ANSWER "Jürgen"\n'.encode()),
        (("a\tb",), b'ANSWER "a\tb"\n'),
    ],
)
def test_quoting(args: tuple[str, ...], wire: bytes) -> None:
    assert format_command("ANSWER", *args) == wire


def test_multi_word_command_names_stay_bare() -> None:
    line = format_command("STREAM FILE", "welcome", "", "0")
    assert line == b'STREAM FILE "welcome" "" "0"\n'
    assert asterisk_parse_args(line.decode().rstrip("\n")) == ["STREAM", "FILE", "welcome", "", "0"]


_SENDABLE = st.characters(exclude_characters="\r\n\x00", exclude_categories=["Cs"])


@given(st.lists(st.text(alphabet=_SENDABLE), max_size=10))
def test_asterisk_reads_back_exactly_what_we_meant(args: list[str]) -> None:
    line = format_command("SET VARIABLE", *args).decode()
    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert asterisk_parse_args(line[:-1]) == ["SET", "VARIABLE", *args]


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "\n", "trailing\r\n", "nul\x00"])
def test_line_breaks_and_nul_are_refused(bad: str) -> None:
    with pytest.raises(LocalProtocolError):
        format_command("VERBOSE", bad)
    with pytest.raises(LocalProtocolError):
        quote_argument(bad)


@pytest.mark.parametrize("name", ["", "answer\n", "STREAM  FILE", " ANSWER", 'EXEC "x"', "A;B"])
def test_command_names_are_checked(name: str) -> None:
    with pytest.raises(LocalProtocolError):
        format_command(name)


def test_word_limit() -> None:
    # parse_args keeps MAX_ARGS - 1 words, command words included.
    assert MAX_WORDS == 127
    format_command("EXEC", *(["x"] * (MAX_WORDS - 1)))
    with pytest.raises(LocalProtocolError, match="127"):
        format_command("EXEC", *(["x"] * MAX_WORDS))
    with pytest.raises(LocalProtocolError):
        format_command("SET VARIABLE", *(["x"] * (MAX_WORDS - 1)))


def test_line_length_limit() -> None:
    # 'VERBOSE "' + body + '"\n' must fit fgets into AGI_BUF_LEN, i.e. at most 8191 bytes.
    fits = "x" * (AGI_BUF_LEN - 1 - len('VERBOSE ""\n'))
    assert len(format_command("VERBOSE", fits)) == AGI_BUF_LEN - 1
    with pytest.raises(LocalProtocolError, match="8191"):
        format_command("VERBOSE", fits + "x")


def test_length_limit_counts_utf8_bytes_not_characters() -> None:
    with pytest.raises(LocalProtocolError):
        format_command("VERBOSE", "ü" * 4096)  # 4096 characters, 8192 bytes


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="not valid Unicode"):
        format_command("VERBOSE", "\ud800")


def test_non_string_argument_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        format_command("SAY NUMBER", 5)  # type: ignore[arg-type]  # the runtime check under test
