"""The consoles wired into the real server (fake Asterisk): the websocket's authentication and
topics, pages closed at log-out and when an admin disables a user, the protected control API,
the admin view and reload, and a wrap-up that lands on the stored interaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from support.console import PASSWORD, ConsoleServer, console_server, cookie_session, sign_in

from acd.events import CallAnswered, CallEnded, CallOffered, CallQueued
from agent_console.auth import CSRF_HEADER
from crm_bridge.schema import Interaction

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0


Running = ConsoleServer


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with console_server(tmp_path) as server:
        yield server


async def _user(
    running: Running, http: aiohttp.ClientSession, username: str, role: str, agent: str | None
) -> str:
    accounts = running.server.accounts
    assert accounts is not None
    return await sign_in(http, running.base, accounts, username, role, agent_id=agent)


async def _first_frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    frame = await asyncio.wait_for(ws.receive_json(), 5)
    assert isinstance(frame, dict)
    return frame


async def _closed(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    async with asyncio.timeout(5):
        while True:
            message = await ws.receive()
            if message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
            ):
                return ws.close_code


async def test_the_websocket_needs_a_session_and_the_servers_origin(running: Running) -> None:
    async with cookie_session() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(running.ws_url(), headers={"Origin": running.origin})
        assert refused.value.status == 401
        await _user(running, http, "ann", "agent", "agent1001")
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(running.ws_url(), headers={"Origin": "http://evil.example"})
        assert refused.value.status == 403
        async with http.ws_connect(running.ws_url(), headers={"Origin": running.origin}) as ws:
            snapshot = await _first_frame(ws)
            assert snapshot["type"] == "snapshot"


async def test_an_agent_gets_only_their_own_topic_a_supervisor_the_queues(
    running: Running,
) -> None:
    acd = running.server.acd
    assert acd is not None
    async with cookie_session() as agent_http, cookie_session() as sup_http:
        await _user(running, agent_http, "ann", "agent", "agent1001")
        await _user(running, sup_http, "sam", "supervisor", None)
        headers = {"Origin": running.origin}
        async with (
            agent_http.ws_connect(running.ws_url(), headers=headers) as agent_ws,
            sup_http.ws_connect(running.ws_url(), headers=headers) as sup_ws,
        ):
            agent_snapshot = await _first_frame(agent_ws)
            sup_snapshot = await _first_frame(sup_ws)
            assert {i["topic"] for i in agent_snapshot["data"]} == {None, "agent:agent1001"}
            assert {"queues", "agents", "worklist"} <= {i["topic"] for i in sup_snapshot["data"]}
            # Other agents change state; agent1001 changes too.
            acd.service.login("agent1002")
            acd.service.login("agent1001")
            seen_agent: list[dict[str, Any]] = []
            while not any(f["type"] == "agent" for f in seen_agent):
                seen_agent.append(await _first_frame(agent_ws))
            seen_sup: list[dict[str, Any]] = []
            while len([f for f in seen_sup if f["type"] == "queue"]) < 1:
                seen_sup.append(await _first_frame(sup_ws))
            assert {f["topic"] for f in seen_agent} == {"agent:agent1001"}
            assert [f["data"]["agent_id"] for f in seen_agent if f["type"] == "agent"] == [
                "agent1001"
            ]
            assert {f["topic"] for f in seen_sup} <= {"queues", "agents", "alerts", "worklist"}


async def test_logout_closes_that_sessions_websocket_with_4401(running: Running) -> None:
    async with cookie_session() as http:
        csrf = await _user(running, http, "ann", "agent", "agent1001")
        async with http.ws_connect(running.ws_url(), headers={"Origin": running.origin}) as ws:
            await _first_frame(ws)
            async with http.post(
                f"{running.base}/api/logout", headers={CSRF_HEADER: csrf}
            ) as response:
                assert response.status == 200
            assert await _closed(ws) == 4401


async def test_a_page_is_closed_with_4401_when_its_session_expires(running: Running) -> None:
    accounts = running.server.accounts
    assert accounts is not None
    accounts.ttl = 1.5  # sessions of this test last 1.5 s
    async with cookie_session() as http:
        await _user(running, http, "ann", "agent", "agent1001")
        async with http.ws_connect(running.ws_url(), headers={"Origin": running.origin}) as ws:
            await _first_frame(ws)
            assert await _closed(ws) == 4401


async def test_disabling_a_user_closes_their_websocket_with_4401(running: Running) -> None:
    async with cookie_session() as admin_http, cookie_session() as agent_http:
        csrf = await _user(running, admin_http, "root", "admin", None)
        await _user(running, agent_http, "ann", "agent", "agent1001")
        async with agent_http.ws_connect(
            running.ws_url(), headers={"Origin": running.origin}
        ) as ws:
            await _first_frame(ws)
            async with admin_http.patch(
                f"{running.base}/api/admin/users/ann",
                json={"disabled": True},
                headers={CSRF_HEADER: csrf},
            ) as response:
                assert response.status == 200, await response.text()
                assert (await response.json())["disabled"] is True
            assert await _closed(ws) == 4401
        # The session is gone too, and a new log-in is refused.
        async with agent_http.get(f"{running.base}/api/me") as response:
            assert response.status == 401
        async with agent_http.post(
            f"{running.base}/api/login", json={"username": "ann", "password": PASSWORD}
        ) as response:
            assert response.status in (401, 403)


async def test_the_control_api_and_reports_need_a_supervisor(running: Running) -> None:
    async with cookie_session() as http:
        for path in ("/acd/agents", "/reports/queues?from=2027-01-15"):
            async with http.get(f"{running.base}{path}") as response:
                assert response.status == 401, path
        await _user(running, http, "ann", "agent", "agent1001")
        for path in ("/acd/agents", "/reports/queues?from=2027-01-15"):
            async with http.get(f"{running.base}{path}") as response:
                assert response.status == 403, path
    async with cookie_session() as http:
        await _user(running, http, "sam", "supervisor", None)
        async with http.get(f"{running.base}/reports/queues?from=2027-01-15") as response:
            assert response.status == 200


async def test_admin_config_hides_secrets_and_shows_every_part(running: Running) -> None:
    async with cookie_session() as http:
        await _user(running, http, "root", "admin", None)
        async with http.get(f"{running.base}/api/admin/config") as response:
            assert response.status == 200
            config = await response.json()
    assert set(config) >= {"settings", "ivr", "acd", "console"}
    assert config["settings"]["ami"]["secret"] == "***"
    assert running.server.settings.ami.secret.get_secret_value() not in str(config)
    assert config["ivr"]["flows"]
    assert config["ivr"]["version"]
    assert {d["code"] for d in config["console"]["dispositions"]} >= {"resolved", "complaint"}
    assert "sales" in config["acd"]["queues"]


async def test_reload_applies_a_valid_console_file_and_keeps_the_old_one_otherwise(
    running: Running,
) -> None:
    async with cookie_session() as http:
        csrf = await _user(running, http, "root", "admin", None)
        headers = {CSRF_HEADER: csrf}
        running.console_file.write_text(
            "dispositions:\n  - {code: sold, label: Sold}\n", encoding="utf-8"
        )
        async with http.post(f"{running.base}/api/admin/reload", headers=headers) as response:
            assert response.status == 200
            result = await response.json()
        assert (result["console"]["ok"], result["console"]["applied"]) == (True, True)
        assert result["acd"]["ok"] is True  # unchanged, re-read all the same
        assert result["ivr"]["ok"] is True
        assert "version" in result["ivr"]
        async with http.get(f"{running.base}/api/console/config") as response:
            assert [d["code"] for d in (await response.json())["dispositions"]] == ["sold"]

        running.console_file.write_text("dispositions: [{code: BAD, label: x}]\n")
        async with http.post(f"{running.base}/api/admin/reload", headers=headers) as response:
            assert response.status == 422
            result = await response.json()
        assert result["console"]["ok"] is False
        assert "dispositions.0.code" in result["console"]["error"]
        async with http.get(f"{running.base}/api/console/config") as response:
            assert [d["code"] for d in (await response.json())["dispositions"]] == ["sold"]


async def test_a_wrap_up_lands_on_the_stored_interaction(running: Running) -> None:
    server = running.server
    for event in (
        CallQueued("L1", "sales", "voice", 0, T0, T0),
        CallOffered("L1", "sales", "agent1001", "PJSIP/agent1001", T0 + 5),
        CallAnswered("L1", "sales", "agent1001", 5.0, T0 + 6),
        CallEnded("L1", "sales", "agent1001", 40.0, 0.0, T0 + 46),
    ):
        server.bus.publish(event)
    async with cookie_session() as http:
        csrf = await _user(running, http, "ann", "agent", "agent1001")
        async with http.post(
            f"{running.base}/api/calls/L1/wrap-up",
            json={"disposition": "sale", "notes": "upgraded <b>plan</b>", "end": False},
            headers={CSRF_HEADER: csrf},
        ) as response:
            assert response.status == 200, await response.text()
            assert await response.json() == {"ok": True}
    assert server.crm_writer is not None
    assert server.crm_engine is not None
    await server.bus.drain()
    await server.crm_writer.flush(5)
    async with server.crm_engine.connect() as conn:
        row = (await conn.execute(select(Interaction).where(Interaction.key == "L1"))).one()
    assert (row.disposition, row.notes, row.agent_id) == (
        "sale",
        "upgraded <b>plan</b>",
        "agent1001",
    )
