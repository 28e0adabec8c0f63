"""Fixtures shared by the whole suite.

``pbx``: the ``test`` instance of the Asterisk sandbox (see tests/support/pbx.py), built
(once per machine, cached) and started once per session, stopped at the end. Tests that use
it are marked ``@pytest.mark.pbx``. If the sandbox cannot be had (not root, no debootstrap,
mirror unreachable...) the fixture fails with the reason: a real-Asterisk test never turns
into a silent skip.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from support.pbx import PbxHandle, exclusive_instance, make_test_config, start_test_pbx

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
