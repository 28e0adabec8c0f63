"""Today's figures rebuilt from the store at start (``acd.history``)."""

from __future__ import annotations

from support.fake_acd import T0, acd_config, agent, make_harness, queue

from acd.config import AcdConfig
from acd.history import PastVisit, from_interaction

DAY_START = T0 - 80_000  # 2023-11-14 00:00 UTC is T0 - 80_000 s


def config_two_queues() -> AcdConfig:
    return acd_config(
        (queue("sales"), queue("support")),
        (agent("a1", {"sales": 5, "support": 5}, ("sales", "support")),),
    )


def test_interaction_rows_map_to_visits_only_with_a_queue_and_an_outcome() -> None:
    assert from_interaction("k", None, 1.0, "answered", answered_at=2.0) is None
    assert from_interaction("k", "sales", None, "answered", answered_at=2.0) is None
    assert from_interaction("k", "sales", 1.0, None) is None  # still waiting at the crash
    assert from_interaction("k", "sales", 1.0, "ivr") is None
    assert from_interaction("k", "sales", 1.0, "answered") is None
    answered = from_interaction(
        "k",
        "sales",
        1.0,
        "answered",
        answered_at=5.0,
        talk=30.0,
        hold=2.0,
        wrap=4.0,
        wrap_ended_at=41.0,
    )
    assert answered == PastVisit("k", "sales", 1.0, "answered", 5.0, 30.0, 2.0, 4.0, 41.0)
    gone = from_interaction("k", "sales", 1.0, "abandoned", ended_at=9.0)
    assert gone == PastVisit("k", "sales", 1.0, "abandoned", 9.0)
    assert from_interaction("k", "sales", 1.0, "voicemail", ended_at=7.0) == PastVisit(
        "k", "sales", 1.0, "overflow", 7.0
    )


async def test_a_restart_keeps_todays_offered_answered_and_handle_times() -> None:
    h = make_harness(config_two_queues())
    visits = [
        PastVisit("c1", "sales", T0 - 600, "answered", T0 - 590, 100.0, 10.0, 20.0, T0 - 450),
        PastVisit("c2", "sales", T0 - 500, "answered", T0 - 440),  # wrap-up not ended
        PastVisit("c3", "sales", T0 - 400, "abandoned", T0 - 340),
        PastVisit("c4", "support", T0 - 300, "overflow", T0 - 200),
        PastVisit("c5", "sales", DAY_START - 60, "answered", DAY_START - 50),  # yesterday
        PastVisit("c6", "gone", T0 - 100, "answered", T0 - 90),  # queue no longer configured
    ]
    assert h.service.seed_today(visits) == 4
    sales = h.service.figures.stats("sales", T0)
    assert (sales.offered, sales.answered, sales.abandoned, sales.waiting) == (3, 2, 1, 0)
    assert sales.asa == (10 + 60) / 2
    assert (sales.handled, sales.aht) == (1, 130.0)
    support = h.service.figures.stats("support", T0)
    assert (support.offered, support.overflowed) == (1, 1)
    # Live calls count on top.
    h.service.enqueue("c7", "PJSIP/trunk-c7", "sales")
    assert h.service.figures.stats("sales", T0).offered == 4
    await h.service.aclose()
