"""A probe that catches code blocking the event loop during a test (issue 11, outcome 7).

Theory of operation
-------------------
A task in the test's loop wakes every ``INTERVAL`` (10 ms) and measures how late it woke. A
late wake-up is a *stall*. Three things other than our code can make the loop late, and a
probe that blamed them would fail at random on a loaded 2-core machine:

* **Other processes holding the CPU.** The loop thread was runnable but not running. Linux
  counts exactly that time per thread (``/proc/self/task/<tid>/schedstat``, second field:
  time spent waiting on a run queue); it is subtracted.
* **Garbage collection** in the loop thread (a full collection in a big test process can take
  tens of milliseconds). Timed with ``gc.callbacks`` and subtracted: it is not a call the code
  made.
* **The test harness itself**: a test that starts SIPp or sleeps synchronously in an async
  test blocks the loop too, but that is the test's business, not the product's. To tell them
  apart, a watchdog thread looks at the loop thread's stack (``sys._current_frames``) as soon
  as a stall passes the threshold: the innermost frame of this repository names the culprit.
  Under ``tests/`` or ``sandbox/``: the harness; anywhere else in the repository: the product.
  A loop found waiting in its selector was not blocked at all at that moment (``idle``).
* **Building the server** (``app/settings.py``'s ``load_settings``, ``app/server.py``'s
  ``Server.__init__``): the composition root reads its files synchronously, once, before any
  of its tasks runs (``ctiserver run`` loads the settings before ``asyncio.run`` and builds the
  server first thing inside it), so nobody waits on the loop then (``startup``). The same
  reads at a reload, while calls are up, do count.

What remains, ``blocked``, is the time our own code held the loop. A product stall with
``blocked`` over ``THRESHOLD`` (50 ms) fails the test in ``fail`` mode; ``report`` mode only
warns (``LoopLagWarning``, in pytest's warnings summary) so that the probe can run while code
known to block is being moved off the loop. Harness stalls are never failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

__all__ = [
    "INTERVAL",
    "THRESHOLD",
    "LoopLagProbe",
    "LoopLagWarning",
    "Stall",
    "classify",
]

THRESHOLD: Final = 0.050
INTERVAL: Final = 0.010
REPO: Final = Path(__file__).resolve().parents[2]
_HARNESS = (REPO / "tests", REPO / "sandbox")

Origin = Literal["product", "harness", "idle", "startup", "unknown"]
_STARTUP = frozenset(
    {(REPO / "app" / "server.py", "__init__"), (REPO / "app" / "settings.py", "load_settings")}
)


class LoopLagWarning(UserWarning):
    """The product blocked the event loop (reported, not failed: ``report`` mode)."""


@dataclass(frozen=True)
class Stall:
    """One late wake-up of the probe, in seconds."""

    late: float  # past the due time
    waiting_for_cpu: float  # of that, runnable while other processes had the CPU
    gc: float  # of that, garbage collection
    origin: Origin
    where: str  # the innermost frames of this repository, innermost last

    @property
    def blocked(self) -> float:
        """What our own code held the loop for."""
        return max(0.0, self.late - self.waiting_for_cpu - self.gc)

    def describe(self) -> str:
        return (
            f"loop blocked {self.blocked * 1000:.0f} ms ({self.origin}; late "
            f"{self.late * 1000:.0f} ms, of which waiting for a CPU "
            f"{self.waiting_for_cpu * 1000:.0f} ms and GC {self.gc * 1000:.0f} ms) at:\n"
            f"{self.where}"
        )


def _in(path: str, folders: tuple[Path, ...]) -> bool:
    return any(Path(path).is_relative_to(folder) for folder in folders)


def classify(stack: traceback.StackSummary | None) -> tuple[Origin, str]:
    """Who held the loop, from the loop thread's stack: the innermost frame of this
    repository decides (see the module docstring). Returns the origin and the repository's
    frames, innermost last (at most eight)."""
    if not stack:
        return "unknown", ""
    ours = [f for f in stack if _in(f.filename, (REPO,)) and "/.venv/" not in f.filename]
    innermost = stack[-1]
    if not ours:
        if Path(innermost.filename).name == "selectors.py":
            return "idle", f"{innermost.filename}:{innermost.lineno} {innermost.name}"
        return "unknown", f"{innermost.filename}:{innermost.lineno} {innermost.name}"
    where = "\n".join(
        f"  {Path(f.filename).relative_to(REPO)}:{f.lineno} {f.name}: {f.line or ''}"
        for f in ours[-8:]
    )
    if Path(innermost.filename).name == "selectors.py":
        return "idle", where
    if any((Path(f.filename), f.name) in _STARTUP for f in ours):
        return "startup", where
    return ("harness" if _in(ours[-1].filename, _HARNESS) else "product"), where


def _run_queue_wait(native_id: int) -> float:
    """Seconds this thread has spent runnable but waiting for a CPU (0 where not known)."""
    try:
        with open(f"/proc/self/task/{native_id}/schedstat", encoding="ascii") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class LoopLagProbe:
    """Start in the running loop (``start``), ``stop`` at the end: the stalls seen."""

    def __init__(self, threshold: float = THRESHOLD, interval: float = INTERVAL) -> None:
        self.threshold = threshold
        self.interval = interval
        self.stalls: list[Stall] = []
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._beat = time.monotonic()
        self._beat_seq = 0
        self._snapshots: dict[int, traceback.StackSummary] = {}
        self._loop_ident = 0
        self._gc_total = 0.0
        self._gc_started: float | None = None

    # -- GC timing (gc.callbacks run in the collecting thread) ---------------------------------

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if threading.get_ident() != self._loop_ident:
            return
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started is not None:
            self._gc_total += time.perf_counter() - self._gc_started
            self._gc_started = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._loop_ident = threading.get_ident()
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag-probe")
        self._thread = threading.Thread(target=self._watch, name="loop-lag-watchdog", daemon=True)
        self._thread.start()

    async def stop(self) -> list[Stall]:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._thread is not None:
            self._thread.join(timeout=1)
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        return self.stalls

    def product_stalls(self) -> list[Stall]:
        """The stalls that count: the product's, over the threshold once explained."""
        return [s for s in self.stalls if s.origin == "product" and s.blocked > self.threshold]

    # -- the two sides -----------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        native_id = threading.get_native_id()
        waited, collected = _run_queue_wait(native_id), self._gc_total
        due = loop.time() + self.interval
        while True:
            with self._lock:
                self._beat = time.monotonic()
                self._beat_seq += 1
                seq = self._beat_seq
            await asyncio.sleep(max(0.0, due - loop.time()))
            now = loop.time()
            late = now - due
            now_waited, now_collected = _run_queue_wait(native_id), self._gc_total
            if late > self.threshold:
                with self._lock:
                    snapshot = self._snapshots.pop(seq, None)
                origin, where = classify(snapshot)
                self.stalls.append(
                    Stall(late, now_waited - waited, now_collected - collected, origin, where)
                )
            with self._lock:
                self._snapshots.clear()
            waited, collected = now_waited, now_collected
            due = now + self.interval

    def _watch(self) -> None:
        """In a thread: the loop thread's stack once per stall, as it passes the threshold."""
        seen = 0
        while not self._stop.wait(self.interval / 2):
            with self._lock:
                seq, beat = self._beat_seq, self._beat
            if seq == seen or time.monotonic() - beat < self.interval + self.threshold:
                continue
            seen = seq
            frame = sys._current_frames().get(self._loop_ident)
            if frame is None:
                continue
            stack = traceback.extract_stack(frame)
            with self._lock:
                if self._beat_seq == seq:  # still the same stall
                    self._snapshots[seq] = stack
