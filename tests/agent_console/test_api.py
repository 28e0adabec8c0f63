"""The console's agent API: permissions on the server, supervisor actions audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from support.fake_acd import Harness, acd_config, agent, make_harness, queue

from agent_console.accounts import AccountStore
from agent_console.api import add_console_routes
from agent_console.auth import CSRF_HEADER, add_auth_routes, security_middleware
from agent_console.http import error_middleware
from crm_bridge.db import create_engine, migrate
from crm_bridge.timeline import from_bus
from cti.contracts.console import SupervisorAction


@dataclass
class World:
    client: TestClient[web.Request, web.Application]
    acd: Harness
    audit: list[object]
    csrf: str = ""

    async def login(self, username: str) -> None:
        response = await self.client.post(
            "/api/login", json={"username": username, "password": f"{username}-password"}
        )
        assert response.status == 200
        self.csrf = (await response.json())["csrf"]

    async def post(self, path: str, body: dict[str, str] | None = None) -> ClientResponse:
        return await self.client.post(path, json=body, headers={CSRF_HEADER: self.csrf})


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}")
    await migrate(engine)
    accounts = AccountStore(engine, log2_n=10)
    await accounts.add_user("ann", "ann-password", "agent", agent_id="a1")
    await accounts.add_user("sam", "sam-password", "supervisor")
    harness = make_harness(
        acd_config(
            (queue("sales"),),
            (agent("a1", {"sales": 5}, ("sales",)), agent("a2", {"sales": 5}, ("sales",))),
        )
    )
    audit: list[object] = []
    app = web.Application(middlewares=[error_middleware, security_middleware])
    add_auth_routes(app, accounts)
    add_console_routes(app, harness.service, audit.append)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield World(client, harness, audit)
    finally:
        await client.close()
        await engine.dispose()


async def test_an_agent_works_their_own_state(world: World) -> None:
    await world.login("ann")
    assert (await world.post("/api/agents/a1/login")).status == 200
    ready = await world.post("/api/agents/a1/ready")
    assert (ready.status, (await ready.json())["status"]) == (200, "ready")
    pause = await world.post("/api/agents/a1/not-ready", {"reason": "lunch"})
    assert (pause.status, (await pause.json())["reason"]) == (200, "lunch")
    bad = await world.post("/api/agents/a1/not-ready", {"reason": "nap"})
    assert bad.status == 422
    own = await world.client.get("/api/agents/a1")
    assert own.status == 200
    assert world.audit == []  # an agent's own changes are not supervisor actions


async def test_an_agent_cannot_act_for_another_or_see_the_monitor(world: World) -> None:
    await world.login("ann")
    assert (await world.post("/api/agents/a2/login")).status == 403
    assert (await world.client.get("/api/agents/a2")).status == 403
    assert (await world.client.get("/api/agents")).status == 403
    assert (await world.client.get("/api/queues")).status == 403
    assert world.acd.service.agents["a2"].status.value == "logged_out"


async def test_a_supervisor_forces_a_state_and_it_is_audited(world: World) -> None:
    await world.login("sam")
    assert (await world.post("/api/agents/a2/login", {"endpoint": "PJSIP/a2"})).status == 200
    assert (await world.post("/api/agents/a2/logout")).status == 200
    agents = await world.client.get("/api/agents")
    assert [a["agent_id"] for a in await agents.json()] == ["a1", "a2"]
    queues = await world.client.get("/api/queues")
    assert [q["queue"] for q in await queues.json()] == ["sales"]
    actions = [a for a in world.audit if isinstance(a, SupervisorAction)]
    assert [(a.username, a.action, a.agent_id) for a in actions] == [
        ("sam", "login", "a2"),
        ("sam", "logout", "a2"),
    ]
    assert actions[0].detail == '{"endpoint": "PJSIP/a2"}'
    # The interaction log keeps them, under the supervisor's audit key.
    fact = from_bus(actions[0])
    assert fact is not None
    assert (fact.interaction_key, fact.kind) == ("audit:sam", "supervisor_action")


async def test_without_a_session_or_token_nothing_happens(world: World) -> None:
    assert (await world.client.get("/api/agents/a1")).status == 401
    assert (await world.client.post("/api/agents/a1/ready")).status == 401
    await world.login("ann")
    assert (await world.client.post("/api/agents/a1/login")).status == 403  # no CSRF token
