"""What the call model publishes on the event bus when the picture changes.

Every event carries a frozen snapshot of the channel or call *after* the change, so a subscriber
never needs to reach back into the model (which may have moved on by the time it runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cti.calls.model import Call, Channel

__all__ = [
    "CallEnded",
    "CallEvent",
    "CallStarted",
    "CallUpdated",
    "ChannelCreated",
    "ChannelEvent",
    "ChannelHungUp",
    "ChannelUpdated",
    "ModelResynced",
]


@dataclass(frozen=True)
class ChannelEvent:
    channel: Channel
    at: float
    cause: str  # the AMI event (or "resync") that caused the change


@dataclass(frozen=True)
class ChannelCreated(ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelUpdated(ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelHungUp(ChannelEvent):
    pass


@dataclass(frozen=True)
class CallEvent:
    call: Call
    at: float
    cause: str


@dataclass(frozen=True)
class CallStarted(CallEvent):
    pass


@dataclass(frozen=True)
class CallUpdated(CallEvent):
    pass


@dataclass(frozen=True)
class CallEnded(CallEvent):
    pass


@dataclass(frozen=True)
class ModelResynced:
    """The model was reconciled with a ``CoreShowChannels`` snapshot after a (re)connect."""

    at: float
    added: tuple[str, ...]  # uniqueids that were live in Asterisk but unknown to us
    removed: tuple[str, ...]  # uniqueids we held that Asterisk no longer has (ghosts)
    channels: int  # live channels after the resync
