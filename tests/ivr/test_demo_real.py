"""The demo IVR (config/ivr/demo.yaml) walked by real callers on the sandbox Asterisk.

Every call is a SIPp caller on the sandbox trunk pressing real RFC 2833 keys, served by the
real ``Server`` (its IVR handler on the FastAGI route the dialplan dials, TTS by espeak-ng,
customers from config/customers.yaml, app_queue as the ACD), with agent phones played by SIPp.
Each test checks the path the server published (``IvrFinished``: nodes in order, keys,
outcome, detail) and what Asterisk did: the queue member that took the call (AMI
``AgentConnect``), the screen-pop variables on the agent's own channel (AMI ``Getvar``), the
phone a transfer reached (``DialEnd``), the message in the voicemail spool, the AGI commands
a balance was said with, Asterisk's own log.

Why batches: the audio is real and long. The menu prompt alone lasts 14 s, and a key that is
not an option only counts once it has ended (options and the repeat key cut the prompt, other
keys are ignored while it plays: ivr/engine.py ``_node_menu``), so a call takes 10 to 60 s.
Each class therefore starts all its callers at once in a class-scoped fixture (one server, one
state of the agent phones) and each test awaits the call it is about. Concurrent calls are
told apart by caller name, which the path records (``CallInfo.caller_name``).

- ``TestWithAgentsOnline``: both agent phones answer. Sales, support (VIP), the operator, the
  retry limit, the account balance, a callback, repeat/invalid/timeout, a caller who hangs up
  mid-menu, and a prompt deleted from disk after the configuration was loaded (the flow's
  error path ends at the operator).
- ``TestWithNoAgentOnline``: no phone answers. Support times out to voicemail; a closed office
  (holiday today) goes to voicemail.

The two variants (deleted prompt, closed office) are copies of the demo's ``main`` flow with
that one change, loaded beside the unchanged demo and reached by their own DNIS, so they share
a batch with the demo's calls.

Key timing: SIPp sends each key after a pause (ms) from the previous one, the first from the
answer. The welcome lasts 2.5 s, so a menu option goes at 4.5 s, while the menu prompt plays;
a key that must count as invalid goes at 18.5 s, after the prompt (which ends near 16.7 s),
inside its 5 s wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import datetime as dt
import enum
import shutil
import subprocess
import uuid
import zoneinfo
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from support.pbx import PbxHandle
from support.server import (
    BusRecorder,
    IvrCall,
    LogRecorder,
    eventually,
    follow_ivr_call,
    real_server_settings,
    with_ivr_flows,
)
from support.sipp import SippProcess, start_caller, start_hangup_caller, start_phone

from app.server import Server
from app.settings import Settings
from cti.agi import SessionOutcome, SessionSummary
from cti.ami import Event
from cti.calls import CallEnded
from cti.errors import AmiError
from ivr.path import CallerPath
from ivr.services import MemoryCallbacks

pytestmark = [pytest.mark.pbx, pytest.mark.asyncio(loop_scope="module")]

REPO = Path(__file__).resolve().parents[2]
DEMO_FLOWS = REPO / "config" / "ivr"
DEMO_FILE = DEMO_FLOWS / "demo.yaml"
DNIS = "8000"
BROKEN_DNIS = "8002"
CLOSED_DNIS = "8001"
STRANGER = "5559000"  # a number config/customers.yaml does not know
VIP_ANI = "5552000"  # Charles Babbage, platinum
ACCOUNT = "100200"  # Ada Lovelace's account, balance 1234.56
NO_ACCOUNT = "999999"  # matches the input's pattern, belongs to nobody

OPTION_MS = 4500  # a menu key while the menu prompt plays (the welcome lasts 2.5 s)
AFTER_PROMPT_MS = 18_500  # a key after the 14 s menu prompt, inside its 5 s wait
#: from one key after the menu prompt to the next: "pbx-invalid" (4.4 s; only options cut
#: it short), the menu prompt again (14.2 s), then 1.4 s into the wait
NEXT_ROUND_MS = 20_000
DIGIT_GAP_MS = 400
WITHIN = 100.0  # deadline for any one call (the retry-limit call takes about 65 s)

#: the screen-pop variables read on the agent's channel once a queue has connected it
POP_VARIABLES = ("CTI_POP_REASON", "CTI_POP_TIER", "CTI_POP_CUSTOMER_NAME", "CTI_SKILLS")

#: the first steps of every unknown caller's path while the office is open
OPEN_START = [("welcome", "", ""), ("identify", "", "not_found"), ("hours", "", "case 1")]


# -- callers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """One SIPp caller: presses ``digits`` after ``pauses`` (ms, each after the previous key,
    the first after the answer), stays ``hold_ms`` after the last key, then hangs up unless
    Asterisk did. With ``hang_up_ms``: presses nothing and hangs up that long after the
    answer."""

    name: str
    ani: str = STRANGER
    dnis: str = DNIS
    digits: str = ""
    pauses: tuple[int, ...] = ()
    hold_ms: int = 60_000
    hang_up_ms: int | None = None

    def start(self, pbx: PbxHandle, log_dir: Path) -> SippProcess:
        if self.hang_up_ms is not None:
            return start_hangup_caller(
                pbx.sip_port,
                self.dnis,
                talk_ms=self.hang_up_ms,
                ani=self.ani,
                caller_name=self.name,
                timeout=WITHIN,
                log_dir=log_dir,
            )
        return start_caller(
            pbx.sip_port,
            self.dnis,
            digits=self.digits,
            pauses=self.pauses,
            first_key_ms=1,  # the first pause already counts from the answer
            hold_ms=self.hold_ms,
            ani=self.ani,
            caller_name=self.name,
            timeout=WITHIN,
            log_dir=log_dir,
        )


def account_caller(name: str, account: str, then: str = "", then_ms: int = 0) -> Caller:
    """A caller who presses 3 in the menu, then ``account`` and # while the account prompt
    plays, then ``then`` (``then_ms`` after the #)."""
    pauses = (OPTION_MS, 1500, *([DIGIT_GAP_MS] * len(account)), *([then_ms] if then else []))
    return Caller(name, digits=f"3{account}#{then}", pauses=pauses)


# -- a batch of calls -------------------------------------------------------------------------


@dataclass
class Batch:
    """A running server, its agent phones, and callers started together."""

    pbx: PbxHandle
    server: Server
    bus: BusRecorder
    #: raw AMI events (the PBX adapter's own feed, not the domain bus)
    feed: BusRecorder
    logs: LogRecorder
    log_start: int
    calls: dict[str, asyncio.Task[IvrCall]] = field(default_factory=dict)
    phones: dict[str, SippProcess] = field(default_factory=dict)
    #: caller uniqueid -> POP_VARIABLES as read on the agent's channel at AgentConnect
    pops: dict[str, dict[str, str | None]] = field(default_factory=dict)

    async def call(self, name: str) -> IvrCall:
        return await self.calls[name]

    def events(self, name: str, uniqueid: str) -> list[Event]:
        """AMI events ``name`` about the call that ``uniqueid`` started."""
        return [
            e
            for e in self.feed.of_type(Event)
            if e.name == name and uniqueid in (e.get("Uniqueid"), e.get("Linkedid"))
        ]

    async def session_of(self, path: CallerPath) -> SessionSummary:
        return await self.bus.wait_for(
            SessionSummary,
            lambda s: s.env is not None and s.env.uniqueid == path.call.uniqueid,
        )

    def agi_lines(self, channel: str) -> list[str]:
        """What the server sent (">> ...") and read ("<< ...") on ``channel``'s AGI."""
        prefix = f"{channel} AGI "
        messages = (r.getMessage() for r in self.logs.records if r.name == "cti.agi.session")
        return [m.removeprefix(prefix) for m in messages if m.startswith(prefix)]

    def asterisk_log(self) -> str:
        return self.pbx.log_since(self.log_start)

    async def nothing_left_behind(self) -> None:
        """Every call ended; no FastAGI session, model entry or Asterisk channel is left.
        (A call that failed its own test has ended too: only what it left is judged here.)"""
        await asyncio.gather(*self.calls.values(), return_exceptions=True)
        await eventually(
            "no FastAGI session left", lambda: self.server.agi.stats.sessions_active == 0, 15
        )
        await eventually("an empty call model", lambda: not self.server.calls.channels, 15)
        assert self.server.calls.calls() == []
        assert "0 active channels" in self.pbx.cli("core show channels count")

    def probe_screen_pop(self, event: Event) -> Coroutine[Any, Any, None] | None:
        # Called by the bus in the AMI reader: only hand back the work (the bus runs it as a
        # task). The agent's leg lives for the seconds the phone talks, enough for Getvar.
        return self._read_pop(event) if event.name == "AgentConnect" else None

    async def _read_pop(self, event: Event) -> None:
        agent, caller = event.get("DestChannel") or "", event.get("Uniqueid") or ""
        values: dict[str, str | None] = {}
        for variable in POP_VARIABLES:
            try:
                result = await self.server.ami.action(
                    "Getvar", {"Channel": agent, "Variable": variable}
                )
                values[variable] = result.response.get("Value")
            except AmiError as exc:
                values[variable] = f"<{exc}>"
        self.pops[caller] = values


@contextlib.asynccontextmanager
async def run_batch(
    pbx: PbxHandle,
    settings: Settings,
    callers: Sequence[Caller],
    log_dir: Path,
    *,
    phones: bool,
    loaded: Callable[[], None] = lambda: None,
) -> AsyncIterator[Batch]:
    """Agent phones (if ``phones``), the server on ``settings``, then every caller at once.
    ``loaded`` runs once the server has loaded its flows, before the first call."""
    pbx.hangup_all()
    with LogRecorder() as logs:
        server = Server(settings)
        loaded()
        bus = BusRecorder(server.bus)
        feed = BusRecorder(server.pbx_feed)
        batch = Batch(pbx, server, bus, feed, logs, log_start=pbx.log_position())
        unsubscribe = server.pbx_feed.subscribe(Event, batch.probe_screen_pop)
        try:
            if phones:
                for endpoint in ("agent1001", "agent1002"):
                    batch.phones[endpoint] = start_phone(
                        pbx.phone_port(endpoint), ring_ms=300, talk_ms=3000, log_dir=log_dir
                    )
            async with server:
                await server.ami.wait_connected(15)
                await eventually("the first resync", lambda: server.tracker.resyncs >= 1, 10)
                for caller in callers:
                    process = caller.start(pbx, log_dir)
                    batch.calls[caller.name] = asyncio.create_task(
                        follow_ivr_call(bus, process, caller.name, WITHIN), name=caller.name
                    )
                try:
                    yield batch
                finally:
                    for task in batch.calls.values():
                        task.cancel()
                    await asyncio.gather(*batch.calls.values(), return_exceptions=True)
        finally:
            for phone in batch.phones.values():
                phone.stop()
            unsubscribe()
            bus.close()
            feed.close()
            pbx.hangup_all()


# -- variants of the demo flow ----------------------------------------------------------------


def demo_variant(
    folder: Path,
    name: str,
    dnis: str,
    change: Callable[[dict[str, Any]], None],
    calendars: Mapping[str, object] | None = None,
) -> Path:
    """A flow file holding a copy of the demo's ``main`` flow named ``name``, with ``change``
    applied to its nodes and a route from ``dnis`` to it; loaded beside the demo."""
    demo = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))
    nodes = copy.deepcopy(demo["flows"]["main"]["nodes"])
    change(nodes)
    document: dict[str, object] = {
        "routes": [{"dnis": dnis, "flow": name}],
        "flows": {name: {**demo["flows"]["main"], "nodes": nodes}},
    }
    if calendars is not None:
        document["calendars"] = dict(calendars)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def sounds_dir(pbx: PbxHandle) -> Path:
    """The folder Asterisk plays ``sound:`` prompts from, on the host (inside the root it is
    reached through absolute symlinks, so ask the root itself)."""
    root = pbx.config.root_dir
    inner = subprocess.run(
        ["chroot", str(root), "readlink", "-f", "/usr/share/asterisk/sounds/en"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout.strip()
    return root / inner.lstrip("/")


def voicemail_from(pbx: PbxHandle, name: str) -> list[Path]:
    """Message files in mailbox 100@default left by the caller named ``name``."""
    layout = pbx.sandbox.layout
    inbox = layout.host(layout.inner("spool")) / "voicemail" / "default" / "100" / "INBOX"
    return sorted(
        info
        for info in inbox.glob("msg*.txt")
        if f'callerid="{name}"' in info.read_text(errors="replace")
    )


def remove_message(info: Path) -> None:
    """Delete a message (its .txt and recordings): the mailbox holds at most 100."""
    for part in info.parent.glob(f"{info.stem}.*"):
        part.unlink(missing_ok=True)


# -- reading paths ----------------------------------------------------------------------------


def steps(path: CallerPath) -> list[tuple[str, str, str]]:
    return [(step.node, step.keys, step.result) for step in path.steps]


def exchange(lines: Sequence[str]) -> list[tuple[str, str]]:
    """AGI commands paired with the reply read after each."""
    pairs = []
    for index, line in enumerate(lines):
        if line.startswith(">> "):
            reply = next((r for r in lines[index + 1 :] if r.startswith("<< ")), "")
            pairs.append((line.removeprefix(">> "), reply.removeprefix("<< ")))
    return pairs


def texts(value: object) -> Iterator[str]:
    """Every text inside ``value`` (dataclasses, mappings, sequences, enums), for leak checks.
    Floats are skipped: clock readings hold no secrets, and their digits would match by
    chance."""
    if isinstance(value, str):
        yield value
    elif value is None or isinstance(value, bool | float):
        return
    elif isinstance(value, int):
        yield str(value)
    elif isinstance(value, enum.Enum):
        yield str(value.value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from texts(getattr(value, item.name))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from texts(key)
            yield from texts(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from texts(item)
    else:
        yield repr(value)


# -- with both agent phones online ------------------------------------------------------------

ONLINE = (
    Caller("sales", digits="1", pauses=(OPTION_MS,)),
    Caller("operator", digits="0", pauses=(OPTION_MS + 500,)),
    Caller("vip", ani=VIP_ANI),
    Caller("retries", digits="789", pauses=(AFTER_PROMPT_MS, NEXT_ROUND_MS, NEXT_ROUND_MS)),
    account_caller("balance", ACCOUNT),
    account_caller("no-account", NO_ACCOUNT, then="4", then_ms=3500),
    Caller("callback", digits="4", pauses=(OPTION_MS,)),
    Caller("repeat", digits="***4", pauses=(OPTION_MS, 1500, 1500, 1500)),
    Caller("invalid", digits="74", pauses=(AFTER_PROMPT_MS, 2000)),
    # No key: the prompt ends near 16.7 s, the 5 s wait near 21.7 s, "please try again"
    # (1.3 s) and the menu again follow: "4" cuts that second prompt.
    Caller("timeout", digits="4", pauses=(24_500,)),
    Caller("hang-up", hang_up_ms=7000),  # mid-way through the menu prompt
    Caller("broken", dnis=BROKEN_DNIS),
)


@pytest_asyncio.fixture(scope="class", loop_scope="module")
async def online(pbx: PbxHandle, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Batch]:
    folder = tmp_path_factory.mktemp("online")
    # A real sound file, there when the flows are loaded (the loader checks every sound:
    # prompt against the root's sounds) and deleted before any call: what an admin deleting
    # a prompt from a running system does.
    gone = f"ctiserver-test-deleted-{uuid.uuid4().hex[:8]}"
    sounds = sounds_dir(pbx)
    sound = sounds / f"{gone}.gsm"
    shutil.copyfile(sounds / "beep.gsm", sound)

    def deleted(nodes: dict[str, Any]) -> None:
        nodes["welcome"]["prompts"] = [{"sound": gone}]

    broken = demo_variant(folder, "broken", BROKEN_DNIS, deleted)
    settings = with_ivr_flows(real_server_settings(pbx, "ivr.queue_timeout=30"), DEMO_FLOWS, broken)
    try:
        async with run_batch(
            pbx, settings, ONLINE, folder, phones=True, loaded=sound.unlink
        ) as batch:
            yield batch
    finally:
        sound.unlink(missing_ok=True)


class TestWithAgentsOnline:
    async def test_sales_is_answered_by_an_agent_phone(self, online: Batch) -> None:
        call = await online.call("sales")
        path = call.path
        assert steps(path) == [
            *OPEN_START,
            ("main_menu", "1", "option 1"),
            ("sales", "", "answered"),
        ]
        assert (path.flow, path.outcome, path.call.dnis) == ("main", "queued", DNIS)
        # app_queue's own word on who took it, for this very caller.
        [connect] = online.events("AgentConnect", path.call.uniqueid)
        assert connect.get("Queue") == "sales"
        member = connect.get("Interface") or ""
        assert member in ("PJSIP/agent1001", "PJSIP/agent1002"), member
        assert path.detail == f"sales: answered ({member})"
        # The phone played by SIPp answered it, talked, and hung up first.
        phone = online.phones[member.removeprefix("PJSIP/")]
        assert any(event.startswith("answered ") for event in phone.events())
        assert call.caller.hangup == "remote"
        pop = online.pops[path.call.uniqueid]
        assert (pop["CTI_POP_REASON"], pop["CTI_SKILLS"]) == ("sales", "sales:1"), pop

    async def test_a_vip_caller_skips_the_menu_to_the_priority_queue(self, online: Batch) -> None:
        call = await online.call("vip")
        path = call.path
        assert steps(path) == [
            ("welcome", "", ""),
            ("identify", "", "found"),
            ("vip_check", "", "case 1"),
            ("vip_welcome", "", ""),  # no "missing ${customer.first_name}"
            ("vip_queue", "", "answered"),
        ]
        assert path.customer is not None
        assert (path.customer["name"], path.customer["tier"]) == ("Charles Babbage", "platinum")
        assert path.outcome == "queued"
        assert path.detail.startswith("support: answered (PJSIP/agent100"), path.detail
        [connect] = online.events("AgentConnect", path.call.uniqueid)
        assert connect.get("Queue") == "support"
        # The screen-pop data went with the call: read on the agent's channel in Asterisk.
        assert online.pops[path.call.uniqueid] == {
            "CTI_POP_REASON": "vip",
            "CTI_POP_TIER": "platinum",
            "CTI_POP_CUSTOMER_NAME": "Charles Babbage",
            "CTI_SKILLS": "priority_care:1",
        }

    async def test_operator_transfer_rings_agent_1001(self, online: Batch) -> None:
        call = await online.call("operator")
        path = call.path
        assert steps(path) == [
            *OPEN_START,
            ("main_menu", "0", "option 0"),
            ("operator", "", "ANSWER"),
        ]
        assert (path.outcome, path.detail) == ("transferred", "1001 (Local/1001@from-agents)")
        dials = [
            (e.get("DestChannel") or "", e.get("DialStatus"))
            for e in online.events("DialEnd", path.call.uniqueid)
        ]
        assert any(
            dest.startswith("PJSIP/agent1001-") and status == "ANSWER" for dest, status in dials
        ), dials
        assert call.caller.hangup == "remote"

    async def test_three_failed_attempts_go_to_the_operator(self, online: Batch) -> None:
        path = (await online.call("retries")).path
        assert steps(path) == [
            *OPEN_START,
            ("main_menu", "789", "invalid, invalid, invalid, exceeded"),
            ("operator", "", "ANSWER"),
        ]
        assert path.outcome == "transferred"

    async def test_balance_by_account_number(self, online: Batch) -> None:
        call = await online.call("balance")
        path = call.path
        assert steps(path) == [
            *OPEN_START,
            ("main_menu", "3", "option 3"),
            ("account", "*" * 7, "accepted"),  # six digits and "#", masked
            ("find_account", "", "found"),
            ("balance", "", ""),
            ("bye", "", ""),
        ]
        assert (path.outcome, path.variables) == ("hangup", {"account": "******"})
        assert path.customer is not None
        assert (path.customer["name"], path.customer["account"]) == ("Ada Lovelace", "******")
        # 1234.56 said as an amount, each part played to the end by Asterisk.
        said = [
            (command, reply)
            for command, reply in exchange(online.agi_lines(path.call.channel))
            if "SAY NUMBER" in command or "dollars" in command or "vm-and" in command
        ]
        assert [command for command, _ in said] == [
            'b\'SAY NUMBER "1234" ""\\n\'',
            'b\'STREAM FILE "digits/dollars" "" "0"\\n\'',
            'b\'STREAM FILE "vm-and" "" "0"\\n\'',
            'b\'SAY NUMBER "56" ""\\n\'',
        ], said
        assert all(reply.startswith("200 result=0") for _, reply in said), said
        assert call.caller.hangup == "remote"

    async def test_an_unknown_account_goes_back_to_the_menu(self, online: Batch) -> None:
        path = (await online.call("no-account")).path
        assert steps(path) == [
            *OPEN_START,
            ("main_menu", "3", "option 3"),
            ("account", "*" * 7, "accepted"),
            ("find_account", "", "not_found"),
            ("unknown_account", "", ""),
            ("main_menu", "4", "option 4"),
            ("callback", "", "requested"),
            ("bye", "", ""),
        ]
        assert (path.variables, path.customer) == ({"account": "******"}, None)

    async def test_account_numbers_appear_nowhere(self, online: Batch) -> None:
        paths = [(await online.call(name)).path for name in ("balance", "no-account")]
        for path in paths:
            await online.session_of(path)  # its last log lines and events are in
            # The check can see what it checks: this call's AGI traffic was recorded.
            assert any("WAIT FOR DIGIT" in line for line in online.agi_lines(path.call.channel))
        for secret in (ACCOUNT, NO_ACCOUNT):
            for where, values in (
                ("a caller path", texts(paths)),
                ("an event on the bus", texts(online.bus.events)),
                ("an AMI event", texts(online.feed.events)),
                ("a log record", online.logs.texts()),
            ):
                leaks = [text for text in values if secret in text]
                assert not leaks, f"{secret} in {where}: {leaks[:3]}"

    async def test_callback_is_recorded_for_the_caller_number(self, online: Batch) -> None:
        path = (await online.call("callback")).path
        assert steps(path) == [
            *OPEN_START,
            ("main_menu", "4", "option 4"),
            ("callback", "", "requested"),
            ("bye", "", ""),
        ]
        assert path.outcome == "callback"
        mine = [
            r
            for r in _memory_callbacks(online.server).pending()
            if r.call.caller_name == "callback"
        ]
        assert [(r.number, r.queue, r.call.uniqueid) for r in mine] == [
            (STRANGER, "support", path.call.uniqueid)
        ]

    async def test_star_repeats_the_menu_without_using_up_retries(self, online: Batch) -> None:
        path = (await online.call("repeat")).path
        # Three repeats with three retries allowed, and still no "exceeded".
        assert steps(path)[3] == ("main_menu", "***4", "repeat, repeat, repeat, option 4")
        assert [step.node for step in path.steps[4:]] == ["callback", "bye"]

    async def test_an_invalid_key_is_told_and_the_next_key_counts(self, online: Batch) -> None:
        path = (await online.call("invalid")).path
        # "4" cut "that is not a valid extension" short and was taken as the next attempt.
        assert steps(path)[3] == ("main_menu", "74", "invalid, option 4")
        assert path.outcome == "callback"

    async def test_no_key_plays_the_menu_again(self, online: Batch) -> None:
        path = (await online.call("timeout")).path
        assert steps(path)[3] == ("main_menu", "4", "no_input, option 4")
        assert path.steps[3].duration > 19, "the 14 s prompt, the 5 s wait, then the replay"
        assert path.outcome == "callback"

    async def test_a_caller_hanging_up_mid_menu_leaves_nothing_behind(self, online: Batch) -> None:
        call = await online.call("hang-up")
        path = call.path
        assert call.caller.hangup == "caller"
        assert steps(path) == [*OPEN_START, ("main_menu", "", "caller_hangup")]
        assert (path.outcome, path.detail) == ("caller_hangup", "caller hung up in main/main_menu")
        session = await online.session_of(path)
        assert (session.outcome, session.hung_up) == (SessionOutcome.COMPLETED, True), session
        await online.bus.wait_for(CallEnded, lambda e: e.call.linkedid == path.call.uniqueid)
        assert online.server.calls.channel(path.call.uniqueid) is None

    async def test_a_prompt_missing_on_disk_takes_the_error_path(self, online: Batch) -> None:
        call = await online.call("broken")
        path = call.path
        assert path.flow == "broken"
        [(node, keys, result), *rest] = steps(path)
        assert (node, keys) == ("welcome", "")
        assert result.startswith("error: AgiError: STREAM FILE 'ctiserver-test-deleted-"), result
        assert rest == [("sorry", "", ""), ("operator", "", "ANSWER")]
        assert path.outcome == "transferred"
        assert "ctiserver-test-deleted-" in online.asterisk_log()
        # No detour through the dialplan's fallback queue.
        fallbacks = [e for e in online.feed.of_type(Event) if e.name == "UserEvent"]
        assert not [e for e in fallbacks if e.get("Channel") == path.call.channel], fallbacks

    async def test_nothing_is_left_behind(self, online: Batch) -> None:
        await online.nothing_left_behind()


# -- with no agent phone online ---------------------------------------------------------------

OFFLINE = (
    # "2", then the queue rings phones nobody answers until ivr.queue_timeout (5 s); the
    # voicemail greeting and beep take about 11 s, then "#" ends a 3 s message.
    Caller("no-agent", digits="2#", pauses=(OPTION_MS, 19_000)),
    # The welcome, "we are closed" (4 s), the greeting; hangs up 2 s into the message.
    Caller("closed", dnis=CLOSED_DNIS, hold_ms=20_000),
)


@pytest_asyncio.fixture(scope="class", loop_scope="module")
async def offline(pbx: PbxHandle, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Batch]:
    folder = tmp_path_factory.mktemp("offline")
    # Today is a holiday (yesterday and tomorrow too, so a run across midnight stays closed).
    today = dt.datetime.now(zoneinfo.ZoneInfo("Europe/Berlin")).date()
    holidays = [today + dt.timedelta(days=offset) for offset in (-1, 0, 1)]
    calendar = {"timezone": "Europe/Berlin", "weekly": {"mon-sun": ["00:00-24:00"]}}

    def closed_today(nodes: dict[str, Any]) -> None:
        nodes["hours"]["cases"][0]["when"] = {"open": "holiday"}

    closed = demo_variant(
        folder,
        "closed",
        CLOSED_DNIS,
        closed_today,
        calendars={"holiday": {**calendar, "holidays": holidays}},
    )
    settings = with_ivr_flows(real_server_settings(pbx, "ivr.queue_timeout=5"), DEMO_FLOWS, closed)
    async with run_batch(pbx, settings, OFFLINE, folder, phones=False) as batch:
        try:
            yield batch
        finally:
            for caller in OFFLINE:
                for message in voicemail_from(pbx, caller.name):
                    remove_message(message)


class TestWithNoAgentOnline:
    async def test_support_with_nobody_answering_goes_to_voicemail(self, offline: Batch) -> None:
        call = await offline.call("no-agent")
        path = call.path
        assert steps(path) == [
            *OPEN_START,
            ("main_menu", "2", "option 2"),
            ("support", "", "timeout"),
            ("voicemail", "", "SUCCESS"),
        ]
        assert (path.outcome, path.detail) == ("voicemail", "100@default")
        assert call.caller.hangup == "remote"
        [message] = voicemail_from(offline.pbx, "no-agent")
        assert f"<{STRANGER}>" in message.read_text()

    async def test_a_closed_office_goes_to_voicemail(self, offline: Batch) -> None:
        call = await offline.call("closed")
        path = call.path
        assert path.flow == "closed"
        assert steps(path) == [
            ("welcome", "", ""),
            ("identify", "", "not_found"),
            ("hours", "", "otherwise"),
            ("closed", "", ""),
            ("voicemail", "", "SUCCESS"),
        ]
        # The caller hung up after speaking: the message is kept, and that is the outcome.
        assert (path.outcome, call.caller.hangup) == ("voicemail", "caller")
        [message] = voicemail_from(offline.pbx, "closed")
        assert f"<{STRANGER}>" in message.read_text()

    async def test_nothing_is_left_behind(self, offline: Batch) -> None:
        await offline.nothing_left_behind()


def _memory_callbacks(server: Server) -> MemoryCallbacks:
    callbacks = server.ivr.callbacks
    assert isinstance(callbacks, MemoryCallbacks)  # the ACD is off in these tests
    return callbacks
