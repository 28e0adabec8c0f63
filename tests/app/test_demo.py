"""The demo (app/demo.py): what callers it plans, the phones' contacts, the demo users, the
``run --demo`` entry point, and, against the real sandbox, that a call goes all the way from
a SIPp caller in the demo IVR through the ACD to a SIPp phone and into wrap-up."""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from support.pbx import PbxHandle
from support.server import BusRecorder, real_server_settings

from acd.agent_state import AgentStateChanged, AgentStatus
from acd.events import CallAnswered, CallOffered, CallQueued
from agent_console.accounts import AccountStore
from app.cli import main
from app.demo import (
    DEMO_CALLERS,
    DEMO_READY_AGENTS,
    DemoCaller,
    DemoOptions,
    demo_settings,
    ensure_demo_users,
    phone_ports,
    plan_call,
    start_demo,
)
from app.server import Server
from app.settings import AgentPhoneSettings, Settings, load_settings
from crm_bridge.db import create_engine, migrate
from cti.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
CUSTOMERS = yaml.safe_load((REPO / "config" / "customers.yaml").read_text())["customers"]


def _digits(number: str) -> str:
    return "".join(c for c in number if c.isdigit())


# -- what callers do ------------------------------------------------------------------------------


def test_planned_callers_use_every_kind_and_valid_keys() -> None:
    rng = random.Random(7)
    plans = [plan_call(rng, DemoOptions()) for _ in range(500)]
    known = {_digits(p) for c in CUSTOMERS for p in c["phone"]}
    for plan in plans:
        assert len(plan.pauses) == len(plan.digits)
        assert plan.ani.isdigit()
        assert len(plan.ani) >= 7
        if plan.digits.startswith("3"):  # the balance branch: 3, an account, #
            accounts = {c["account"] for c in CUSTOMERS}
            assert plan.digits[1:-1] in accounts
            assert plan.digits.endswith("#")
        else:
            assert plan.digits in ("", "1", "2")
    kinds = Counter(
        "vip" if not p.digits else "known" if p.ani in known else "unknown" for p in plans
    )
    assert kinds["vip"]
    assert kinds["known"]
    assert kinds["unknown"]
    # Unknown numbers are made up fresh and belong to no customer.
    unknown = {p.ani for p in plans if p.ani.startswith("5559")}
    assert len(unknown) > 50
    assert not unknown & known


def test_vip_callers_are_the_gold_and_platinum_customers() -> None:
    vip_tiers = {_digits(p): c["tier"] for c in CUSTOMERS for p in c["phone"]}
    vips = [c for c in DEMO_CALLERS if not c.menu and not c.account]
    named = [c for c in DEMO_CALLERS if (c.menu or c.account) and c.name]
    # Both kinds must be there, or the checks below would pass by checking nothing.
    assert len(vips) >= 2, DEMO_CALLERS
    assert len(named) >= 2, DEMO_CALLERS
    for caller in vips:
        assert vip_tiers[caller.ani] in ("gold", "platinum"), caller
    for caller in named:
        assert vip_tiers[_digits(caller.ani)] == "standard", caller


def test_impatient_callers_give_up_soon_and_others_wait_long() -> None:
    options = DemoOptions(callers=(DemoCaller("", "5559", menu="1", impatient=True),))
    holds = [plan_call(random.Random(n), options).hold_ms for n in range(50)]
    assert all(15_000 <= hold <= 30_000 for hold in holds)
    patient = DemoOptions(callers=(DemoCaller("X", "5553000", menu="2"),), patience=100)
    assert plan_call(random.Random(1), patient).hold_ms == 100_000


# -- phones -------------------------------------------------------------------------------------


def test_demo_settings_give_every_agent_a_static_contact() -> None:
    base = load_settings(environ={})
    agents = (
        AgentPhoneSettings(endpoint="agent1001", password=SecretStr("x")),
        AgentPhoneSettings(
            endpoint="agent1002", password=SecretStr("y"), contact="sip:a@127.0.0.2:6000"
        ),
        AgentPhoneSettings(endpoint="agent1003", password=SecretStr("z")),
    )
    settings = base.model_copy(update={"pbx": base.pbx.model_copy(update={"agents": agents})})
    assert phone_ports(settings) == {"agent1002": ("127.0.0.2", 6000)}
    demo = demo_settings(settings, base_port=7081)
    assert phone_ports(demo) == {
        "agent1001": ("127.0.0.1", 7081),
        "agent1002": ("127.0.0.2", 6000),  # a configured contact is kept
        "agent1003": ("127.0.0.1", 7083),
    }
    assert phone_ports(settings) == {"agent1002": ("127.0.0.2", 6000)}  # not changed


def test_the_default_demo_phones_cover_the_acd_agents() -> None:
    settings = demo_settings(load_settings(environ={}))
    acd = yaml.safe_load((REPO / "config" / "acd.yaml").read_text())
    ports = phone_ports(settings)
    assert set(acd["agents"]) == set(ports)
    assert sorted(port for _, port in ports.values()) == list(range(5081, 5086))
    assert set(DEMO_READY_AGENTS) == set(acd["agents"]) - {"agent1001"}


# -- users --------------------------------------------------------------------------------------


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}")
    await migrate(engine)
    return engine


async def test_demo_users_are_created_once_and_never_overwritten(engine: AsyncEngine) -> None:
    accounts = AccountStore(engine, log2_n=10)
    path = REPO / "config" / "users.yaml"
    try:
        assert await ensure_demo_users(accounts, path) == 7
        users = {u.username: u for u in await accounts.users()}
        assert users["agent1003"].role == "agent"
        assert users["agent1003"].agent_id == "agent1003"
        assert users["super"].role == "supervisor"
        assert users["admin"].role == "admin"
        assert await accounts.login("super", "demo-super") is not None
        await accounts.set_password("super", "a-changed-password")
        assert await ensure_demo_users(accounts, path) == 0
        assert await accounts.login("super", "demo-super") is None
        assert await accounts.login("super", "a-changed-password") is not None
    finally:
        await engine.dispose()


async def test_a_broken_users_file_is_a_config_error(engine: AsyncEngine, tmp_path: Path) -> None:
    accounts = AccountStore(engine, log2_n=10)
    path = tmp_path / "users.yaml"
    try:
        path.write_text("users:\n  - {username: bob, role: agent}\n")
        with pytest.raises(ConfigError, match=r"users\[0\]: expected username, password"):
            await ensure_demo_users(accounts, path)
        path.write_text("people: []\n")
        with pytest.raises(ConfigError, match="expected 'users:'"):
            await ensure_demo_users(accounts, path)
    finally:
        await engine.dispose()


def test_run_demo_without_sipp_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no sipp (and no asterisk) on it
    assert main(["run", "--demo"]) == 1
    assert "'sipp' is not installed" in capsys.readouterr().err


# -- the real thing -----------------------------------------------------------------------------


def _sipp_children() -> list[int]:
    """Our child processes that are SIPp."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if comm == "sipp" and ppid == os.getpid():
            found.append(int(proc.name))
    return found


def _real_demo_settings(pbx: PbxHandle, tmp_path: Path) -> Settings:
    settings = real_server_settings(
        pbx,
        f"pbx.sip_port={pbx.sip_port}",
        "acd.enabled=true",
        f"acd.state_dir={tmp_path / 'state'}",
        "crm.enabled=true",
        f"crm.url=sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}",
    )
    # The test instance's phones (static contacts agent1001 -> 25081, agent1002 -> 25082).
    agents = tuple(
        AgentPhoneSettings(endpoint=a.endpoint, password=SecretStr(a.password), contact=a.contact)
        for a in pbx.config.agents
    )
    return settings.model_copy(update={"pbx": settings.pbx.model_copy(update={"agents": agents})})


@pytest.mark.pbx
async def test_demo_calls_queue_ring_connect_and_wrap_up(pbx: PbxHandle, tmp_path: Path) -> None:
    pbx.hangup_all()
    settings = _real_demo_settings(pbx, tmp_path)
    options = DemoOptions(
        ready_agents=("agent1002",),  # sales only: the callers press 1
        ring=(0.5, 1.0),
        talk=(2.0, 3.0),
        caller_every=(1.0, 2.0),
        max_callers=2,
        callers=(DemoCaller("", "5559", menu="1"),),
        log_dir=tmp_path / "sipp",
        seed=3,
    )
    server = Server(settings)
    bus = BusRecorder(server.bus)
    try:
        async with server:
            demo = await start_demo(settings, server, options)
            try:
                assert set(demo.phones) == {"agent1001", "agent1002"}
                assert demo.readied == ["agent1002"]
                assert server.accounts is not None
                assert await server.accounts.get("super") is not None
                queued = await bus.wait_for(CallQueued, lambda e: e.queue == "sales", within=30)
                offered = await bus.wait_for(
                    CallOffered, lambda e: e.call_id == queued.call_id, within=15
                )
                assert offered.agent_id == "agent1002"
                await bus.wait_for(CallAnswered, lambda e: e.call_id == queued.call_id, within=10)
                await bus.wait_for(
                    AgentStateChanged,
                    lambda e: e.agent_id == "agent1002" and e.new is AgentStatus.WRAP_UP,
                    within=15,
                )
                assert demo.calls_started >= 1
                assert _sipp_children()
            finally:
                await demo.aclose()
            assert _sipp_children() == []
            assert not demo.processes
            # The demo's agents are no longer ready: no phones behind them any more.
            assert server.acd is not None
            assert server.acd.service.agents["agent1002"].status is not AgentStatus.READY
    finally:
        bus.close()
        pbx.hangup_all()
