"""Live reload of acd.yaml and console.yaml in the wired server (fake Asterisk): through
``POST /admin/config/reload`` and on SIGHUP, a changed file applies, a broken one is refused
with its file:line and the running configuration stays."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from support.server import eventually

from app.server import Server, serve
from app.settings import Settings, load_settings
from sandbox.fake_ami import FakeAsterisk

CONFIG = Path(__file__).resolve().parents[2] / "config"
NEW_AGENT = """
  agent1009:
    name: Nia Newcomer
    skills: {sales: 4}
    queues: [sales]
"""


def _settings(fake: FakeAsterisk, tmp_path: Path) -> Settings:
    shutil.copy(CONFIG / "acd.yaml", tmp_path / "acd.yaml")
    shutil.copy(CONFIG / "console.yaml", tmp_path / "console.yaml")
    return load_settings(
        environ={},
        overrides=(
            f"ami.port={fake.port}",
            f"ami.username={fake.username}",
            f"ami.secret={fake.secret}",
            "agi.port=0",
            "http.port=0",
            "acd.enabled=true",
            f"acd.config={tmp_path / 'acd.yaml'}",
            f"acd.state_dir={tmp_path / 'state'}",
            f"console.config={tmp_path / 'console.yaml'}",
            "crm.enabled=false",
            f"config_dir={CONFIG}",
        ),
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk() as fake:
        yield fake


def _line(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


async def test_the_admin_api_applies_a_changed_file_and_refuses_a_broken_one(
    fake: FakeAsterisk, tmp_path: Path
) -> None:
    acd, console = tmp_path / "acd.yaml", tmp_path / "console.yaml"
    async with Server(_settings(fake, tmp_path)) as server, aiohttp.ClientSession() as http:
        assert server.acd is not None
        service = server.acd.service
        url = f"http://127.0.0.1:{server.http_port}/admin/config/reload"

        acd.write_text(acd.read_text() + NEW_AGENT)
        console.write_text("dispositions:\n  - {code: sold, label: Sold}\n")
        async with http.post(url) as response:
            assert response.status == 200
            answer = await response.json()
        assert answer["acd"]["ok"] is True
        assert answer["acd"]["agents_added"] == ["agent1009"]
        assert answer["console"] == {"ok": True, "applied": True, "file": str(console)}
        assert service.agents["agent1009"].config.name == "Nia Newcomer"
        assert "agent1009" in service.config.agents
        assert server.console_config is not None
        assert server.console_config.disposition_codes() == {"sold"}
        running = service.config

        acd.write_text(acd.read_text().replace("skills: {sales: 4}", "skills: {sales: 40}"))
        console.write_text("dispositions:\n  - {code: sold, label: Sold}\nmask: ''\n")
        async with http.post(url) as response:
            assert response.status == 422
            refused = await response.json()
        assert refused["acd"]["ok"] is False
        assert refused["acd"]["error"] == (
            f"{acd}:{_line(acd, 'sales: 40')}: agent agent1009: skill sales: level 40 "
            "(expected a whole number 1..10)"
        )
        assert f"{console}:3: mask: '' is not allowed" in refused["console"]["error"]
        assert service.config is running  # the running configuration is kept
        assert service.agents["agent1009"].config.skills == {"sales": 4}
        assert server.console_config.disposition_codes() == {"sold"}


async def test_removing_a_logged_in_agent_is_refused_with_the_reason(
    fake: FakeAsterisk, tmp_path: Path
) -> None:
    acd = tmp_path / "acd.yaml"
    async with Server(_settings(fake, tmp_path)) as server, aiohttp.ClientSession() as http:
        assert server.acd is not None
        server.acd.service.login("agent1005")
        text = acd.read_text()
        start = text.index("  agent1005:")
        acd.write_text(text[:start])  # agent1005 is the last agent of the demo file
        url = f"http://127.0.0.1:{server.http_port}/admin/config/reload"
        async with http.post(url) as response:
            assert response.status == 422
            refused = await response.json()
        assert refused["acd"]["error"] == (
            "agent agent1005 removed but logged in (log them out, then reload)"
        )
        assert "agent1005" in server.acd.service.agents


async def test_sighup_reloads_acd_yaml_and_console_yaml(
    fake: FakeAsterisk, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.config_reload")
    acd, console = tmp_path / "acd.yaml", tmp_path / "console.yaml"
    settings = _settings(fake, tmp_path)
    stop = asyncio.Event()
    started: asyncio.Queue[Server] = asyncio.Queue()

    @contextlib.asynccontextmanager
    async def alongside(server: Server) -> AsyncIterator[None]:
        started.put_nowait(server)
        yield

    serving = asyncio.create_task(serve(settings, stop=stop, alongside=alongside))
    try:
        server = await asyncio.wait_for(started.get(), 10)
        assert server.acd is not None
        service = server.acd.service
        acd.write_text(acd.read_text() + NEW_AGENT)
        console.write_text("dispositions:\n  - {code: sold, label: Sold}\n")
        os.kill(os.getpid(), signal.SIGHUP)
        await eventually("the new agent", lambda: "agent1009" in service.agents)
        await eventually(
            "the new console file",
            lambda: (
                server.console_config is not None
                and server.console_config.disposition_codes() == {"sold"}
            ),
        )
        # A broken file on SIGHUP: refused, logged, the running one kept.
        running = service.config
        acd.write_text(acd.read_text().replace("strategy: longest_idle", "strategy: fastest", 1))
        os.kill(os.getpid(), signal.SIGHUP)
        line = _line(acd, "strategy: fastest")
        await eventually(
            "the refusal in the log",
            lambda: any(
                f"reload acd: refused, running configuration kept: {acd}:{line}: queue sales: "
                "strategy: 'fastest' is not allowed" in r.getMessage()
                for r in caplog.records
            ),
        )
        assert service.config is running
    finally:
        stop.set()
        await asyncio.wait_for(serving, 10)
