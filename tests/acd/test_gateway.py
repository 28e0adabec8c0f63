"""The IVR's door into the ACD (``AcdQueueGateway``, ``AcdCallbacks``) and the waiting
caller's periodic FastAGI visit (``WaitTick``), against fakes of the call and of Asterisk."""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from support.fake_agi import FakeAsterisk, MakeServer
from support.fake_call import FakeCall

from acd.config import AcdConfig, load_acd_config
from acd.gateway import AcdCallbacks, AcdQueueGateway, WaitTick
from acd.ports import DeliveryError
from acd.service import AcdService, decode_waiting
from acd.store import MemoryStore
from cti.errors import CtiError
from ivr.model import Prompt
from ivr.ports import CallbackRequest, CallInfo, QueueRequest

CONFIG = """
fallback_after: 40
not_ready_reasons: [break]
defaults: {announce: {every: 10, position: true, estimated_wait: true}, music_class: jazz}
queues:
  sales: {skills: {sales: 1}}
  support: {skills: {support: 1}, callback_offer_after: 30}
agents:
  a1: {skills: {sales: 2, support: 2}, queues: [sales, support]}
"""


class NullPbx:
    async def deliver(self, channel: str, endpoint: str, ring: float, agent_id: str) -> None:
        raise DeliveryError("not in these tests")

    async def originate_callback(self, *args: object, **kwargs: object) -> str:
        raise DeliveryError("not in these tests")

    async def overflow(self, channel: str, kind: str, target: str) -> None:
        raise DeliveryError("not in these tests")

    async def update_waiting(self, channel: str, state: str) -> None:
        return None

    dial_checks: tuple[float, ...] = ()

    async def dial_status(self, channel: str) -> str:
        raise DeliveryError("not in these tests")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.123456

    def __call__(self) -> float:
        return self.now


def _config(tmp_path: Path) -> AcdConfig:
    path = tmp_path / "acd.yaml"
    path.write_text(textwrap.dedent(CONFIG), encoding="utf-8")
    return load_acd_config(path)


def _service(tmp_path: Path, clock: Clock) -> AcdService:
    return AcdService(
        _config(tmp_path), pbx=NullPbx(), store=MemoryStore(), publish=lambda e: None, clock=clock
    )


CALL = CallInfo(ani="5551234", dnis="8000", channel="PJSIP/trunk-0001", uniqueid="1800.1")


async def test_enqueue_stores_the_place_on_the_channel_and_hands_the_call_over(
    tmp_path: Path,
) -> None:
    clock = Clock()
    service = _service(tmp_path, clock)
    gateway = AcdQueueGateway(service, clock=clock)
    call = FakeCall()
    request = QueueRequest(
        CALL, "sales", skills={"english": 2}, priority=5, data={"reason": "sales", "tier": "gold"}
    )

    outcome = await gateway.enqueue(request, call)

    assert (outcome.status, outcome.detail) == ("queued", "sales")
    state = decode_waiting(call.variables["CTI_ACD"])
    assert state is not None
    assert (state.queue, state.priority, dict(state.skills), state.ani) == (
        "sales",
        5,
        {"english": 2},
        "5551234",
    )
    # Milliseconds: what the channel keeps is exactly what the ACD holds.
    assert state.entered_at == service.calls["1800.1"].entered_at == 1_800_000_000.123
    assert call.variables["__CTI_POP_REASON"] == "sales"
    assert call.variables["__CTI_POPS"] == "REASON,TIER"
    assert (call.variables["CTI_ACD_TICK"], call.variables["CTI_ACD_MOH"]) == ("10", "jazz")
    assert call.variables["CTI_ACD_FALLBACK_AFTER"] == "40"
    # The channel moves to the wait loop once the session ends; nobody hangs it up.
    assert call.execs() == [("Goto", "cti-acd-wait", "s", "1")]
    assert "hangup" not in call.names()
    waiting = service.calls["1800.1"]
    assert (waiting.queue, waiting.channel, waiting.priority) == ("sales", CALL.channel, 5)


async def test_an_unknown_queue_is_unavailable_and_touches_nothing(tmp_path: Path) -> None:
    clock = Clock()
    service = _service(tmp_path, clock)
    call = FakeCall()
    outcome = await AcdQueueGateway(service, clock=clock).enqueue(
        QueueRequest(CALL, "nowhere"), call
    )
    assert outcome.status == "unavailable"
    assert call.ops == []
    assert service.calls == {}


async def test_figures_for_ivr_branches(tmp_path: Path) -> None:
    clock = Clock()
    service = _service(tmp_path, clock)
    gateway = AcdQueueGateway(service, clock=clock)
    assert gateway.figures("sales").agents_available == 0
    assert gateway.figures("sales").estimated_wait is None
    service.login("a1")
    service.ready("a1")
    assert gateway.figures("sales").agents_available == 1
    assert gateway.figures("sales").estimated_wait is not None
    assert gateway.figures("nowhere").agents_available == 0


async def test_callback_requests_become_acd_callbacks(tmp_path: Path) -> None:
    clock = Clock()
    service = _service(tmp_path, clock)
    callbacks = AcdCallbacks(service, default_queue="support")
    await callbacks.add(CallbackRequest("5552000", CALL, None, clock(), {"reason": "x"}))
    (callback,) = [c for c in service.calls.values() if c.kind == "callback"]
    assert (callback.queue, callback.number, callback.data) == (
        "support",
        "5552000",
        {"CTI_POP_REASON": "x"},
    )
    with pytest.raises(CtiError):
        await AcdCallbacks(service).add(CallbackRequest("5552000", CALL, None, clock()))


class Prompts:
    async def resolve(self, prompt: Prompt, text: str | None) -> str:
        return "tts/offer" if text and "press 1" in text else "tts/confirm"


def _env(uniqueid: str) -> bytes:
    return (
        "agi_network: yes\nagi_network_script: acd-wait\n"
        "agi_request: agi://127.0.0.1/acd-wait\nagi_channel: PJSIP/trunk-0001\n"
        f"agi_uniqueid: {uniqueid}\nagi_callerid: 5551234\n\n"
    ).encode()


async def test_the_visit_beats_the_heart_and_announces_the_position(
    tmp_path: Path,
    make_server: MakeServer,
    connect_fake: Callable[[int], Awaitable[FakeAsterisk]],
) -> None:
    clock = Clock()
    service = _service(tmp_path, clock)
    service.enqueue("1800.0", "PJSIP/trunk-0000", "sales", entered_at=clock.now - 5)
    service.enqueue("1800.1", "PJSIP/trunk-0001", "sales", entered_at=clock.now)
    tick = WaitTick(service)
    harness = await make_server(routes={"acd-wait": tick})
    fake = await connect_fake(harness.port)
    await fake.send(_env("1800.1"))
    await fake.play(
        [
            (b'SET VARIABLE "CTI_ACD_ALIVE" "1"\n', b"200 result=1\n"),
            # Second in line: "there are" 1 "calls waiting" (before this caller).
            (b'STREAM FILE "queue-thereare" "" "0"\n', b"200 result=0 endpos=100\n"),
            (b'SAY NUMBER "1" ""\n', b"200 result=0\n"),
            (b'STREAM FILE "queue-callswaiting" "" "0"\n', b"200 result=0 endpos=100\n"),
        ]
    )
    await fake.expect_handled()
    await fake.close()
    assert tick.visits == 1


async def test_a_visit_for_an_unknown_call_adopts_it_from_the_channel(
    tmp_path: Path,
    make_server: MakeServer,
    connect_fake: Callable[[int], Awaitable[FakeAsterisk]],
) -> None:
    clock = Clock()
    service = _service(tmp_path, clock)
    tick = WaitTick(service)
    harness = await make_server(routes={"acd-wait": tick})
    fake = await connect_fake(harness.port)
    await fake.send(_env("1800.7"))
    place = "v=1&queue=support&entered=1799999990.5&priority=3&skills=support%3A2&ani=5557777"
    await fake.play(
        [
            (b'GET VARIABLE "CTI_ACD"\n', f"200 result=1 ({place})\n".encode()),
            (b'SET VARIABLE "CTI_ACD_ALIVE" "1"\n', b"200 result=1\n"),
            (b'STREAM FILE "queue-youarenext" "" "0"\n', b"200 result=0 endpos=100\n"),
        ]
    )
    await fake.expect_handled()
    await fake.close()
    adopted = service.calls["1800.7"]
    assert (adopted.queue, adopted.entered_at, adopted.priority, adopted.number) == (
        "support",
        1799999990.5,
        3,
        "5557777",
    )
    assert tick.adopted == 1


async def test_a_visit_without_a_place_gives_no_heartbeat(
    tmp_path: Path,
    make_server: MakeServer,
    connect_fake: Callable[[int], Awaitable[FakeAsterisk]],
) -> None:
    service = _service(tmp_path, Clock())
    harness = await make_server(routes={"acd-wait": WaitTick(service)})
    fake = await connect_fake(harness.port)
    await fake.send(_env("1800.9"))
    await fake.play([(b'GET VARIABLE "CTI_ACD"\n', b"200 result=0\n")])
    # No CTI_ACD_ALIVE: the dialplan's own timer sends the caller to the fallback.
    await fake.expect_handled()
    await fake.close()
    assert service.calls == {}


async def test_a_long_wait_offers_a_callback_that_keeps_the_place(
    tmp_path: Path,
    make_server: MakeServer,
    connect_fake: Callable[[int], Awaitable[FakeAsterisk]],
) -> None:
    clock = Clock()
    service = _service(tmp_path, clock)
    # One agent (not routed to here: the routing task is not running); the default AHT
    # (180 s) gives this caller an estimate of 3 minutes, above the 30 s threshold.
    service.login("a1")
    service.ready("a1")
    service.enqueue(
        "1800.2", "PJSIP/trunk-0002", "support", entered_at=clock.now - 50, ani="5553333"
    )
    harness = await make_server(routes={"acd-wait": WaitTick(service, prompts=Prompts())})
    fake = await connect_fake(harness.port)
    await fake.send(_env("1800.2"))
    await fake.expect(b'SET VARIABLE "CTI_ACD_ALIVE" "1"\n', b"200 result=1\n")
    await fake.expect(b'STREAM FILE "queue-youarenext" "" "0"\n', b"200 result=0 endpos=100\n")
    # The estimate is announced in minutes, then the offer; the caller presses 1.
    line = await fake.read_line()
    assert line == b'STREAM FILE "queue-holdtime" "" "0"\n'
    await fake.send(b"200 result=0 endpos=100\n")
    assert await fake.read_line() == b'SAY NUMBER "3" ""\n'
    await fake.send(b"200 result=0\n")
    await fake.expect(b'STREAM FILE "queue-minutes" "" "0"\n', b"200 result=0 endpos=100\n")
    await fake.expect(b'STREAM FILE "tts/offer" "1" "0"\n', b"200 result=49 endpos=100\n")
    await fake.expect(b'STREAM FILE "tts/confirm" "" "0"\n', b"200 result=0 endpos=100\n")
    await fake.expect(b"HANGUP\n", b"200 result=1\n")
    await fake.close()
    (callback,) = service.calls.values()
    assert (callback.kind, callback.number, callback.entered_at) == (
        "callback",
        "5553333",
        clock.now - 50,
    )
