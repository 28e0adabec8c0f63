"""Tests for the ACD's HTTP API (acd/api.py) through aiohttp's TestServer/TestClient, with the
service on a fake PBX and a fake clock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from support.fake_acd import Harness, acd_config, agent, make_harness, queue, settle

from acd.agent_state import AgentStatus
from acd.api import add_acd_routes
from acd.ports import CallbackRecord
from acd.schemas import AgentView, WaitingCallView
from agent_console.http import error_middleware

_JSON = {"Content-Type": "application/json"}


@dataclass
class Api:
    client: TestClient[web.Request, web.Application]
    h: Harness


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    config = acd_config(
        (queue("sales", wrap_up=100.0), queue("support")),
        (
            agent("a1", {"sales": 5}, ("sales",)),
            agent("a2", {"sales": 3, "support": 3}, ("sales", "support")),
        ),
    )
    h = make_harness(config)
    app = web.Application(middlewares=[error_middleware])  # as app.web builds it
    add_acd_routes(app, h.service)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Api(client, h)
    finally:
        await client.close()
        await h.service.aclose()


async def test_list_and_get_agents(api: Api) -> None:
    response = await api.client.get("/acd/agents")
    assert response.status == 200
    body = await response.json()
    assert [a["agent_id"] for a in body] == ["a1", "a2"]
    assert body[1]["queues"] == ["sales", "support"]
    assert body[0]["status"] == "logged_out"
    response = await api.client.get("/acd/agents/a2")
    assert (await response.json())["skills"] == {"sales": 3, "support": 3}
    for view in body:
        AgentView.model_validate(view)  # the answer is what the description says
    response = await api.client.get("/acd/agents/nobody")
    assert response.status == 404
    assert await response.json() == {"error": "unknown_agent", "detail": "no such agent"}


async def test_login_ready_not_ready_logout(api: Api) -> None:
    response = await api.client.post("/acd/agents/a1/login")
    assert response.status == 200
    body = await response.json()
    assert (body["status"], body["reason"], body["endpoint"]) == ("not_ready", "login", "PJSIP/a1")
    response = await api.client.post("/acd/agents/a1/ready")
    assert (await response.json())["status"] == "ready"
    response = await api.client.post("/acd/agents/a1/not-ready", json={"reason": "break"})
    body = await response.json()
    assert (response.status, body["status"], body["reason"]) == (200, "not_ready", "break")
    response = await api.client.post("/acd/agents/a1/logout")
    assert (await response.json())["status"] == "logged_out"
    assert api.h.store.agents["a1"].status == "logged_out"


async def test_login_with_an_endpoint(api: Api) -> None:
    response = await api.client.post("/acd/agents/a2/login", json={"endpoint": "PJSIP/desk9"})
    assert (await response.json())["endpoint"] == "PJSIP/desk9"
    # The phone is taken now.
    response = await api.client.post("/acd/agents/a1/login", json={"endpoint": "PJSIP/desk9"})
    assert response.status == 409
    answer = await response.json()
    assert answer["error"] == "agent_conflict"
    assert "a2" in answer["detail"]


@pytest.mark.parametrize(
    ("path", "body", "status", "error", "detail"),
    [
        ("/acd/agents/nobody/login", None, 404, "unknown_agent", "nobody"),
        ("/acd/agents/nobody/ready", None, 404, "unknown_agent", "nobody"),
        (
            "/acd/agents/a1/login",
            {"endpoint": "not a phone"},
            422,
            "invalid_agent_request",
            "endpoint",
        ),
        ("/acd/agents/a1/login", {"endpoint": 7}, 422, "invalid_body", "endpoint: "),
        ("/acd/agents/a1/ready", None, 409, "agent_conflict", "logged_out"),  # logged out
        ("/acd/agents/a1/end-wrap-up", None, 409, "agent_conflict", "wrap"),
        ("/acd/agents/a1/not-ready", {}, 422, "invalid_body", "reason: Field required"),
        ("/acd/agents/a1/not-ready", {"reason": "nap"}, 422, "invalid_agent_request", "nap"),
        ("/acd/agents/a1/not-ready", {"reason": ["break"]}, 422, "invalid_body", "reason: "),
        ("/acd/agents/a1/logout", None, 409, "agent_conflict", "logged"),
    ],
)
async def test_agent_errors(
    api: Api, path: str, body: object, status: int, error: str, detail: str
) -> None:
    response = await api.client.post(path, json=body) if body is not None else None
    if response is None:
        response = await api.client.post(path)
    assert response.status == status
    answer = await response.json()
    assert answer["error"] == error
    assert detail in answer["detail"]


async def test_a_bad_body_names_the_field_at_fault(api: Api) -> None:
    response = await api.client.post("/acd/agents/a1/not-ready", json={"reason": 7})
    assert response.status == 422
    answer = await response.json()
    assert (answer["error"], answer["fields"]) == ("invalid_body", ["reason"])
    assert answer["detail"].startswith("reason: Input should be a valid string")


@pytest.mark.parametrize("raw", [b"{not json", b'{"reason": "break"', b"\xff\xfe"])
async def test_bad_json_is_400(api: Api, raw: bytes) -> None:
    await api.client.post("/acd/agents/a1/login")
    response = await api.client.post("/acd/agents/a1/not-ready", data=raw, headers=_JSON)
    assert response.status == 400
    answer = await response.json()
    assert answer["error"] == "body_not_json"
    assert "JSON" in answer["detail"]
    assert api.h.service.agents["a1"].state.reason == "login"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_declared_json_is_415(api: Api, content_type: str) -> None:
    await api.client.post("/acd/agents/a1/login")
    response = await api.client.post(
        "/acd/agents/a1/not-ready",
        data=b'{"reason": "break"}',
        headers={"Content-Type": content_type},
    )
    assert response.status == 415
    answer = await response.json()
    assert answer["error"] == "unsupported_media_type"
    assert content_type in answer["detail"]
    assert api.h.service.agents["a1"].state.reason == "login"


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"break"', b"null", b"3"])
async def test_a_body_that_is_not_an_object_is_422(api: Api, raw: bytes) -> None:
    await api.client.post("/acd/agents/a1/login")
    response = await api.client.post("/acd/agents/a1/not-ready", data=raw, headers=_JSON)
    assert response.status == 422
    answer = await response.json()
    assert answer["error"] == "invalid_body"
    assert "object" in answer["detail"]


async def test_an_empty_body_is_no_arguments(api: Api) -> None:
    response = await api.client.post("/acd/agents/a1/login", data=b"  \n")
    assert response.status == 200
    assert (await response.json())["endpoint"] == "PJSIP/a1"


@pytest.mark.parametrize("size", [4097, 100_000])
async def test_an_oversized_body_is_413(api: Api, size: int) -> None:
    padding = "x" * size
    response = await api.client.post(
        "/acd/agents/a1/login", data=f'{{"endpoint": "PJSIP/a1", "pad": "{padding}"}}'
    )
    assert response.status == 413
    assert (await response.json())["error"] == "body_too_large"
    assert api.h.service.agents["a1"].status is AgentStatus.LOGGED_OUT


async def test_end_wrap_up(api: Api) -> None:
    h = api.h
    h.ready("a1")
    h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    h.service.route_once()
    h.service.answered("c1")
    h.service.hangup("c1")
    assert h.service.agents["a1"].status is AgentStatus.WRAP_UP
    response = await api.client.get("/acd/agents/a1")
    assert (await response.json())["wrap_until"] == h.clock.now + 100.0
    response = await api.client.post("/acd/agents/a1/end-wrap-up")
    assert (response.status, (await response.json())["status"]) == (200, "ready")


async def test_queues_figures(api: Api) -> None:
    api.h.service.enqueue("c1", "PJSIP/caller-1", "sales")
    api.h.clock.advance(12)
    response = await api.client.get("/acd/queues")
    assert response.status == 200
    body = {q["queue"]: q for q in await response.json()}
    assert set(body) == {"sales", "support"}
    assert (body["sales"]["waiting"], body["sales"]["longest_wait"]) == (1, 12.0)
    assert body["support"]["waiting"] == 0


async def test_calls_in_the_order_served(api: Api) -> None:
    h = api.h
    h.service.enqueue("late", "PJSIP/late", "sales")
    h.clock.advance(1)
    h.service.enqueue("vip", "PJSIP/vip", "sales", priority=5)
    h.clock.advance(1)
    cb = h.service.request_callback("555", "support")
    h.clock.advance(1)
    h.service.enqueue("taken", "PJSIP/taken", "support")
    h.ready("a1")
    h.service.route_once()
    await settle()
    response = await api.client.get("/acd/calls")
    body = await response.json()
    for call in body:
        WaitingCallView.model_validate(call)
    # a1 took the VIP call; the rest wait in the order they will be served.
    assert [(c["call_id"], c["position"], c["state"]) for c in body] == [
        ("late", 1, "waiting"),
        (cb.call_id, 2, "waiting"),
        ("taken", 3, "waiting"),
        ("vip", 0, "offered"),
    ]
    assert body[1]["kind"] == "callback"
    assert body[1]["number"] == "555"
    assert body[3]["agent_id"] == "a1"
    assert body[0]["retry_at"] is None


async def test_failed_callbacks(api: Api) -> None:
    response = await api.client.get("/acd/callbacks/failed")
    assert await response.json() == []
    record = CallbackRecord("cb-1", "sales", "555", 1.0, attempts=3, last_status="BUSY")
    api.h.store.finish_callback("cb-1", failed=record)
    response = await api.client.get("/acd/callbacks/failed")
    [failed] = await response.json()
    assert (failed["call_id"], failed["attempts"], failed["last_status"]) == ("cb-1", 3, "BUSY")


async def test_unknown_routes_and_methods(api: Api) -> None:
    assert (await api.client.get("/acd/agents/a1/ready")).status == 405
    assert (await api.client.post("/acd/agents/a1/dance")).status == 404


async def test_failed_callbacks_are_read_off_the_event_loop(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file store reads one file per callback from a directory: never on the loop's thread.
    threads: list[int] = []
    read = api.h.service.failed_callbacks

    def spy() -> list[CallbackRecord]:
        threads.append(threading.get_ident())
        return read()

    monkeypatch.setattr(api.h.service, "failed_callbacks", spy)
    response = await api.client.get("/acd/callbacks/failed")
    assert (response.status, await response.json()) == (200, [])
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()


async def test_a_body_that_arrives_in_pieces_is_read_whole(api: Api) -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b'{"endpoint": ', b'"PJSIP/', b'desk7"}'):
            yield piece
            await asyncio.sleep(0.01)

    response = await api.client.post("/acd/agents/a1/login", data=pieces(), headers=_JSON)
    assert (response.status, (await response.json())["endpoint"]) == (200, "PJSIP/desk7")
