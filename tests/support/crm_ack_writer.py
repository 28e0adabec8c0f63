"""A child process for the durability test: writes timeline events as fast as it can through
the real ``InteractionWriter`` and prints the key of every event the moment it is acknowledged
(its future completed), flushing stdout each time. The test kills it with SIGKILL mid-stream
and checks that every printed key is in the database.

    python tests/support/crm_ack_writer.py DATABASE_URL PREFIX
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

from crm_bridge.db import create_engine, migrate
from crm_bridge.timeline import TimelineEvent
from crm_bridge.writer import InteractionWriter


def _acknowledge(key: str, acked: Callable[[str], None]) -> Callable[[asyncio.Future[None]], None]:
    def done(future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is None:
            acked(key)

    return done


async def main(url: str, prefix: str) -> None:
    engine = create_engine(url)
    await migrate(engine)
    writer = InteractionWriter(engine, max_batch=200)
    await writer.start()
    print("ready", flush=True)

    def acked(key: str) -> None:
        sys.stdout.write(f"{key}\n")
        sys.stdout.flush()

    n = 0
    while True:
        futures = []
        for _ in range(50):
            n += 1
            key = f"{prefix}:{n}"
            event = TimelineEvent(
                key, f"{prefix}-call-{n // 7}", "queued", 1.8e9 + n, {"queue": "q"}
            )
            future = writer.submit(event)
            future.add_done_callback(_acknowledge(key, acked))
            futures.append(future)
        await asyncio.gather(*futures)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
