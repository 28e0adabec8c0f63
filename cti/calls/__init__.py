"""The live call model: a normalised in-memory view of Asterisk channels and calls."""

from cti.calls.events import (
    CallEnded,
    CallEvent,
    CallStarted,
    CallUpdated,
    ChannelCreated,
    ChannelEvent,
    ChannelHungUp,
    ChannelUpdated,
    ModelResynced,
)
from cti.calls.model import (
    Call,
    CallModel,
    CallPhase,
    Channel,
    ChannelPhase,
    IllegalTransition,
)

__all__ = [
    "Call",
    "CallEnded",
    "CallEvent",
    "CallModel",
    "CallPhase",
    "CallStarted",
    "CallUpdated",
    "Channel",
    "ChannelCreated",
    "ChannelEvent",
    "ChannelHungUp",
    "ChannelPhase",
    "ChannelUpdated",
    "IllegalTransition",
    "ModelResynced",
]
