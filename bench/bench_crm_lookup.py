"""Customer lookup on a million customers, SQLite and PostgreSQL: what a screen-pop waits for.

The store is created by the real migrations, then filled in bulk (SQLite: one transaction of
``executemany`` through the stdlib driver; PostgreSQL: ``COPY`` through asyncpg), with:

- N customers (default 1,000,000), each with one phone number, one in five with a second;
- N/5 interactions linked by ``customer_ref`` (as the IVR records them) and N/10 cases, so a
  lookup's "last interactions" and "open cases" queries have rows to sift through.

Then ``CustomerStore`` (crm_bridge/customers.py) is timed one call at a time, as a screen-pop
or the IVR calls it: ``by_phone`` with the number as a trunk sends it (``030...`` with country
code 49, normalised to ``+4930...``), a number nobody has, ``by_account``, and a name prefix
search (20 results). Each lookup answers the full view: customer, phones, open cases, last 5
interactions. ``by_phone`` is first timed on the schema as it is (a small sample: without an
index on ``interactions.customer_ref`` it reads the whole table); then the index on
``interactions (customer_ref, started_at)`` proposed to the lead is added, and every lookup
is timed with it.

PostgreSQL is the tests' own throwaway cluster (tests/support/postgres.py: fsync off, C
locale), started here. Run: .venv/bin/python bench/bench_crm_lookup.py [--customers N]
(results: bench/RESULTS.md)
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

# The PostgreSQL helper is the tests' own (tests/support); the repository root goes first so
# tests/ folders do not shadow the real packages (see bench_ready_to_ring.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from support.postgres import start_postgres

from crm_bridge.customers import CustomerStore, name_key
from crm_bridge.db import create_engine, migrate

FIRST = ["Ada", "Alan", "Grace", "Charles", "Edsger", "Barbara", "Donald", "Frances", "Ken"]
LAST = ["Lovelace", "Turing", "Hopper", "Babbage", "Dijkstra", "Liskov", "Knuth", "Allen"]
TIERS = ["standard"] * 8 + ["silver", "gold"]
T0 = 1_800_000_000.0

CUSTOMER_COLUMNS = (
    "id",
    "ref",
    "name",
    "name_key",
    "email",
    "account",
    "segment",
    "tier",
    "language",
    "notes",
    "custom",
    "created_at",
    "updated_at",
)
PHONE_COLUMNS = ("customer_id", "number", "kind")
CASE_COLUMNS = ("customer_id", "subject", "status", "opened_at")
INTERACTION_COLUMNS = (
    "key",
    "channel",
    "direction",
    "customer_ref",
    "started_at",
    "ivr_path",
    "ivr_variables",
    "skills",
    "priority",
    "agents",
    "transfers",
    "outcome",
    "queue",
    "updated_at",
)


def landline(i: int) -> str:
    return f"+4930{i:08d}"


def customers(n: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    for i in range(1, n + 1):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}{i}"
        yield (
            i,
            f"C{i:07d}",
            name,
            name_key(name),
            f"c{i}@example.org",
            str(10_000_000 + i),
            None,
            rng.choice(TIERS),
            "en",
            None,
            "{}",
            T0,
            T0,
        )


def phones(n: int) -> Iterator[tuple[Any, ...]]:
    for i in range(1, n + 1):
        yield (i, landline(i), "phone")
        if i % 5 == 0:
            yield (i, f"+49151{i:08d}", "mobile")


def cases(n: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    for _ in range(n // 10):
        status = "open" if rng.random() < 0.3 else "closed"
        yield (rng.randint(1, n), "question", status, T0 + rng.random() * 1e6)


def interactions(n: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    for j in range(n // 5):
        at = T0 + rng.random() * 1e7
        ref = f"C{rng.randint(1, n):07d}"
        # JSON columns as their text: both drivers take it as is
        json_empty = ("[]", "{}", "{}", 0, "[]", 0)
        yield (f"L{j}", "voice", "inbound", ref, at, *json_empty, "answered", "sales", at)


def load_sqlite(path: Path, n: int) -> None:
    rng = random.Random(5)
    db = sqlite3.connect(path)
    try:
        # The load only: one transaction, no fsync; the store's own settings (db.py) are
        # back for the lookups, which open their own connections.
        db.execute("PRAGMA synchronous=OFF")
        with db:
            for table, columns, rows in (
                ("customers", CUSTOMER_COLUMNS, customers(n, rng)),
                ("customer_phones", PHONE_COLUMNS, phones(n)),
                ("cases", CASE_COLUMNS, cases(n, rng)),
                ("interactions", INTERACTION_COLUMNS, interactions(n, rng)),
            ):
                marks = ",".join("?" * len(columns))
                db.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", rows)
        db.execute("ANALYZE")
    finally:
        db.close()


async def load_postgres(engine: AsyncEngine, n: int) -> None:
    rng = random.Random(5)
    async with engine.begin() as conn:
        raw = await conn.get_raw_connection()
        copy: Any = raw.driver_connection
        assert copy is not None
        for table, columns, rows in (
            ("customers", CUSTOMER_COLUMNS, customers(n, rng)),
            ("customer_phones", PHONE_COLUMNS, phones(n)),
            ("cases", CASE_COLUMNS, cases(n, rng)),
            ("interactions", INTERACTION_COLUMNS, interactions(n, rng)),
        ):
            await copy.copy_records_to_table(table, records=rows, columns=list(columns))
        await conn.execute(text(f"SELECT setval(pg_get_serial_sequence('customers', 'id'), {n})"))
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))


async def timed(
    run: Callable[[int], Awaitable[object]], count: int, rng: random.Random, n: int
) -> tuple[float, float]:
    """Median and p99 of ``count`` calls, in milliseconds (after 50 warm-up calls)."""
    for _ in range(50):
        await run(rng.randint(1, n))
    samples = []
    for _ in range(count):
        i = rng.randint(1, n)
        start = time.perf_counter()
        await run(i)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


async def measure(engine: AsyncEngine, n: int, count: int) -> dict[str, tuple[float, float]]:
    store = CustomerStore(engine, country_code="49", recent=5)
    rng = random.Random(7)

    async def phone(i: int) -> None:
        views = await store.by_phone(f"030 {i:08d}")  # as the trunk sends it
        assert len(views) == 1, i

    async def missing(i: int) -> None:
        assert await store.by_phone(f"+4989{i:08d}") == []

    async def account(i: int) -> None:
        assert await store.by_account(str(10_000_000 + i)) is not None

    async def prefix(i: int) -> None:
        first = FIRST[i % len(FIRST)]
        await store.search_name(f"{first} {LAST[i % len(LAST)][:3]}", limit=20)

    # Without an index on interactions.customer_ref, every lookup's "last interactions" reads
    # the whole interactions table: measured on a small sample only, then the index is added.
    results = {"by_phone (found), schema as is": await timed(phone, max(count // 20, 20), rng, n)}
    async with engine.begin() as conn:
        await conn.execute(
            text("CREATE INDEX ix_bench_ref ON interactions (customer_ref, started_at)")
        )
        if engine.dialect.name == "sqlite":
            await conn.execute(text("ANALYZE"))
    results |= {
        "by_phone (found)": await timed(phone, count, rng, n),
        "by_phone (nobody)": await timed(missing, count, rng, n),
        "by_account": await timed(account, count, rng, n),
        "name prefix, 20 results": await timed(prefix, count // 4, rng, n),
    }
    return results


def report(backend: str, load_s: float, results: dict[str, tuple[float, float]]) -> None:
    print(f"\n{backend}: loading took {load_s:.1f} s")
    print("| lookup, ms | median | p99 |\n| --- | --- | --- |")
    for name, (median, p99) in results.items():
        print(f"| {name} | {median:.2f} | {p99:.2f} |")


async def run_sqlite(base: Path, n: int, count: int) -> None:
    path = base / "crm.sqlite3"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine)
    await engine.dispose()
    start = time.perf_counter()
    await asyncio.to_thread(load_sqlite, path, n)
    load_s = time.perf_counter() - start
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        report("SQLite", load_s, await measure(engine, n, count))
    finally:
        await engine.dispose()


async def run_postgres(base: Path, n: int, count: int) -> None:
    handle = await asyncio.to_thread(start_postgres, base)
    try:
        engine = create_engine(handle.create_database("bench"))
        try:
            await migrate(engine)
            start = time.perf_counter()
            await load_postgres(engine, n)
            load_s = time.perf_counter() - start
            report("PostgreSQL", load_s, await measure(engine, n, count))
        finally:
            await engine.dispose()
    finally:
        handle.stop()


def _postgres_dir(tmp: Path) -> Path:
    # The server runs as the postgres user and must reach its folder (tempfile makes 0700).
    tmp.chmod(0o755)
    base = tmp / "pg"
    base.mkdir(mode=0o755)
    return base


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    print(
        f"{args.customers} customers, {args.lookups} lookups each; Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-crm-") as tmp:
        if args.backend in ("sqlite", "both"):
            await run_sqlite(Path(tmp), args.customers, args.lookups)
        if args.backend in ("postgresql", "both"):
            await run_postgres(_postgres_dir(Path(tmp)), args.customers, args.lookups)


if __name__ == "__main__":
    asyncio.run(main())
