"""The interaction log's writer on SQLite and on PostgreSQL: sustained write rate and the time
from ``submit`` to acknowledgement (the commit), median and p99.

Two measurements per database, each on a fresh, migrated database:

- **burst**: 50,000 timeline events submitted at once (7 per call, like a real call's
  facts); events per second until every one is acknowledged. Shows the group commit at work.
- **steady**: 1,000 events per second for 10 s, submitted in 20 ms slices (20 events); the
  latency of each event from ``submit`` to its future completing, i.e. what a caller of the
  writer waits for a durable write.

SQLite runs in a temporary file (WAL, synchronous=FULL, as the server runs it). PostgreSQL is
a throwaway cluster started here (tests/support/postgres.py: Debian's server, ``fsync=off``
because it is a test cluster, so its figures are an upper bound for a durable server).

Run: .venv/bin/python bench/bench_crm_write.py   (results: bench/RESULTS.md)
"""

from __future__ import annotations

import asyncio
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path[:0] = [
    str(Path(__file__).resolve().parents[1]),
    str(Path(__file__).resolve().parents[1] / "tests"),
]

from support.postgres import start_postgres  # noqa: E402

from crm_bridge.db import create_engine, migrate  # noqa: E402
from crm_bridge.timeline import TimelineEvent  # noqa: E402
from crm_bridge.writer import InteractionWriter  # noqa: E402

BURST = 50_000
RATE = 1_000
SECONDS = 10
SLICE = 0.02
KINDS = ("call_started", "ivr_finished", "queued", "offered", "answered", "ended", "call_ended")


def events(prefix: str, count: int, start: int = 0) -> list[TimelineEvent]:
    return [
        TimelineEvent(
            f"{prefix}:{n}",
            f"{prefix}-{n // len(KINDS)}",
            KINDS[n % len(KINDS)],
            1.8e9 + n,
            {"queue": "sales", "agent_id": "a1", "wait": 12.0, "talk": 60.0},
        )
        for n in range(start, start + count)
    ]


async def burst(url: str) -> float:
    engine = create_engine(url)
    await migrate(engine)
    writer = InteractionWriter(engine)
    await writer.start()
    batch = events("burst", BURST)
    started = time.perf_counter()
    await asyncio.gather(*(writer.submit(e) for e in batch))
    elapsed = time.perf_counter() - started
    await writer.aclose()
    await engine.dispose()
    return BURST / elapsed


async def steady(url: str) -> list[float]:
    engine = create_engine(url)
    await migrate(engine)
    writer = InteractionWriter(engine)
    await writer.start()
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    per_slice = round(RATE * SLICE)
    futures: list[asyncio.Future[None]] = []

    def timed(submitted: float) -> Callable[[asyncio.Future[None]], None]:
        def done(_future: asyncio.Future[None]) -> None:
            latencies.append(loop.time() - submitted)

        return done

    begin = loop.time()
    n = 0
    while loop.time() - begin < SECONDS:
        now = loop.time()
        for event in events("steady", per_slice, n):
            future = writer.submit(event)
            future.add_done_callback(timed(now))
            futures.append(future)
        n += per_slice
        await asyncio.sleep(max(0.0, begin + (n / RATE) - loop.time()))
    await asyncio.gather(*futures)
    await writer.aclose()
    await engine.dispose()
    return latencies


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(name: str, make_url: Callable[[str], str]) -> None:
    rates = []
    for run in range(3):
        rates.append(await burst(make_url(f"b{run}")))
    latencies = await steady(make_url("steady"))
    ms = [x * 1000 for x in latencies]
    print(
        f"{name:10s} burst {statistics.median(rates):8.0f} events/s "
        f"(runs: {', '.join(f'{r:.0f}' for r in rates)}); "
        f"steady {RATE}/s ack latency median {statistics.median(ms):.1f} ms, "
        f"p99 {p(ms, 0.99):.1f} ms, max {max(ms):.1f} ms ({len(ms)} events)"
    )


async def main() -> None:
    print(f"Python {platform.python_version()} on {platform.machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-crm-") as folder:
        base = Path(folder)
        await measure("sqlite", lambda tag: f"sqlite+aiosqlite:///{base / (tag + '.sqlite3')}")
    with tempfile.TemporaryDirectory(prefix="bench-crm-pg-") as folder:
        server = start_postgres(Path(folder))
        try:
            await measure("postgresql", server.create_database)
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
