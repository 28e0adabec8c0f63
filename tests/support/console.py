"""Signing in to a running server's console API from tests (a real session, a real cookie)."""

from __future__ import annotations

import aiohttp

from agent_console.accounts import AccountStore

__all__ = ["PASSWORD", "cookie_session", "sign_in"]

PASSWORD = "test-password-1"


def cookie_session() -> aiohttp.ClientSession:
    """A client that keeps cookies from 127.0.0.1 (aiohttp's default jar drops IP hosts')."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def sign_in(
    http: aiohttp.ClientSession,
    base: str,
    accounts: AccountStore,
    username: str = "sup",
    role: str = "supervisor",
    *,
    agent_id: str | None = None,
) -> str:
    """Create the user if needed, log in with ``http``; the session's CSRF token."""
    if await accounts.get(username) is None:
        await accounts.add_user(username, PASSWORD, role, agent_id=agent_id)
    async with http.post(
        f"{base}/api/login", json={"username": username, "password": PASSWORD}
    ) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    csrf = body["csrf"]
    assert isinstance(csrf, str)
    return csrf
