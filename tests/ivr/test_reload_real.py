"""Reloading the IVR configuration under live calls, on the sandbox Asterisk.

The server runs the demo flows from a copy in a temporary folder (version 1). Version 2 is the
same demo with callbacks switched off: "4" in the main menu goes straight to the goodbye, and
the callback node is gone. A caller who pressed "4" while the old version ran gets a callback
request; one who presses it on the new version is told goodbye. So the route a call takes shows
which version it ran, besides the version its path records.

- ``await server.reload_ivr()`` while a caller sits in the main menu: that call finishes on version
  1, a call placed after the reload runs version 2;
- ``POST /admin/ivr/reload``: an invalid version is refused with 422 and the file:line of the
  mistake, version 1 keeps running and the next call works; a valid one is then applied (200)
  while that call is in the menu, and the call still ends on version 1;
- ``SIGHUP`` to ``ctiserver run`` (a subprocess, as an admin runs it): the same as the first
  test, read from the server's JSON log.

Keys: the welcome lasts 2.5 s and the menu prompt 14 s; "4" pressed at 4.5 s comes early in
the prompt, at 12 s late in it. A caller pressing late is still in the menu, on the version it
started with, while the test reloads and places the next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from support.pbx import PbxHandle
from support.server import (
    BusRecorder,
    eventually,
    follow_ivr_call,
    free_tcp_port,
    real_server_settings,
    with_ivr_flows,
)
from support.sipp import SippProcess, start_caller

from app.server import Server
from ivr.path import CallerPath, IvrStarted, IvrStepped
from ivr.registry import IvrReloaded
from ivr.services import MemoryCallbacks

pytestmark = pytest.mark.pbx

REPO = Path(__file__).resolve().parents[2]
DEMO_FILE = REPO / "config" / "ivr" / "demo.yaml"
CUSTOMERS = REPO / "config" / "customers.yaml"
DNIS = "8000"
STRANGER = "5559000"  # unknown to config/customers.yaml: the caller reaches the menu
EARLY_MS = 4500  # "4" early in the menu prompt
LATE_MS = 12_000  # "4" late in the menu prompt (it ends near 16.7 s)
WITHIN = 45.0
OPTIONS_LINE = '"4": callback'

#: the path of a caller pressing "4" on each version
CALLBACK_ROUTE = ["welcome", "identify", "hours", "main_menu", "callback", "bye"]
NO_CALLBACK_ROUTE = ["welcome", "identify", "hours", "main_menu", "bye"]


# -- the versions -----------------------------------------------------------------------------


def write_version_1(folder: Path) -> Path:
    """The demo as shipped, in ``folder`` (what the server loads)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "demo.yaml"
    path.write_text(DEMO_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def write_version_2(path: Path) -> None:
    """The demo without callbacks: "4" says goodbye; the callback node is removed."""
    demo = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))
    nodes = demo["flows"]["main"]["nodes"]
    assert nodes["main_menu"]["options"]["4"] == "callback"
    nodes["main_menu"]["options"]["4"] = "bye"
    del nodes["callback"]
    path.write_text(yaml.safe_dump(demo, sort_keys=False), encoding="utf-8")


def write_dangling(path: Path) -> int:
    """Version 1 with "4" pointing at a node that does not exist; the line of that option."""
    text = DEMO_FILE.read_text(encoding="utf-8")
    assert text.count(OPTIONS_LINE) == 1
    path.write_text(text.replace(OPTIONS_LINE, '"4": nowhere'), encoding="utf-8")
    return text[: text.index(OPTIONS_LINE)].count("\n") + 1


def names(path: CallerPath) -> list[str]:
    return [step.node for step in path.steps]


# -- an in-process server ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def ivr_server(pbx: PbxHandle, flows: Path) -> AsyncIterator[tuple[Server, BusRecorder]]:
    pbx.hangup_all()
    server = Server(with_ivr_flows(real_server_settings(pbx), flows))
    bus = BusRecorder(server.bus)
    try:
        async with server:
            await server.ami.wait_connected(15)
            yield server, bus
    finally:
        bus.close()
        pbx.hangup_all()


def call(pbx: PbxHandle, name: str, key_ms: int, log_dir: Path) -> SippProcess:
    """A caller pressing "4" ``key_ms`` after the answer; it stays until Asterisk hangs up."""
    return start_caller(
        pbx.sip_port,
        DNIS,
        digits="4",
        pauses=(key_ms,),
        first_key_ms=1,
        hold_ms=30_000,
        ani=STRANGER,
        caller_name=name,
        timeout=WITHIN,
        log_dir=log_dir,
    )


async def in_main_menu(bus: BusRecorder, name: str) -> IvrStarted:
    """Wait until the caller named ``name`` is in the main menu; its IvrStarted."""
    await bus.wait_for(
        IvrStepped, lambda e: e.call.caller_name == name and e.step.node == "hours", within=20
    )
    return await bus.wait_for(IvrStarted, lambda e: e.call.caller_name == name)


async def test_a_live_call_finishes_on_its_version_and_a_new_call_gets_the_new_one(
    pbx: PbxHandle, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    demo = write_version_1(flows)
    async with ivr_server(pbx, flows) as (server, bus):
        v1 = server.ivr.registry.current.version
        old = call(pbx, "old", LATE_MS, tmp_path)
        old_done = asyncio.create_task(follow_ivr_call(bus, old, "old", WITHIN))
        try:
            started_old = await in_main_menu(bus, "old")
            write_version_2(demo)
            result = await server.reload_ivr()
            new = call(pbx, "new", EARLY_MS, tmp_path)
            new_path = (await follow_ivr_call(bus, new, "new", WITHIN)).path
            old_path = (await old_done).path
        finally:
            old_done.cancel()
            old.stop()
        reloaded = bus.of_type(IvrReloaded)

    assert (result.ok, result.previous, result.error) == (True, v1, "")
    assert result.version not in ("", v1)
    assert reloaded == [result]
    assert started_old.version == v1
    # The caller in the menu pressed "4" after the reload and still got version 1's callback.
    assert (old_path.version, names(old_path), old_path.outcome) == (
        v1,
        CALLBACK_ROUTE,
        "callback",
    )
    assert [r.call.caller_name for r in _memory_callbacks(server).pending()] == ["old"]
    # The call placed after the reload runs version 2: "4" is goodbye.
    assert (new_path.version, names(new_path), new_path.outcome) == (
        result.version,
        NO_CALLBACK_ROUTE,
        "hangup",
    )
    assert new_path.steps[3].result == "option 4"


async def test_an_invalid_reload_over_http_is_refused_and_calls_go_on(
    pbx: PbxHandle, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    demo = write_version_1(flows)
    async with ivr_server(pbx, flows) as (server, bus), aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{server.http_port}/admin/ivr/reload"
        v1 = server.ivr.registry.current.version
        line = write_dangling(demo)
        async with http.post(url) as response:
            refused = (response.status, await response.json())
        # Version 1 still runs: a call placed now is served, and while it is in the menu a
        # valid version 2 is applied over HTTP.
        caller = call(pbx, "after-refusal", LATE_MS, tmp_path)
        done = asyncio.create_task(follow_ivr_call(bus, caller, "after-refusal", WITHIN))
        try:
            await in_main_menu(bus, "after-refusal")
            write_version_2(demo)
            async with http.post(url) as response:
                applied = (response.status, await response.json())
            path = (await done).path
        finally:
            done.cancel()
            caller.stop()
        metrics = await _metrics(http, server.http_port)

    status, body = refused
    assert (status, body["ok"], body["version"], body["previous"]) == (422, False, v1, v1)
    # The admin is told where the mistake is: file and line, flow, node, what is wrong.
    assert f"{demo}:{line}: flow main, node main_menu: unknown node 'nowhere'" in body["error"]
    assert (path.version, names(path), path.outcome) == (v1, CALLBACK_ROUTE, "callback")
    status, body = applied
    assert (status, body["ok"], body["previous"]) == (200, True, v1)
    assert body["version"] == server.ivr.registry.current.version != v1
    assert [(e.ok, e.version) for e in bus.of_type(IvrReloaded)] == [
        (False, v1),
        (True, body["version"]),
    ]
    assert metrics["ctiserver_ivr_failed_reloads_total"] == 1.0
    assert metrics["ctiserver_ivr_reloads_total"] == 1.0


async def _metrics(http: aiohttp.ClientSession, port: int) -> dict[str, float]:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    return _parse_metrics(text)


def _parse_metrics(text: str) -> dict[str, float]:
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


# -- SIGHUP to ``ctiserver run`` --------------------------------------------------------------


def _get_metrics(port: int) -> dict[str, float] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return _parse_metrics(response.read().decode())
    except OSError:
        return None


def _log_entries(log: Path) -> list[dict[str, Any]]:
    lines = log.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def _start_ctiserver(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """``ctiserver --config CONFIG run``, its output in ``log``. Only that file configures it
    (no CTISERVER__ variables from our environment), from a folder without config/."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTISERVER__")}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "--config", str(config), "run"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=config.parent,
        )


async def test_sighup_reloads_a_running_ctiserver(pbx: PbxHandle, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    demo = write_version_1(flows)
    http_port = free_tcp_port()
    config = tmp_path / "ctiserver.yaml"
    settings: dict[str, Any] = {
        "ami": {
            "port": pbx.ami_port,
            "username": pbx.ami_username,
            "secret": pbx.ami_secret,
            "reconnect_min": 0.2,
            "reconnect_max": 1.0,
        },
        "agi": {"host": pbx.agi_host, "port": pbx.agi_port},
        "http": {"host": "127.0.0.1", "port": http_port},
        "log": {"level": "INFO", "format": "json"},
        "pbx": {"root": str(pbx.config.root_dir), "instance": pbx.config.instance},
        "acd": {"enabled": False},  # the IVR's own test: app_queue behind its queue nodes
        "crm": {"enabled": False},
        "ivr": {"flows": [str(flows)], "customers": str(CUSTOMERS)},
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    log = tmp_path / "ctiserver.log"
    pbx.hangup_all()
    server = _start_ctiserver(config, log)
    old: SippProcess | None = None
    new: SippProcess | None = None
    try:
        await eventually(
            "ctiserver run serving /metrics",
            lambda: server.poll() is None and _get_metrics(http_port) is not None,
            20,
        )
        old = call(pbx, "old", LATE_MS, tmp_path)
        # Answered: the server took the configuration for this call (ivr/handler.py).
        await asyncio.to_thread(old.wait_for_event, "answered", 20)
        write_version_2(demo)
        server.send_signal(signal.SIGHUP)

        def reloaded() -> bool:
            metrics = _get_metrics(http_port)
            return metrics is not None and metrics.get("ctiserver_ivr_reloads_total") == 1.0

        await eventually("the reload after SIGHUP", reloaded, 10)
        new = call(pbx, "new", EARLY_MS, tmp_path)
        results = [await asyncio.to_thread(p.wait, WITHIN) for p in (new, old)]
        assert server.poll() is None, "SIGHUP must not stop the server"
        server.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(server.wait, 15)
    finally:
        for caller in (old, new):
            if caller is not None:
                caller.stop()
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)

    entries = _log_entries(log)
    text = log.read_text(errors="replace")
    assert code == 0, text[-3000:]
    assert all(result.ok for result in results), [r.describe() for r in results]
    swaps = [e["msg"] for e in entries if e["logger"] == "ivr.registry"]
    [swap] = swaps
    assert swap.startswith("IVR configuration "), swap
    # Sessions in the order the calls came (the old one first), and how each flow ended.
    sessions = [
        e["msg"].split()[2].rstrip(":")
        for e in entries
        if e["logger"] == "cti.agi.server" and e["msg"].startswith("FastAGI PJSIP/")
    ]
    outcomes = {e["uniqueid"]: e["outcome"] for e in entries if e["logger"] == "ivr.handler"}
    assert len(sessions) == 2, sessions
    # The old call took version 1's callback; the new one version 2's goodbye.
    assert [outcomes.get(uniqueid) for uniqueid in sessions] == ["callback", "hangup"], entries
    assert "Traceback" not in text


def _memory_callbacks(server: Server) -> MemoryCallbacks:
    callbacks = server.ivr.callbacks
    assert isinstance(callbacks, MemoryCallbacks)  # the ACD is off in these tests
    return callbacks
