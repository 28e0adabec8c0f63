"""Fixtures of the CRM store tests: ``engine`` runs each test on SQLite and on a real
PostgreSQL (the session's ``postgres`` cluster, a fresh database per test), migrated to the
newest schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.db import create_engine, migrate


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    else:
        url = str(request.getfixturevalue("postgres_db"))
    engine = create_engine(url)
    await migrate(engine)
    try:
        yield engine
    finally:
        await engine.dispose()
