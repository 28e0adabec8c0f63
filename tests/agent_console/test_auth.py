"""Accounts, log-in sessions, CSRF and role checks of the console's API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent_console.accounts import AccountError, AccountStore
from agent_console.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    add_auth_routes,
    require,
    security_middleware,
)
from agent_console.http import error_middleware
from agent_console.passwords import hash_password, needs_rehash, verify_password
from agent_console.schemas import Me
from crm_bridge.db import create_engine, migrate

FAST = 10  # scrypt N=2^10 in tests: the same code, a thousandth of the work


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    client: TestClient[web.Request, web.Application]
    accounts: AccountStore
    clock: Clock

    async def login(self, username: str, password: str) -> str:
        response = await self.client.post(
            "/api/login", json={"username": username, "password": password}
        )
        assert response.status == 200, await response.text()
        csrf: str = (await response.json())["csrf"]
        return csrf


async def _monitor(request: web.Request) -> web.Response:
    require(request, "supervisor")
    return web.json_response({"queues": []})


async def _ready(request: web.Request) -> web.Response:
    session = require(request, "agent")
    agent = request.match_info["agent_id"]
    if session.user.role == "agent" and session.user.agent_id != agent:
        raise web.HTTPForbidden(text="an agent acts only for themselves")
    return web.json_response({"agent_id": agent, "by": session.user.username})


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}")
    await migrate(engine)
    clock = Clock()
    accounts = AccountStore(engine, clock=clock, log2_n=FAST, ttl=3600)
    await accounts.add_user("ann", "ann-password", "agent", agent_id="agent1001")
    await accounts.add_user("sam", "sam-password", "supervisor")
    app = web.Application(middlewares=[error_middleware, security_middleware])
    add_auth_routes(app, accounts, origins=["https://wallboard.example"])
    app.router.add_get("/api/monitor", _monitor)
    app.router.add_post("/api/agents/{agent_id}/ready", _ready)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield World(client, accounts, clock)
    finally:
        await client.close()
        await engine.dispose()


def test_passwords_hash_verify_and_refuse_junk() -> None:
    stored = hash_password("correct horse", log2_n=FAST)
    assert stored.startswith("scrypt$10$8$1$")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert stored != hash_password("correct horse", log2_n=FAST)  # salted
    for junk in ("", "plain", "scrypt$99$8$1$AA==$AA==", "scrypt$10$8$1$!!$!!"):
        assert not verify_password("correct horse", junk)
    assert needs_rehash(stored)  # weaker than the default parameters
    assert not needs_rehash(stored, log2_n=FAST)
    with pytest.raises(ValueError, match="1 to 1024 bytes"):
        hash_password("x" * 2000)


async def test_login_sets_a_locked_down_cookie_and_me_answers(world: World) -> None:
    response = await world.client.post(
        "/api/login", json={"username": "ann", "password": "ann-password"}
    )
    assert response.status == 200
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    body = await response.json()
    Me.model_validate(body)  # the answer is what the description says
    assert body["user"] == {
        "username": "ann",
        "display_name": "ann",
        "role": "agent",
        "agent_id": "agent1001",
    }
    me = await world.client.get("/api/me")
    assert (me.status, (await me.json())["csrf"]) == (200, body["csrf"])


async def test_wrong_name_and_wrong_password_look_the_same(world: World) -> None:
    answers = []
    for username, password in (("ann", "nope-nope"), ("nobody", "ann-password")):
        response = await world.client.post(
            "/api/login", json={"username": username, "password": password}
        )
        answers.append((response.status, await response.json()))
    assert (
        answers[0]
        == answers[1]
        == (401, {"error": "not_logged_in", "detail": "wrong user name or password"})
    )
    bad = await world.client.post(
        "/api/login", data=b"not json", headers={"Content-Type": "application/json"}
    )
    assert bad.status == 400
    assert (await bad.json())["error"] == "body_not_json"
    half = await world.client.post("/api/login", json={"username": "ann"})
    assert (half.status, await half.json()) == (
        422,
        {"error": "invalid_body", "detail": "password: Field required", "fields": ["password"]},
    )


async def test_state_changes_need_the_csrf_token(world: World) -> None:
    csrf = await world.login("ann", "ann-password")
    without = await world.client.post("/api/agents/agent1001/ready")
    assert without.status == 403
    wrong = await world.client.post("/api/agents/agent1001/ready", headers={CSRF_HEADER: "x"})
    assert wrong.status == 403
    right = await world.client.post("/api/agents/agent1001/ready", headers={CSRF_HEADER: csrf})
    assert right.status == 200


async def test_a_cross_origin_request_is_refused_even_with_the_token(world: World) -> None:
    csrf = await world.login("ann", "ann-password")
    evil = await world.client.post(
        "/api/agents/agent1001/ready",
        headers={CSRF_HEADER: csrf, "Origin": "https://evil.example"},
    )
    assert evil.status == 403
    listed = await world.client.post(
        "/api/agents/agent1001/ready",
        headers={CSRF_HEADER: csrf, "Origin": "https://wallboard.example"},
    )
    assert listed.status == 200
    login = await world.client.post(
        "/api/login",
        json={"username": "ann", "password": "ann-password"},
        headers={"Origin": "https://evil.example"},
    )
    assert login.status == 403  # no log-in CSRF either


async def test_roles_are_enforced_on_the_server(world: World) -> None:
    assert (await world.client.get("/api/monitor")).status == 401
    csrf = await world.login("ann", "ann-password")
    assert (await world.client.get("/api/monitor")).status == 403  # an agent: no monitor
    other = await world.client.post("/api/agents/agent1002/ready", headers={CSRF_HEADER: csrf})
    assert other.status == 403  # nor acting for another agent
    csrf = await world.login("sam", "sam-password")
    assert (await world.client.get("/api/monitor")).status == 200
    forced = await world.client.post("/api/agents/agent1002/ready", headers={CSRF_HEADER: csrf})
    assert (forced.status, (await forced.json())["by"]) == (200, "sam")


async def test_sessions_rotate_end_and_expire(world: World) -> None:
    await world.login("ann", "ann-password")
    first = world.client.session.cookie_jar.filter_cookies(world.client.make_url("/"))
    old_token = first[SESSION_COOKIE].value
    await world.login("ann", "ann-password")  # a new log-in replaces the old session
    assert await world.accounts.session(old_token) is None
    assert (await world.client.get("/api/me")).status == 200
    world.clock.now += 3601  # past the session's lifetime
    assert (await world.client.get("/api/me")).status == 401
    csrf = await world.login("ann", "ann-password")
    out = await world.client.post("/api/logout", headers={CSRF_HEADER: csrf})
    assert out.status == 200
    assert (await world.client.get("/api/me")).status == 401


async def test_disabling_a_user_ends_their_sessions_at_once(world: World) -> None:
    await world.login("ann", "ann-password")
    await world.accounts.set_disabled("ann", True)
    assert (await world.client.get("/api/me")).status == 401
    refused = await world.client.post(
        "/api/login", json={"username": "ann", "password": "ann-password"}
    )
    assert refused.status == 401


async def test_account_rules(world: World) -> None:
    accounts = world.accounts
    with pytest.raises(AccountError, match="exists already"):
        await accounts.add_user("ann", "long-enough", "agent", agent_id="agent1003")
    with pytest.raises(AccountError, match="needs the ACD agent"):
        await accounts.add_user("bob", "long-enough", "agent")
    with pytest.raises(AccountError, match="at least 8"):
        await accounts.add_user("bob", "short", "admin")
    with pytest.raises(AccountError, match="role 'root'"):
        await accounts.add_user("bob", "long-enough", "root")
    with pytest.raises(AccountError, match="user name"):
        await accounts.add_user("Bob Smith", "long-enough", "admin")
    await accounts.set_password("sam", "a-new-password")
    assert await accounts.login("sam", "sam-password") is None
    assert await accounts.login("sam", "a-new-password") is not None
    assert [u.username for u in await accounts.users()] == ["ann", "sam"]
