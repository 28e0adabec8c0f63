"""Every event the product publishes on its bus, with the name and version it travels under.

Adding an event type to a role means adding a line here; ``tests/app/test_catalogue.py``
round-trips every entry through JSON, and the server's bus reports any published type that is
missing (``EventBus.uncatalogued``), which the server tests assert is empty.
"""

from __future__ import annotations

from acd import events as acd
from acd.agent_state import AgentStateChanged
from acd.figures import QueueStats
from cti.agi.environment import AgiEnvironment
from cti.agi.server import SessionSummary
from cti.calls import events as calls
from cti.calls.model import Call, Channel
from cti.catalogue import Catalogue
from cti.contracts import console
from cti.health import PbxConnectionChanged
from ivr.path import IvrFinished, IvrStarted, IvrStepped
from ivr.registry import IvrReloaded

__all__ = ["CATALOGUE", "build_catalogue"]

_V1: tuple[tuple[str, type], ...] = (
    # The PBX adapter: the live call model and the connection.
    ("pbx.channel_created", calls.ChannelCreated),
    ("pbx.channel_updated", calls.ChannelUpdated),
    ("pbx.channel_hung_up", calls.ChannelHungUp),
    ("pbx.call_started", calls.CallStarted),
    ("pbx.call_updated", calls.CallUpdated),
    ("pbx.call_ended", calls.CallEnded),
    ("pbx.model_resynced", calls.ModelResynced),
    ("pbx.connection_changed", PbxConnectionChanged),
    ("pbx.agi_session_ended", SessionSummary),
    # The IVR.
    ("ivr.started", IvrStarted),
    ("ivr.stepped", IvrStepped),
    ("ivr.finished", IvrFinished),
    ("ivr.reloaded", IvrReloaded),
    # The ACD.
    ("acd.call_queued", acd.CallQueued),
    ("acd.call_offered", acd.CallOffered),
    ("acd.call_answered", acd.CallAnswered),
    ("acd.call_requeued", acd.CallRequeued),
    ("acd.call_abandoned", acd.CallAbandoned),
    ("acd.call_overflowed", acd.CallOverflowed),
    ("acd.call_ended", acd.CallEnded),
    ("acd.callback_scheduled", acd.CallbackScheduled),
    ("acd.callback_failed", acd.CallbackFailed),
    ("acd.repaired", acd.AcdRepaired),
    ("acd.queue_stats_changed", acd.QueueStatsChanged),
    ("acd.agent_state_changed", AgentStateChanged),
    ("acd.wrap_up_ended", acd.WrapUpEnded),
    # The consoles.
    ("console.supervisor_action", console.SupervisorAction),
    ("console.wrap_up_recorded", console.WrapUpRecorded),
    ("console.call_controlled", console.CallControlled),
)


def build_catalogue() -> Catalogue:
    # Names the events' annotations use only under TYPE_CHECKING (cti.calls.events) or as
    # ``object`` fields whose real type is known here (QueueStatsChanged.stats).
    catalogue = Catalogue(
        names={
            "Call": Call,
            "Channel": Channel,
            "AgiEnvironment": AgiEnvironment,
            "QueueStats": QueueStats,
        }
    )
    for name, event_type in _V1:
        catalogue.register(name, 1, event_type)
    return catalogue


CATALOGUE = build_catalogue()
