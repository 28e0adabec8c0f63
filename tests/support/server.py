"""Helpers for tests that run the whole ``Server`` against the real Asterisk sandbox.

- ``real_server_settings``: settings pointing the server at the ``pbx`` fixture's instance,
  with quick reconnects so a restarted Asterisk is found again within a second or so;
- ``eventually``: poll a condition with a deadline (nothing in these tests may hang);
- ``BusRecorder``: everything published on a server's bus, in order;
- ``HoldingIvr``: a FastAGI handler that answers, plays a prompt, reads a key and then holds
  the call (the channel stays live in Asterisk) until the test releases it;
- ``finish_caller``: wait for a SIPp caller without blocking the event loop;
- ``follow_ivr_call``: the IVR path of one SIPp call (found by its caller name) and how the
  caller ended;
- ``with_ivr_flows``: the same settings with other IVR flow files;
- ``LogRecorder``: every log record (DEBUG included) of a block, for tests that must prove
  something is *not* logged.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from app.settings import Settings, load_settings
from cti.agi import AgiEnvironment, AgiSession
from cti.bus import EventBus, Unsubscribe
from ivr.path import CallerPath, IvrFinished
from support.pbx import PbxHandle
from support.sipp import SippProcess, SippResult

__all__ = [
    "ALL_KEYS",
    "BusRecorder",
    "HoldingIvr",
    "IvrCall",
    "LogRecorder",
    "eventually",
    "finish_caller",
    "follow_ivr_call",
    "free_tcp_port",
    "real_server_settings",
    "with_ivr_flows",
]

ALL_KEYS = "0123456789*#"
_E = TypeVar("_E")


def real_server_settings(pbx: PbxHandle, *overrides: str) -> Settings:
    """The server's settings for the sandbox instance (later ``overrides`` win).

    The FastAGI listener takes the port the instance's dialplan dials; HTTP gets a free port.
    Reconnects are quick (0.2-1 s) and the keepalive short, so a restart is noticed at once.
    The sandbox root and instance are the fixture's, so what the server writes for Asterisk
    (TTS prompts) lands where this instance reads it, and ``sound:`` prompts are checked
    against this root's sounds, even when the tests' root is not the default one.
    """
    return load_settings(
        environ={},
        overrides=(
            f"pbx.root={pbx.config.root_dir}",
            f"pbx.instance={pbx.config.instance}",
            f"ami.port={pbx.ami_port}",
            f"ami.username={pbx.ami_username}",
            f"ami.secret={pbx.ami_secret}",
            "ami.reconnect_min=0.2",
            "ami.reconnect_max=1.0",
            "ami.ping_interval=2",
            "ami.ping_timeout=2",
            f"agi.host={pbx.agi_host}",
            f"agi.port={pbx.agi_port}",
            "http.host=127.0.0.1",
            "http.port=0",
            # app_queue behind the IVR's queue nodes unless a test asks for the ACD (with its
            # own state folder: "acd.enabled=true", f"acd.state_dir={tmp_path}").
            "acd.enabled=false",
            # No interaction log unless a test asks for one (with its own database URL).
            "crm.enabled=false",
            *overrides,
        ),
    )


def with_ivr_flows(settings: Settings, *flows: Path) -> Settings:
    """``settings`` with ``ivr.flows`` replaced (a tuple cannot be given as ``--set`` text)."""
    return settings.model_copy(
        update={"ivr": settings.ivr.model_copy(update={"flows": tuple(flows)})}
    )


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


async def eventually(
    what: str, predicate: Callable[[], bool], within: float = 10, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until it is true; ``AssertionError`` naming ``what`` after
    ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(interval)


class BusRecorder:
    """Records every event published on ``bus`` (subscribed to ``object``), in order."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[object] = []
        self._unsubscribe: Unsubscribe = bus.subscribe(object, self.events.append)

    def close(self) -> None:
        self._unsubscribe()

    def of_type(self, kind: type[_E], since: int = 0) -> list[_E]:
        """The recorded events of ``kind`` from index ``since`` on (see ``mark``)."""
        return [e for e in self.events[since:] if isinstance(e, kind)]

    def mark(self) -> int:
        """An index to pass as ``since``: only events recorded after this call."""
        return len(self.events)

    async def wait_for(
        self,
        kind: type[_E],
        match: Callable[[_E], bool] = lambda _e: True,
        *,
        since: int = 0,
        within: float = 10,
    ) -> _E:
        """The first recorded event of ``kind`` that ``match``es, waiting up to ``within`` s."""
        found: list[_E] = []

        def seen() -> bool:
            found[:] = [e for e in self.of_type(kind, since) if match(e)]
            return bool(found)

        await eventually(f"a {kind.__name__} on the bus", seen, within)
        return found[0]


class HoldingIvr:
    """A FastAGI handler for one call: answer, play ``prompt`` (any key interrupts it), wait
    for a key if none was pressed (when ``want_key``), then hold the call with short
    ``WAIT FOR DIGIT`` commands until ``release()``, and hang up.

    Holding with commands rather than an idle await means a dead channel is noticed at once
    (the command fails with ``AgiHangup``), as a real IVR would notice it. ``hold_limit``
    bounds the hold so a failed test cannot leave the call up forever.
    """

    def __init__(
        self, *, prompt: str = "hello-world", want_key: bool = True, hold_limit: float = 60
    ) -> None:
        self.prompt = prompt
        self.want_key = want_key
        self.hold_limit = hold_limit
        self.env: AgiEnvironment | None = None
        self.key: str | None = None
        self.calls = 0
        self._ready = asyncio.Event()
        self._released = asyncio.Event()

    async def __call__(self, session: AgiSession) -> None:
        self.calls += 1
        self.env = session.env
        await session.answer()
        key = await session.stream_file(self.prompt, ALL_KEYS) if self.prompt else None
        if key is None and self.want_key:
            key = await session.wait_for_digit(10_000)
        self.key = key
        self._ready.set()
        deadline = time.monotonic() + self.hold_limit
        while not self._released.is_set():
            if time.monotonic() > deadline:
                raise AssertionError(f"call held for more than {self.hold_limit} s")
            await session.wait_for_digit(250)
        await session.hangup()

    async def ready(self, within: float = 20) -> AgiEnvironment:
        """Wait until the handler has the call answered (and the key read); its environment."""
        try:
            await asyncio.wait_for(self._ready.wait(), within)
        except TimeoutError:
            raise AssertionError(
                f"the IVR handler did not get the call ready within {within} s "
                f"(handler called {self.calls} times)"
            ) from None
        assert self.env is not None
        return self.env

    def release(self) -> None:
        self._released.set()


async def finish_caller(caller: SippProcess, within: float) -> SippResult:
    """Wait (in a thread) for a SIPp caller to end by itself; its checked result."""
    try:
        result = await asyncio.to_thread(caller.wait, within)
    finally:
        caller.stop()
    return result.check()


@dataclass(frozen=True)
class IvrCall:
    """One real call through the IVR: the path the server published for it, and how the SIPp
    caller saw the call end."""

    path: CallerPath
    caller: SippResult


async def follow_ivr_call(
    recorder: BusRecorder, caller: SippProcess, name: str, within: float
) -> IvrCall:
    """The ``IvrFinished`` path of the call whose caller name (``start_caller(...,
    caller_name=name)``) is ``name``, and the caller's checked result once it has ended.

    Calls are told apart by caller name because concurrent test calls may share a number.
    Everything has a deadline; the caller is stopped whatever happens.
    """
    try:
        finished = await recorder.wait_for(
            IvrFinished, lambda e: e.path.call.caller_name == name, within=within
        )
        result = await finish_caller(caller, within)
    finally:
        caller.stop()
    return IvrCall(finished.path, result)


class LogRecorder(logging.Handler):
    """Every log record of the ``cti`` and ``ivr`` loggers (and any other that reaches the
    root logger at its level) while the recorder is open, DEBUG included.

    ``caplog`` only sees records of the running test; this one can span a fixture that runs
    calls for several tests.
    """

    def __init__(self, loggers: tuple[str, ...] = ("cti", "ivr")) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._loggers = loggers
        self._levels: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> LogRecorder:
        for name in self._loggers:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.DEBUG)
        logging.getLogger().addHandler(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        logging.getLogger().removeHandler(self)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)

    def texts(self) -> Iterator[str]:
        """Each record's message and every text attribute it carries (``extra`` fields too:
        a JSON formatter would write them out)."""
        for record in self.records:
            yield record.getMessage()
            for value in vars(record).values():
                if isinstance(value, str):
                    yield value
