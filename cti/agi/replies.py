"""FastAGI replies: ``200 result=N [(data)] [key=value ...]`` and friends.

What Asterisk 22 sends (res_agi.c unless noted):

- ``200 result=1 (value)`` — GET VARIABLE. The value is written with ``%s`` between
  parentheses and is not escaped, so it may itself contain spaces and ``)``.
- ``200 result=49 endpos=12345`` — STREAM FILE: result is the ASCII code of the escape digit,
  0 when the prompt ended, -1 on failure (missing file or hang-up).
- ``200 result= (timeout)`` — GET DATA after a timeout with no digits: the result is empty.
- ``200 result=1 (speech) endpos=0 results=1 score0=...`` — SPEECH RECOGNIZE, more key=value.
- ``100 result=0 Trying...`` then ``200 result=0 Gosub complete`` — GOSUB (apps/app_stack.c):
  the 1xx line is interim and the real reply follows.
- ``510 Invalid or unknown command`` and ``511 Command Not Permitted on a dead channel or
  intercept routine`` (``agi_handle_command``).
- ``520-Invalid command syntax.  Proper usage follows:`` + usage lines + ``520 End of proper
  usage.`` (or a single ``520 Invalid command syntax.  Proper usage not available.``). The
  connection core joins the lines; this module parses the joined text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["AgiReply", "parse_reply"]

# A "key=value" tail after the data: values are bare words or double-quoted strings (SPEECH
# RECOGNIZE writes text0="..." without escaping; we accept backslash escapes anyway).
_TAIL_TOKEN = re.compile(
    r"""\s*(?:(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>"(?:[^"\\]|\\.)*"|\S*)|(?P<word>\S+))"""
)
_TAIL_FIELDS_ONLY = re.compile(r"""(?:\s+[A-Za-z_][A-Za-z0-9_]*=(?:"(?:[^"\\]|\\.)*"|\S*))*\s*""")
# How many ")" we try from the right before giving up on the "data ends at the last ')' that
# is followed only by key=value fields" rule (bounds the work on hostile input).
_MAX_CLOSE_CANDIDATES = 32


@dataclass(frozen=True)
class AgiReply:
    """One complete reply.

    ``result`` is the text after ``result=`` (may be ``""`` or negative such as ``"-1"``);
    ``""`` for replies without one (510, 511, 520). ``data`` is the text in parentheses after
    the result, ``endpos`` the ``endpos=`` field, ``fields`` every other ``key=value``. ``text``
    is the remaining free text: the message of a 510/511, the whole usage of a 520 (lines
    joined by ``\\n``), ``Gosub complete`` after a GOSUB. ``raw`` is the reply as received.
    """

    code: int
    result: str
    data: str | None = None
    endpos: int | None = None
    fields: tuple[tuple[str, str], ...] = ()
    text: str = ""
    raw: str = ""

    @property
    def interim(self) -> bool:
        """A 1xx reply (GOSUB's ``100 result=0 Trying...``): the real reply is still to come."""
        return 100 <= self.code < 200

    @property
    def result_int(self) -> int | None:
        try:
            return int(self.result)
        except ValueError:
            return None

    def field(self, key: str) -> str | None:
        for name, value in self.fields:
            if name == key:
                return value
        return None


def _data_end(rest: str) -> int:
    """Index of the ``)`` that closes the data in ``rest`` (which starts with ``(``), or -1.

    The data may contain ``)``; it ends at the last ``)`` that is followed only by
    ``key=value`` fields (``endpos=...``). Without such a ``)`` we fall back to the first one.
    """
    position = len(rest)
    for _ in range(_MAX_CLOSE_CANDIDATES):
        position = rest.rfind(")", 1, position)
        if position < 0:
            break
        if _TAIL_FIELDS_ONLY.fullmatch(rest, position + 1):
            return position
    return rest.find(")", 1)


def _parse_tail(tail: str) -> tuple[int | None, list[tuple[str, str]], list[str]]:
    endpos: int | None = None
    fields: list[tuple[str, str]] = []
    words: list[str] = []
    for match in _TAIL_TOKEN.finditer(tail):
        key, value, word = match.group("key", "value", "word")
        if key is None:
            if word:
                words.append(word)
            continue
        if key == "endpos" and value.lstrip("-").isdigit():
            endpos = int(value)
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            fields.append((key, value[1:-1]))
        else:
            fields.append((key, value))
    return endpos, fields, words


def parse_reply(code: int, text: str, raw: str | None = None) -> AgiReply:
    """Parse the text after ``NNN `` (for a multi-line reply, the joined text)."""
    raw = f"{code} {text}" if raw is None else raw
    if not text.startswith("result="):
        return AgiReply(code=code, result="", text=text, raw=raw)
    result, _, rest = text[len("result=") :].partition(" ")
    data: str | None = None
    if rest.startswith("("):
        end = _data_end(rest)
        if end < 0:
            # Unclosed: only possible if the peer closed mid-value; keep what we have.
            data, rest = rest[1:], ""
        else:
            data, rest = rest[1:end], rest[end + 1 :]
    endpos, fields, words = _parse_tail(rest)
    return AgiReply(
        code=code,
        result=result,
        data=data,
        endpos=endpos,
        fields=tuple(fields),
        text=" ".join(words),
        raw=raw,
    )
