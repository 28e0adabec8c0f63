"""Tests for the ACD runtime (acd/service.py) against a fake PBX, a fake clock and a
MemoryStore (tests/support/fake_acd.py).

Routing is driven by calling ``route_once()`` directly, so every step is deterministic; one
test runs the routing task (``start``/``kick``) to show it reacts at once. Wrap-up timers are
real ``loop.call_later`` timers, so those tests use wrap-up times of a few milliseconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.fake_acd import (
    T0,
    Harness,
    acd_config,
    agent,
    make_harness,
    queue,
    settle,
)

from acd.agent_state import AgentEvent, AgentStateChanged, AgentStatus
from acd.config import AcdConfig, CallbackPolicy, load_acd_config
from acd.errors import AgentConflict, InvalidAgentRequest, UnknownAgent
from acd.events import (
    AcdRepaired,
    CallAbandoned,
    CallAnswered,
    CallbackFailed,
    CallbackScheduled,
    CallEnded,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallRequeued,
)
from acd.model import OverflowKind
from acd.service import (
    CALLBACK_CONTEXT,
    DELIVER_CONTEXT,
    WAIT_CONTEXT,
    AcdCall,
    AcdError,
    AgentControlError,
    ChannelView,
    WaitingState,
    decode_waiting,
    encode_waiting,
)
from acd.store import MemoryStore
from ivr.model import Calendar


def two_agents(*, agent_wrap: float | None = None, queue_wrap: float = 10.0) -> AcdConfig:
    return acd_config(
        (queue("sales", ring_timeout=12.0, wrap_up=queue_wrap),),
        (
            agent("a1", {"sales": 5}, ("sales",), wrap_up=agent_wrap),
            agent("a2", {"sales": 3}, ("sales",)),
        ),
    )


def status(h: Harness, agent_id: str) -> AgentStatus:
    return h.service.agents[agent_id].status


# -- agent control ----------------------------------------------------------------------------


async def test_login_uses_the_configured_endpoint_by_default() -> None:
    h = make_harness(two_agents())
    runtime = h.service.login("a1")
    assert runtime.status is AgentStatus.NOT_READY
    assert runtime.state.reason == "login"
    assert runtime.endpoint == "PJSIP/a1"
    assert h.store.agents["a1"].endpoint == "PJSIP/a1"
    assert h.store.agents["a1"].status == "not_ready"


async def test_login_with_another_endpoint() -> None:
    h = make_harness(two_agents())
    assert h.service.login("a1", "PJSIP/desk7").endpoint == "PJSIP/desk7"


@pytest.mark.parametrize("endpoint", ["desk7", "PJSIP/", "/desk7", "PJSIP/desk 7", "PJSIP/a;b"])
async def test_login_with_a_bad_endpoint_is_422(endpoint: str) -> None:
    h = make_harness(two_agents())
    with pytest.raises(AgentControlError) as info:
        h.service.login("a1", endpoint)
    assert type(info.value) is InvalidAgentRequest
    assert status(h, "a1") is AgentStatus.LOGGED_OUT


async def test_login_with_an_endpoint_in_use_is_409() -> None:
    h = make_harness(two_agents())
    h.service.login("a1")
    with pytest.raises(AgentControlError) as info:
        h.service.login("a2", "PJSIP/a1")
    assert type(info.value) is AgentConflict
    assert "a1" in str(info.value)
    # Once a1 logs out, the phone is free again.
    h.service.logout("a1")
    assert h.service.login("a2", "PJSIP/a1").endpoint == "PJSIP/a1"


async def test_unknown_agent_is_404() -> None:
    h = make_harness(two_agents())
    actions: list[Callable[[], object]] = [
        lambda: h.service.login("nobody"),
        lambda: h.service.ready("nobody"),
        lambda: h.service.not_ready("nobody", "break"),
        lambda: h.service.logout("nobody"),
        lambda: h.service.end_wrap_up("nobody"),
    ]
    for action in actions:
        with pytest.raises(AgentControlError) as info:
            action()
        assert type(info.value) is UnknownAgent


async def test_ready_not_ready_logout_publish_and_save_every_change() -> None:
    h = make_harness(two_agents())
    h.service.login("a1")
    h.clock.advance(1)
    h.service.ready("a1")
    assert h.store.agents["a1"].status == "ready"
    assert h.store.agents["a1"].idle_since == T0 + 1
    h.clock.advance(1)
    h.service.not_ready("a1", "lunch")
    assert (h.store.agents["a1"].status, h.store.agents["a1"].reason) == ("not_ready", "lunch")
    h.clock.advance(1)
    h.service.not_ready("a1", "break")  # a new reason replaces the old
    h.clock.advance(1)
    h.service.logout("a1")
    assert h.store.agents["a1"].status == "logged_out"
    changes = h.of(AgentStateChanged)
    assert [(c.old, c.new, c.cause, c.reason, c.at) for c in changes] == [
        (AgentStatus.LOGGED_OUT, AgentStatus.NOT_READY, AgentEvent.LOGIN, "login", T0),
        (AgentStatus.NOT_READY, AgentStatus.READY, AgentEvent.READY, "", T0 + 1),
        (AgentStatus.READY, AgentStatus.NOT_READY, AgentEvent.NOT_READY, "lunch", T0 + 2),
        (AgentStatus.NOT_READY, AgentStatus.NOT_READY, AgentEvent.NOT_READY, "break", T0 + 3),
        (AgentStatus.NOT_READY, AgentStatus.LOGGED_OUT, AgentEvent.LOGOUT, "", T0 + 4),
    ]
    assert all(c.agent_id == "a1" for c in changes)


async def test_not_ready_with_an_unknown_reason_is_422() -> None:
    h = make_harness(two_agents())
    h.service.login("a1")
    with pytest.raises(AgentControlError) as info:
        h.service.not_ready("a1", "nap")
    assert type(info.value) is InvalidAgentRequest
    assert "break" in str(info.value)
    assert h.service.agents["a1"].state.reason == "login"


async def test_illegal_transitions_are_409() -> None:
    h = make_harness(two_agents())
    with pytest.raises(AgentControlError) as info:
        h.service.ready("a1")  # logged out
    assert type(info.value) is AgentConflict
    h.ready("a1")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    h.service.answered("c1")
    assert status(h, "a1") is AgentStatus.ON_CALL
    actions: list[Callable[[], object]] = [
        lambda: h.service.not_ready("a1", "break"),
        lambda: h.service.logout("a1"),
        lambda: h.service.ready("a1"),
        lambda: h.service.end_wrap_up("a1"),
        lambda: h.service.login("a1"),
    ]
    for action in actions:
        with pytest.raises(AgentControlError) as info:
            action()
        assert type(info.value) is AgentConflict
    assert status(h, "a1") is AgentStatus.ON_CALL


async def test_restore_brings_agents_back_in_a_new_service() -> None:
    h = make_harness(two_agents())
    h.service.login("a1", "PJSIP/desk7")
    h.service.ready("a1")
    h.service.login("a2")
    h.service.not_ready("a2", "lunch")
    again = make_harness(two_agents(), store=h.store, clock=h.clock)
    again.service.restore()
    a1, a2 = again.service.agents["a1"], again.service.agents["a2"]
    assert (a1.status, a1.endpoint, a1.idle_since) == (AgentStatus.READY, "PJSIP/desk7", T0)
    assert (a2.status, a2.state.reason) == (AgentStatus.NOT_READY, "lunch")
    # The restored ready agent is routed to at once.
    again.service.enqueue("c1", "PJSIP/caller-1", "sales")
    again.service.route_once()
    await settle()
    assert again.pbx.of("deliver") == [("deliver", "PJSIP/caller-1", "PJSIP/desk7", 12.0, "a1")]


async def test_restore_resumes_a_wrap_up_timer() -> None:
    h = make_harness(two_agents(agent_wrap=0.05))
    h.ready("a1")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    h.service.answered("c1")
    h.service.hangup("c1")
    assert h.store.agents["a1"].status == "wrap_up"
    await h.service.aclose()  # the first server dies with the timer pending
    again = make_harness(two_agents(agent_wrap=0.05), store=h.store, clock=h.clock)
    await again.service.start()
    try:
        assert status(again, "a1") is AgentStatus.WRAP_UP
        await asyncio.sleep(0.3)
        assert status(again, "a1") is AgentStatus.READY
    finally:
        await again.service.aclose()


# -- routing ----------------------------------------------------------------------------------


async def test_an_offer_reserves_the_agent_and_rings_their_endpoint() -> None:
    h = make_harness(two_agents())
    h.ready("a1", "a2")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales", ani="5551234")
    h.service.route_once()
    assert status(h, "a1") is AgentStatus.RESERVED  # before the PBX even answered
    assert status(h, "a2") is AgentStatus.READY
    call = h.service.calls["c1"]
    assert (call.state, call.agent_id) == ("offered", "a1")
    await settle()
    assert h.pbx.of("deliver") == [("deliver", "PJSIP/caller-1", "PJSIP/a1", 12.0, "a1")]
    [offered] = h.of(CallOffered)
    assert (offered.call_id, offered.agent_id, offered.endpoint) == ("c1", "a1", "PJSIP/a1")
    # A second pass does not hand out the call or the agent again.
    h.service.route_once()
    await settle()
    assert len(h.pbx.of("deliver")) == 1


async def test_ringing_answer_hangup_wrap_up_then_ready() -> None:
    h = make_harness(two_agents(queue_wrap=0.05))
    h.ready("a1")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    entered = h.clock.now
    h.clock.advance(3)
    h.service.route_once()
    h.service.dial_began("c1", "leg-a1")
    h.service.ringing("leg-a1")
    assert status(h, "a1") is AgentStatus.RINGING
    h.clock.advance(4)
    h.service.answered("c1")
    assert status(h, "a1") is AgentStatus.ON_CALL
    [answered] = h.of(CallAnswered)
    assert (answered.agent_id, answered.wait) == ("a1", h.clock.now - entered)
    assert h.service.agents["a1"].calls_today == 1
    h.clock.advance(60)
    h.service.hangup("c1")
    assert status(h, "a1") is AgentStatus.WRAP_UP
    assert "c1" not in h.service.calls
    [ended] = h.of(CallEnded)
    assert (ended.agent_id, ended.talk, ended.hold) == ("a1", 60.0, 0.0)
    assert h.service.agents["a1"].wrap_until == h.clock.now + 0.05
    await asyncio.sleep(0.3)
    assert status(h, "a1") is AgentStatus.READY
    assert h.of(AgentStateChanged)[-1].cause is AgentEvent.WRAP_UP_DONE


async def test_the_agents_wrap_up_overrides_the_queues() -> None:
    h = make_harness(two_agents(agent_wrap=0.05, queue_wrap=100.0))
    h.ready("a1")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    h.service.answered("c1")
    h.service.hangup("c1")
    assert h.service.agents["a1"].wrap_until == h.clock.now + 0.05
    await asyncio.sleep(0.3)
    assert status(h, "a1") is AgentStatus.READY


async def test_hold_time_is_kept_apart_from_talk_time() -> None:
    h = make_harness(two_agents())
    h.ready("a1")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    h.service.dial_began("c1", "leg-a1")
    h.service.answered("c1")
    h.clock.advance(10)
    h.service.hold("leg-a1", True)
    assert status(h, "a1") is AgentStatus.ON_HOLD
    h.clock.advance(5)
    h.service.hold("leg-a1", False)
    assert status(h, "a1") is AgentStatus.ON_CALL
    h.clock.advance(20)
    h.service.hangup("c1")
    [ended] = h.of(CallEnded)
    assert (ended.talk, ended.hold) == (30.0, 5.0)
    await h.service.aclose()


async def test_end_wrap_up_early_and_the_next_call_comes_at_once() -> None:
    h = make_harness(two_agents(queue_wrap=100.0))
    h.ready("a1")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    h.service.answered("c1")
    h.service.hangup("c1")
    h.service.enqueue("c2", "PJSIP/caller-2", "sales")
    h.service.route_once()
    assert h.service.calls["c2"].state == "waiting"  # nobody free: a1 wraps up
    h.clock.advance(2)
    agent_runtime = h.service.end_wrap_up("a1")
    assert agent_runtime.status is AgentStatus.READY
    assert agent_runtime.idle_since == h.clock.now
    assert agent_runtime.timer is None
    assert h.store.agents["a1"].status == "ready"
    assert h.of(AgentStateChanged)[-1].cause is AgentEvent.END_WRAP_UP_EARLY
    h.service.route_once()
    assert h.service.calls["c2"].agent_id == "a1"
    assert h.service.figures.stats("sales", h.clock.now).handled == 1


async def test_ready_during_wrap_up_ends_it_and_not_ready_from_wrap_up() -> None:
    h = make_harness(two_agents(queue_wrap=100.0))
    h.ready("a1", "a2")
    for n, agent_id in enumerate(("a1", "a2"), 1):
        h.service.enqueue(f"c{n}", f"PJSIP/caller-{n}", "sales")
        h.service.route_once()
        assert h.service.calls[f"c{n}"].agent_id == agent_id
        h.service.answered(f"c{n}")
        h.service.hangup(f"c{n}")
    assert h.service.ready("a1").status is AgentStatus.READY
    a2 = h.service.not_ready("a2", "break")
    assert (a2.status, a2.state.reason, a2.timer) == (AgentStatus.NOT_READY, "break", None)


async def test_routing_task_reacts_at_once_without_waiting_for_the_tick() -> None:
    h = make_harness(two_agents(), tick=60.0)
    await h.service.start()
    try:
        await asyncio.sleep(0.05)  # the task is parked on its 60 s tick
        h.service.enqueue("c1", "PJSIP/caller-1", "sales")
        h.service.login("a1")
        h.service.ready("a1")
        async with asyncio.timeout(0.5):  # far below the 60 s tick
            await h.pbx.delivered.wait()
        assert h.pbx.of("deliver") == [("deliver", "PJSIP/caller-1", "PJSIP/a1", 12.0, "a1")]
        # And kick() alone wakes it too.
        h.service.enqueue("c2", "PJSIP/caller-2", "sales")
        h.service.login("a2")
        h.service.ready("a2")
        await asyncio.sleep(0.1)
        assert len(h.pbx.of("deliver")) == 2
    finally:
        await h.service.aclose()


async def test_cross_queue_the_older_call_goes_first() -> None:
    config = acd_config(
        (queue("sales"), queue("support")),
        (agent("a1", {"sales": 5, "support": 5}, ("sales", "support")),),
    )
    for first, second in (("sales", "support"), ("support", "sales")):
        h = make_harness(config)
        h.service.enqueue("old", "PJSIP/old", first)
        h.clock.advance(10)
        h.service.enqueue("new", "PJSIP/new", second)
        h.ready("a1")
        h.service.route_once()
        assert h.service.calls["old"].agent_id == "a1"
        assert h.service.calls["new"].state == "waiting"


async def test_no_offer_to_an_agent_without_the_skill() -> None:
    config = acd_config(
        (queue("sales"), queue("support")),
        (agent("a1", {"sales": 5}, ("sales",)), agent("a2", {"support": 5}, ("support",))),
    )
    h = make_harness(config)
    h.ready("a1")
    h.service.enqueue("c1", "PJSIP/caller-1", "support")
    h.service.route_once()
    assert h.service.calls["c1"].state == "waiting"
    h.ready("a2")
    h.service.route_once()
    assert h.service.calls["c1"].agent_id == "a2"


async def test_enqueue_to_an_unknown_queue_and_twice() -> None:
    h = make_harness(two_agents())
    with pytest.raises(AcdError):
        h.service.enqueue("c1", "PJSIP/caller-1", "nope")
    first = h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.clock.advance(5)
    assert h.service.enqueue("c1", "PJSIP/caller-1", "sales") is first
    assert first.entered_at == T0
    assert len(h.of(CallQueued)) == 1


# -- ring-no-answer, abandon, delivery errors --------------------------------------------------


@pytest.mark.parametrize("dialstatus", ["NOANSWER", "BUSY", "CHANUNAVAIL"])
async def test_ring_no_answer_requeues_keeping_the_place(dialstatus: str) -> None:
    h = make_harness(two_agents())
    h.ready("a1", "a2")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    entered = h.service.calls["c1"].entered_at
    h.service.route_once()
    h.service.ringing("c1")
    h.clock.advance(12)
    h.service.offer_failed("c1", dialstatus)
    a1 = h.service.agents["a1"]
    assert (a1.status, a1.state.reason, a1.call_id) == (AgentStatus.NOT_READY, "no answer", None)
    call = h.service.calls["c1"]
    assert (call.state, call.agent_id, call.entered_at) == ("waiting", None, entered)
    [requeued] = h.of(CallRequeued)
    assert (requeued.agent_id, requeued.status) == ("a1", dialstatus)
    h.service.route_once()
    await settle()
    assert call.agent_id == "a2"
    assert [r[4] for r in h.pbx.of("deliver")] == ["a1", "a2"]


async def test_requeued_call_stays_ahead_of_a_later_one() -> None:
    h = make_harness(two_agents())
    h.ready("a1")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    h.clock.advance(5)
    h.service.enqueue("c2", "PJSIP/caller-2", "sales")
    h.service.offer_failed("c1", "NOANSWER")
    assert [c.call_id for c in h.service.waiting("sales")] == ["c1", "c2"]
    place = h.service.position("c1")
    assert place is not None
    assert place[0] == 1
    assert h.service.position("nope") is None
    h.ready("a2")
    h.service.route_once()
    assert h.service.calls["c1"].agent_id == "a2"


async def test_cancel_is_ignored_and_the_hangup_is_the_abandon() -> None:
    h = make_harness(two_agents())
    h.ready("a1")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    h.service.ringing("c1")
    h.service.offer_failed("c1", "CANCEL")
    assert status(h, "a1") is AgentStatus.RINGING
    assert h.service.calls["c1"].state == "offered"
    assert h.of(CallRequeued) == []
    h.clock.advance(7)
    h.service.hangup("c1")
    [abandoned] = h.of(CallAbandoned)
    assert (abandoned.while_ringing, abandoned.wait) == ("a1", 7.0)
    assert status(h, "a1") is AgentStatus.READY
    assert h.service.agents["a1"].state.reason == ""


async def test_abandon_while_waiting() -> None:
    h = make_harness(two_agents())
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.clock.advance(9)
    h.service.hangup("c1")
    [abandoned] = h.of(CallAbandoned)
    assert (abandoned.call_id, abandoned.wait, abandoned.while_ringing) == ("c1", 9.0, None)
    assert h.service.calls == {}
    stats = h.service.figures.stats("sales", h.clock.now)
    assert (stats.abandoned, stats.waiting) == (1, 0)


async def test_abandon_while_ringing_frees_the_agent() -> None:
    h = make_harness(two_agents())
    h.ready("a1")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    h.service.ringing("c1")
    h.clock.advance(4)
    h.service.hangup("c1")
    [abandoned] = h.of(CallAbandoned)
    assert abandoned.while_ringing == "a1"
    a1 = h.service.agents["a1"]
    assert (a1.status, a1.call_id) == (AgentStatus.READY, None)
    assert h.of(AgentStateChanged)[-1].cause is AgentEvent.CALLER_ABANDONED
    stats = h.service.figures.stats("sales", h.clock.now)
    assert (stats.abandoned, stats.answered) == (1, 0)
    # A late hangup of the agent leg changes nothing.
    h.service.hangup("leg-a1")
    assert len(h.of(CallAbandoned)) == 1


async def test_delivery_error_frees_the_agent_and_retries_later() -> None:
    h = make_harness(two_agents(), retry_delay=2.0)
    h.ready("a1")
    h.pbx.fail_deliver = "no such channel"
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    await settle()
    a1 = h.service.agents["a1"]
    assert (a1.status, a1.state.reason, a1.call_id) == (AgentStatus.READY, "", None)
    call = h.service.calls["c1"]
    assert (call.state, call.retry_at) == ("waiting", h.clock.now + 2.0)
    [requeued] = h.of(CallRequeued)
    assert requeued.status == "no such channel"
    assert h.service.delivery_failures == 1
    h.pbx.fail_deliver = None
    h.service.route_once()  # too early
    await settle()
    assert len(h.pbx.of("deliver")) == 1
    h.clock.advance(2.0)
    h.service.route_once()
    await settle()
    assert len(h.pbx.of("deliver")) == 2
    assert status(h, "a1") is AgentStatus.RESERVED


# -- overflow ---------------------------------------------------------------------------------


def overflow_config(kind: OverflowKind, target: str) -> AcdConfig:
    return acd_config(
        (
            queue("sales", max_wait=30.0, overflow=kind, overflow_target=target),
            queue("support"),
        ),
        (agent("a1", {"support": 5}, ("support",)),),
    )


async def test_overflow_to_voicemail_after_max_wait() -> None:
    h = make_harness(overflow_config("voicemail", "100@default"))
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.clock.advance(29)
    h.service.route_once()
    assert "c1" in h.service.calls
    h.clock.advance(2)
    h.service.route_once()
    await settle()
    assert "c1" not in h.service.calls
    assert h.pbx.of("overflow") == [("overflow", "PJSIP/caller-1", "voicemail", "100@default")]
    [event] = h.of(CallOverflowed)
    assert (event.kind, event.target, event.reason) == ("voicemail", "100@default", "max_wait")
    assert h.service.figures.stats("sales", h.clock.now).overflowed == 1


async def test_overflow_to_another_queue_is_a_new_visit() -> None:
    h = make_harness(overflow_config("queue", "support"))
    h.service.enqueue("c1", "PJSIP/caller-1", "sales", priority=3, ani="555")
    h.clock.advance(31)
    h.service.route_once()
    await settle()
    call = h.service.calls["c1"]
    assert (call.queue, call.entered_at, call.priority) == ("support", h.clock.now, 3)
    assert h.pbx.of("overflow") == []
    [(_, channel, state)] = h.pbx.of("update_waiting")
    assert channel == "PJSIP/caller-1"
    assert state == encode_waiting(call)
    decoded = decode_waiting(str(state))
    assert decoded is not None
    assert (decoded.queue, decoded.entered_at) == ("support", h.clock.now)
    h.ready("a1")
    h.service.route_once()
    assert call.agent_id == "a1"


async def test_overflow_to_callback_keeps_the_original_place() -> None:
    h = make_harness(overflow_config("callback", ""))
    h.service.enqueue("c1", "PJSIP/caller-1", "sales", ani="+4930123", priority=2)
    entered = h.clock.now
    h.clock.advance(31)
    h.service.route_once()
    await settle()
    assert h.pbx.of("overflow") == [("overflow", "PJSIP/caller-1", "callback", "")]
    assert "c1" not in h.service.calls
    [callback] = h.service.calls.values()
    assert (callback.kind, callback.number, callback.entered_at, callback.queue) == (
        "callback",
        "+4930123",
        entered,
        "sales",
    )
    assert callback.priority == 2
    assert h.store.callbacks[callback.call_id].entered_at == entered
    # A callback never overflows, however long it waits.
    h.clock.advance(1000)
    h.service.route_once()
    await settle()
    assert len(h.pbx.of("overflow")) == 1
    assert callback.call_id in h.service.calls


async def test_overflow_to_callback_without_a_number_does_not_strand_the_caller() -> None:
    h = make_harness(overflow_config("callback", ""))
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")  # anonymous: no ANI
    h.clock.advance(31)
    h.service.route_once()
    await settle()
    # Nobody to call back: the caller keeps waiting (logged), never dropped from the ACD.
    assert h.service.calls["c1"].state == "waiting"
    assert h.pbx.of("overflow") == []


async def test_overflow_when_nobody_is_logged_in() -> None:
    config = acd_config(
        (
            queue(
                "sales",
                overflow_when_empty=True,
                overflow="dialplan",
                overflow_target="closed,s,1",
            ),
        ),
        (agent("a1", {"sales": 5}, ("sales",)),),
    )
    h = make_harness(config)
    h.pbx.fail_overflow = "channel gone"  # logged; the dialplan's fallback takes over
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    await settle()
    [event] = h.of(CallOverflowed)
    assert (event.kind, event.target, event.reason) == ("dialplan", "closed,s,1", "no_agents")
    assert h.pbx.of("overflow") == [("overflow", "PJSIP/caller-1", "dialplan", "closed,s,1")]
    assert h.service.calls == {}


# -- callbacks --------------------------------------------------------------------------------


def callback_config(
    *, attempts: int = 3, retry_after: float = 300.0, hours: Calendar | None = None
) -> AcdConfig:
    return acd_config(
        (queue("sales", ring_timeout=20.0, wrap_up=100.0),),
        (agent("a1", {"sales": 5}, ("sales",)), agent("a2", {"sales": 5}, ("sales",))),
        callbacks=CallbackPolicy(attempts=attempts, retry_after=retry_after, hours=hours),
    )


@pytest.mark.parametrize(
    ("number", "queue_name"),
    [("", "sales"), ("   ", "sales"), ("555-1234", "sales"), ("abc", "sales"), ("555", "nope")],
)
async def test_request_callback_validation(number: str, queue_name: str) -> None:
    h = make_harness(callback_config())
    with pytest.raises(AcdError):
        h.service.request_callback(number, queue_name)
    assert h.service.calls == {}
    assert h.store.callbacks == {}


async def test_callback_is_offered_then_finished_on_answer() -> None:
    h = make_harness(callback_config())
    cb = h.service.request_callback(" +4930123 ", "sales", data={"CRM": "42"})
    assert cb.number == "+4930123"
    assert h.store.callbacks[cb.call_id].number == "+4930123"
    [scheduled] = h.of(CallbackScheduled)
    assert (scheduled.attempt, scheduled.number) == (0, "+4930123")
    h.ready("a1")
    h.service.route_once()
    await settle()
    assert h.pbx.of("originate") == [
        ("originate", cb.call_id, "PJSIP/a1", "a1", "+4930123", 20.0, {"CRM": "42"})
    ]
    assert cb.agent_leg == "leg-1"
    h.service.ringing("leg-1")
    assert status(h, "a1") is AgentStatus.RINGING
    h.service.answered("leg-1")
    assert status(h, "a1") is AgentStatus.ON_CALL
    assert cb.state == "connected"
    h.service.callback_dialed("leg-1", "ANSWER")
    assert cb.call_id not in h.store.callbacks
    h.service.hangup("leg-1")
    assert cb.call_id not in h.service.calls
    assert status(h, "a1") is AgentStatus.WRAP_UP
    assert h.of(CallbackFailed) == []
    assert h.store.failed == {}
    await h.service.aclose()


async def test_callback_agent_not_answering_is_ring_no_answer() -> None:
    h = make_harness(callback_config())
    cb = h.service.request_callback("555", "sales")
    h.ready("a1", "a2")
    h.service.route_once()
    await settle()
    h.service.hangup("leg-1")  # the agent leg ended before it was answered
    assert h.service.agents["a1"].state.reason == "no answer"
    assert (cb.state, cb.attempts) == ("waiting", 0)
    h.service.route_once()
    await settle()
    assert [r[3] for r in h.pbx.of("originate")] == ["a1", "a2"]


async def test_callback_originate_response_failure_via_offer_failed() -> None:
    h = make_harness(callback_config())
    cb = h.service.request_callback("555", "sales")
    h.ready("a1")
    h.service.route_once()
    await settle()
    h.service.offer_failed("leg-1", "NOANSWER")
    assert status(h, "a1") is AgentStatus.NOT_READY
    assert cb.state == "waiting"


async def test_callback_originate_error_frees_the_agent_and_retries() -> None:
    h = make_harness(callback_config(), retry_delay=5.0)
    cb = h.service.request_callback("555", "sales")
    h.ready("a1")
    h.pbx.fail_originate = "AMI down"
    h.service.route_once()
    await settle()
    a1 = h.service.agents["a1"]
    assert (a1.status, a1.state.reason) == (AgentStatus.READY, "")
    assert (cb.state, cb.retry_at, cb.agent_leg) == ("waiting", h.clock.now + 5.0, "")
    assert [r.status for r in h.of(CallRequeued)] == ["AMI down"]
    h.pbx.fail_originate = None
    h.clock.advance(5.0)
    h.service.route_once()
    await settle()
    assert cb.agent_leg == "leg-1"


async def test_callback_failures_retry_then_are_reported() -> None:
    h = make_harness(callback_config(attempts=2, retry_after=300.0))
    h.service.request_callback("555", "sales")
    [cb] = h.service.calls.values()
    entered = cb.entered_at
    h.ready("a1")
    h.service.route_once()
    await settle()
    h.service.answered("leg-1")
    h.service.callback_dialed("leg-1", "BUSY")
    h.service.hangup("leg-1")
    assert (cb.state, cb.attempts, cb.entered_at) == ("waiting", 1, entered)
    assert cb.retry_at == h.clock.now + 300.0
    assert h.store.callbacks[cb.call_id].attempts == 1
    assert h.store.callbacks[cb.call_id].last_status == "BUSY"
    assert h.of(CallbackScheduled)[-1].attempt == 1
    h.ready("a2")  # a1 is in wrap-up after the failed attempt
    h.service.route_once()  # not due yet
    await settle()
    assert len(h.pbx.of("originate")) == 1
    h.clock.advance(300.0)
    h.service.route_once()
    await settle()
    assert len(h.pbx.of("originate")) == 2
    h.service.answered("leg-2")
    h.service.callback_dialed("leg-2", "NOANSWER")
    h.service.hangup("leg-2")
    assert cb.call_id not in h.service.calls
    [failed] = h.of(CallbackFailed)
    assert (failed.attempts, failed.last_status, failed.number) == (2, "NOANSWER", "555")
    assert cb.call_id not in h.store.callbacks
    assert [r.call_id for r in h.service.failed_callbacks()] == [cb.call_id]
    await h.service.aclose()


async def test_agent_wraps_up_after_a_failed_callback_attempt() -> None:
    h = make_harness(callback_config(attempts=3))
    h.service.request_callback("555", "sales")
    h.ready("a1")
    h.service.route_once()
    await settle()
    h.service.answered("leg-1")
    h.clock.advance(20)
    h.service.callback_dialed("leg-1", "NOANSWER")
    h.service.hangup("leg-1")
    try:
        assert status(h, "a1") is AgentStatus.WRAP_UP
        assert h.service.agents["a1"].call_id is None
        assert [e.agent_id for e in h.of(CallEnded)] == ["a1"]
    finally:
        await h.service.aclose()


async def test_callback_waits_for_calling_hours() -> None:
    nine_to_five = ((dt.time(9), dt.time(17)),)
    hours = Calendar("callbacks", "UTC", dict.fromkeys(range(7), nine_to_five))
    h = make_harness(callback_config(hours=hours))  # T0 is 22:13 UTC: closed
    h.service.request_callback("555", "sales")
    h.ready("a1")
    h.service.route_once()
    await settle()
    assert h.pbx.of("originate") == []
    h.clock.advance(11 * 3600)  # 09:13 the next morning
    h.service.route_once()
    await settle()
    assert len(h.pbx.of("originate")) == 1


async def test_convert_to_callback_keeps_the_place() -> None:
    h = make_harness(callback_config())
    h.service.enqueue("c1", "PJSIP/caller-1", "sales", ani="555")
    entered = h.clock.now
    h.clock.advance(5)
    h.service.enqueue("c2", "PJSIP/caller-2", "sales", ani="666")
    h.clock.advance(5)
    cb = h.service.convert_to_callback("c1")
    assert cb is not None
    assert (cb.kind, cb.number, cb.entered_at) == ("callback", "555", entered)
    assert [c.call_id for c in h.service.waiting()] == [cb.call_id, "c2"]
    assert "c1" not in h.service.calls
    stats = h.service.figures.stats("sales", h.clock.now)
    assert stats.callbacks == 1
    # Not possible without a number, for an unknown call, or for a callback.
    h.service.enqueue("c3", "PJSIP/caller-3", "sales")
    assert h.service.convert_to_callback("c3") is None
    assert h.service.convert_to_callback("nope") is None
    assert h.service.convert_to_callback(cb.call_id) is None


async def test_callbacks_are_restored_from_the_store() -> None:
    h = make_harness(callback_config())
    cb = h.service.request_callback("555", "sales", priority=4)
    again = make_harness(callback_config(), store=h.store, clock=h.clock)
    again.service.restore()
    restored = again.service.calls[cb.call_id]
    assert (restored.kind, restored.number, restored.priority, restored.entered_at) == (
        "callback",
        "555",
        4,
        cb.entered_at,
    )
    assert again.of(CallQueued)[0].restored is True


# -- the waiting state on the channel ---------------------------------------------------------

_name = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=20)


@given(
    queue_name=_name,
    millis=st.integers(0, 4_000_000_000_000),
    priority=st.integers(-100, 100),
    skills=st.dictionaries(_name, st.integers(1, 10), max_size=5),
    ani=st.text(max_size=30),
)
def test_waiting_state_round_trip(
    queue_name: str, millis: int, priority: int, skills: dict[str, int], ani: str
) -> None:
    call = AcdCall("c1", queue_name, millis / 1000, priority, skills, number=ani)
    text = encode_waiting(call)
    assert not set(text) & set(",|\"' ")
    assert decode_waiting(text) == WaitingState(queue_name, millis / 1000, priority, skills, ani)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "garbage",
        "v=2&queue=sales&entered=1",
        "v=1&queue=&entered=1",
        "v=1&entered=1",
        "v=1&queue=sales",
        "v=1&queue=sales&entered=soon",
        "v=1&queue=sales&entered=1&priority=high",
        "v=1&queue=sales&entered=1&skills=sales:x",
        "v=1&queue=sales&entered=1&skills=sales",
        "v=1&&queue=sales&entered=1",
    ],
)
def test_junk_waiting_state_is_rejected(text: str | None) -> None:
    assert decode_waiting(text) is None


@pytest.mark.parametrize("entered", ["nan", "inf", "-inf"])
def test_non_finite_entered_time_is_rejected(entered: str) -> None:
    assert decode_waiting(f"v=1&queue=sales&entered={entered}") is None


# -- reconciliation ---------------------------------------------------------------------------


def waiting_view(uniqueid: str, entered: float, **kw: str) -> ChannelView:
    return ChannelView(
        uniqueid,
        f"PJSIP/caller-{uniqueid}",
        kw.pop("context", WAIT_CONTEXT),
        waiting=WaitingState("sales", entered, 0, {}, "555"),
        **kw,
    )


async def test_reconcile_adopts_waiting_channels_in_order() -> None:
    h = make_harness(two_agents())
    views = [
        waiting_view("late", T0 - 20),
        waiting_view("early", T0 - 50),
        ChannelView("other", "PJSIP/x-1", "default"),
        ChannelView(
            "elsewhere",
            "PJSIP/y-1",
            WAIT_CONTEXT,
            waiting=WaitingState("no-such-queue", T0, 0, {}, ""),
        ),
        ChannelView("unset", "PJSIP/z-1", WAIT_CONTEXT),
    ]
    repairs = h.service.reconcile(views)
    assert [(r.what, r.call_id) for r in repairs] == [
        ("call adopted", "late"),
        ("call adopted", "early"),
    ]
    assert h.of(AcdRepaired) == repairs
    assert [c.call_id for c in h.service.waiting()] == ["early", "late"]
    assert h.service.calls["early"].number == "555"
    assert all(q.restored for q in h.of(CallQueued))
    stats = h.service.figures.stats("sales", T0)
    assert (stats.waiting, stats.offered, stats.longest_wait) == (2, 0, 50.0)
    # Again: nothing new to repair, nothing counted twice.
    assert h.service.reconcile(views) == []
    stats = h.service.figures.stats("sales", T0)
    assert (stats.waiting, stats.offered) == (2, 0)
    assert len(h.of(CallQueued)) == 2


async def test_reconcile_finds_a_bridged_call_on_an_agent() -> None:
    h = make_harness(two_agents(queue_wrap=100.0))
    h.service.login("a1")
    views = [
        waiting_view("c1", T0 - 30, context=DELIVER_CONTEXT, agent_id="a1", bridge_id="b1"),
        ChannelView("leg1", "PJSIP/a1-0001", "default", bridge_id="b1"),
    ]
    repairs = h.service.reconcile(views)
    assert [r.what for r in repairs] == ["call adopted", "call on agent found"]
    a1 = h.service.agents["a1"]
    assert (a1.status, a1.call_id) == (AgentStatus.ON_CALL, "c1")
    assert h.of(AgentStateChanged)[-1].cause is AgentEvent.RESYNC
    call = h.service.calls["c1"]
    assert (call.state, call.agent_leg) == ("connected", "leg1")
    # It ends like any call.
    h.service.hangup("c1")
    assert status(h, "a1") is AgentStatus.WRAP_UP
    await h.service.aclose()


async def test_reconcile_finds_a_ringing_agent() -> None:
    h = make_harness(two_agents())
    h.ready("a1")
    repairs = h.service.reconcile(
        [waiting_view("c1", T0 - 30, context=DELIVER_CONTEXT, agent_id="a1", application="Dial")]
    )
    assert [r.what for r in repairs] == ["call adopted", "ringing agent found"]
    assert status(h, "a1") is AgentStatus.RINGING
    assert h.service.calls["c1"].state == "offered"
    h.service.answered("c1")
    assert status(h, "a1") is AgentStatus.ON_CALL


async def test_reconcile_removes_ghost_calls_and_frees_their_agents() -> None:
    h = make_harness(two_agents())
    h.ready("a1")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    h.service.enqueue("ghost", "PJSIP/caller-2", "sales")
    h.service.enqueue("alive", "PJSIP/caller-3", "sales")
    repairs = h.service.reconcile([ChannelView("alive", "PJSIP/caller-3", WAIT_CONTEXT)])
    assert sorted((r.what, r.call_id, r.agent_id) for r in repairs) == [
        ("agent freed", "", "a1"),
        ("lost call removed", "c1", "a1"),
        ("lost call removed", "ghost", ""),
    ]
    assert set(h.service.calls) == {"alive"}
    a1 = h.service.agents["a1"]
    assert (a1.status, a1.call_id) == (AgentStatus.READY, None)
    assert h.of(AgentStateChanged)[-1].cause is AgentEvent.RESYNC
    assert h.service.repairs == 3


async def test_reconcile_frees_an_agent_restored_on_a_vanished_call() -> None:
    h = make_harness(two_agents())
    h.ready("a1")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    h.service.answered("c1")
    again = make_harness(two_agents(), store=h.store, clock=h.clock)
    again.service.restore()
    assert status(again, "a1") is AgentStatus.ON_CALL
    repairs = again.service.reconcile([])
    assert [(r.what, r.agent_id) for r in repairs] == [("agent freed", "a1")]
    assert status(again, "a1") is AgentStatus.READY


async def test_reconcile_finds_a_callback_leg_on_an_agent() -> None:
    h = make_harness(callback_config())
    cb = h.service.request_callback("555", "sales")
    h.service.login("a1")
    view = ChannelView(
        "leg9", "PJSIP/a1-0009", CALLBACK_CONTEXT, agent_id="a1", callback_id=cb.call_id
    )
    repairs = h.service.reconcile([view])
    assert [r.what for r in repairs] == ["callback on agent found"]
    assert status(h, "a1") is AgentStatus.ON_CALL
    assert (cb.state, cb.agent_leg) == ("connected", "leg9")
    # Its leg gone long enough: the callback waits again instead of being lost.
    h.clock.advance(60)
    repairs = h.service.reconcile([])
    assert ("lost call removed", cb.call_id) in [(r.what, r.call_id) for r in repairs]
    assert h.service.calls[cb.call_id].state == "waiting"
    assert status(h, "a1") is AgentStatus.READY


# -- configuration from YAML ------------------------------------------------------------------


async def test_service_from_a_yaml_configuration(tmp_path: Path) -> None:
    path = tmp_path / "acd.yaml"
    path.write_text(
        "not_ready_reasons: [break]\n"
        "queues:\n"
        "  sales: {skills: {sales: 1}, ring_timeout: 9}\n"
        "agents:\n"
        "  a1: {skills: {sales: 3}, queues: [sales], endpoint: PJSIP/desk1}\n",
        encoding="utf-8",
    )
    h = make_harness(load_acd_config(path), store=MemoryStore())
    h.ready("a1")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    await settle()
    assert h.pbx.of("deliver") == [("deliver", "PJSIP/caller-1", "PJSIP/desk1", 9.0, "a1")]
    with pytest.raises(AgentControlError):
        h.service.not_ready("a1", "lunch")
