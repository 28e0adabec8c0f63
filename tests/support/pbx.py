"""The ``test`` instance of the Asterisk sandbox, as the ``pbx`` fixture hands it to tests.

It shares the cached root with the ``demo`` instance (``ctiserver pbx up``) but runs on its
own ports, so both can run at once:

    AMI 25038   SIP 25060   FastAGI (the test's listener) 24573   RTP 26000-26999
    agent phones (static contacts, played by SIPp): agent1001 -> 25081, agent1002 -> 25082

Environment (read here only, because this is the tests' wiring):
    CTISERVER__PBX__CACHE_DIR  cache folder holding the root (default ~/.cache/ctiserver)
    CTISERVER__PBX__ROOT       an existing root to use instead of building one
(the same variables the server reads for pbx.cache_dir and pbx.root, so `ctiserver pbx build`
and the tests agree on the root)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cti.errors import SandboxError
from sandbox import DEFAULT_CACHE_DIR, AgentPhone, Sandbox, SandboxConfig

__all__ = [
    "TEST_AGENTS",
    "PbxHandle",
    "exclusive_instance",
    "make_test_config",
    "start_test_pbx",
]

TEST_AGENTS: tuple[AgentPhone, ...] = (
    AgentPhone("agent1001", "test-pw-1001", contact="sip:agent1001@127.0.0.1:25081"),
    AgentPhone("agent1002", "test-pw-1002", contact="sip:agent1002@127.0.0.1:25082"),
)


def make_test_config(instance: str = "test", **overrides: Any) -> SandboxConfig:
    """The test instance's settings (``overrides`` replace fields, e.g. for a 2nd instance)."""
    cache_dir = Path(
        os.environ.get("CTISERVER__PBX__CACHE_DIR", str(DEFAULT_CACHE_DIR))
    ).expanduser()
    root = os.environ.get("CTISERVER__PBX__ROOT")
    config = SandboxConfig(
        ami_secret="test-secret",
        cache_dir=cache_dir,
        root=Path(root) if root else None,
        instance=instance,
        ami_port=25038,
        sip_port=25060,
        rtp_start=26000,
        rtp_end=26999,
        agi_host="127.0.0.1",
        agi_port=24573,
        agents=TEST_AGENTS,
        # Tests must not wait minutes for a caller nobody answers.
        fallback_timeout=60,
    )
    return replace(config, **overrides)


@dataclass
class PbxHandle:
    """A running sandbox instance plus what tests need to talk to it."""

    sandbox: Sandbox

    @property
    def config(self) -> SandboxConfig:
        return self.sandbox.config

    @property
    def ami_port(self) -> int:
        return self.config.ami_port

    @property
    def ami_username(self) -> str:
        return self.config.ami_username

    @property
    def ami_secret(self) -> str:
        return self.config.ami_secret

    @property
    def sip_port(self) -> int:
        return self.config.sip_port

    @property
    def agi_host(self) -> str:
        return self.config.agi_host

    @property
    def agi_port(self) -> int:
        return self.config.agi_port

    def phone_port(self, endpoint: str) -> int:
        """The SIP port of an agent phone's static contact (where its SIPp must listen)."""
        for agent in self.config.agents:
            if agent.endpoint == endpoint and agent.contact:
                return int(agent.contact.rsplit(":", 1)[1].split(";")[0])
        raise KeyError(f"no agent {endpoint!r} with a static contact")

    def cli(self, command: str, timeout: float = 10) -> str:
        return self.sandbox.cli(command, timeout=timeout)

    def restart(self, timeout: float = 60) -> int:
        """``core restart now``; returns once the new process is fully booted (its pid)."""
        return self.sandbox.restart(timeout=timeout)

    @property
    def messages_log(self) -> Path:
        return self.sandbox.layout.messages_log

    def log_position(self) -> int:
        """Where messages.log ends now; pass it to ``log_since`` to see only later lines."""
        try:
            return self.messages_log.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, position: int) -> str:
        with self.messages_log.open("rb") as log:
            log.seek(position)
            return log.read().decode("utf-8", errors="replace")

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 10) -> None:
        """Poll ``check`` until it is true; ``AssertionError`` naming ``what`` after timeout."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.1)

    def hangup_all(self) -> None:
        """Hang up every channel (a failed test must not leave calls for the next one), and
        end the INVITEs that outlive their channel: an INVITE to a phone that was not running
        is retransmitted for 32 s after its call is gone and would ring the next test's phone
        on that port (sandbox/stale_invites.py; the fresh-clone flake of issue 11)."""
        self.cli("channel request hangup all")
        self.wait_for(
            "all channels to hang up",
            lambda: "0 active channels" in self.cli("core show channels count"),
        )
        self.sandbox.end_stale_invites()


@contextlib.contextmanager
def exclusive_instance(config: SandboxConfig, wait: float = 900) -> Iterator[None]:
    """Hold the instance for a whole test session.

    Two pytest runs on one machine (engineers working side by side) would otherwise restart
    each other's ``test`` instance and fight over its ports: the second waits here instead.
    """
    lock_dir = config.cache_dir / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / f"{config.instance}.session.lock").open("a") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SandboxError(
                        f"another test session held sandbox instance {config.instance!r} "
                        f"for more than {wait:.0f} s"
                    ) from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start_test_pbx(
    instance: str = "test", *, config: SandboxConfig | None = None, **overrides: Any
) -> PbxHandle:
    """Build the root if needed, restart the instance from a clean state, return a handle.

    A leftover instance (an interrupted earlier run) is stopped first so the tests always get
    the configuration rendered now. Raises ``SandboxError`` with the reason on failure.
    """
    sandbox = Sandbox(config if config is not None else make_test_config(instance, **overrides))
    sandbox.down()
    sandbox.up()
    sandbox.record_sip_history()  # for hangup_all's end of stale INVITEs
    return PbxHandle(sandbox)
