"""Nothing acknowledged is lost: ``kill -9`` of a writing process, and a PostgreSQL server
stopped under load and started again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from support.postgres import PostgresHandle

from crm_bridge.db import create_engine, migrate
from crm_bridge.schema import Interaction, InteractionEvent
from crm_bridge.timeline import TimelineEvent
from crm_bridge.writer import InteractionWriter

ROOT = Path(__file__).resolve().parents[2]
CHILD = ROOT / "tests" / "support" / "crm_ack_writer.py"


async def stored_keys(engine: AsyncEngine, prefix: str) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(InteractionEvent.event_key).where(InteractionEvent.event_key.like(f"{prefix}:%"))
        )
        return set(rows.scalars())


def run_and_kill(url: str, prefix: str, acks_wanted: int) -> list[str]:
    """Start the writing child, let it acknowledge ``acks_wanted`` events, SIGKILL it; the
    keys it acknowledged."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), url, prefix],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert proc.stdout is not None
    acked: list[str] = []
    deadline = time.monotonic() + 60
    try:
        first = proc.stdout.readline().strip()
        assert first == "ready", (first, proc.poll())
        while len(acked) < acks_wanted and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acked.append(line.strip())
        # Mid-stream: batches are being written and acknowledged while the signal lands.
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    acked += [line for line in rest.splitlines() if line]
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= acks_wanted, f"only {len(acked)} acknowledged"
    return acked


async def check_kill_9(url: str) -> None:
    acked = await asyncio.to_thread(run_and_kill, url, "k9", 3000)
    engine = create_engine(url)
    try:
        stored = await stored_keys(engine, "k9")
        missing = set(acked) - stored
        assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
        # Replaying every acknowledged event (a restart re-reading its sources) adds nothing.
        writer = InteractionWriter(engine)
        replay = [
            TimelineEvent(key, f"k9-call-{int(key.split(':')[1]) // 7}", "queued", 1.8e9, {})
            for key in acked
        ]
        assert await writer.write(replay) == 0
        assert await stored_keys(engine, "k9") == stored
    finally:
        await engine.dispose()


async def test_kill_9_loses_no_acknowledged_event_on_sqlite(tmp_path: Path) -> None:
    await check_kill_9(f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}")


async def test_kill_9_loses_no_acknowledged_event_on_postgresql(postgres_db: str) -> None:
    await check_kill_9(postgres_db)


async def test_postgresql_stopped_under_load_loses_nothing(
    postgres: PostgresHandle, postgres_db: str
) -> None:
    engine = create_engine(postgres_db)
    await migrate(engine)
    writer = InteractionWriter(engine, retry_min=0.1, retry_max=0.5)
    await writer.start()
    futures: list[asyncio.Future[None]] = []

    def burst(start: int, count: int) -> None:
        for n in range(start, start + count):
            futures.append(
                writer.submit(TimelineEvent(f"out:{n}", f"out-{n // 5}", "queued", 1.8e9 + n))
            )

    try:
        burst(0, 500)
        await asyncio.wait_for(asyncio.gather(*futures), 20)
        await asyncio.to_thread(postgres.stop_server)
        # Calls go on while the database is away: the writer buffers and says so.
        for step in range(10):
            burst(500 + step * 100, 100)
            await asyncio.sleep(0.1)
        assert not writer.available
        assert writer.buffered > 0
        assert writer.unavailable_since is not None
        assert not any(f.done() for f in futures[500:])  # nothing acknowledged meanwhile
        await asyncio.to_thread(postgres.start_server)
        await asyncio.wait_for(asyncio.gather(*futures), 60)
        assert writer.available
        assert writer.stats.failures >= 1
    finally:
        await writer.aclose()
    try:
        async with engine.connect() as conn:
            events = (
                await conn.execute(select(func.count()).select_from(InteractionEvent))
            ).scalar_one()
            interactions = (
                await conn.execute(select(func.count()).select_from(Interaction))
            ).scalar_one()
        assert (events, interactions) == (1500, 300)
    finally:
        await engine.dispose()
