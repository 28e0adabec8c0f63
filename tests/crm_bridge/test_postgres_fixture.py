"""The test PostgreSQL (tests/support/postgres.py and the ``postgres`` fixtures) does what the
store's PostgreSQL tests rely on: a real server reached through SQLAlchemy async + asyncpg,
data kept across a stop and start, and one independent empty database per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from support.postgres import (
    TEST_USER,
    PostgresHandle,
    PostgresUnavailable,
    find_bindir,
    start_postgres,
)


async def _scalar(url: str, sql: str) -> object:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar_one()
    finally:
        await engine.dispose()


async def test_query_through_sqlalchemy_asyncpg(postgres: PostgresHandle) -> None:
    assert postgres.url == f"postgresql+asyncpg://cti@127.0.0.1:{postgres.port}/cti"
    engine = create_async_engine(postgres.url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT current_user, current_database(), inet_server_port(),"
                        " host(inet_server_addr()), current_setting('fsync'), 6 * 7"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    assert tuple(row) == (TEST_USER, "cti", postgres.port, "127.0.0.1", "off", 42)


def test_cluster_lives_in_its_own_folder(postgres: PostgresHandle) -> None:
    data_dir = postgres.psql("SHOW data_directory", database="postgres")
    assert Path(data_dir) == postgres.data_dir
    assert postgres.data_dir.is_relative_to(postgres.base_dir)
    assert postgres.bindir == find_bindir()


async def test_stop_and_start_keeps_data(postgres: PostgresHandle, postgres_db: str) -> None:
    name = postgres_db.rsplit("/", 1)[1]
    engine = create_async_engine(postgres_db)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE kept (id int PRIMARY KEY, note text)"))
            await conn.execute(text("INSERT INTO kept VALUES (1, 'before'), (2, 'the stop')"))
    finally:
        await engine.dispose()

    postgres.stop_server()
    try:
        assert not postgres.running
        with pytest.raises((OSError, DBAPIError)):
            await _scalar(postgres_db, "SELECT 1")
    finally:
        postgres.start_server()

    assert await _scalar(postgres_db, "SELECT string_agg(note, ' ' ORDER BY id) FROM kept") == (
        "before the stop"
    )
    assert postgres.psql("SELECT count(*) FROM kept", database=name) == "2"


async def test_restart_keeps_data(postgres: PostgresHandle, postgres_db: str) -> None:
    name = postgres_db.rsplit("/", 1)[1]
    postgres.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (7)", database=name)
    started = "SELECT pg_postmaster_start_time()"
    before = postgres.psql(started)
    postgres.restart()
    assert postgres.running
    assert postgres.psql(started) != before  # a new postmaster, not the same one
    assert await _scalar(postgres_db, "SELECT v FROM t") == 7


async def test_databases_are_fresh_and_independent(
    postgres: PostgresHandle, postgres_db: str
) -> None:
    tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    assert await _scalar(postgres_db, tables) == 0

    other_url = postgres.create_database("t_other_for_independence")
    try:
        assert other_url != postgres_db
        assert await _scalar(other_url, tables) == 0
        engine = create_async_engine(postgres_db)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE only_here (v int)"))
        finally:
            await engine.dispose()
        assert await _scalar(postgres_db, tables) == 1
        assert await _scalar(other_url, tables) == 0
    finally:
        postgres.drop_database("t_other_for_independence")
    listed = postgres.psql("SELECT datname FROM pg_database", database="postgres").split()
    assert "t_other_for_independence" not in listed
    assert postgres_db.rsplit("/", 1)[1] in listed


def test_psql_reports_sql_errors(postgres: PostgresHandle) -> None:
    with pytest.raises(PostgresUnavailable, match="no_such_table"):
        postgres.psql("SELECT * FROM no_such_table")


def test_database_names_are_checked(postgres: PostgresHandle) -> None:
    with pytest.raises(ValueError, match="identifier"):
        postgres.create_database("x; DROP DATABASE cti")


def test_missing_server_is_named(tmp_path: Path) -> None:
    with pytest.raises(PostgresUnavailable, match="install Debian's postgresql package"):
        find_bindir(tmp_path)


def test_incomplete_install_names_what_is_missing(tmp_path: Path) -> None:
    for major in ("13", "15"):
        (tmp_path / major / "bin").mkdir(parents=True)
    for name in ("initdb", "pg_ctl"):
        (tmp_path / "15" / "bin" / name).touch()
    with pytest.raises(PostgresUnavailable, match="lacks postgres, psql") as info:
        find_bindir(tmp_path)
    assert "postgresql-15" in str(info.value)


def test_highest_major_wins(tmp_path: Path) -> None:
    for major in ("9", "15", "16", "common"):
        bindir = tmp_path / major / "bin"
        bindir.mkdir(parents=True)
        for name in ("initdb", "pg_ctl", "postgres", "psql"):
            (bindir / name).touch()
    assert find_bindir(tmp_path) == tmp_path / "16" / "bin"


def test_base_dir_must_be_fresh(tmp_path: Path) -> None:
    (tmp_path / "leftover").touch()
    with pytest.raises(PostgresUnavailable, match="not empty"):
        start_postgres(tmp_path)
