"""Signing in to a running server's console API from tests (a real session, a real cookie),
and a real server with the consoles in front of a fake Asterisk."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from agent_console.accounts import AccountStore
from app.server import Server
from app.settings import load_settings
from sandbox.fake_ami import FakeAsterisk

__all__ = ["PASSWORD", "ConsoleServer", "console_server", "cookie_session", "sign_in"]

CONFIG = Path(__file__).resolve().parents[2] / "config"

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


@dataclass
class ConsoleServer:
    """A real ``Server`` (ACD, store, consoles) in front of a fake Asterisk; see
    ``console_server``. ``published`` is everything its bus carried."""

    server: Server
    base: str
    console_file: Path
    published: list[object] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return self.base

    def ws_url(self) -> str:
        return f"{self.base.replace('http', 'ws', 1)}/api/ws"

    async def user(
        self, http: aiohttp.ClientSession, username: str, role: str, agent: str | None = None
    ) -> str:
        """Sign ``http`` in as a (new) user; the session's CSRF token."""
        assert self.server.accounts is not None
        return await sign_in(http, self.base, self.server.accounts, username, role, agent_id=agent)


@contextlib.asynccontextmanager
async def console_server(tmp_path: Path) -> AsyncIterator[ConsoleServer]:
    """The demo configuration (ACD on, SQLite store in ``tmp_path``, a copy of the demo
    console file that a test may change) on free ports, with a fake Asterisk."""
    console_file = tmp_path / "console.yaml"
    shutil.copy(CONFIG / "console.yaml", console_file)
    async with FakeAsterisk() as fake:
        settings = load_settings(
            environ={},
            overrides=(
                f"ami.port={fake.port}",
                f"ami.username={fake.username}",
                f"ami.secret={fake.secret}",
                "agi.port=0",
                "http.port=0",
                "acd.enabled=true",
                f"acd.state_dir={tmp_path / 'state'}",
                f"crm.url=sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}",
                f"console.config={console_file}",
                f"config_dir={CONFIG}",
            ),
        )
        async with Server(settings) as server:
            await server.ami.wait_connected(5)
            running = ConsoleServer(server, f"http://127.0.0.1:{server.http_port}", console_file)
            server.bus.subscribe(object, running.published.append)
            yield running
