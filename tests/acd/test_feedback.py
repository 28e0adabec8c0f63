"""PBX feedback paths the older service tests do not cover: the wrap-up's end is published
with its call, so the interaction log can write it."""

from __future__ import annotations

from support.fake_acd import acd_config, agent, make_harness, queue

from acd.events import WrapUpEnded


async def test_the_end_of_wrap_up_is_published_with_its_call_and_length() -> None:
    config = acd_config(
        (queue("sales", wrap_up=30.0),),
        (agent("a1", {"sales": 5}, ("sales",)), agent("a2", {"sales": 5}, ("sales",))),
    )
    h = make_harness(config)
    h.ready("a1", "a2")
    h.service.enqueue("c1", "PJSIP/trunk-c1", "sales")
    h.service.enqueue("c2", "PJSIP/trunk-c2", "sales")
    h.service.route_once()
    h.service.answered("c1")
    h.service.answered("c2")
    h.clock.advance(5)
    h.service.hangup("c1")
    h.service.hangup("c2")
    assert h.of(WrapUpEnded) == []
    h.clock.advance(7)
    h.service.end_wrap_up("a1")  # early, by the agent
    h.clock.advance(3)
    h.service.not_ready("a2", "break")  # from wrap-up straight to a break
    ends = [(e.call_id, e.queue, e.agent_id, e.wrap) for e in h.of(WrapUpEnded)]
    assert sorted(ends) == [("c1", "sales", "a1", 7.0), ("c2", "sales", "a2", 10.0)]
    await h.service.aclose()
