"""The server's long-running tasks are started and cancelled together, and one that fails stops
the server instead of leaving it up without, say, its AMI reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.server import Server, serve
from app.settings import Settings, load_settings
from cti.errors import CtiError
from sandbox.fake_ami import FakeAsterisk


@pytest.fixture
async def fake() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk() as fake:
        yield fake


def _settings(fake: FakeAsterisk) -> Settings:
    return load_settings(
        environ={},
        overrides=(
            f"ami.port={fake.port}",
            f"ami.username={fake.username}",
            f"ami.secret={fake.secret}",
            "agi.port=0",
            "http.port=0",
            "acd.enabled=false",
            "crm.enabled=false",
        ),
    )


async def test_stopping_cancels_every_background_task(fake: FakeAsterisk) -> None:
    async with Server(_settings(fake)) as server:
        await server.ami.wait_connected(5)
        names = {t.get_name() for t in asyncio.all_tasks()}
        assert {"ami", "queue-figures"} <= names
    await asyncio.sleep(0)
    left = {t.get_name() for t in asyncio.all_tasks()} & {"ami", "queue-figures"}
    assert left == set()
    assert not server.failed.is_set()


async def test_a_failing_task_takes_the_others_down_and_stops_serve(
    fake: FakeAsterisk, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(fake)
    started: list[Server] = []
    real_aenter = Server.__aenter__

    async def aenter(self: Server) -> Server:
        async def broken_feed() -> None:
            await asyncio.sleep(0.05)
            raise RuntimeError("queue feed blew up")

        assert self.queue_feed is not None
        monkeypatch.setattr(self.queue_feed, "run", broken_feed)
        started.append(self)
        return await real_aenter(self)

    monkeypatch.setattr(Server, "__aenter__", aenter)
    with pytest.raises(CtiError, match="a server task failed"):
        await asyncio.wait_for(serve(settings), 10)
    (server,) = started
    assert server.failed.is_set()
    assert "queue feed blew up" in caplog.text
    # The AMI reader, a sibling in the group, was cancelled with it.
    assert not any(t.get_name() == "ami" for t in asyncio.all_tasks())
