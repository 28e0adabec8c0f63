"""Tests for the typed event bus (cti/bus.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import pytest

from cti.bus import EventBus


@dataclass(frozen=True)
class Base:
    n: int


@dataclass(frozen=True)
class Child(Base):
    pass


@dataclass(frozen=True)
class Other:
    n: int


def test_delivery_by_class() -> None:
    bus = EventBus()
    seen: list[object] = []
    bus.subscribe(Other, seen.append)
    bus.publish(Base(1))
    bus.publish(Other(2))
    assert seen == [Other(2)]


def test_delivery_follows_the_mro_in_subscription_order() -> None:
    bus = EventBus()
    calls: list[tuple[str, object]] = []
    bus.subscribe(object, lambda e: calls.append(("object", e)))
    bus.subscribe(Base, lambda e: calls.append(("base-1", e)))
    bus.subscribe(Child, lambda e: calls.append(("child", e)))
    bus.subscribe(Base, lambda e: calls.append(("base-2", e)))

    bus.publish(Child(1))
    bus.publish(Base(2))
    bus.publish("text")

    assert calls == [
        # Most specific class first (Child.__mro__ is Child, Base, object), then in the order
        # the handlers subscribed.
        ("child", Child(1)),
        ("base-1", Child(1)),
        ("base-2", Child(1)),
        ("object", Child(1)),
        ("base-1", Base(2)),
        ("base-2", Base(2)),
        ("object", Base(2)),
        ("object", "text"),
    ]


async def test_publish_with_no_subscribers_is_harmless(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    others: list[object] = []
    bus.subscribe(Other, others.append)  # a handler of an unrelated type must not be called
    tasks_before = asyncio.all_tasks()
    with caplog.at_level(logging.DEBUG, logger="cti.bus"):
        bus.publish(Base(1))
        bus.publish(Child(2))
    assert others == []
    assert caplog.records == []  # not an error, not even a warning: nobody listening is normal
    assert asyncio.all_tasks() == tasks_before  # and nothing was left running
    # Nothing is kept for later subscribers either: the bus does not replay.
    seen: list[object] = []
    bus.subscribe(Base, seen.append)
    bus.publish(Base(3))
    assert seen == [Base(3)]


def test_unsubscribe_stops_delivery_and_is_idempotent() -> None:
    bus = EventBus()
    seen: list[object] = []
    unsubscribe = bus.subscribe(Base, seen.append)
    bus.publish(Base(1))
    unsubscribe()
    unsubscribe()  # twice is harmless
    bus.publish(Base(2))
    assert seen == [Base(1)]


def test_the_same_handler_subscribed_twice_is_called_twice_and_removed_once_each() -> None:
    bus = EventBus()
    seen: list[object] = []
    first = bus.subscribe(Base, seen.append)
    bus.subscribe(Base, seen.append)
    bus.publish(Base(1))
    first()
    bus.publish(Base(2))
    assert seen == [Base(1), Base(1), Base(2)]


def test_unsubscribing_one_class_keeps_the_others() -> None:
    bus = EventBus()
    seen: list[tuple[str, object]] = []

    def handler(event: object) -> None:
        seen.append(("h", event))

    off_base = bus.subscribe(Base, handler)
    bus.subscribe(Other, handler)
    off_base()
    bus.publish(Base(1))
    bus.publish(Other(2))
    assert seen == [("h", Other(2))]


def test_a_handler_may_unsubscribe_itself_during_dispatch() -> None:
    bus = EventBus()
    seen: list[tuple[str, int]] = []

    def once(event: Base) -> None:
        seen.append(("once", event.n))
        off_once()

    off_once = bus.subscribe(Base, once)
    bus.subscribe(Base, lambda e: seen.append(("always", e.n)))

    bus.publish(Base(1))
    bus.publish(Base(2))

    # Removing itself from the list did not make the bus skip the next handler.
    assert seen == [("once", 1), ("always", 1), ("always", 2)]


def test_dispatch_uses_the_handlers_subscribed_when_publish_began() -> None:
    bus = EventBus()
    seen: list[tuple[str, int]] = []
    unsubscribers: dict[str, object] = {}

    def first(event: Base) -> None:
        seen.append(("first", event.n))
        if event.n == 1:
            off = unsubscribers["second"]
            assert callable(off)
            off()
            bus.subscribe(Base, lambda e: seen.append(("late", e.n)))

    bus.subscribe(Base, first)
    unsubscribers["second"] = bus.subscribe(Base, lambda e: seen.append(("second", e.n)))

    bus.publish(Base(1))
    bus.publish(Base(2))

    # An unsubscribe or subscribe made during dispatch takes effect from the next event.
    assert seen == [("first", 1), ("second", 1), ("first", 2), ("late", 2)]


def test_a_raising_handler_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    seen: list[str] = []

    def broken(event: Base) -> None:
        raise ValueError("handler bug")

    bus.subscribe(Base, lambda e: seen.append("before"))
    bus.subscribe(Base, broken)
    bus.subscribe(Base, lambda e: seen.append("after"))
    bus.subscribe(object, lambda e: seen.append("object"))

    with caplog.at_level(logging.ERROR, logger="cti.bus"):
        bus.publish(Base(7))

    assert seen == ["before", "after", "object"]
    [record] = caplog.records
    assert record.name == "cti.bus"
    assert record.levelno == logging.ERROR
    assert "Base(n=7)" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)

    # The bus keeps working afterwards.
    bus.publish(Base(8))
    assert seen[-3:] == ["before", "after", "object"]


async def test_async_handlers_run_as_tasks_that_drain_waits_for() -> None:
    bus = EventBus()
    gate = asyncio.Event()
    done: list[int] = []

    async def slow(event: Base) -> None:
        await gate.wait()
        done.append(event.n)

    bus.subscribe(Base, slow)
    bus.publish(Base(1))
    bus.publish(Base(2))
    assert done == []  # publish does not wait for async work

    drain = asyncio.ensure_future(bus.drain())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not drain.done()
    gate.set()
    await asyncio.wait_for(drain, 1)
    assert done == [1, 2]


async def test_drain_also_waits_for_tasks_started_by_async_handlers() -> None:
    bus = EventBus()
    done: list[object] = []

    async def relay(event: Base) -> None:
        await asyncio.sleep(0)
        bus.publish(Other(event.n))

    async def sink(event: Other) -> None:
        # Longer than one loop turn: a drain that gathered only the tasks running when it was
        # called (the relay) would return before this one ends.
        await asyncio.sleep(0.02)
        done.append(event)

    bus.subscribe(Base, relay)
    bus.subscribe(Other, sink)
    bus.publish(Base(3))
    await asyncio.wait_for(bus.drain(), 1)
    assert done == [Other(3)]


def _returns_without_suspending(coro: Coroutine[Any, Any, None]) -> bool:
    """Whether the coroutine finishes at its first step, never yielding to the loop."""
    try:
        coro.send(None)
    except StopIteration:
        return True
    coro.close()
    return False


async def test_drain_with_nothing_running_returns_at_once() -> None:
    bus = EventBus()
    assert _returns_without_suspending(bus.drain())
    # ... and again once the handlers' tasks have ended.
    bus.subscribe(Base, lambda event: asyncio.sleep(0))
    bus.publish(Base(1))
    assert not _returns_without_suspending(bus.drain())  # a task is running: drain must wait
    await asyncio.wait_for(bus.drain(), 1)
    assert _returns_without_suspending(bus.drain())


async def test_a_raising_async_handler_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    done: list[int] = []

    async def broken(event: Base) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("async handler bug")

    async def fine(event: Base) -> None:
        await asyncio.sleep(0)
        done.append(event.n)

    bus.subscribe(Base, broken)
    bus.subscribe(Base, fine)
    with caplog.at_level(logging.ERROR, logger="cti.bus"):
        bus.publish(Base(4))
        await asyncio.wait_for(bus.drain(), 1)

    assert done == [4]
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "async" in record.getMessage()
    assert "Base(n=4)" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


async def test_aclose_waits_for_running_handlers() -> None:
    bus = EventBus()
    gate = asyncio.Event()
    done: list[int] = []

    async def slow(event: Base) -> None:
        await gate.wait()
        done.append(event.n)

    bus.subscribe(Base, slow)
    bus.publish(Base(5))
    closing = asyncio.ensure_future(bus.aclose())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not closing.done()
    gate.set()
    await asyncio.wait_for(closing, 1)
    assert done == [5]


async def test_publish_after_close_is_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    seen: list[object] = []
    bus.subscribe(object, seen.append)
    await bus.aclose()

    with caplog.at_level(logging.WARNING, logger="cti.bus"):
        bus.publish(Base(6))

    assert seen == []
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "closed" in record.getMessage()
    assert "Base(n=6)" in record.getMessage()
    await bus.aclose()  # closing again is harmless
