"""The database behind the CRM store: one URL picks SQLite or PostgreSQL.

- ``sqlite+aiosqlite:///path/crm.sqlite3`` (the embedded default): WAL journal, so readers
  (lookups, reports) never wait for the writer and the writer never waits for them;
  ``synchronous=FULL``, so a commit the writer acknowledged is on disk (WAL mode makes that one
  fsync per commit, and the writer commits groups, not single events); ``foreign_keys=ON``
  (SQLite leaves them off by default); a busy timeout so a second process (the CLI's report
  while the server runs) waits for the lock instead of failing.
- ``postgresql+asyncpg://user:password@host/db``: larger centers.

``migrate`` brings the schema to the newest Alembic revision; the server runs it at start
(``crm.migrate_on_start``), ``ctiserver db upgrade`` runs it on demand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cti.errors import ConfigError

__all__ = ["MIGRATIONS", "create_engine", "current_revision", "head_revision", "migrate"]

MIGRATIONS = Path(__file__).with_name("migrations")
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for ``url``; SQLite files get their folder and their pragmas."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {exc}", key="crm.url") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.drivername != "sqlite+aiosqlite":
            raise ConfigError(
                "SQLite needs the async driver: sqlite+aiosqlite:///...", key="crm.url"
            )
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(parsed, echo=echo)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if parsed.drivername != "postgresql+asyncpg":
            raise ConfigError(
                "PostgreSQL needs the async driver: postgresql+asyncpg://...", key="crm.url"
            )
        return create_async_engine(parsed, echo=echo, pool_pre_ping=True)
    raise ConfigError(f"unsupported database {backend!r} (sqlite or postgresql)", key="crm.url")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (idempotent: nothing to do at head)."""

    def upgrade(connection: Connection) -> None:
        command.upgrade(_alembic_config(connection), revision)

    async with engine.begin() as conn:
        await conn.run_sync(upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()
