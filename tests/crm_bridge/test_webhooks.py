"""Outgoing webhooks against a real HTTP receiver (aiohttp on 127.0.0.1). Back-off waits go
through an injected sleep that records the delay asked for and yields at once."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError

from acd.agent_state import AgentEvent, AgentStateChanged, AgentStatus
from acd.events import CallAnswered, CallOffered, CallQueued
from acd.events import CallEnded as AcdCallEnded
from crm_bridge.timeline import TimelineEvent
from crm_bridge.webhooks import (
    KINDS,
    WebhookSender,
    WebhookSettings,
    classify,
    encode,
    parse_retry_after,
    retry_delay,
    sign,
    verify,
)
from cti.contracts.console import SupervisorAction

SECRET = "s3cret-s3cret-s3cret"
T0 = 1_790_000_000.0


# -- the receiver -----------------------------------------------------------------------------


@dataclass
class Seen:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def delivery(self) -> str:
        return self.headers["X-CTI-Delivery"]


Respond = Callable[[Seen], Awaitable[web.StreamResponse]]


async def _ok(seen: Seen) -> web.StreamResponse:
    return web.Response(status=204)


@dataclass
class Receiver:
    respond: Respond = _ok
    seen: list[Seen] = field(default_factory=list)
    active: int = 0
    most_active: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(dict(request.headers), await request.read())
        self.seen.append(seen)
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            return await self.respond(seen)
        finally:
            self.active -= 1

    def deliveries(self) -> list[str]:
        return [s.delivery for s in self.seen]


def _app(receiver: Receiver) -> web.Application:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    app.router.add_post("/moved", receiver.handle)
    return app


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    server = TestServer(_app(rec), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield rec, str(server.make_url("/hook"))
    finally:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@dataclass
class Sleeps:
    """The injected sleep: records each back-off asked for, then waits for ``gate`` (if
    any) instead of the real time."""

    delays: list[float] = field(default_factory=list)
    gate: Callable[[], Awaitable[object]] | None = None

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.gate is not None:
            await self.gate()
        await asyncio.sleep(0)


def settings(url: str, **changes: Any) -> WebhookSettings:
    return WebhookSettings.model_validate({"url": url, "secret": SECRET} | changes)


def sender(
    session: aiohttp.ClientSession, url: str, sleeps: Sleeps | None = None, **changes: Any
) -> WebhookSender:
    return WebhookSender(
        settings(url, **changes),
        session,
        sleep=sleeps or Sleeps(),
        rand=lambda: 1.0,
    )


async def until(predicate: Callable[[], bool], limit: float = 2.0) -> None:
    async with asyncio.timeout(limit):
        # Polls the sender's counters: they have no event to wait on.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def offered(call: str, at: float = T0) -> CallOffered:
    return CallOffered(call, "sales", "a1", "PJSIP/a1", at)


def answered(call: str, at: float = T0 + 5) -> CallAnswered:
    return CallAnswered(call, "sales", "a1", 5.0, at)


def ended(call: str, at: float = T0 + 60) -> AcdCallEnded:
    return AcdCallEnded(call, "sales", "a1", 55.0, 0.0, at)


# -- settings ---------------------------------------------------------------------------------


def test_settings_defaults() -> None:
    s = settings("https://crm.example/hooks")
    assert (s.timeout, s.max_attempts, s.backoff_min, s.backoff_max) == (5.0, 8, 1.0, 300.0)
    assert (s.max_pending, s.concurrency, s.events) == (10_000, 4, None)


@pytest.mark.parametrize(
    "changes",
    [
        {"url": "ftp://crm.example/x"},
        {"url": "https:///no-host"},
        {"secret": "short-secret"},
        {"events": ["answered", "answred"]},
        {"backoff_min": 10, "backoff_max": 1},
        {"max_attempts": 0},
        {"timeout": 0},
        {"colour": "blue"},
    ],
)
def test_settings_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        WebhookSettings.model_validate({"url": "https://x.example/h", "secret": SECRET} | changes)
    assert SECRET not in str(info.value)
    assert "short-secret" not in str(info.value)  # input values are never quoted


def test_settings_know_every_kind_the_timeline_makes() -> None:
    # Every kind a webhook can receive must be nameable in ``events``.
    from crm_bridge.timeline import _KINDS  # the ACD kinds, kept private there

    assert set(_KINDS.values()) <= KINDS
    assert {"call_started", "call_ended", "ivr_finished", "queued"} <= KINDS


# -- pure parts -------------------------------------------------------------------------------


def test_sign_and_verify() -> None:
    body = b'{"id":"x"}'
    stamp = str(int(T0))
    headers = {"X-CTI-Timestamp": stamp, "X-CTI-Signature": sign(SECRET, stamp, body)}
    assert headers["X-CTI-Signature"].startswith("sha256=")
    assert len(headers["X-CTI-Signature"]) == len("sha256=") + 64
    assert verify(SECRET, headers, body, T0 + 10)
    assert verify(SECRET.encode(), {k.lower(): v for k, v in headers.items()}, body, T0)
    assert not verify("another-secret-value", headers, body, T0)
    assert not verify(SECRET, headers, body + b" ", T0)  # body changed
    assert not verify(SECRET, headers, body, T0 + 301)  # a replay, too late
    assert not verify(SECRET, headers, body, T0 - 301)
    # The timestamp is under the MAC: moving it forward breaks the signature.
    moved = {**headers, "X-CTI-Timestamp": str(int(T0) + 100)}
    assert not verify(SECRET, moved, body, T0 + 100)
    assert not verify(SECRET, {"X-CTI-Signature": headers["X-CTI-Signature"]}, body, T0)
    assert not verify(SECRET, {**headers, "X-CTI-Timestamp": " -1"}, body, T0)
    assert not verify(SECRET, {"X-CTI-Timestamp": stamp}, body, T0)


def test_classify() -> None:
    assert [classify(s) for s in (200, 202, 204, 299)] == ["delivered"] * 4
    assert [classify(s) for s in (408, 429, 500, 502, 503, 599)] == ["retry"] * 6
    assert [classify(s) for s in (301, 302, 400, 401, 403, 404, 410, 422)] == ["failed"] * 8


def test_retry_delay_grows_with_jitter_and_caps() -> None:
    top = [retry_delay(n, 1.0, 300.0, lambda: 1.0) for n in range(1, 12)]
    assert top[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert top[-1] == 300.0
    low = [retry_delay(n, 1.0, 300.0, lambda: 0.0) for n in range(1, 5)]
    assert low == [1.0, 1.0, 2.0, 4.0]  # half the step, never under backoff_min
    assert retry_delay(500, 1.0, 300.0, lambda: 1.0) == 300.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("7", T0) == 7.0
    assert parse_retry_after(" 0 ", T0) == 0.0
    assert parse_retry_after(None, T0) is None
    assert parse_retry_after("soon", T0) is None
    assert parse_retry_after("-3", T0) is None
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(T0 + 30))
    assert parse_retry_after(date, T0) == pytest.approx(30.0)


def test_encode() -> None:
    event = TimelineEvent("k1", "call-1", "answered", T0, {"name": "<img src=x>"})
    assert json.loads(encode(event)) == {
        "id": "k1",
        "type": "answered",
        "interaction": "call-1",
        "at": T0,
        "data": {"name": "<img src=x>"},
    }
    with pytest.raises(ValueError):
        encode(TimelineEvent("k1", "call-1", "answered", T0, {"wait": float("nan")}))


# -- delivery ---------------------------------------------------------------------------------


async def test_delivery_is_signed_and_verifiable(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    rec, url = receiver
    hooks = sender(session, url)
    await hooks.start()
    hooks.on_event(answered("1700.1"))
    await until(lambda: hooks.stats.sent == 1)
    await hooks.aclose(1)
    [seen] = rec.seen
    assert verify(SECRET, seen.headers, seen.body, time.time())
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["X-CTI-Event"] == "answered"
    body = seen.json
    assert seen.delivery == body["id"] == f"acd:answered:1700.1:{T0 + 5:.3f}"
    assert (body["type"], body["interaction"], body["at"]) == ("answered", "1700.1", T0 + 5)
    assert body["data"] == {"queue": "sales", "agent_id": "a1", "wait": 5.0}
    assert abs(int(seen.headers["X-CTI-Timestamp"]) - time.time()) < 5
    assert hooks.stats.pending == 0


async def test_retry_after_500_reuses_the_delivery_id(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    rec, url = receiver
    answers = [500, 200]

    async def respond(seen: Seen) -> web.StreamResponse:
        return web.Response(status=answers.pop(0))

    rec.respond = respond
    sleeps = Sleeps()
    hooks = sender(session, url, sleeps, backoff_min=0.5)
    await hooks.start()
    hooks.on_event(offered("1700.2"))
    await until(lambda: hooks.stats.sent == 1)
    await hooks.aclose(1)
    assert len(rec.seen) == 2
    assert rec.seen[0].delivery == rec.seen[1].delivery
    assert rec.seen[0].body == rec.seen[1].body
    assert all(verify(SECRET, s.headers, s.body, time.time()) for s in rec.seen)
    assert sleeps.delays == [0.5]
    assert (hooks.stats.sent, hooks.stats.retried, hooks.stats.failed) == (1, 1, 0)


async def test_connection_refused_then_delivered(session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:  # a free port, with nobody listening on it yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rec = Receiver()
    server = TestServer(_app(rec), host="127.0.0.1", port=port)

    async def receiver_comes_up() -> None:
        if server.runner is None:
            await server.start_server()

    sleeps = Sleeps(gate=receiver_comes_up)
    hooks = sender(session, f"http://127.0.0.1:{port}/hook", sleeps)
    try:
        await hooks.start()
        hooks.on_event(offered("1700.3"))
        await until(lambda: hooks.stats.sent == 1)
        await hooks.aclose(1)
    finally:
        await server.close()
    assert len(sleeps.delays) == 1  # refused once, then the receiver was there
    assert rec.deliveries() == [f"acd:offered:1700.3:{T0:.3f}"]
    assert hooks.stats.retried == 1


async def test_timeout_is_retried(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    rec, url = receiver

    async def respond(seen: Seen) -> web.StreamResponse:
        if len(rec.seen) == 1:
            await asyncio.sleep(1)  # longer than the timeout
        return web.Response(status=200)

    rec.respond = respond
    hooks = sender(session, url, timeout=0.1)
    await hooks.start()
    hooks.on_event(offered("1700.4"))
    await until(lambda: hooks.stats.sent == 1)
    await hooks.aclose(1)
    assert len(rec.seen) == 2
    assert rec.seen[0].delivery == rec.seen[1].delivery


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [(429, "7", 7.0), (503, "100000", 300.0), (408, "0", 0.0), (503, "nonsense", 1.0)],
)
async def test_retry_after_is_honoured(
    receiver: tuple[Receiver, str],
    session: aiohttp.ClientSession,
    status: int,
    retry_after: str,
    expected: float,
) -> None:
    rec, url = receiver

    async def respond(seen: Seen) -> web.StreamResponse:
        if len(rec.seen) == 1:
            return web.Response(status=status, headers={"Retry-After": retry_after})
        return web.Response(status=200)

    rec.respond = respond
    sleeps = Sleeps()
    hooks = sender(session, url, sleeps)
    await hooks.start()
    hooks.on_event(offered("1700.5"))
    await until(lambda: hooks.stats.sent == 1)
    await hooks.aclose(1)
    assert sleeps.delays == [expected]  # capped at backoff_max; unreadable: the back-off


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422, 302])
async def test_refused_for_good_is_not_retried(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession, status: int
) -> None:
    rec, url = receiver

    async def respond(seen: Seen) -> web.StreamResponse:
        if seen.json["type"] == "offered":
            return web.Response(status=status, headers={"Location": "/moved"})
        return web.Response(status=200)

    rec.respond = respond
    sleeps = Sleeps()
    hooks = sender(session, url, sleeps)
    await hooks.start()
    hooks.on_event(offered("1700.6"))
    hooks.on_event(answered("1700.6"))
    await until(lambda: hooks.stats.sent == 1)
    await hooks.aclose(1)
    # One attempt only; a redirect is not followed; the next event of the call still goes.
    assert [s.json["type"] for s in rec.seen] == ["offered", "answered"]
    assert sleeps.delays == []
    assert (hooks.stats.failed, hooks.stats.retried, hooks.stats.sent) == (1, 0, 1)


async def test_gives_up_after_max_attempts(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    rec, url = receiver

    async def respond(seen: Seen) -> web.StreamResponse:
        return web.Response(status=502)

    rec.respond = respond
    sleeps = Sleeps()
    hooks = sender(session, url, sleeps, max_attempts=3, backoff_min=2, backoff_max=3)
    await hooks.start()
    hooks.on_event(offered("1700.7"))
    await until(lambda: hooks.stats.failed == 1)
    await hooks.aclose(1)
    assert len(rec.seen) == 3
    assert sleeps.delays == [2.0, 3.0]
    assert (hooks.stats.retried, hooks.stats.pending) == (2, 0)


async def test_one_interaction_in_order_others_not_blocked(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    rec, url = receiver
    b_delivered = asyncio.Event()
    failed_once: set[str] = set()

    async def respond(seen: Seen) -> web.StreamResponse:
        body = seen.json
        if body["interaction"] == "A" and body["type"] == "offered" and not failed_once:
            failed_once.add(seen.delivery)
            return web.Response(status=500)
        if body["interaction"] == "B":
            b_delivered.set()
        return web.Response(status=200)

    async def gate() -> None:
        # A's retry waits until B went through: B must not be held up by A's trouble.
        await b_delivered.wait()

    rec.respond = respond
    hooks = sender(session, url, Sleeps(gate=gate), concurrency=2)
    hooks.on_event(offered("A"))
    hooks.on_event(answered("A"))
    hooks.on_event(ended("A"))
    hooks.on_event(offered("B"))
    await hooks.start()
    await until(lambda: hooks.stats.sent == 4)
    await hooks.aclose(1)
    order = [(s.json["interaction"], s.json["type"]) for s in rec.seen]
    assert [kind for call, kind in order if call == "A"] == [
        "offered",
        "offered",
        "answered",
        "ended",
    ]
    # B went through while A was backing off (A's retry was held until B arrived).
    assert order.index(("B", "offered")) < len(order) - 3
    assert hooks.stats.retried == 1


async def test_concurrency_is_bounded(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    rec, url = receiver

    async def respond(seen: Seen) -> web.StreamResponse:
        await asyncio.sleep(0.02)
        return web.Response(status=200)

    rec.respond = respond
    hooks = sender(session, url, concurrency=3)
    await hooks.start()
    for n in range(12):
        hooks.on_event(offered(f"call-{n}"))
    await until(lambda: hooks.stats.sent == 12)
    await hooks.aclose(1)
    assert rec.most_active == 3


async def test_full_queue_drops_the_oldest(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    rec, url = receiver
    hooks = sender(session, url, max_pending=3)
    calls = [f"call-{n}" for n in range(6)]
    with caplog.at_level("WARNING", logger="crm_bridge.webhooks"):
        for call in calls:
            hooks.on_event(offered(call))
    assert (hooks.stats.dropped, hooks.stats.pending) == (3, 3)
    burst = [r for r in caplog.records if "dropping the oldest" in r.getMessage()]
    assert len(burst) == 1  # once per burst, not once per event
    with caplog.at_level("WARNING", logger="crm_bridge.webhooks"):
        await hooks.start()
        await until(lambda: hooks.stats.sent == 3)
        await hooks.aclose(1)
    assert sorted(s.json["interaction"] for s in rec.seen) == calls[3:]
    summary = [r for r in caplog.records if "dropped in that burst" in r.getMessage()]
    assert [r.getMessage().split(": ")[1] for r in summary] == ["3 events dropped in that burst"]


async def test_aclose_delivers_what_is_pending(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    rec, url = receiver

    async def respond(seen: Seen) -> web.StreamResponse:
        await asyncio.sleep(0.01)
        return web.Response(status=200)

    rec.respond = respond
    hooks = sender(session, url, concurrency=2)
    await hooks.start()
    for n in range(6):
        hooks.on_event(offered(f"call-{n}"))
        hooks.on_event(answered(f"call-{n}"))
    await hooks.aclose(2)
    assert (hooks.stats.sent, hooks.stats.pending, hooks.stats.dropped) == (12, 0, 0)
    hooks.on_event(ended("call-0"))  # closed: nothing more is taken
    assert hooks.stats.pending == 0
    assert len(rec.seen) == 12


async def test_aclose_gives_up_at_its_timeout(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    rec, url = receiver

    async def respond(seen: Seen) -> web.StreamResponse:
        return web.Response(status=503)

    rec.respond = respond

    async def forever() -> None:
        await asyncio.Event().wait()

    hooks = sender(session, url, Sleeps(gate=forever))
    await hooks.start()
    hooks.on_event(offered("1700.8"))
    hooks.on_event(answered("1700.8"))
    await until(lambda: len(rec.seen) == 1)
    started = time.monotonic()
    await hooks.aclose(0.1)
    assert time.monotonic() - started < 1
    assert (hooks.stats.sent, hooks.stats.dropped, hooks.stats.pending) == (0, 2, 0)


def _agent_state() -> AgentStateChanged:
    return AgentStateChanged("a1", AgentStatus.READY, AgentStatus.NOT_READY, AgentEvent.LOGIN, T0)


def _supervisor() -> SupervisorAction:
    return SupervisorAction("sue", "supervisor", "listen", "a1", "", T0)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (None, ["queued", "offered", "answered"]),
        (["answered"], ["answered"]),
        (["agent_state", "offered"], ["agent_state", "offered"]),
        (["supervisor_action"], ["supervisor_action"]),
    ],
)
async def test_events_filter(
    receiver: tuple[Receiver, str],
    session: aiohttp.ClientSession,
    events: list[str] | None,
    expected: list[str],
) -> None:
    rec, url = receiver
    hooks = sender(session, url, events=events, concurrency=1)
    hooks.on_event(_agent_state())
    hooks.on_event(_supervisor())
    hooks.on_event(CallQueued("c1", "sales", "voice", 0, T0 - 10, T0 - 10))
    hooks.on_event(offered("c1"))
    hooks.on_event(answered("c1"))
    await hooks.start()
    await hooks.aclose(2)
    assert [s.json["type"] for s in rec.seen] == expected
    assert hooks.stats.sent == len(expected)


class _Exploding:
    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(name)


async def test_hostile_and_odd_events_are_ignored(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    rec, url = receiver
    hooks = sender(session, url)
    odd: list[Any] = [
        None,
        object(),
        "offered",
        {"type": "offered"},
        _Exploding(),
        CallOffered("x\r\nX-Evil: 1", "sales", "a1", "PJSIP/a1", T0),  # header injection
        CallOffered("ü", "sales", "a1", "PJSIP/a1", T0),  # not ASCII: not a header value
        CallOffered("c1", "sales", "a1", "PJSIP/a1", float("nan")),
        CallOffered("c1", "sales", "a1", "PJSIP/a1", "yesterday"),  # type: ignore[arg-type]  # a peer's bad value
        CallAnswered("c1", "sales", "a1", float("inf"), T0),  # not JSON
        CallOffered("", "sales", "a1", "PJSIP/a1", T0),  # no interaction key
    ]
    for event in odd:
        hooks.on_event(event)  # never raises
    assert hooks.stats.pending == 0
    assert hooks.stats.invalid == 6
    # A hostile name travels as data, untouched, and does not stop the next event.
    hooks.on_event(CallOffered("c2", "<script>alert(1)</script>", "a1", "PJSIP/a1", T0))
    await hooks.start()
    await hooks.aclose(1)
    assert [s.json["data"]["queue"] for s in rec.seen] == ["<script>alert(1)</script>"]
