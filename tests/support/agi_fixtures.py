"""The FastAGI fixtures shared by the AGI server tests and the ACD's FastAGI route tests:
``make_server`` (an AgiServer on an ephemeral port) and ``connect_fake`` (Asterisk's end of a
connection, tests/support/fake_agi.py). Import them into a conftest.py to use them."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from cti.agi import AgiServer, AgiServerConfig, SessionSummary
from support.fake_agi import FakeAsterisk, MakeServer, ServerHarness

__all__ = ["connect_fake", "make_server"]


@pytest.fixture
async def make_server() -> AsyncIterator[MakeServer]:
    """``await make_server(routes={...}, **config)`` -> a started server on an ephemeral port."""
    harnesses: list[ServerHarness] = []

    async def make(
        routes: dict[str, Callable[..., Awaitable[None]]] | None = None, **config: Any
    ) -> ServerHarness:
        summaries: list[SessionSummary] = []
        ended = asyncio.Event()

        def on_end(summary: SessionSummary) -> None:
            summaries.append(summary)
            ended.set()

        settings = dataclasses.replace(AgiServerConfig(port=0, linger=1.0), **config)
        server = AgiServer(settings, on_session_end=on_end)
        for path, handler in (routes or {}).items():
            server.route(path, handler)
        await server.start()
        harness = ServerHarness(server, summaries, ended)
        harnesses.append(harness)
        return harness

    yield make
    for harness in harnesses:
        await harness.server.aclose()
        for fake in harness.fakes:
            await fake.close()


@pytest.fixture
async def connect_fake() -> AsyncIterator[Callable[[int], Awaitable[FakeAsterisk]]]:
    """``await connect_fake(port)`` -> a FakeAsterisk connected to that port."""
    fakes: list[FakeAsterisk] = []

    async def connect(port: int) -> FakeAsterisk:
        fake = await FakeAsterisk.connect(port)
        fakes.append(fake)
        return fake

    yield connect
    for fake in fakes:
        await fake.close()
