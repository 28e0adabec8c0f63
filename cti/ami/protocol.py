"""The AMI connection core: framing plus ActionID correlation. No sockets, no clock.

One ``AmiProtocol`` lives exactly as long as one TCP session. It

- allocates ActionIDs (``<prefix><counter>``; the client uses a random prefix per connection
  because ``OriginateResponse`` is broadcast to EVERY manager session with ``call`` read
  permission, ActionID included, so two CTI servers on one Asterisk must not both say "1");
- serialises actions (``send_action`` returns the id and the bytes to write);
- turns bytes into outputs: the ``Greeting``, plain ``Event`` objects for the application,
  and one ``ActionResult`` per completed action.

Correlation is by ActionID only, never by order (events interleave with replies):

- a reply without ``EventList: start`` completes its action at once;
- a reply with ``EventList: start`` opens a list: every later event carrying that ActionID is a
  list item, until the event with ``EventList: Complete`` (manager.c, ``astman_send_listack``
  and ``astman_send_list_complete_start``), which completes the action;
- list items are NOT also delivered as plain events. They describe a snapshot the caller asked
  for (``CoreShowChannels`` during resync), not a change; delivering them twice would make a
  consumer apply the same channel twice;
- an event whose ActionID is not an open list of ours (none, a stranger's, ``OriginateResponse``
  for our own async ``Originate`` that was already acknowledged) is a plain event;
- a reply whose ActionID is not pending is returned as a bare ``Response`` for the caller to log.

An action given up by the caller (``abandon``, on timeout or cancellation) is remembered until
its answer arrives, so that its late reply and late list items are swallowed instead of being
mistaken for live events. That memory is bounded.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from cti.ami.actions import Action, serialize_action
from cti.ami.messages import Event, Greeting, Message, Response
from cti.ami.parser import AmiLimits, AmiParser
from cti.errors import RemoteProtocolError

__all__ = ["ActionResult", "AmiOutput", "AmiProtocol", "ConnectionClosed"]


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The complete answer to one action."""

    action: str
    action_id: str
    response: Response
    events: tuple[Event, ...] = ()
    """List items, in order; the closing ``...Complete`` event is not among them."""
    complete: Event | None = None
    """The ``...Complete`` event of a list action (``ListItems: N``), else None."""

    @property
    def ok(self) -> bool:
        return self.response.ok

    @property
    def message(self) -> str | None:
        return self.response.message

    @property
    def output(self) -> tuple[str, ...]:
        """``Command`` output, one entry per line (Asterisk 14+: one ``Output:`` header each,
        manager.c ``action_command``)."""
        return self.response.get_all("Output")

    @property
    def error_text(self) -> str:
        """What to tell a human when ``ok`` is false: the CLI output of a failed ``Command``
        (its ``Message`` is only "Command output follows"), else the ``Message``."""
        if self.output:
            return "\n".join(self.output)
        return self.message or self.response.response or "no message"


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The stream ended; ``lost`` are the ActionIDs that never got a complete answer.

    ``truncated`` is true when it ended in the middle of a message (that message is dropped).
    """

    lost: tuple[str, ...]
    truncated: bool = False


AmiOutput = Greeting | Event | ActionResult | Response | Message | ConnectionClosed
"""What ``receive_data`` yields. A bare ``Response`` or ``Message`` is unmatched noise."""


@dataclass(slots=True)
class _Pending:
    name: str
    response: Response | None = None
    events: list[Event] = field(default_factory=list)


# Abandoned actions: still waiting for the reply, or reply seen and list items still coming.
_AWAITING_REPLY = "reply"
_IN_LIST = "list"


class AmiProtocol:
    def __init__(
        self,
        *,
        action_id_prefix: str = "cti-",
        limits: AmiLimits | None = None,
        abandoned_memory: int = 1024,
    ) -> None:
        self._parser = AmiParser(limits)
        self._prefix = action_id_prefix
        self._counter = 0
        self._pending: dict[str, _Pending] = {}
        self._abandoned: OrderedDict[str, str] = OrderedDict()
        self._abandoned_memory = abandoned_memory
        self._greeting: Greeting | None = None
        self._closed = False

    @property
    def greeting(self) -> Greeting | None:
        return self._greeting

    @property
    def pending(self) -> tuple[str, ...]:
        """ActionIDs sent and not yet completely answered, oldest first."""
        return tuple(self._pending)

    def send_action(self, action: Action) -> tuple[str, bytes]:
        """Allocate an ActionID for ``action``, track it, and return it with the bytes to send."""
        self._counter += 1
        action_id = f"{self._prefix}{self._counter}"
        data = serialize_action(action, action_id)
        self._pending[action_id] = _Pending(action.name)
        return action_id, data

    def abandon(self, action_id: str) -> None:
        """Forget a pending action whose caller gave up; its late answer will be swallowed."""
        pending = self._pending.pop(action_id, None)
        if pending is None:
            return
        self._abandoned[action_id] = _IN_LIST if pending.response is not None else _AWAITING_REPLY
        while len(self._abandoned) > self._abandoned_memory:
            self._abandoned.popitem(last=False)

    def receive_data(self, data: bytes) -> list[AmiOutput]:
        out: list[AmiOutput] = []
        for message in self._parser.receive_data(data):
            if isinstance(message, Greeting):
                self._greeting = message
                out.append(message)
            elif isinstance(message, Event):
                self._on_event(message, out)
            elif isinstance(message, Response):
                self._on_response(message, out)
            else:
                out.append(message)
        return out

    def receive_eof(self) -> list[AmiOutput]:
        """The peer closed. Every pending action is lost (and must not be re-sent blindly)."""
        if self._closed:
            return []
        self._closed = True
        try:
            self._parser.receive_eof()
            truncated = False
        except RemoteProtocolError:
            truncated = True
        lost = tuple(self._pending)
        self._pending.clear()
        return [ConnectionClosed(lost, truncated)]

    def _on_response(self, response: Response, out: list[AmiOutput]) -> None:
        action_id = response.action_id or ""
        pending = self._pending.get(action_id)
        if pending is not None and pending.response is None:
            if response.ok and response.starts_list:
                pending.response = response
            else:
                del self._pending[action_id]
                out.append(ActionResult(pending.name, action_id, response))
            return
        state = self._abandoned.get(action_id)
        if state == _AWAITING_REPLY:
            if response.ok and response.starts_list:
                self._abandoned[action_id] = _IN_LIST
            else:
                del self._abandoned[action_id]
            return
        out.append(response)

    def _on_event(self, event: Event, out: list[AmiOutput]) -> None:
        action_id = event.action_id
        if action_id is None:
            out.append(event)
            return
        pending = self._pending.get(action_id)
        if pending is not None and pending.response is not None:
            if event.completes_list:
                del self._pending[action_id]
                out.append(
                    ActionResult(
                        pending.name, action_id, pending.response, tuple(pending.events), event
                    )
                )
            else:
                pending.events.append(event)
            return
        if self._abandoned.get(action_id) == _IN_LIST:
            if event.completes_list:
                del self._abandoned[action_id]
            return
        out.append(event)
