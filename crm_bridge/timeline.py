"""From what happens on the event bus to the interaction log: timeline events and how each one
changes its interaction.

``TimelineEvent`` is one fact about one contact. ``from_bus`` turns the bus events the log
cares about (the call model's ``CallStarted``/``CallEnded``, the IVR's ``IvrFinished``, the
ACD's queue/offer/answer/abandon/overflow/end and callback events) into timeline events, with an
``event_key`` that names the fact itself, so the same fact seen twice gets the same key:

- a call's start and end are keyed by its Linkedid (``call:start:<linkedid>``): the call model
  publishing them again after an AMI reconnect (a resync) adds nothing;
- a queue entry by call, queue and the time it entered (a restart that rebuilds the queue
  publishes ``CallQueued`` again with the same place: one entry);
- everything else by call (or agent) and the moment it happened.

Agents' state changes are on the same timeline under the key ``agent:<id>``, and supervisors'
actions (the audit trail) under ``audit:<user>``; neither makes an interaction row.

The interaction key: a call's Linkedid. The ACD names calls by the caller channel's Uniqueid,
which for an inbound call *is* the Linkedid (the trunk channel is the call's first channel);
a callback is its own interaction (``cb-...``), linked to the call that asked for it.

``apply`` is the projection: it changes an ``Interaction`` row as the event says. The writer
applies only events it has just stored (a duplicate key is neither stored nor applied), in
the order of their time, so the row is always what the stored timeline says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acd.agent_state import AgentStateChanged
from acd.events import (
    CallAbandoned,
    CallAnswered,
    CallbackFailed,
    CallbackScheduled,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallRequeued,
    WrapUpEnded,
)
from acd.events import CallEnded as AcdCallEnded
from crm_bridge.schema import Interaction
from cti.calls.events import CallEnded, CallStarted
from cti.contracts.console import CallControlled, SupervisorAction, WrapUpRecorded
from ivr.path import IvrFinished

__all__ = [
    "AGENT_PREFIX",
    "AUDIT_PREFIX",
    "KINDS",
    "TimelineEvent",
    "apply",
    "customer_ref",
    "from_bus",
    "is_interaction",
    "new_interaction",
]

AGENT_PREFIX = "agent:"
AUDIT_PREFIX = "audit:"


def is_interaction(key: str) -> bool:
    """Whether facts under ``key`` make an interaction row (agents' states and the audit
    trail share the timeline but are not contacts)."""
    return not key.startswith((AGENT_PREFIX, AUDIT_PREFIX))


@dataclass(frozen=True)
class TimelineEvent:
    event_key: str
    interaction_key: str
    kind: str
    at: float
    data: Mapping[str, Any] = field(default_factory=dict)


def _ms(value: float) -> str:
    return f"{value:.3f}"


def from_bus(event: object) -> TimelineEvent | None:
    """The timeline event for a bus event, or None for one the log does not keep."""
    match event:
        case SupervisorAction():
            return TimelineEvent(
                f"audit:{event.username}:{_ms(event.at)}:{event.action}:{event.agent_id}",
                f"{AUDIT_PREFIX}{event.username}",
                "supervisor_action",
                event.at,
                {
                    "username": event.username,
                    "role": event.role,
                    "action": event.action,
                    "agent_id": event.agent_id,
                    "detail": event.detail,
                },
            )
        case CallControlled(action="transfer" | "transfer-complete"):
            # A blind transfer is done when asked; an attended one when completed. The
            # consultation itself (and a cancelled one) does not count as a transfer.
            if event.action == "transfer" and event.mode == "attended":
                return None
            return TimelineEvent(
                f"transfer:{event.call_id}:{_ms(event.at)}",
                event.call_id,
                "transferred",
                event.at,
                {
                    "agent_id": event.agent_id,
                    "mode": event.mode,
                    "kind": event.kind,
                    "target": event.target,
                },
            )
        case WrapUpRecorded():
            # Keyed by call and moment: an agent who corrects a wrap-up adds a second fact,
            # and the row shows the latest (events apply in time order).
            return TimelineEvent(
                f"wrapup:{event.call_id}:{_ms(event.at)}",
                event.call_id,
                "wrap_up",
                event.at,
                {
                    "agent_id": event.agent_id,
                    "username": event.username,
                    "disposition": event.disposition,
                    "notes": event.notes,
                },
            )
        case AgentStateChanged():
            # Agents' states share the timeline (interaction key "agent:<id>"): reports
            # compute not-ready time by reason and occupancy from them. No interaction row.
            return TimelineEvent(
                f"agent:{event.agent_id}:{_ms(event.at)}:{event.new.value}",
                f"{AGENT_PREFIX}{event.agent_id}",
                "agent_state",
                event.at,
                {
                    "agent_id": event.agent_id,
                    "old": event.old.value,
                    "new": event.new.value,
                    "cause": event.cause.value,
                    "reason": event.reason,
                },
            )
        case CallStarted(call=call, at=at):
            return TimelineEvent(
                f"call:start:{call.linkedid}",
                call.linkedid,
                "call_started",
                call.started_at or at,
                {"ani": call.caller_num, "caller_name": call.caller_name, "dnis": call.dnis},
            )
        case CallEnded(call=call, at=at):
            return TimelineEvent(
                f"call:end:{call.linkedid}", call.linkedid, "call_ended", call.ended_at or at
            )
        case IvrFinished(path=path):
            key = path.call.linkedid or path.call.uniqueid
            steps = [
                {
                    "flow": s.flow,
                    "node": s.node,
                    "kind": s.kind,
                    "keys": s.keys,
                    "result": s.result,
                    "duration": round(s.duration, 3),
                }
                for s in path.steps
            ]
            customer = dict(path.customer) if path.customer else None
            return TimelineEvent(
                f"ivr:{path.call.uniqueid}:{path.flow}:{_ms(path.started_at)}",
                key,
                "ivr_finished",
                path.ended_at,
                {
                    "flow": path.flow,
                    "outcome": path.outcome,
                    "detail": path.detail,
                    "started_at": path.started_at,
                    "steps": steps,
                    "variables": dict(path.variables),
                    "customer_ref": customer_ref(customer),
                    "ani": path.call.ani,
                    "dnis": path.call.dnis,
                },
            )
        case CallQueued():
            return TimelineEvent(
                f"acd:queued:{event.call_id}:{event.queue}:{_ms(event.entered_at)}",
                event.call_id,
                "queued",
                event.entered_at,
                {"queue": event.queue, "priority": event.priority, "kind": event.kind},
            )
        case (
            CallOffered()
            | CallAnswered()
            | CallRequeued()
            | CallAbandoned()
            | CallOverflowed()
            | AcdCallEnded()
            | CallbackScheduled()
            | CallbackFailed()
            | WrapUpEnded()
        ):
            kind = _KINDS[type(event)]
            data = {
                k: v for k, v in dataclasses.asdict(event).items() if k not in ("call_id", "at")
            }
            return TimelineEvent(
                f"acd:{kind}:{event.call_id}:{_ms(event.at)}", event.call_id, kind, event.at, data
            )
    return None


_KINDS: Mapping[type, str] = {
    CallOffered: "offered",
    CallAnswered: "answered",
    CallRequeued: "requeued",
    CallAbandoned: "abandoned",
    CallOverflowed: "overflowed",
    AcdCallEnded: "ended",
    CallbackScheduled: "callback_scheduled",
    CallbackFailed: "callback_failed",
    WrapUpEnded: "wrap_ended",
}


#: every kind ``from_bus`` produces (webhooks filter on them)
KINDS: frozenset[str] = frozenset(_KINDS.values()) | {
    "supervisor_action",
    "agent_state",
    "call_started",
    "call_ended",
    "ivr_finished",
    "queued",
    "transferred",
    "wrap_up",
}


def customer_ref(customer: Mapping[str, Any] | None) -> str | None:
    """The customer's reference in a record the IVR found (``id``, ``ref`` or
    ``customer_id``), or None."""
    if not customer:
        return None
    for name in ("id", "ref", "customer_id"):
        value = customer.get(name)
        if value:
            return str(value)
    return None


def new_interaction(event: TimelineEvent, now: float) -> Interaction:
    callback = event.interaction_key.startswith("cb-")
    return Interaction(
        key=event.interaction_key,
        channel="voice",
        direction="callback" if callback else "inbound",
        started_at=event.at,
        updated_at=now,
        ivr_path=[],
        ivr_variables={},
        skills={},
        agents=[],
        priority=0,
        transfers=0,
    )


def apply(row: Interaction, event: TimelineEvent, now: float) -> None:
    """Change ``row`` as ``event`` says (events arrive in time order per interaction)."""
    data = event.data
    row.updated_at = now
    row.started_at = min(row.started_at, event.at)
    kind = event.kind
    if kind == "call_started":
        row.ani = row.ani or str(data.get("ani") or "") or None
        row.dnis = row.dnis or str(data.get("dnis") or "") or None
    elif kind == "call_ended":
        row.ended_at = max(row.ended_at or 0.0, event.at)
    elif kind == "ivr_finished":
        row.ivr_flow = str(data.get("flow") or "") or None
        row.ivr_outcome = str(data.get("outcome") or "") or None
        row.ivr_started_at = float(data.get("started_at") or event.at)
        row.ivr_ended_at = event.at
        row.ivr_path = list(data.get("steps") or [])
        row.ivr_variables = dict(data.get("variables") or {})
        row.customer_ref = row.customer_ref or data.get("customer_ref")
        row.ani = row.ani or str(data.get("ani") or "") or None
        row.dnis = row.dnis or str(data.get("dnis") or "") or None
        if row.outcome is None and row.ivr_outcome not in ("queued", None):
            # Ended in the IVR (self-service, voicemail, a transfer...): that is the outcome
            # unless the ACD says more later.
            row.outcome = {"transferred": "transferred", "voicemail": "voicemail"}.get(
                row.ivr_outcome or "", "callback" if row.ivr_outcome == "callback" else "ivr"
            )
    elif kind == "queued":
        row.queue = str(data.get("queue"))
        row.priority = int(data.get("priority") or 0)
        if row.queued_at is None:
            row.queued_at = event.at
    elif kind == "offered":
        row.offered_at = row.offered_at or event.at
        agent = data.get("agent_id")
        if agent and (not row.agents or row.agents[-1] != agent):
            row.agents = [*row.agents, agent]
    elif kind == "answered":
        row.answered_at = event.at
        row.agent_id = str(data.get("agent_id"))
        row.wait_seconds = float(data.get("wait") or 0.0)
        row.outcome = "answered"
    elif kind == "abandoned":
        row.outcome = "abandoned"
        row.wait_seconds = float(data.get("wait") or 0.0)
        row.ended_at = row.ended_at or event.at
    elif kind == "overflowed":
        target = str(data.get("kind"))
        row.outcome = {"voicemail": "voicemail", "callback": "callback"}.get(target, "overflowed")
        if target == "queue":
            row.queue = str(data.get("target"))
    elif kind == "ended":
        row.talk_seconds = float(data.get("talk") or 0.0)
        row.hold_seconds = float(data.get("hold") or 0.0)
        row.ended_at = row.ended_at or event.at
    elif kind == "transferred":
        row.transfers += 1
    elif kind == "wrap_ended":
        row.wrap_seconds = float(data.get("wrap") or 0.0)
        row.wrap_ended_at = event.at
    elif kind == "wrap_up":
        row.disposition = str(data.get("disposition") or "") or None
        row.notes = str(data.get("notes") or "") or None
    elif kind == "callback_failed":
        row.outcome = "failed"
    elif kind == "callback_scheduled":
        row.queue = row.queue or str(data.get("queue"))
        row.ani = row.ani or str(data.get("number") or "") or None
