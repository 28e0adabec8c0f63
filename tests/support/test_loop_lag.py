"""The loop-lag probe (tests/support/loop_lag.py): it catches the product blocking the loop,
names the call, and does not blame the test harness, an idle loop or garbage collection."""

from __future__ import annotations

import asyncio
import gc
import time
import traceback
from collections.abc import Callable

from support.loop_lag import REPO, LoopLagProbe, classify

# Code that "lives" in a product module: the probe decides by file names, so a function
# compiled under acd/ counts as the ACD's own code.
_PRODUCT_SOURCE = "import time\ndef save_agent_state(seconds):\n    time.sleep(seconds)\n"
_namespace: dict[str, object] = {}
exec(compile(_PRODUCT_SOURCE, str(REPO / "acd" / "store_example.py"), "exec"), _namespace)
save_agent_state: Callable[[float], None] = _namespace["save_agent_state"]  # type: ignore[assignment]


async def _watched(action: Callable[[], object], *, settle: float = 0.05) -> LoopLagProbe:
    probe = LoopLagProbe()
    probe.start()
    await asyncio.sleep(settle)
    action()
    await asyncio.sleep(settle)
    await probe.stop()
    return probe


async def test_a_blocking_call_in_the_product_is_caught_and_named() -> None:
    probe = await _watched(lambda: save_agent_state(0.15))
    (stall,) = probe.product_stalls()
    assert stall.origin == "product"
    assert 0.1 < stall.blocked < 1.0
    assert "acd/store_example.py:3 save_agent_state" in stall.where
    assert "loop blocked" in stall.describe()


async def test_the_harness_blocking_is_seen_but_not_counted() -> None:
    probe = await _watched(lambda: time.sleep(0.15))  # a test's own synchronous sleep
    assert probe.product_stalls() == []
    assert [s.origin for s in probe.stalls] == ["harness"]
    assert "tests/support/test_loop_lag.py" in probe.stalls[0].where


async def test_short_blocks_and_awaits_are_not_stalls() -> None:
    probe = await _watched(lambda: save_agent_state(0.02))
    assert probe.product_stalls() == []
    await asyncio.sleep(0.2)  # an idle loop is never late
    assert all(s.blocked <= probe.threshold for s in probe.stalls)


async def test_garbage_collection_is_not_blamed_on_the_code() -> None:
    # A big young generation makes the collection itself slow; the probe subtracts it.
    junk = [[i] for i in range(300_000)]
    probe = await _watched(gc.collect)
    del junk
    assert all(s.blocked <= probe.threshold for s in probe.product_stalls())
    assert probe.product_stalls() == []


def test_classify_by_the_innermost_frame_of_the_repository() -> None:
    def frame(path: str, name: str = "f") -> traceback.FrameSummary:
        return traceback.FrameSummary(path, 1, name, line="x")

    loop = frame("/usr/lib/python3.11/asyncio/events.py", "_run")
    test = frame(str(REPO / "tests" / "app" / "test_x.py"), "test")
    product = frame(str(REPO / "acd" / "store.py"), "save")
    sandbox = frame(str(REPO / "sandbox" / "sipp.py"), "start_phone")
    stdlib = frame("/usr/lib/python3.11/os.py", "write")
    select = frame("/usr/lib/python3.11/selectors.py", "select")
    venv = frame(str(REPO / ".venv" / "lib" / "sqlalchemy" / "x.py"), "execute")

    def origin(*frames: traceback.FrameSummary) -> str:
        return classify(traceback.StackSummary.from_list(list(frames)))[0]

    assert origin(loop, test, product, stdlib) == "product"  # a test awaiting the product
    assert origin(loop, test, product, venv, stdlib) == "product"  # through a library
    assert origin(loop, test, sandbox, stdlib) == "harness"
    assert origin(loop, product, test, stdlib) == "harness"  # the product calling a test fake
    assert origin(loop, select) == "idle"
    build = frame(str(REPO / "app" / "server.py"), "__init__")
    assert origin(loop, test, build, product, stdlib) == "startup"  # nothing runs yet
    settings = frame(str(REPO / "app" / "settings.py"), "load_settings")
    assert origin(loop, test, settings, product, stdlib) == "startup"
    assert origin(loop, test, frame(str(REPO / "app" / "server.py"), "reload"), product) == (
        "product"
    )
    assert origin(loop, stdlib) == "unknown"
    assert classify(None) == ("unknown", "")
