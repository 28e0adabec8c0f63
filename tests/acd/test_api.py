"""Tests for the ACD's HTTP API (acd/api.py) through aiohttp's TestServer/TestClient, with the
service on a fake PBX and a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from support.fake_acd import Harness, acd_config, agent, make_harness, queue, settle

from acd.agent_state import AgentStatus
from acd.api import add_acd_routes
from acd.ports import CallbackRecord


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
    app = web.Application()
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
    response = await api.client.get("/acd/agents/nobody")
    assert response.status == 404
    assert "error" in await response.json()


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
    assert "a2" in (await response.json())["error"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/acd/agents/nobody/login", None, 404),
        ("/acd/agents/nobody/ready", None, 404),
        ("/acd/agents/a1/login", {"endpoint": "not a phone"}, 422),
        ("/acd/agents/a1/login", {"endpoint": 7}, 422),
        ("/acd/agents/a1/ready", None, 409),  # logged out
        ("/acd/agents/a1/end-wrap-up", None, 409),
        ("/acd/agents/a1/not-ready", {}, 422),
        ("/acd/agents/a1/not-ready", {"reason": "nap"}, 422),
        ("/acd/agents/a1/not-ready", {"reason": ["break"]}, 422),
        ("/acd/agents/a1/logout", None, 409),
    ],
)
async def test_agent_errors(api: Api, path: str, body: object, status: int) -> None:
    response = await api.client.post(path, json=body) if body is not None else None
    if response is None:
        response = await api.client.post(path)
    assert response.status == status
    assert isinstance((await response.json())["error"], str)


@pytest.mark.parametrize("raw", [b"{not json", b'{"reason": "break"', b"\xff\xfe"])
async def test_bad_json_is_422(api: Api, raw: bytes) -> None:
    await api.client.post("/acd/agents/a1/login")
    response = await api.client.post("/acd/agents/a1/not-ready", data=raw)
    assert response.status == 422
    assert "JSON" in (await response.json())["error"]
    assert api.h.service.agents["a1"].state.reason == "login"


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"break"', b"null", b"3"])
async def test_a_body_that_is_not_an_object_is_422(api: Api, raw: bytes) -> None:
    await api.client.post("/acd/agents/a1/login")
    response = await api.client.post("/acd/agents/a1/not-ready", data=raw)
    assert response.status == 422
    assert "object" in (await response.json())["error"]


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
