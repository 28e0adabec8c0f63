"""Persistence mapping: run-time records <-> what ``AcdStore`` keeps. Pure functions."""

from __future__ import annotations

from acd.agent_state import AgentState, AgentStatus
from acd.ports import AgentRecord, CallbackRecord
from acd.runtime import AcdCall, AgentRuntime

__all__ = ["agent_record", "callback_call", "callback_record", "restore_agent"]


def agent_record(agent: AgentRuntime) -> AgentRecord:
    return AgentRecord(
        agent.agent_id,
        agent.status.value,
        agent.state.reason,
        agent.state.since,
        agent.endpoint,
        agent.idle_since,
        agent.calls_today,
        agent.day,
        agent.wrap_until,
        agent.call_id if agent.answered_at else None,
        agent.answered_at,
    )


def restore_agent(agent: AgentRuntime, record: AgentRecord, now: float) -> None:
    """Put a saved state back on a configured agent (an unknown status reads as logged out)."""
    try:
        status = AgentStatus(record.status)
    except ValueError:
        status = AgentStatus.LOGGED_OUT
    agent.state = AgentState(agent.agent_id, status, record.reason, record.since)
    agent.endpoint = record.endpoint
    agent.idle_since = record.idle_since
    agent.calls_today = record.calls_today
    agent.day = record.day
    if status is AgentStatus.WRAP_UP:
        agent.wrap_until = record.wrap_until or now
        agent.wrap_started = record.since
    if status in (AgentStatus.ON_CALL, AgentStatus.ON_HOLD) and record.call_id:
        # Not yet the agent's call: the reconciliation decides whether it still exists; if
        # it does, it keeps this answer time.
        agent.answered_at = record.answered_at
        agent.resumed_call = record.call_id


def callback_record(call: AcdCall) -> CallbackRecord:
    return CallbackRecord(
        call.call_id,
        call.queue,
        call.number,
        call.entered_at,
        call.priority,
        call.attempts,
        call.retry_at,
        call.last_status,
        dict(call.data),
    )


def callback_call(record: CallbackRecord) -> AcdCall:
    return AcdCall(
        record.call_id,
        record.queue,
        record.entered_at,
        record.priority,
        kind="callback",
        number=record.number,
        attempts=record.attempts,
        retry_at=record.not_before,
        last_status=record.last_status,
        data=dict(record.data),
    )
