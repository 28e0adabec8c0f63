"""After a restart the ACD's figures of the day start from what the store kept, not from zero
(the interaction log is the record; the live figures were only in memory)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acd.events import CallAbandoned, CallAnswered, CallEnded, CallOffered, CallQueued, WrapUpEnded
from app.server import Server
from app.settings import Settings, load_settings
from sandbox.fake_ami import FakeAsterisk

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk() as fake:
        yield fake


def _settings(fake: FakeAsterisk, tmp_path: Path) -> Settings:
    return load_settings(
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
            f"config_dir={CONFIG}",
        ),
    )


async def test_a_restart_keeps_the_days_offered_answered_and_abandoned(
    fake: FakeAsterisk, tmp_path: Path
) -> None:
    # Within the last minute: "today" in any time zone, unless the test runs at midnight.
    t0 = time.time() - 60
    async with Server(_settings(fake, tmp_path)) as server:
        assert server.acd is not None
        fresh = server.acd.service.figures.stats("sales", time.time())
        assert (fresh.offered, fresh.answered, fresh.abandoned) == (0, 0, 0)
        for event in (
            CallQueued("c1", "sales", "voice", 0, t0, t0),
            CallOffered("c1", "sales", "agent1001", "PJSIP/agent1001", t0 + 2),
            CallAnswered("c1", "sales", "agent1001", 4.0, t0 + 4),
            CallEnded("c1", "sales", "agent1001", 20.0, 3.0, t0 + 27),
            WrapUpEnded("c1", "sales", "agent1001", 5.0, t0 + 32),
            CallQueued("c2", "sales", "voice", 0, t0 + 1, t0 + 1),
            CallAnswered("c2", "sales", "agent1002", 9.0, t0 + 10),
            CallEnded("c2", "sales", "agent1002", 30.0, 0.0, t0 + 40),
            CallQueued("c3", "sales", "voice", 0, t0 + 2, t0 + 2),
            CallAbandoned("c3", "sales", 15.0, None, t0 + 17),
            CallQueued("c4", "support", "voice", 0, t0 + 3, t0 + 3),  # still waiting
        ):
            server.bus.publish(event)
    # The server stopped: its writer flushed what the bus handed over.

    async with Server(_settings(fake, tmp_path)) as server:
        assert server.acd is not None
        stats = server.acd.service.figures.stats("sales", time.time())
        assert (stats.offered, stats.answered, stats.abandoned) == (3, 2, 1)
        assert stats.asa == pytest.approx((4.0 + 9.0) / 2)
        # Only c1's wrap-up ended, so only c1 counts as handled: (20 + 3 + 5) s.
        assert stats.aht == pytest.approx(28.0)
        # A call without an outcome (c4 was waiting at the stop) is not counted as offered:
        # if it is still on its channel, reconciliation brings it back as a restored call.
        assert server.acd.service.figures.stats("support", time.time()).offered == 0
