"""Fixtures shared by the whole suite.

``pbx``: the ``test`` instance of the Asterisk sandbox (see tests/support/pbx.py), built
(once per machine, cached) and started once per session, stopped at the end. Tests that use
it are marked ``@pytest.mark.pbx``. If the sandbox cannot be had (not root, no debootstrap,
mirror unreachable...) the fixture fails with the reason: a real-Asterisk test never turns
into a silent skip.

``postgres``: a throwaway PostgreSQL cluster (see tests/support/postgres.py), created in a fresh
folder under /tmp and started once per session, stopped at the end. Same policy as ``pbx``: if
it cannot be started the fixture fails with the reason, never skips. ``postgres_db``: a fresh,
empty database on it for one test, yielded as its SQLAlchemy URL and dropped afterwards.

``loop_lag_probe``: watches the test's event loop (tests/support/loop_lag.py) and fails the
test (``fail`` mode) or warns (``report``) if the product blocked it over 50 ms. Every async
test marked ``pbx`` (the real-call suite) gets it. ``CTI_LOOP_LAG=fail|report|off`` overrides
``LOOP_LAG_MODE`` below for one run.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from support.loop_lag import THRESHOLD, LoopLagProbe, LoopLagWarning
from support.pbx import PbxHandle, exclusive_instance, make_test_config, start_test_pbx
from support.postgres import PostgresHandle, PostgresUnavailable, start_postgres

from cti.errors import SandboxError


@pytest.fixture(scope="session")
def pbx() -> Iterator[PbxHandle]:
    with contextlib.ExitStack() as stack:
        handle: PbxHandle | None = None
        try:
            config = make_test_config()
            stack.enter_context(exclusive_instance(config))
            handle = start_test_pbx(config=config)
        except SandboxError as exc:
            reason = str(exc)
        if handle is None:
            # Outside the except block: the report shows the reason, not a chained traceback.
            pytest.fail(f"the Asterisk sandbox is not available: {reason}", pytrace=False)
        try:
            yield handle
        finally:
            handle.sandbox.down()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresHandle]:
    # Not pytest's tmp_path: its folders are 0700 root, and as root the server runs as the
    # ``postgres`` user, which must reach its data directory.
    with tempfile.TemporaryDirectory(prefix="ctiserver-pg-") as base_dir:
        handle: PostgresHandle | None = None
        try:
            handle = start_postgres(Path(base_dir))
        except PostgresUnavailable as exc:
            reason = str(exc)
        if handle is None:
            pytest.fail(f"PostgreSQL for the tests is not available: {reason}", pytrace=False)
        try:
            yield handle
        finally:
            handle.stop()


@pytest.fixture
def postgres_db(postgres: PostgresHandle) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = postgres.create_database(name)
    try:
        yield url
    finally:
        # A test that stopped the server and failed before starting it again must not take
        # every later PostgreSQL test down with it.
        if not postgres.running:
            postgres.start_server()
        postgres.drop_database(name)


# -- the loop-lag probe over the real-call suite ---------------------------------------------

#: "fail", "report" or "off"; CTI_LOOP_LAG overrides it for one run (e.g. "report" to list every
#: stall of a run without failing it).
LOOP_LAG_MODE = "fail"


def _loop_lag_mode() -> str:
    mode = os.environ.get("CTI_LOOP_LAG", LOOP_LAG_MODE)
    if mode not in ("fail", "report", "off"):
        raise pytest.UsageError(f"CTI_LOOP_LAG must be fail, report or off, not {mode!r}")
    return mode


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if _loop_lag_mode() == "off":
        return
    for item in items:
        function = getattr(item, "function", None)
        if item.get_closest_marker("pbx") and inspect.iscoroutinefunction(function):
            # First, so that it watches the other fixtures' setup too (the server starting).
            item.fixturenames.insert(0, "loop_lag_probe")  # type: ignore[attr-defined]


@pytest.fixture
async def loop_lag_probe() -> AsyncIterator[LoopLagProbe]:
    probe = LoopLagProbe()
    probe.start()
    try:
        yield probe
    finally:
        await probe.stop()
    blocked = probe.product_stalls()
    if not blocked:
        return
    text = "\n".join(stall.describe() for stall in blocked)
    if _loop_lag_mode() == "fail":
        pytest.fail(
            f"the event loop was blocked over {THRESHOLD * 1000:.0f} ms:\n{text}", pytrace=False
        )
    warnings.warn(LoopLagWarning(text), stacklevel=1)
