"""The ACD's real-call test world: the sandbox Asterisk, SIPp callers and agent phones, and the
server either in the test's own loop (``acd_world``) or as a child process that can be
``kill -9``'ed (``ServerProcess``). Shared by ``tests/acd/test_acd_real.py`` and
``tests/acd/test_acd_defects_real.py``.

Callers dial a test IVR whose routes send each number straight to one ACD queue (8101 sales,
8102 support, 8103 general, 8104 short, 8105 asks for a callback). Two agents, two phones:

    agent1001  sales 5            queues sales, general, short
    agent1002  support 5, sales 1 queues sales, support, general
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from acd.agent_state import AgentStatus
from acd.events import CallQueued
from app.server import Server
from support.console import PASSWORD, cookie_session, sign_in
from support.pbx import PbxHandle
from support.server import BusRecorder, real_server_settings, with_ivr_flows
from support.sipp import SippProcess, start_caller, start_phone

__all__ = [
    "ACD_YAML",
    "FLOWS_YAML",
    "RING_TIMEOUT",
    "ServerProcess",
    "World",
    "acd_world",
    "server_calls",
    "server_config",
    "server_metrics",
    "write_config",
]

RING_TIMEOUT = 5

ACD_YAML = f"""
timezone: UTC
fallback_after: 8
reconcile_every: 3
not_ready_reasons: [break]
callbacks: {{attempts: 2, retry_after: 5, ring_customer: 10, dial_context: sandbox-pstn}}
defaults:
  ring_timeout: {RING_TIMEOUT}
  wrap_up: 1
  announce: {{every: 5, position: true, estimated_wait: false}}
queues:
  sales: {{skills: {{sales: 3}}}}
  support: {{skills: {{support: 1}}}}
  general: {{}}
  short:
    skills: {{sales: 3}}
    max_wait: 4
    overflow: {{to: voicemail, target: "100@default"}}
agents:
  agent1001: {{skills: {{sales: 5}}, queues: [sales, general, short]}}
  agent1002: {{skills: {{support: 5, sales: 1}}, queues: [sales, support, general]}}
"""

FLOWS_YAML = """
default_flow: to_sales
routes:
  - {dnis: "8101", flow: to_sales}
  - {dnis: "8102", flow: to_support}
  - {dnis: "8103", flow: to_general}
  - {dnis: "8104", flow: to_short}
  - {dnis: "8105", flow: call_me_back}
flows:
  to_sales: {start: q, nodes: {q: {kind: queue, queue: sales}}}
  to_support: {start: q, nodes: {q: {kind: queue, queue: support}}}
  to_general: {start: q, nodes: {q: {kind: queue, queue: general}}}
  to_short: {start: q, nodes: {q: {kind: queue, queue: short}}}
  call_me_back:
    start: cb
    nodes:
      cb: {kind: callback, number: "${call.ani}", queue: sales, next: bye}
      bye: {kind: hangup}
"""


def write_config(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    acd = folder / "acd.yaml"
    acd.write_text(textwrap.dedent(ACD_YAML).lstrip(), encoding="utf-8")
    flows = folder / "flows.yaml"
    flows.write_text(textwrap.dedent(FLOWS_YAML).lstrip(), encoding="utf-8")
    return acd, flows


@dataclass
class World:
    pbx: PbxHandle
    server: Server
    bus: BusRecorder
    http: aiohttp.ClientSession
    log_dir: Path
    processes: list[SippProcess] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}"

    csrf: str = ""

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"X-CSRF-Token": self.csrf}
        async with self.http.post(self.base + path, json=body, headers=headers) as response:
            data: dict[str, Any] = await response.json()
            assert response.status == 200, (path, response.status, data)
            return data

    async def get(self, path: str) -> Any:
        async with self.http.get(self.base + path) as response:
            assert response.status == 200, (path, response.status)
            return await response.json()

    async def ready(self, agent: str) -> None:
        await self.post(f"/acd/agents/{agent}/login")
        await self.post(f"/acd/agents/{agent}/ready")

    def phone(self, agent: str, *, ring_ms: int = 300, talk_ms: int | None = 4000) -> SippProcess:
        phone = start_phone(
            self.pbx.phone_port(agent), ring_ms=ring_ms, talk_ms=talk_ms, log_dir=self.log_dir
        )
        self.processes.append(phone)
        return phone

    def caller(self, dnis: str, *, hold_ms: int = 30_000, ani: str = "5551234") -> SippProcess:
        caller = start_caller(
            self.pbx.sip_port,
            dnis,
            first_key_ms=1,
            hold_ms=hold_ms,
            ani=ani,
            timeout=hold_ms / 1000 + 30,
            log_dir=self.log_dir,
        )
        self.processes.append(caller)
        return caller

    async def queued(self, dnis_queue: str, since: int) -> CallQueued:
        return await self.bus.wait_for(
            CallQueued, lambda e: e.queue == dnis_queue, since=since, within=15
        )

    def status(self, agent: str) -> AgentStatus:
        assert self.server.acd is not None
        return self.server.acd.service.agents[agent].status


@contextlib.asynccontextmanager
async def acd_world(pbx: PbxHandle, tmp_path: Path) -> AsyncIterator[World]:
    pbx.hangup_all()
    acd, flows = write_config(tmp_path / "config")
    settings = with_ivr_flows(
        real_server_settings(
            pbx,
            "acd.enabled=true",
            f"acd.config={acd}",
            f"acd.state_dir={tmp_path / 'state'}",
            "crm.enabled=true",
            f"crm.url=sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}",
        ),
        flows,
    )
    server = Server(settings)
    bus = BusRecorder(server.bus)
    world: World | None = None
    try:
        async with server, cookie_session() as http:
            await server.ami.wait_connected(15)
            (tmp_path / "sipp").mkdir(exist_ok=True)
            world = World(pbx, server, bus, http, tmp_path / "sipp")
            # The ACD's control API is for supervisors (log-in is on with the store).
            assert server.accounts is not None
            world.csrf = await sign_in(http, world.base, server.accounts)
            yield world
    finally:
        bus.close()
        # Calls first, phones after: a phone stopped with a call up leaves Asterisk resending
        # its BYE to that port for ~30 s, which the next test's phone would receive.
        pbx.hangup_all()
        if world is not None:
            for process in world.processes:
                process.stop()


# -- the server as a child process ------------------------------------------------------------


def server_config(pbx: PbxHandle, folder: Path, http_port: int) -> Path:
    acd, flows = write_config(folder)
    config = folder / "ctiserver.yaml"
    settings = {
        "ami": {
            "port": pbx.ami_port,
            "username": pbx.ami_username,
            "secret": pbx.ami_secret,
            "reconnect_min": 0.2,
            "reconnect_max": 1.0,
            "ping_interval": 2,
            "ping_timeout": 2,
        },
        "agi": {"host": pbx.agi_host, "port": pbx.agi_port},
        "http": {"host": "127.0.0.1", "port": http_port},
        "log": {"format": "json", "level": "INFO"},
        "pbx": {"root": str(pbx.config.root_dir), "instance": pbx.config.instance},
        "ivr": {"flows": [str(flows)], "customers": None},
        "acd": {"enabled": True, "config": str(acd), "state_dir": str(folder / "state")},
        "crm": {"url": f"sqlite+aiosqlite:///{folder / 'crm.sqlite3'}"},
    }
    config.write_text(json.dumps(settings), encoding="utf-8")  # JSON is YAML
    return config


class ServerProcess:
    """``ctiserver run`` in a child process, as an admin runs it (so it can be kill -9'ed)."""

    def __init__(self, config: Path, http_port: int, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CTISERVER__")}
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "--config", str(config), "run"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=config.parent,
            )
        self.base = f"http://127.0.0.1:{http_port}"
        self.log = log
        self.config = config
        # A supervisor's session, as a script would hold one: cookie jar plus CSRF token.
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self._csrf = ""

    def answers(self) -> bool:
        """The HTTP side is up (any answer, 503 while the PBX is not connected too)."""
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=3):
                return True
        except urllib.error.HTTPError:
            return True

    def sign_in(self) -> None:
        """Create the supervisor with the admin's command (once), then log in."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CTISERVER__")}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "app.cli",
                "--config",
                str(self.config),
                "users",
                "add",
                "sup",
                "--role",
                "supervisor",
                "--password-stdin",
            ],
            input=f"{PASSWORD}\n",
            text=True,
            env=env,
            cwd=self.config.parent,
            check=False,  # exists already after a restart: the log-in below tells
            capture_output=True,
        )
        body = json.dumps({"username": "sup", "password": PASSWORD}).encode()
        request = urllib.request.Request(
            self.base + "/api/login",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with self._opener.open(request, timeout=10) as response:
            self._csrf = json.loads(response.read())["csrf"]

    def get(self, path: str) -> Any:
        with self._opener.open(self.base + path, timeout=3) as response:
            return json.loads(response.read())

    def post(self, path: str) -> Any:
        request = urllib.request.Request(
            self.base + path,
            data=b"{}",
            method="POST",
            headers={"X-CSRF-Token": self._csrf, "Content-Type": "application/json"},
        )
        with self._opener.open(request, timeout=3) as response:
            return json.loads(response.read())

    def wait_until(self, what: str, check: Any, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                last = check()
            except (OSError, ValueError, KeyError, IndexError) as exc:
                last = exc
            else:
                if last:
                    return last
            time.sleep(0.1)
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
        raise AssertionError(f"never saw {what} in {timeout} s; last: {last!r}\n{tail}")

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no clean-up of any kind
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def server_metrics(server: ServerProcess) -> dict[str, float]:
    with urllib.request.urlopen(server.base + "/metrics", timeout=3) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def server_calls(server: ServerProcess) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = server.get("/acd/calls")
    return calls
