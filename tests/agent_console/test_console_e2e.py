"""The consoles end to end: Debian's chromium (Playwright) against the server, the sandbox
Asterisk, a SIPp caller walking a real IVR with real DTMF, and a SIPp agent phone.

One scenario, in the order a shift goes:

1. an agent and a supervisor sign in through the login page (each in their own browser
   context: their own cookies);
2. the agent goes "not ready"; a known customer calls, is recognised by number, types their
   account number (a sensitive input) and is queued: the supervisor's queue card shows the
   caller waiting, live;
3. the agent clicks Ready: the call is offered at once, and the agent's screen pops the right
   customer, the IVR path, and the account number MASKED (the digits never reach the page);
   the supervisor's grid shows the agent on the call;
4. the phone hangs up; the agent wraps up with a disposition and notes, "Save and ready": the
   interaction in the store carries them;
5. the server drops the agent's websocket (as for a slow page) and changes the agent's state
   while the page is away: the page shows "disconnected", reconnects by itself and is current;
6. a caller whose CRM name is ``<img src=x onerror=alert(1)>`` is popped: the name shows as
   text, no element is created from it, no script runs.

Every page must run clean: no script error, no CSP violation (``support.browser.watch``).
With ``CTI_SCREENSHOTS=<folder>`` the agent console during the call and the monitor are saved
there (the docs' screenshots are taken this way).
"""

from __future__ import annotations

import asyncio
import os
import textwrap
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, expect
from sqlalchemy import select
from support.browser import chromium, watch
from support.console import PASSWORD
from support.pbx import PbxHandle
from support.server import real_server_settings, with_ivr_flows
from support.sipp import SippProcess, start_caller, start_phone

from app.server import Server
from crm_bridge.schema import Interaction

pytestmark = pytest.mark.pbx

ACD_YAML = """
timezone: UTC
fallback_after: 30
reconcile_every: 5
not_ready_reasons: [break, lunch]
defaults:
  ring_timeout: 15
  wrap_up: 120
  announce: {every: 5, position: false, estimated_wait: false}
queues:
  support: {skills: {support: 1}}
agents:
  agent1001: {name: Ada Agent, skills: {support: 5}, queues: [support]}
  agent1002: {name: Ben Backup, skills: {support: 2}, queues: [support]}
"""

# Recognise the caller by number, ask for the account number (sensitive: masked everywhere
# after the IVR), queue for support with what the caller said.
FLOWS_YAML = """
default_flow: billing
routes:
  - {dnis: "8301", flow: billing}
flows:
  billing:
    start: identify
    nodes:
      identify: {kind: lookup, by: ani, next: account, not_found: account}
      account:
        kind: input
        prompts: [beep]
        variable: account
        min_length: 6
        max_length: 6
        terminator: "#"
        timeout: 8
        pattern: "^[0-9]{6}$"
        retries: 1
        sensitive: true
        next: support
        on_exceeded: support
      support:
        kind: queue
        queue: support
        data: {reason: billing}
"""

CUSTOMERS_YAML = """
customers:
  - id: C9001
    name: Ada Lovelace
    phone: ["5551234"]
    account: "100200"
    tier: gold
  - id: C9002
    name: "<img src=x onerror=alert(1)>"
    phone: ["5557777"]
"""

CONSOLE_YAML = """
dispositions:
  - {code: resolved, label: Resolved}
  - {code: complaint, label: Complaint}
"""

ACCOUNT = "314159"
HOSTILE = "<img src=x onerror=alert(1)>"
TIMEOUT_MS = 20_000


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


async def _sign_in(context: BrowserContext, base: str, username: str, page_path: str) -> Page:
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("[data-testid=login-submit]")
    await page.wait_for_url(f"{base}{page_path}")
    await expect(page.locator("body")).to_have_attribute("data-connected", "true")
    return page


async def _shot(page: Page, name: str) -> None:
    folder = os.environ.get("CTI_SCREENSHOTS")
    if folder:
        # Playwright creates the folder.
        await page.screenshot(path=os.path.join(folder, name), full_page=True)


async def test_a_shift_in_the_browser(pbx: PbxHandle, tmp_path: Path) -> None:
    pbx.hangup_all()
    config = tmp_path / "config"
    settings = with_ivr_flows(
        real_server_settings(
            pbx,
            "acd.enabled=true",
            f"acd.config={_write(config, 'acd.yaml', ACD_YAML)}",
            f"acd.state_dir={tmp_path / 'state'}",
            "crm.enabled=true",
            f"crm.url=sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}",
            f"ivr.customers={_write(config, 'customers.yaml', CUSTOMERS_YAML)}",
            f"console.config={_write(config, 'console.yaml', CONSOLE_YAML)}",
        ),
        _write(config, "flows.yaml", FLOWS_YAML),
    )
    processes: list[SippProcess] = []
    log_dir = tmp_path / "sipp"
    log_dir.mkdir()
    server = Server(settings)
    try:
        async with server, chromium() as browser:
            await server.ami.wait_connected(15)
            assert server.accounts is not None
            assert server.acd is not None
            await server.accounts.add_user("ada", PASSWORD, "agent", agent_id="agent1001")
            await server.accounts.add_user("sup", PASSWORD, "supervisor")
            base = f"http://127.0.0.1:{server.http_port}"
            dialogs: list[str] = []
            agent_ctx = await browser.new_context(viewport={"width": 1440, "height": 900})
            sup_ctx = await browser.new_context(viewport={"width": 1920, "height": 1080})
            agent = await _sign_in(agent_ctx, base, "ada", "/agent")
            agent.on("dialog", lambda d: dialogs.append(d.message))
            agent_problems = watch(agent)
            monitor = await _sign_in(sup_ctx, base, "sup", "/supervisor")
            monitor_problems = watch(monitor)
            badge = agent.get_by_test_id("status-badge")
            row = monitor.locator("tr[data-agent=agent1001]")

            # 2. Not ready (the page logs the agent in to the queue first); the caller waits.
            await agent.get_by_test_id("btn-not-ready").click()
            await expect(badge).to_have_attribute("data-status", "not_ready")
            await expect(row).to_have_attribute("data-status", "not_ready")
            phone = start_phone(
                pbx.phone_port("agent1001"), ring_ms=1500, talk_ms=8000, log_dir=log_dir
            )
            processes.append(phone)
            processes.append(
                start_caller(
                    pbx.sip_port,
                    "8301",
                    digits=f"{ACCOUNT}#",
                    first_key_ms=2500,
                    key_gap_ms=250,
                    hold_ms=60_000,
                    ani="5551234",
                    timeout=90,
                    log_dir=log_dir,
                )
            )
            waiting = monitor.locator("[data-queue=support] [data-testid=queue-waiting]")
            await expect(waiting).to_have_text("1", timeout=TIMEOUT_MS)

            # 3. Ready: offered at once, the screen pops the right customer and IVR data.
            await agent.get_by_test_id("btn-ready").click()
            pop = agent.get_by_test_id("screen-pop")
            await expect(agent.get_by_test_id("pop-customer-name")).to_have_text(
                "Ada Lovelace", timeout=TIMEOUT_MS
            )
            variables = agent.get_by_test_id("ivr-variables")
            await expect(variables).to_contain_text("account")
            await expect(variables).to_contain_text("*" * len(ACCOUNT))
            await expect(agent.get_by_test_id("ivr-path")).to_contain_text("account")
            assert ACCOUNT not in await agent.content()
            await expect(waiting).to_have_text("0")
            await expect(row).to_have_attribute("data-status", "on_call", timeout=TIMEOUT_MS)
            await expect(badge).to_have_attribute("data-status", "on_call")
            await _shot(agent, "agent-console-call.png")
            await _shot(monitor, "supervisor-monitor.png")
            call_id = server.acd.service.agents["agent1001"].call_id
            assert call_id is not None

            # 4. The phone hangs up; wrap-up with a disposition, saved on the interaction.
            await expect(badge).to_have_attribute("data-status", "wrap_up", timeout=TIMEOUT_MS)
            await agent.get_by_test_id("wrapup-disposition").select_option("complaint")
            await agent.get_by_test_id("wrapup-notes").fill("Billing question; <b>not</b> bold")
            await agent.get_by_test_id("wrapup-save-ready").click()
            await expect(badge).to_have_attribute("data-status", "ready")
            await expect(row).to_have_attribute("data-status", "ready")
            assert server.crm_writer is not None
            assert server.crm_engine is not None
            await server.crm_writer.flush(5)
            async with server.crm_engine.connect() as conn:
                stored = (
                    await conn.execute(
                        select(
                            Interaction.disposition, Interaction.notes, Interaction.agent_id
                        ).where(Interaction.key == call_id)
                    )
                ).one()
            assert tuple(stored) == ("complaint", "Billing question; <b>not</b> bold", "agent1001")

            # 5. The server drops the page and the agent's state changes while it is away.
            assert server.hub is not None
            server.hub.close_matching(lambda client: client.startswith("ada/"), code=4008)
            server.acd.service.not_ready("agent1001", "lunch")
            await expect(agent.locator("body")).to_have_attribute("data-connected", "false")
            await expect(agent.locator("body")).to_have_attribute(
                "data-connected", "true", timeout=TIMEOUT_MS
            )
            await expect(badge).to_have_attribute("data-status", "not_ready")
            await expect(agent.get_by_test_id("status-reason")).to_have_text("lunch")

            # 6. A hostile customer name is text, nothing else.
            await agent.get_by_test_id("btn-ready").click()
            await expect(badge).to_have_attribute("data-status", "ready")
            processes.append(
                start_caller(
                    pbx.sip_port,
                    "8301",
                    digits=f"{ACCOUNT}#",
                    first_key_ms=2500,
                    key_gap_ms=250,
                    hold_ms=30_000,
                    ani="5557777",
                    timeout=60,
                    log_dir=log_dir,
                )
            )
            name = agent.get_by_test_id("pop-customer-name")
            await expect(name).to_have_text(HOSTILE, timeout=TIMEOUT_MS)
            assert await pop.locator("img").count() == 0
            await asyncio.sleep(0.5)  # an onerror would have fired by now
            assert dialogs == []
            assert agent_problems == []
            assert monitor_problems == []
    finally:
        for process in processes:
            process.stop()
        pbx.hangup_all()
