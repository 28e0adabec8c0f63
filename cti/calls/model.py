"""The live call model: channels and calls, built from AMI events, as a transition table.

Theory of operation
-------------------
Asterisk describes a call as channels. Since Asterisk 12 every channel event carries the full
"standard channel snapshot" (``Channel``, ``ChannelState``, ``CallerIDNum``, ``Uniqueid``,
``Linkedid`` ...; see main/manager_channels.c, ``ast_manager_build_channel_state_string``), so
any channel event is enough to (re)create a channel we did not know — which happens when we
connect in the middle of a call. A *call* is the set of live channels sharing a ``Linkedid``.

Each channel has a coarse lifecycle *phase*; AMI events are classified into *kinds*, and the
table ``TRANSITIONS`` says, for (phase, kind), which phase follows. A pair missing from the table
is an ``IllegalTransition``: the event is refused and the channel keeps its phase (the tracker
counts and logs it; a resync will repair anything we misread). Events that only change fields
(caller id, extension, hold, dial progress) do not move the phase and are not in the table.

Reconnects: AMI events are lost while disconnected, so after each login the tracker calls
``begin_resync``, asks Asterisk for ``CoreShowChannels``, and hands the items to
``finish_resync``. Events keep being applied meanwhile. Reconciliation rules:
- a channel in the snapshot that we do not hold is added (unless it hung up while the snapshot
  was on its way: a tombstone says so);
- a channel we held *before* the resync began that the snapshot lacks is a ghost and removed;
- a channel first seen *after* the resync began is kept (the snapshot may predate it).

The model is pure: no I/O, no clock. Callers pass ``now``; every change is returned as events
(see ``cti.calls.events``) for the caller to publish.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from cti.calls.events import (
    CallEnded,
    CallStarted,
    CallUpdated,
    ChannelCreated,
    ChannelHungUp,
    ChannelUpdated,
    ModelResynced,
)
from cti.errors import CtiError

__all__ = [
    "TRANSITIONS",
    "Call",
    "CallModel",
    "CallPhase",
    "Channel",
    "ChannelPhase",
    "EventKind",
    "IllegalTransition",
    "ResyncToken",
]


class ChannelPhase(enum.Enum):
    ABSENT = "absent"  # not (yet) known to the model
    PRE_ANSWER = "pre_answer"  # down, dialing, ringing: not answered
    UP = "up"  # answered, not in a bridge (IVR, playback, hold music alone)
    BRIDGED = "bridged"  # answered and in a bridge (talking to someone)
    GONE = "gone"  # hung up


class EventKind(enum.Enum):
    SEEN_PRE_ANSWER = "seen_pre_answer"  # Newchannel/Newstate (or any snapshot) not Up
    SEEN_UP = "seen_up"  # Newchannel/Newstate (or any snapshot) with ChannelState 6 (Up)
    BRIDGE_ENTER = "bridge_enter"
    BRIDGE_LEAVE = "bridge_leave"
    HANGUP = "hangup"


_P = ChannelPhase
_K = EventKind

# (phase, kind) -> next phase. Anything absent is illegal.
TRANSITIONS: Mapping[tuple[ChannelPhase, EventKind], ChannelPhase] = {
    # First sight of a channel: by Newchannel, or by any later event when we connected mid-call.
    (_P.ABSENT, _K.SEEN_PRE_ANSWER): _P.PRE_ANSWER,
    (_P.ABSENT, _K.SEEN_UP): _P.UP,
    (_P.ABSENT, _K.BRIDGE_ENTER): _P.BRIDGED,
    (_P.ABSENT, _K.BRIDGE_LEAVE): _P.UP,
    (_P.ABSENT, _K.HANGUP): _P.GONE,  # a hangup for a channel we never saw: tombstone only
    (_P.PRE_ANSWER, _K.SEEN_PRE_ANSWER): _P.PRE_ANSWER,  # e.g. Down -> Ring -> Ringing
    (_P.PRE_ANSWER, _K.SEEN_UP): _P.UP,
    # Local channels and early media can be bridged before answer (core_local.c).
    (_P.PRE_ANSWER, _K.BRIDGE_ENTER): _P.BRIDGED,
    (_P.PRE_ANSWER, _K.BRIDGE_LEAVE): _P.PRE_ANSWER,
    (_P.PRE_ANSWER, _K.HANGUP): _P.GONE,
    (_P.UP, _K.SEEN_UP): _P.UP,
    (_P.UP, _K.BRIDGE_ENTER): _P.BRIDGED,
    (_P.UP, _K.BRIDGE_LEAVE): _P.UP,  # after a resync we may not have known it was bridged
    (_P.UP, _K.HANGUP): _P.GONE,
    (_P.BRIDGED, _K.SEEN_UP): _P.BRIDGED,
    (_P.BRIDGED, _K.BRIDGE_ENTER): _P.BRIDGED,  # moved from one bridge to another
    (_P.BRIDGED, _K.BRIDGE_LEAVE): _P.UP,
    (_P.BRIDGED, _K.HANGUP): _P.GONE,
}
# Not in the table on purpose: an answered channel going back to ringing (UP/BRIDGED +
# SEEN_PRE_ANSWER) and anything after GONE (late events for a dead channel are dropped earlier,
# by the tombstones, so they never reach the table).


class IllegalTransition(CtiError):
    def __init__(self, uniqueid: str, phase: ChannelPhase, kind: EventKind, event: str) -> None:
        self.uniqueid = uniqueid
        self.phase = phase
        self.kind = kind
        self.event = event
        super().__init__(f"channel {uniqueid}: {event} ({kind.value}) not allowed in {phase.value}")


class CallPhase(enum.Enum):
    RINGING = "ringing"  # no channel answered yet
    ACTIVE = "active"  # answered, not talking to anyone (IVR, queue music, announcement)
    CONNECTED = "connected"  # two or more channels bridged together
    HELD = "held"  # someone in the call put it on hold
    ENDED = "ended"


# Asterisk's channel states, include/asterisk/channelstate.h.
_STATE_UP = 6
_UNKNOWN = "<unknown>"  # what AMI prints for an empty caller id


@dataclass(frozen=True)
class Channel:
    uniqueid: str
    linkedid: str
    name: str
    phase: ChannelPhase
    state: int
    state_desc: str
    caller_num: str = ""
    caller_name: str = ""
    connected_num: str = ""
    connected_name: str = ""
    context: str = ""
    exten: str = ""
    priority: int = 0
    account_code: str = ""
    language: str = ""
    created_at: float = 0.0
    answered_at: float | None = None
    bridge_id: str | None = None
    on_hold: bool = False
    dialed_by: str | None = None  # uniqueid of the channel that dialed this one (DialBegin)
    dial_status: str | None = None  # DialEnd's DialStatus (ANSWER, NOANSWER, BUSY ...)
    hangup_cause: int | None = None
    hangup_cause_text: str = ""


@dataclass(frozen=True)
class Call:
    linkedid: str
    phase: CallPhase
    channels: tuple[Channel, ...]  # live channels, oldest first
    started_at: float
    answered_at: float | None
    ended_at: float | None
    caller_num: str  # of the originating channel (the one whose uniqueid is the linkedid)
    caller_name: str
    dnis: str  # extension the originating channel first entered


@dataclass(frozen=True)
class ResyncToken:
    known_before: frozenset[str]
    tombstone_mark: int  # value of the hangup counter when the resync began


@dataclass
class _CallRecord:
    started_at: float
    caller_num: str
    caller_name: str
    dnis: str
    members: list[str] = field(default_factory=list)  # uniqueids, oldest first
    answered_at: float | None = None
    last_phase: CallPhase | None = None
    # Whether caller_num/caller_name came from the originating channel; until it is seen (we
    # connected mid-call and met another channel of the call first) they are a stand-in.
    from_origin: bool = False


# Events that carry the standard channel snapshot and may change the phase.
_PHASE_EVENTS = {"Newchannel", "Newstate", "BridgeEnter", "BridgeLeave", "Hangup"}
# Events that only refresh fields of an existing channel (and may reveal an unknown one).
_FIELD_EVENTS = {
    "NewCallerid",
    "NewConnectedLine",
    # Asterisk raises "Newexten" although its XML documentation spells it "NewExten"
    # (main/manager_channels.c, channel_newexten); accept both.
    "Newexten",
    "NewExten",
    "NewAccountCode",
    "Hold",
    "Unhold",
    "HangupRequest",
    "SoftHangupRequest",
}
_DIAL_EVENTS = {"DialBegin", "DialEnd"}
# Rename carries only Channel, Newname and Uniqueid, no snapshot (main/channel.c,
# __ast_change_name_nolink): it can neither move the phase nor introduce a channel.
_RENAME = "Rename"

HANDLED_EVENTS: frozenset[str] = frozenset(_PHASE_EVENTS | _FIELD_EVENTS | _DIAL_EVENTS | {_RENAME})


def _classify(event: str, fields: Mapping[str, str]) -> EventKind | None:
    if event == "Hangup":
        return _K.HANGUP
    if event == "BridgeEnter":
        return _K.BRIDGE_ENTER
    if event == "BridgeLeave":
        return _K.BRIDGE_LEAVE
    if event in ("Newchannel", "Newstate") or event in _FIELD_EVENTS:
        return _K.SEEN_UP if _int(fields.get("ChannelState")) == _STATE_UP else _K.SEEN_PRE_ANSWER
    return None


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _text(value: str | None) -> str:
    return "" if value is None or value == _UNKNOWN else value


class CallModel:
    """Channels by uniqueid and calls by linkedid; see the module docstring."""

    def __init__(self, *, tombstones: int = 10_000) -> None:
        self._channels: dict[str, Channel] = {}
        self._calls: dict[str, _CallRecord] = {}
        self._seq = 0
        # Recently hung-up uniqueids -> sequence number of the hangup. Bounded: late events for
        # a channel older than that are rare and harmless (they would re-create it until the
        # next resync removes it).
        self._tombstones: OrderedDict[str, int] = OrderedDict()
        self._tombstone_limit = tombstones
        self.illegal_transitions = 0
        self.late_events = 0

    # -- queries ---------------------------------------------------------------------------

    @property
    def channels(self) -> Mapping[str, Channel]:
        return self._channels

    def channel(self, uniqueid: str) -> Channel | None:
        return self._channels.get(uniqueid)

    def call(self, linkedid: str) -> Call | None:
        record = self._calls.get(linkedid)
        return None if record is None else self._snapshot(linkedid, record, ended_at=None)

    def calls(self) -> list[Call]:
        return [self._snapshot(lid, rec, ended_at=None) for lid, rec in self._calls.items()]

    # -- applying AMI events ---------------------------------------------------------------

    def apply(self, event: str, fields: Mapping[str, str], now: float) -> list[object]:
        """Apply one AMI event (its name and headers). Returns the changes to publish.

        Raises ``IllegalTransition`` when the table forbids the change; the model is left
        exactly as it was.
        """
        if event in _DIAL_EVENTS:
            return self._apply_dial(event, fields, now)
        if event == _RENAME:
            return self._apply_rename(fields, now)
        return self._apply(event, fields, now, cause=event)

    def _apply(
        self, event: str, fields: Mapping[str, str], now: float, *, cause: str
    ) -> list[object]:
        kind = _classify(event, fields)
        uniqueid = fields.get("Uniqueid")
        if kind is None or not uniqueid:
            return []
        self._seq += 1
        if uniqueid in self._tombstones:
            self.late_events += 1
            return []
        current = self._channels.get(uniqueid)
        phase = current.phase if current else _P.ABSENT
        target = TRANSITIONS.get((phase, kind))
        if target is None:
            self.illegal_transitions += 1
            raise IllegalTransition(uniqueid, phase, kind, event)
        if target is _P.GONE:
            return self._remove(uniqueid, fields, now, cause=cause)
        updated = self._merge(current, fields, target, now, event)
        return self._store(current, updated, now, cause=cause)

    def _merge(
        self,
        current: Channel | None,
        fields: Mapping[str, str],
        phase: ChannelPhase,
        now: float,
        event: str,
    ) -> Channel:
        base = current or Channel(
            uniqueid=fields["Uniqueid"],
            linkedid=fields.get("Linkedid") or fields["Uniqueid"],
            name=fields.get("Channel", ""),
            phase=phase,
            state=0,
            state_desc="",
            created_at=now,
        )
        changes: dict[str, object] = {"phase": phase}
        if "ChannelState" in fields:
            changes["state"] = _int(fields["ChannelState"])
        for attr, key in (
            ("state_desc", "ChannelStateDesc"),
            ("caller_num", "CallerIDNum"),
            ("caller_name", "CallerIDName"),
            ("connected_num", "ConnectedLineNum"),
            ("connected_name", "ConnectedLineName"),
            ("context", "Context"),
            ("exten", "Exten"),
            ("account_code", "AccountCode"),
            ("language", "Language"),
        ):
            if key in fields:
                changes[attr] = _text(fields[key])
        if "Priority" in fields:
            changes["priority"] = _int(fields["Priority"])
        if fields.get("Linkedid"):
            changes["linkedid"] = fields["Linkedid"]
        if fields.get("Channel"):
            changes["name"] = fields["Channel"]
        if phase in (_P.UP, _P.BRIDGED) and base.answered_at is None:
            changes["answered_at"] = now
        if event == "BridgeEnter":
            changes["bridge_id"] = fields.get("BridgeUniqueid") or None
        elif event == "BridgeLeave":
            changes["bridge_id"] = None
        elif event == "Hold":
            changes["on_hold"] = True
        elif event == "Unhold":
            changes["on_hold"] = False
        return replace(base, **changes)  # type: ignore[arg-type]  # keys are Channel fields

    def _apply_dial(self, event: str, fields: Mapping[str, str], now: float) -> list[object]:
        # DialBegin/DialEnd describe two channels: the caller (plain keys; absent when the dial
        # comes from an Originate) and the callee (keys prefixed "Dest"), main/manager_channels.c.
        out: list[object] = []
        dest = {k[4:]: v for k, v in fields.items() if k.startswith("Dest")}
        caller_id = fields.get("Uniqueid")
        if caller_id and caller_id not in self._tombstones and caller_id not in self._channels:
            # First sight of the caller.
            out += self._apply("Newstate", fields, now, cause=event)
        dest_id = dest.get("Uniqueid")
        if not dest_id:
            return out
        if dest_id in self._tombstones:
            self.late_events += 1
            return out
        if dest_id not in self._channels:
            out += self._apply("Newstate", dest, now, cause=event)
        current = self._channels[dest_id]
        if event == "DialBegin":
            updated = replace(current, dialed_by=caller_id or None, dial_status=None)
        else:
            updated = replace(current, dial_status=fields.get("DialStatus") or None)
        out += self._store(current, updated, now, cause=event)
        return out

    def _apply_rename(self, fields: Mapping[str, str], now: float) -> list[object]:
        uniqueid = fields.get("Uniqueid")
        if not uniqueid:
            return []
        if uniqueid in self._tombstones:
            self.late_events += 1
            return []
        current = self._channels.get(uniqueid)
        new_name = fields.get("Newname")
        if current is None or not new_name:
            return []  # no snapshot to build an unknown channel from; a resync will add it
        return self._store(current, replace(current, name=new_name), now, cause=_RENAME)

    # -- storing and removing --------------------------------------------------------------

    def _store(
        self, current: Channel | None, updated: Channel, now: float, *, cause: str
    ) -> list[object]:
        if updated == current:
            return []
        out: list[object] = []
        uid = updated.uniqueid
        self._channels[uid] = updated
        if current is None:
            out.append(ChannelCreated(updated, now, cause))
        else:
            out.append(ChannelUpdated(updated, now, cause))
        if current is not None and current.linkedid != updated.linkedid:
            out += self._leave_call(current.linkedid, uid, now, cause)
        out += self._join_call(updated, now, cause)
        return out

    def _join_call(self, channel: Channel, now: float, cause: str) -> list[object]:
        lid = channel.linkedid
        record = self._calls.get(lid)
        started = record is None
        if record is None:
            origin = channel if channel.uniqueid == lid else None
            record = _CallRecord(
                started_at=channel.created_at if origin else now,
                caller_num=origin.caller_num if origin else channel.caller_num,
                caller_name=origin.caller_name if origin else channel.caller_name,
                dnis=origin.exten if origin else "",
                from_origin=origin is not None,
            )
            self._calls[lid] = record
        joined = channel.uniqueid not in record.members
        if joined:
            record.members.append(channel.uniqueid)
        if channel.uniqueid == lid and not record.from_origin:
            # The originating channel shows up after another one of its call.
            record.caller_num = channel.caller_num
            record.caller_name = channel.caller_name
            record.from_origin = True
        if channel.uniqueid == lid and not record.dnis and channel.exten:
            record.dnis = channel.exten  # the originating channel's first extension
        if record.answered_at is None and channel.answered_at is not None:
            record.answered_at = channel.answered_at
        call = self._snapshot(lid, record, ended_at=None)
        if started:
            record.last_phase = call.phase
            return [CallStarted(call, now, cause)]
        # Publish a call update only when something a subscriber cares about changed: its
        # phase or its membership (the channel events already carry the field changes).
        if call.phase != record.last_phase or joined:
            record.last_phase = call.phase
            return [CallUpdated(call, now, cause)]
        return []

    def _leave_call(self, linkedid: str, uniqueid: str, now: float, cause: str) -> list[object]:
        record = self._calls.get(linkedid)
        if record is None or uniqueid not in record.members:
            return []
        record.members.remove(uniqueid)
        if not record.members:
            del self._calls[linkedid]
            return [CallEnded(self._snapshot(linkedid, record, ended_at=now), now, cause)]
        call = self._snapshot(linkedid, record, ended_at=None)
        record.last_phase = call.phase
        return [CallUpdated(call, now, cause)]

    def _remove(
        self, uniqueid: str, fields: Mapping[str, str], now: float, *, cause: str
    ) -> list[object]:
        self._tombstones[uniqueid] = self._seq
        while len(self._tombstones) > self._tombstone_limit:
            self._tombstones.popitem(last=False)
        current = self._channels.pop(uniqueid, None)
        if current is None:
            return []
        gone = replace(
            current,
            phase=_P.GONE,
            bridge_id=None,
            hangup_cause=_int(fields.get("Cause"), 0) if "Cause" in fields else None,
            hangup_cause_text=fields.get("Cause-txt", ""),
        )
        return [
            ChannelHungUp(gone, now, cause),
            *self._leave_call(current.linkedid, uniqueid, now, cause),
        ]

    def _snapshot(self, linkedid: str, record: _CallRecord, *, ended_at: float | None) -> Call:
        channels = tuple(self._channels[u] for u in record.members if u in self._channels)
        return Call(
            linkedid=linkedid,
            phase=CallPhase.ENDED if ended_at is not None else _call_phase(channels),
            channels=channels,
            started_at=record.started_at,
            answered_at=record.answered_at,
            ended_at=ended_at,
            caller_num=record.caller_num,
            caller_name=record.caller_name,
            dnis=record.dnis,
        )

    # -- resync ----------------------------------------------------------------------------

    def begin_resync(self) -> ResyncToken:
        self._seq += 1
        return ResyncToken(frozenset(self._channels), self._seq)

    def finish_resync(
        self, token: ResyncToken, items: Iterable[Mapping[str, str]], now: float
    ) -> list[object]:
        """Reconcile with ``CoreShowChannel`` items gathered since ``begin_resync``."""
        out: list[object] = []
        seen: set[str] = set()
        added: list[str] = []
        for item in items:
            uid = item.get("Uniqueid")
            if not uid:
                continue
            seen.add(uid)
            hung_up_at = self._tombstones.get(uid)
            if hung_up_at is not None and hung_up_at >= token.tombstone_mark:
                continue  # hung up while the snapshot was on its way: do not resurrect
            self._tombstones.pop(uid, None)
            current = self._channels.get(uid)
            bridged = bool(item.get("BridgeId"))
            up = _int(item.get("ChannelState")) == _STATE_UP
            phase = _P.BRIDGED if bridged else (_P.UP if up else _P.PRE_ANSWER)
            if current is not None and current.phase is _P.BRIDGED and not bridged:
                phase = _P.UP if up else _P.PRE_ANSWER
            merged = self._merge(current, item, phase, now, "resync")
            # The snapshot is the truth for bridging; it names the bridge as BridgeId.
            merged = replace(merged, bridge_id=item.get("BridgeId") or None)
            if current is None:
                added.append(uid)
            out += self._store(current, merged, now, cause="resync")
        # In the model's order (oldest first), not the token's set order, so the events come
        # out the same on every run.
        removed = [uid for uid in self._channels if uid in token.known_before and uid not in seen]
        for uid in removed:
            out += self._remove(uid, {}, now, cause="resync")
        out.append(
            ModelResynced(
                at=now, added=tuple(added), removed=tuple(removed), channels=len(self._channels)
            )
        )
        return out


def _call_phase(channels: Sequence[Channel]) -> CallPhase:
    if any(c.on_hold for c in channels):
        return CallPhase.HELD
    if sum(1 for c in channels if c.phase is _P.BRIDGED) >= 2:
        return CallPhase.CONNECTED
    if any(c.phase in (_P.UP, _P.BRIDGED) for c in channels):
        return CallPhase.ACTIVE
    return CallPhase.RINGING
