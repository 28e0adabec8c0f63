"""AMI messages as Asterisk sends them: frozen, ordered, with repeated headers kept.

A manager message is a block of ``Key: Value`` lines. Order matters to nobody in theory but
to debugging in practice, and keys repeat in practice: a ``Command`` reply carries one
``Output:`` line per line of CLI output, an event may carry several ``ChanVariable:`` lines
(manager.c, ``ast_manager_build_channel_state_string``). So a message keeps its headers as a
tuple of ``(key, value)`` pairs, exactly as they came, and lookups are case-insensitive because
Asterisk itself compares keys with ``strcasecmp`` (manager.c, ``__astman_get_header``).

Kinds:

- ``Greeting``: the single first line ``Asterisk Call Manager/11.0.0``.
- ``Event``: has an ``Event:`` header. ``OriginateResponse`` carries ``Response:`` too and is
  still an event: classification looks at ``Event`` first.
- ``Response``: has ``Response:`` (Success, Error, Goodbye, Follows).
- ``Message``: neither; kept rather than dropped so nothing Asterisk says is lost.

A line without ``:`` (Asterisk sometimes splits a value that contains a newline, and old
``Response: Follows`` bodies are raw text) is kept as a header with the empty key ``""``, so
``get_all("")`` returns such lines in order. Nothing is raised for it: refusing a whole event
over one odd line would lose a state change for the call model.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Event", "Greeting", "Headers", "Message", "Response", "classify"]

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Greeting:
    """The first line of a manager session, e.g. ``Asterisk Call Manager/11.0.0``."""

    name: str
    version: str


@dataclass(frozen=True, slots=True)
class Message:
    """A block of headers that is neither an event nor a response."""

    headers: Headers

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of ``key`` (case-insensitive), or ``default``."""
        wanted = key.lower()
        for name, value in self.headers:
            if name.lower() == wanted:
                return value
        return default

    def get_all(self, key: str) -> tuple[str, ...]:
        """Every value of ``key`` (case-insensitive), in the order received."""
        wanted = key.lower()
        return tuple(value for name, value in self.headers if name.lower() == wanted)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def to_dict(self) -> dict[str, str]:
        """First value of each key, keys as first spelled; for logging and simple consumers."""
        result: dict[str, str] = {}
        seen: set[str] = set()
        for name, value in self.headers:
            if name.lower() not in seen:
                seen.add(name.lower())
                result[name] = value
        return result


@dataclass(frozen=True, slots=True)
class Response(Message):
    """A reply to an action: ``Response: Success`` / ``Error`` / ``Goodbye`` / ``Follows``."""

    @property
    def response(self) -> str:
        return self.get("Response") or ""

    @property
    def ok(self) -> bool:
        # Goodbye answers Logoff; Follows is the pre-14 Command reply. Neither is a failure.
        return self.response.lower() in ("success", "goodbye", "follows")

    @property
    def message(self) -> str | None:
        return self.get("Message")

    @property
    def starts_list(self) -> bool:
        """True for the first reply of a list action (``EventList: start``, manager.c
        ``astman_send_listack``)."""
        return (self.get("EventList") or "").lower() == "start"


@dataclass(frozen=True, slots=True)
class Event(Message):
    """An event; ``name`` is the value of its ``Event:`` header."""

    @property
    def name(self) -> str:
        return self.get("Event") or ""

    @property
    def completes_list(self) -> bool:
        """True for the last event of a list (``EventList: Complete``, manager.c
        ``astman_send_list_complete_start``)."""
        return (self.get("EventList") or "").lower() == "complete"


def classify(headers: Headers) -> Message:
    """Build the right kind of message for ``headers``: Event first, then Response."""
    probe = Message(headers)
    if probe.get("Event") is not None:
        return Event(headers)
    if probe.get("Response") is not None:
        return Response(headers)
    return probe
