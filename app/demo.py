"""The demo that comes alive on a fresh machine (``ctiserver run --demo``).

Next to the server and the sandbox Asterisk it plays, with SIPp (``sandbox.sipp``):

- **agent phones**: one per sandbox agent endpoint with a static contact (``demo_settings``
  gives the demo agents agent1001..agent1005 contacts on 127.0.0.1:5081..5085). Each rings
  a few seconds, answers, and hangs up after a talk time of its own (20-60 s), so calls
  connect, end, and the agent goes to wrap-up where anyone watching can see it;
- **callers**: a new one every 8-15 s, at most a few at once, who walk the demo IVR
  (config/ivr/demo.yaml) with real RFC 2833 keys: known customers of config/customers.yaml
  (by caller number: VIPs skip the menu, others press 1 or 2), unknown numbers, a few who
  only ask for their balance and a few who give up waiting (the abandoned worklist).

So the wallboard moves without anyone logged in, it logs in agent1002..agent1005 through
the ACD and sets them ready; agent1001 is left for the human (its phone answers for them).
It creates the demo console users of config/users.yaml that are missing.

What a caller does is decided by ``plan_call`` (a pure function of a random generator);
``Demo`` only starts and reaps processes. SIPp processes are our children: ``aclose``
stops them (SIGINT, then SIGKILL), and each is told to die with the server if it is killed
outright (``sandbox.sipp``). Their logs go to ``<state folder>/demo-sipp``; only the newest
callers' folders are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acd.agent_state import AgentStatus
from acd.service import AgentControlError
from agent_console.users_file import UsersFile
from app.settings import Settings
from app.wiring import state_root
from cti.config import config_error, read_yaml, validate_document
from cti.errors import ConfigError, CtiError
from sandbox.sipp import SippProcess, require_sipp, start_caller, start_phone_process

if TYPE_CHECKING:
    from agent_console.accounts import AccountStore
    from app.server import Server

__all__ = [
    "DEMO_CALLERS",
    "DEMO_READY_AGENTS",
    "CallPlan",
    "Demo",
    "DemoCaller",
    "DemoOptions",
    "demo_settings",
    "ensure_demo_users",
    "phone_ports",
    "plan_call",
    "running_demo",
    "start_demo",
]

_log = logging.getLogger(__name__)

#: The agents the demo logs in and readies itself; agent1001 is the human's.
DEMO_READY_AGENTS = ("agent1002", "agent1003", "agent1004", "agent1005")
#: Where the demo phones listen: agent endpoint number i (in pbx.agents order) on base + i.
_PHONE_BASE_PORT = 5081
#: From the answer to a menu key: the welcome (2.5 s) is over, the menu prompt is playing
#: (menus take keys while they play; timings measured in tests/ivr/test_demo_real.py).
_MENU_KEY_MS = 4500
_ACCOUNT_PROMPT_MS = 1500
_DIGIT_GAP_MS = 400


@dataclass(frozen=True)
class DemoCaller:
    """A kind of caller: number and name sent, keys pressed in the IVR (``menu`` picks one
    of these keys; ``account``: press 3 and type it), how likely (``weight``)."""

    name: str
    ani: str
    menu: str = ""
    account: str = ""
    weight: int = 1
    impatient: bool = False  # hangs up after 15-30 s if nobody answered


#: Numbers and accounts from config/customers.yaml. "5559xxx" numbers belong to nobody.
DEMO_CALLERS: tuple[DemoCaller, ...] = (
    DemoCaller("Ada Lovelace", "5551234", weight=2),  # gold: VIP, straight to support
    DemoCaller("Charles Babbage", "5552000"),  # platinum: VIP
    DemoCaller("Grace Hopper", "5553000", menu="12", weight=3),
    DemoCaller("Alan Turing", "0049897654321", menu="12", weight=2),
    DemoCaller("", "5559", menu="12", weight=3),  # unknown: number completed at random
    DemoCaller("", "5559", menu="12", impatient=True),
    # The balance branch ends the call in the IVR (no agent), as demo.yaml says.
    DemoCaller("", "5559", account="100300"),
)


@dataclass(frozen=True)
class DemoOptions:
    """Timings in seconds, as (low, high) ranges drawn from uniformly."""

    ready_agents: tuple[str, ...] = DEMO_READY_AGENTS
    ring: tuple[float, float] = (2.0, 5.0)
    talk: tuple[float, float] = (20.0, 60.0)
    caller_every: tuple[float, float] = (8.0, 15.0)
    max_callers: int = 4
    dnis: str = "8000"
    callers: tuple[DemoCaller, ...] = DEMO_CALLERS
    patience: float = 240.0  # a patient caller hangs up after this long (a safety net)
    keep_caller_logs: int = 40
    log_dir: Path | None = None  # default: <state folder>/demo-sipp
    users_file: Path | None = None  # default: <config_dir>/users.yaml
    connect_timeout: float = 30.0  # for the AMI before agents are made ready
    seed: int | None = None


@dataclass(frozen=True)
class CallPlan:
    """One caller, ready for ``sandbox.sipp.start_caller``."""

    name: str
    ani: str
    digits: str
    pauses: tuple[int, ...]
    hold_ms: int


def plan_call(rng: random.Random, options: DemoOptions) -> CallPlan:
    """The next caller: a kind drawn by weight, its keys and how long it stays on."""
    kinds = options.callers
    kind = rng.choices(kinds, weights=[k.weight for k in kinds])[0]
    ani = kind.ani
    if len(ani) < 7:
        ani += "".join(rng.choice("0123456789") for _ in range(7 - len(ani)))
    name = kind.name or f"Caller {ani[-4:]}"
    digits = ""
    pauses: tuple[int, ...] = ()
    if kind.account:
        digits = f"3{kind.account}#"
        pauses = (_MENU_KEY_MS, _ACCOUNT_PROMPT_MS, *([_DIGIT_GAP_MS] * len(kind.account)))
    elif kind.menu:
        digits, pauses = rng.choice(kind.menu), (_MENU_KEY_MS,)
    hold = rng.uniform(15, 30) if kind.impatient else options.patience
    return CallPlan(name, ani, digits, pauses, int(hold * 1000))


def phone_ports(settings: Settings) -> dict[str, tuple[str, int]]:
    """Agent endpoint -> (host, port) of its static contact, for endpoints that have one."""
    phones: dict[str, tuple[str, int]] = {}
    for agent in settings.pbx.agents:
        if agent.contact:
            hostport = agent.contact.split("@", 1)[-1].split(";", 1)[0]
            host, _, port = hostport.rpartition(":")
            phones[agent.endpoint] = (host or "127.0.0.1", int(port))
    return phones


def demo_settings(settings: Settings, base_port: int = _PHONE_BASE_PORT) -> Settings:
    """``settings`` with a static contact (127.0.0.1, ``base_port`` + index) for every agent
    endpoint that has none: the demo phones never register (SIPp plays them)."""
    agents = tuple(
        agent
        if agent.contact
        else agent.model_copy(
            update={"contact": f"sip:{agent.endpoint}@127.0.0.1:{base_port + index}"}
        )
        for index, agent in enumerate(settings.pbx.agents)
    )
    return settings.model_copy(update={"pbx": settings.pbx.model_copy(update={"agents": agents})})


# -- demo users --------------------------------------------------------------------------------


def _read_users(path: Path) -> list[dict[str, Any]]:
    # The shared source (cti.config): line numbers, keys given twice, YAML 1.1 traps; the
    # model (agent_console.users_file) checks each user's keys and role.
    document, problems = read_yaml(path)
    if document is None or problems:
        raise config_error(problems, "demo users file")
    users = document.top().get("users")
    if not isinstance(users, list):
        raise ConfigError(f"{path}: expected 'users:' with a list of users")
    for index, user in enumerate(users):
        if not isinstance(user, dict) or not {"username", "password", "role"} <= set(user):
            raise ConfigError(
                f"users[{index}]: expected username, password and role",
                source=document.at(("users", str(index))),
            )
    _, found = validate_document(document, UsersFile)
    if found:
        raise config_error(found, "demo users file")
    return users


async def ensure_demo_users(accounts: AccountStore, path: Path) -> int:
    """Create the users of ``path`` that do not exist; returns how many were created.

    Existing users are left exactly as they are: a demo password someone changed stays
    changed, a disabled demo user stays disabled.
    """
    created = 0
    for user in _read_users(path):
        username = str(user["username"])
        if await accounts.get(username) is not None:
            continue
        agent_id = user.get("agent_id")
        await accounts.add_user(
            username,
            str(user["password"]),
            str(user["role"]),
            agent_id=str(agent_id) if agent_id else None,
            display_name=str(user.get("display_name") or username),
        )
        created += 1
    return created


# -- the running demo --------------------------------------------------------------------------


@dataclass
class Demo:
    """The demo's phones and callers; ``aclose`` stops them all."""

    server: Server
    options: DemoOptions
    log_dir: Path
    rng: random.Random
    phones: dict[str, SippProcess] = field(default_factory=dict)
    callers: list[SippProcess] = field(default_factory=list)
    calls_started: int = 0
    readied: list[str] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _ports: dict[str, tuple[str, int]] = field(default_factory=dict)
    _finished_logs: list[Path] = field(default_factory=list)

    @property
    def processes(self) -> list[SippProcess]:
        return [*self.phones.values(), *self.callers]

    def start_phone(self, endpoint: str) -> SippProcess:
        host, port = self._ports[endpoint]
        phone = start_phone_process(
            port,
            host=host,
            ring_ms=int(self.rng.uniform(*self.options.ring) * 1000),
            talk_ms=int(self.rng.uniform(*self.options.talk) * 1000),
            log_dir=self.log_dir,
        )
        self.phones[endpoint] = phone
        return phone

    def start_caller(self) -> SippProcess:
        plan = plan_call(self.rng, self.options)
        sip_port = self.server.settings.pbx.sip_port
        caller = start_caller(
            sip_port,
            self.options.dnis,
            digits=plan.digits,
            pauses=plan.pauses,
            first_key_ms=1,  # the first pause already counts from the answer
            hold_ms=plan.hold_ms,
            ani=plan.ani,
            caller_name=plan.name,
            # SIPp's own deadline: IVR, queue (at most max_wait + overflow), talk.
            timeout=plan.hold_ms / 1000 + 600,
            log_dir=self.log_dir,
        )
        self.callers.append(caller)
        self.calls_started += 1
        _log.info("demo caller %s (%s) presses %r", plan.name, plan.ani, plan.digits)
        return caller

    def reap(self) -> None:
        """Forget finished callers (keeping the newest logs); restart a phone that died."""
        for caller in [c for c in self.callers if c.process.poll() is not None]:
            self.callers.remove(caller)
            self._finished_logs.append(caller.log_dir)
        while len(self._finished_logs) > self.options.keep_caller_logs:
            shutil.rmtree(self._finished_logs.pop(0), ignore_errors=True)
        for endpoint, phone in list(self.phones.items()):
            if phone.process.poll() is not None:
                _log.warning(
                    "demo phone %s exited (status %s); starting it again",
                    endpoint,
                    phone.process.returncode,
                )
                self.start_phone(endpoint)

    async def _run(self) -> None:
        low, high = self.options.caller_every
        next_call = time.monotonic() + self.rng.uniform(0, low)
        while True:
            self.reap()
            now = time.monotonic()
            if now >= next_call:
                if len(self.callers) < self.options.max_callers:
                    self.start_caller()
                next_call = now + self.rng.uniform(low, high)
            await asyncio.sleep(min(0.5, max(0.05, next_call - time.monotonic())))

    def _ready_agents(self) -> None:
        acd = self.server.acd
        if acd is None:
            _log.warning("demo: the ACD is off; no agent is made ready")
            return
        service = acd.service
        for agent_id in self.options.ready_agents:
            agent = service.agents.get(agent_id)
            if agent is None:
                _log.warning("demo: no ACD agent %s", agent_id)
                continue
            try:
                if agent.status is AgentStatus.LOGGED_OUT:
                    service.login(agent_id)
                if agent.status in (AgentStatus.NOT_READY, AgentStatus.WRAP_UP):
                    service.ready(agent_id)
            except AgentControlError as exc:
                _log.warning("demo: agent %s not made ready: %s", agent_id, exc)
                continue
            self.readied.append(agent_id)

    def _log_out_agents(self) -> None:
        # A later run without --demo has no phones behind these endpoints: calls must not
        # be offered to them. The human's agent1001 is theirs to log out.
        if self.server.acd is None:
            return
        for agent_id in self.readied:
            with contextlib.suppress(AgentControlError):
                if self.server.acd.service.agents[agent_id].status in (
                    AgentStatus.READY,
                    AgentStatus.NOT_READY,
                    AgentStatus.WRAP_UP,
                ):
                    self.server.acd.service.logout(agent_id)

    async def aclose(self, grace: float = 3.0) -> None:
        """Stop making calls, stop every SIPp (SIGINT, SIGKILL after ``grace`` s)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:
                # The caller loop died earlier: say so, and still log the agents out and
                # stop every SIPp (a later run must not find them ready without phones).
                _log.exception("demo caller loop had failed")
            self._task = None
        self._log_out_agents()
        await _stop_all(self.processes, grace)
        self.phones.clear()
        self.callers.clear()


async def _stop_all(processes: Iterable[SippProcess], grace: float) -> None:
    """SIGINT (SIPp's Ctrl-C: it ends its calls and exits), SIGKILL after ``grace`` s."""
    running = [p for p in processes if p.process.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.process.send_signal(signal.SIGINT)

    async def finish(process: SippProcess) -> None:
        try:
            await asyncio.to_thread(process.process.wait, grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.process.kill()
            await asyncio.to_thread(process.process.wait)

    await asyncio.gather(*(finish(p) for p in running))


@contextlib.asynccontextmanager
async def running_demo(settings: Settings, server: Server) -> AsyncIterator[Demo]:
    """The demo for as long as the block runs (``serve(alongside=...)``), stopped after."""
    demo = await start_demo(settings, server)
    try:
        yield demo
    finally:
        await demo.aclose()


async def start_demo(
    settings: Settings, server: Server, options: DemoOptions | None = None
) -> Demo:
    """Start the demo next to a running ``server`` (see the module docstring).

    ``settings`` are the demo's (``demo_settings``: agents with static contacts); a missing
    ``sipp`` binary or a phone port in use is a ``CtiError`` naming the problem.
    """
    options = options or DemoOptions()
    require_sipp()
    log_dir = options.log_dir or state_root(settings) / "demo-sipp"
    log_dir.mkdir(parents=True, exist_ok=True)
    ports = phone_ports(settings)
    if not ports:
        raise CtiError("demo: no agent endpoint has a static contact for a demo phone")
    if server.accounts is not None:
        users = options.users_file or settings.config_dir / "users.yaml"
        created = await ensure_demo_users(server.accounts, users)
        _log.info("demo users from %s: %d created", users, created)
    demo = Demo(server, options, log_dir, random.Random(options.seed), _ports=ports)
    try:
        for endpoint in ports:
            demo.start_phone(endpoint)
        await asyncio.sleep(0.3)
        dead = [e for e, p in demo.phones.items() if p.process.poll() is not None]
        if dead:
            details = demo.phones[dead[0]].stop(timeout=0).describe()
            raise CtiError(f"demo phone {dead[0]} did not start (port in use?): {details}")
        await server.ami.wait_connected(options.connect_timeout)
        demo._ready_agents()
        demo._task = asyncio.get_running_loop().create_task(demo._run(), name="demo-callers")
    except BaseException:
        await demo.aclose()
        raise
    _log.info(
        "demo running: %d phones, callers to %s every %g-%g s; SIPp logs in %s",
        len(demo.phones),
        options.dnis,
        *options.caller_every,
        log_dir,
    )
    return demo
