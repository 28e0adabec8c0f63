"""The admin API (agent_console/admin_api.py) through the real server with a fake Asterisk:
admin only, the loaded configuration with secrets hidden, reload, and managing users."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr
from support.console import PASSWORD, ConsoleServer, console_server, cookie_session

from agent_console.admin_api import plain
from agent_console.auth import CSRF_HEADER
from agent_console.schemas import UserList

ROOT = Path(__file__).resolve().parents[2]


Running = ConsoleServer


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with console_server(tmp_path) as server:
        yield server


async def _login(http: aiohttp.ClientSession, base: str, username: str, password: str) -> int:
    async with http.post(
        f"{base}/api/login", json={"username": username, "password": password}
    ) as response:
        return response.status


ADMIN_GETS = ("/api/admin/config", "/api/admin/users")


@pytest.mark.parametrize(("role", "agent"), [("agent", "agent1001"), ("supervisor", None)])
async def test_only_an_admin_may_use_the_admin_api(
    running: Running, role: str, agent: str | None
) -> None:
    async with cookie_session() as http:
        csrf = await running.user(http, f"u-{role}", role, agent)
        for path in ADMIN_GETS:
            async with http.get(f"{running.base}{path}") as response:
                assert response.status == 403, path
        headers = {CSRF_HEADER: csrf}
        async with http.post(f"{running.base}/api/admin/reload", headers=headers) as response:
            assert response.status == 403
        async with http.post(
            f"{running.base}/api/admin/users",
            json={"username": "evil", "password": "long-enough-1", "role": "admin"},
            headers=headers,
        ) as response:
            assert response.status == 403
        async with http.patch(
            f"{running.base}/api/admin/users/u-{role}", json={"role": "admin"}, headers=headers
        ) as response:
            assert response.status == 403
        async with http.post(f"{running.base}/admin/ivr/reload", headers=headers) as response:
            assert response.status == 403
    accounts = running.server.accounts
    assert accounts is not None
    assert await accounts.get("evil") is None
    user = await accounts.get(f"u-{role}")
    assert user is not None
    assert user.role == role


async def test_unauthenticated_admin_requests_are_401(running: Running) -> None:
    async with cookie_session() as http:
        for path in ADMIN_GETS:
            async with http.get(f"{running.base}{path}") as response:
                assert response.status == 401


async def test_the_configuration_hides_secrets(running: Running) -> None:
    async with cookie_session() as http:
        await running.user(http, "root", "admin")
        async with http.get(f"{running.base}/api/admin/config") as response:
            assert response.status == 200
            config = await response.json()
    assert config["settings"]["ami"]["secret"] == "***"
    assert running.server.settings.ami.secret.get_secret_value() not in str(config)
    assert config["console"]["alerts"]["long_wait"] == 60


def test_plain_turns_models_sets_and_secrets_into_json_data() -> None:
    assert plain({"s": SecretStr("hunter2"), "set": {3, 1}, "p": Path("/x"), 1: (1, 2)}) == {
        "s": "***",
        "set": [1, 3],
        "p": "/x",
        "1": [1, 2],
    }


async def test_reload_reports_ivr_console_and_acd(running: Running) -> None:
    async with cookie_session() as http:
        csrf = await running.user(http, "root", "admin")
        async with http.post(
            f"{running.base}/api/admin/reload", headers={CSRF_HEADER: csrf}
        ) as response:
            assert response.status == 200
            result = await response.json()
    assert result["ivr"]["ok"] is True
    assert result["ivr"]["version"]
    assert (result["console"]["ok"], result["console"]["applied"]) == (True, True)
    # acd.yaml is re-read and applied live too (nothing changed in it here).
    assert (result["acd"]["ok"], result["acd"]["applied"]) == (True, True)
    assert result["acd"]["agents_added"] == result["acd"]["agents_removed"] == []


async def test_users_add_list_and_change(running: Running) -> None:
    async with cookie_session() as http:
        csrf = await running.user(http, "root", "admin")
        headers = {CSRF_HEADER: csrf}
        async with http.post(
            f"{running.base}/api/admin/users",
            json={
                "username": "bob",
                "password": "bob-password-1",
                "role": "agent",
                "agent_id": "agent1002",
                "display_name": "Bob",
            },
            headers=headers,
        ) as response:
            assert response.status == 201, await response.text()
            assert await response.json() == {
                "username": "bob",
                "display_name": "Bob",
                "role": "agent",
                "agent_id": "agent1002",
                "disabled": False,
            }
        async with http.post(
            f"{running.base}/api/admin/users",
            json={"username": "bob", "password": "bob-password-1", "role": "supervisor"},
            headers=headers,
        ) as response:
            assert response.status == 409
            assert await response.json() == {
                "error": "user_exists",
                "detail": "user 'bob' exists already",
            }
        for body in (
            {"username": "x", "password": "long-enough-1", "role": "king"},
            {"username": "y", "password": "short", "role": "supervisor"},
            {"username": "z", "password": "long-enough-1", "role": "agent"},  # no agent_id
            {"username": "Bad Name", "password": "long-enough-1", "role": "supervisor"},
            {"username": 5, "password": "long-enough-1", "role": "supervisor"},
        ):
            async with http.post(
                f"{running.base}/api/admin/users", json=body, headers=headers
            ) as response:
                assert response.status == 422, body
        async with http.get(f"{running.base}/api/admin/users") as response:
            listed = await response.json()
        UserList.model_validate(listed)  # the answer is what the description says
        users = {u["username"]: u for u in listed["users"]}
        assert set(users) == {"bob", "root"}
        assert users["root"]["role"] == "admin"

        async with http.patch(
            f"{running.base}/api/admin/users/bob",
            json={"role": "supervisor", "display_name": "Robert", "password": "new-password-2"},
            headers=headers,
        ) as response:
            assert response.status == 200, await response.text()
            changed = await response.json()
        assert (changed["role"], changed["display_name"]) == ("supervisor", "Robert")
        async with http.patch(
            f"{running.base}/api/admin/users/bob", json={"colour": "red"}, headers=headers
        ) as response:
            assert response.status == 422
            answer = await response.json()
            assert (answer["error"], answer["fields"]) == ("invalid_body", ["colour"])
            assert answer["detail"] == "colour: Extra inputs are not permitted"
        async with http.patch(
            f"{running.base}/api/admin/users/nobody", json={"role": "agent"}, headers=headers
        ) as response:
            assert response.status == 404
            assert await response.json() == {"error": "unknown_user", "detail": "no user 'nobody'"}
    async with cookie_session() as other:
        assert await _login(other, running.base, "bob", "bob-password-1") == 401
        assert await _login(other, running.base, "bob", "new-password-2") == 200


async def test_an_admin_cannot_demote_or_disable_themselves(running: Running) -> None:
    async with cookie_session() as http:
        csrf = await running.user(http, "root", "admin")
        headers = {CSRF_HEADER: csrf}
        for body in ({"disabled": True}, {"role": "supervisor"}, {"role": "agent"}):
            async with http.patch(
                f"{running.base}/api/admin/users/root", json=body, headers=headers
            ) as response:
                assert response.status == 422, body
                assert await response.json() == {
                    "error": "invalid_account",
                    "detail": "an admin cannot disable or demote their own account",
                }
        async with http.get(f"{running.base}/api/admin/users") as response:
            assert response.status == 200  # still logged in, still an admin
            (root,) = (await response.json())["users"]
        assert (root["role"], root["disabled"]) == ("admin", False)


async def test_a_refused_change_writes_nothing(running: Running) -> None:
    """A change answered 422 must not have changed the password (nor ended the sessions)."""
    accounts = running.server.accounts
    assert accounts is not None
    await accounts.add_user("sue", PASSWORD, "supervisor")
    async with cookie_session() as http:
        csrf = await running.user(http, "root", "admin")
        async with http.patch(
            f"{running.base}/api/admin/users/sue",
            # An agent needs an agent id: refused, after the password was looked at.
            json={"password": "another-password-3", "role": "agent"},
            headers={CSRF_HEADER: csrf},
        ) as response:
            assert response.status == 422
    async with cookie_session() as other:
        assert await _login(other, running.base, "sue", PASSWORD) == 200
