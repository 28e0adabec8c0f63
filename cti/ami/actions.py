"""Actions we send to Asterisk, validated when built so a bad one never reaches the wire.

What Asterisk accepts (manager.c, ``get_input`` and ``do_message``):

- a line, terminator included, must fit the session's 1,024-byte input buffer; a longer one is
  discarded with "Line too long" and the action is silently mangled;
- at most 128 headers (``AST_MAX_MANHEADERS``) are kept, the rest dropped without a word;
- a CR or LF inside a value would end the header (or the whole action) early: a value taken
  from a caller ID or a web form could otherwise inject a second action.

So each of these raises ``LocalProtocolError`` here instead. ``Action`` and ``ActionID`` belong
to the protocol core (it allocates ActionIDs), so callers may not set them as headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cti.errors import LocalProtocolError

__all__ = [
    "MAX_ACTION_HEADERS",
    "MAX_ACTION_LINE",
    "Action",
    "HeaderValue",
    "serialize_action",
]

MAX_ACTION_LINE = 1024
"""Bytes per line Asterisk reads, ``\\r\\n`` included (manager.c: ``inbuf[1025]``)."""

MAX_ACTION_HEADERS = 128
"""Headers per action Asterisk keeps, ``Action`` and ``ActionID`` included."""

HeaderValue = str | Sequence[str]
"""A value, or several for a repeated header (``Variable:`` once per variable)."""

_RESERVED = frozenset({"action", "actionid"})
# Longest ActionID line we will ever write; reserved so that header checks done at build time
# still hold once the core adds its ``ActionID:`` line.
_ACTION_ID_MAX = 64


@dataclass(frozen=True, slots=True)
class Action:
    """An action name and its headers in order. Build with ``Action.build`` or directly."""

    name: str
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        _check_token("action name", self.name)
        if len(self.headers) + 2 > MAX_ACTION_HEADERS:
            raise LocalProtocolError(
                f"{self.name}: {len(self.headers)} headers; Asterisk keeps at most "
                f"{MAX_ACTION_HEADERS} including Action and ActionID"
            )
        _check_line("Action", self.name)
        for key, value in self.headers:
            _check_token(f"{self.name}: header name", key)
            if key.lower() in _RESERVED:
                raise LocalProtocolError(f"{self.name}: header {key!r} is set by the protocol core")
            if "\r" in value or "\n" in value:
                raise LocalProtocolError(f"{self.name}: CR/LF in value of header {key!r}")
            _check_line(key, value)

    @classmethod
    def build(
        cls,
        name: str,
        headers: Mapping[str, HeaderValue] | Iterable[tuple[str, str]] | None = None,
    ) -> Action:
        """From a mapping (a list/tuple value repeats the header) or ``(key, value)`` pairs."""
        pairs: list[tuple[str, str]] = []
        if isinstance(headers, Mapping):
            for key, value in headers.items():
                if isinstance(value, str):
                    pairs.append((key, value))
                elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
                    pairs.extend((key, item) for item in value)
                else:
                    raise LocalProtocolError(f"{name}: value of {key!r} must be str or a list")
        elif headers is not None:
            pairs.extend(headers)
        for key, value in pairs:
            if not isinstance(value, str):
                raise LocalProtocolError(f"{name}: value of {key!r} must be str, not {value!r}")
        return cls(name, tuple(pairs))

    def get(self, key: str) -> str | None:
        wanted = key.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


def serialize_action(action: Action, action_id: str) -> bytes:
    """The bytes of ``action`` with ``ActionID: action_id``, ending in a blank line."""
    _check_token("ActionID", action_id)
    if len(action_id) > _ACTION_ID_MAX:
        raise LocalProtocolError(f"ActionID longer than {_ACTION_ID_MAX} characters")
    lines = [f"Action: {action.name}", f"ActionID: {action_id}"]
    lines.extend(f"{key}: {value}" for key, value in action.headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _check_token(what: str, text: str) -> None:
    if not text or not text.strip():
        raise LocalProtocolError(f"empty {what}")
    if "\r" in text or "\n" in text:
        raise LocalProtocolError(f"CR/LF in {what} {text!r}")
    if ":" in text and what.endswith("header name"):
        raise LocalProtocolError(f"':' in {what} {text!r}")


def _check_line(key: str, value: str) -> None:
    size = len(key.encode("utf-8")) + 2 + len(value.encode("utf-8")) + 2
    if size > MAX_ACTION_LINE:
        raise LocalProtocolError(
            f"header {key!r} makes a {size}-byte line; Asterisk reads at most "
            f"{MAX_ACTION_LINE} bytes per line"
        )
