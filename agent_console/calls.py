"""Call control for the agent console: hold, resume, transfers, hang-up, click-to-dial, spy.

Every method acts on the agent's *current connected ACD call* (``AcdCall``: the caller's
Uniqueid is the call id, ``agent_leg`` the Uniqueid of the agent's channel) and refuses
anything else with a ``CallControlError`` that says why (``CallNotFound``: no such call or
agent, ``CallConflict``: not theirs or the wrong state, ``InvalidCallRequest``: bad input,
``PbxUnavailable``: Asterisk unreachable; ``agent_console.http`` maps them to statuses).
Channels are named by Uniqueid in every action: Asterisk looks channels up by name *or*
Uniqueid (main/channel.c ``ast_channel_get_by_name``), and a Uniqueid survives the masquerade
that a Bridge does when it pulls a channel out of the dialplan (main/channel.c swaps Uniqueids in
``channel_do_masquerade``), so the ACD's Hangup mapping keeps working.

How each action is carried out (contexts in config/asterisk/extensions.conf):

- **hold**: ``Redirect`` of the customer to ``cti-hold`` (music) with ``ExtraChannel`` = the
  agent's leg to ``cti-held`` (silence). Asterisk moves both legs of a bridge together
  (manager.c ``action_redirect``, dual redirect). Each leg loops while its peer exists
  (``CTI_HOLD_PEER``, ``CHANNEL_EXISTS``), so a hang-up of either ends the other and the ACD
  sees it. ``AcdService.hold`` counts the hold time.
- **resume**: AMI ``Bridge`` of the two legs. After that bridge each channel continues at the
  next priority of where it was (main/features.c ``action_bridge``): the peer check, which
  hangs it up once the other side has gone.
- **blind transfer**: the customer is redirected (number: to ``outbound_context``/number;
  agent: ``cti-xfer,agent`` dials their phone; queue: back to ``cti-acd-wait`` with a fresh
  ``CTI_ACD`` place, as acd/gateway.py queues a call) and the agent's leg to
  ``cti-xfer,done`` (hang-up). The ACD ends the agent's call (wrap-up) at once.
- **attended transfer**: the customer is held as above, then an ``Originate`` rings the target
  (a Local channel into ``outbound_context`` for a number, the agent's phone, or, for a queue,
  refused: a consult call to a queue has nobody to consult). When the target answers it runs
  ``cti-consult``: ``Bridge(<agent leg>)``. *complete*: AMI ``Bridge`` customer + target, then
  the agent's leg is hung up. *cancel*: the consult channel is hung up and the customer bridged
  back to the agent.
- **dial** (click-to-dial): ``Originate`` the agent's phone into ``outbound_context``/number;
  the agent goes not ready with reason ``outbound`` (when configured) so the ACD offers them
  nothing meanwhile.
- **spy**: ``Originate`` the supervisor's phone into ``ChanSpy(<agent endpoint>-,qE[w|B])``.

What was done is published as ``CallControlled`` (the interaction log counts transfers).
"""

from __future__ import annotations

import contextlib
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from acd.agent_state import AgentStatus
from acd.errors import AgentControlError
from acd.gateway import waiting_variables
from acd.service import (
    WAIT_CONTEXT,
    AcdCall,
    AcdService,
    AgentRuntime,
)
from cti.ami.protocol import ActionResult
from cti.contracts.console import CallControlled
from cti.errors import AmiActionError, AmiError, LocalProtocolError
from cti.phones import is_dialable, is_endpoint

__all__ = [
    "CONSULT_CONTEXT",
    "HELD_CONTEXT",
    "HOLD_CONTEXT",
    "XFER_CONTEXT",
    "AmiPort",
    "CallConflict",
    "CallControl",
    "CallControlError",
    "CallNotFound",
    "InvalidCallRequest",
    "PbxUnavailable",
    "SpyMode",
    "TransferKind",
    "TransferMode",
    "check_endpoint",
    "check_number",
]

HOLD_CONTEXT = "cti-hold"
HELD_CONTEXT = "cti-held"
XFER_CONTEXT = "cti-xfer"
CONSULT_CONTEXT = "cti-consult"
OUTBOUND_REASON = "outbound"

TransferMode = Literal["blind", "attended"]
TransferKind = Literal["agent", "queue", "number"]
SpyMode = Literal["listen", "whisper", "barge"]

# PJSIP/agent1001 and the like: nothing that could end a dialplan argument (comma, pipe,
# parentheses, quotes, ``$``, ``&``, spaces) nor an AMI header (CR/LF).
_BUSY = frozenset(
    {AgentStatus.RESERVED, AgentStatus.RINGING, AgentStatus.ON_CALL, AgentStatus.ON_HOLD}
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SPY_OPTIONS: Mapping[str, str] = {"listen": "qE", "whisper": "qEw", "barge": "qEB"}


class CallControlError(AgentControlError):
    """A call-control request refused; the subclass says why."""


class CallNotFound(CallControlError):
    """No such call, or no such agent."""


class CallConflict(CallControlError):
    """Not the agent's call, or not possible in the call's (or the agent's) present state;
    also Asterisk refusing the action (mostly: the channel has just gone)."""


class InvalidCallRequest(CallControlError):
    """The request itself is wrong: a bad number, mode, kind or target."""


class PbxUnavailable(CallControlError):
    """Asterisk is not reachable: the action was not carried out."""


class AmiPort(Protocol):
    """What call control needs of the manager client (``cti.ami.AmiClient`` fits)."""

    async def action(
        self, name: str, headers: Mapping[str, str | Sequence[str]] | None = None
    ) -> ActionResult: ...


@dataclass
class _Consult:
    channel_id: str
    kind: TransferKind
    target: str


def check_number(number: object) -> str:
    """A dialable number (``^\\+?[0-9*#]{1,32}$``) or ``InvalidCallRequest``."""
    if not is_dialable(number):
        raise InvalidCallRequest("a number is 1-32 of 0-9 * # with an optional leading +")
    assert isinstance(number, str)
    return number


def check_endpoint(endpoint: object) -> str:
    """A phone endpoint like ``PJSIP/super2001`` or ``InvalidCallRequest``."""
    if not is_endpoint(endpoint):
        raise InvalidCallRequest("an endpoint is like PJSIP/agent1001")
    assert isinstance(endpoint, str)
    return endpoint


class CallControl:
    def __init__(
        self,
        ami: AmiPort,
        service: AcdService,
        publish: Callable[[object], None],
        *,
        outbound_context: str = "sandbox-pstn",
        ring_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ami = ami
        self._service = service
        self._publish = publish
        self._outbound = outbound_context
        self._ring = max(1, round(ring_timeout))
        self._clock = clock
        self._consults: dict[str, _Consult] = {}

    def consult_channel(self, call_id: str) -> str | None:
        """The Uniqueid of the consult call of an attended transfer in progress, else None
        (the console shows the call as ``transferring`` meanwhile)."""
        consult = self._consults.get(call_id)
        return consult.channel_id if consult is not None else None

    # -- checks ------------------------------------------------------------------------------

    def _agent(self, agent_id: str) -> AgentRuntime:
        agent = self._service.agents.get(agent_id)
        if agent is None:
            raise CallNotFound(f"no agent {agent_id!r}")
        return agent

    def _call(self, agent_id: str, call_id: str) -> tuple[AgentRuntime, AcdCall]:
        # Consults of calls that ended meanwhile (the customer hung up) are forgotten here.
        for stale in [key for key in self._consults if key not in self._service.calls]:
            del self._consults[stale]
        agent = self._agent(agent_id)
        call = self._service.calls.get(call_id)
        if call is None:
            raise CallNotFound("no such call")
        if call.agent_id != agent_id or agent.call_id != call_id:
            raise CallConflict("this call is not the agent's current call")
        if call.state != "connected" or not call.agent_leg:
            raise CallConflict(f"the call is {call.state}, not connected")
        return agent, call

    def _voice(self, agent_id: str, call_id: str) -> tuple[AgentRuntime, AcdCall]:
        agent, call = self._call(agent_id, call_id)
        if call.kind != "voice":
            raise CallConflict("not possible on a callback call")
        return agent, call

    def _event(
        self,
        agent_id: str,
        call_id: str,
        action: str,
        mode: str = "",
        kind: str = "",
        target: str = "",
    ) -> None:
        self._publish(CallControlled(agent_id, call_id, action, mode, kind, target, self._clock()))

    async def _send(self, name: str, headers: Mapping[str, str | Sequence[str]]) -> ActionResult:
        try:
            return await self._ami.action(name, headers)
        except AmiActionError as exc:
            # Mostly "No such channel": the call ended meanwhile.
            raise CallConflict(f"Asterisk refused {name}: {exc.message}") from exc
        except LocalProtocolError as exc:
            raise InvalidCallRequest(f"cannot send {name}: {exc}") from exc
        except AmiError as exc:
            raise PbxUnavailable(f"Asterisk is not reachable: {exc}") from exc

    async def _setvar(self, channel: str, variable: str, value: str) -> None:
        await self._send("Setvar", {"Channel": channel, "Variable": variable, "Value": value})

    async def _park(self, agent: AgentRuntime, call: AcdCall) -> None:
        """Customer to music, agent to silence; each leg watches the other."""
        queue = self._service.config.queues.get(call.queue)
        music = queue.music_class if queue is not None else ""
        await self._setvar(call.call_id, "CTI_HOLD_PEER", call.agent_leg)
        await self._setvar(call.call_id, "CTI_HOLD_MOH", music)
        await self._setvar(call.agent_leg, "CTI_HOLD_PEER", call.call_id)
        await self._send(
            "Redirect",
            {
                "Channel": call.call_id,
                "Context": HOLD_CONTEXT,
                "Exten": "s",
                "Priority": "1",
                "ExtraChannel": call.agent_leg,
                "ExtraContext": HELD_CONTEXT,
                "ExtraExten": "s",
                "ExtraPriority": "1",
            },
        )
        self._service.hold(call.call_id, True)

    # -- the agent's own call ----------------------------------------------------------------

    async def hold(self, agent_id: str, call_id: str) -> None:
        agent, call = self._voice(agent_id, call_id)
        if agent.status is not AgentStatus.ON_CALL or call_id in self._consults:
            raise CallConflict("the call is already on hold")
        await self._park(agent, call)
        self._event(agent_id, call_id, "hold")

    async def resume(self, agent_id: str, call_id: str) -> None:
        agent, call = self._voice(agent_id, call_id)
        if agent.status is not AgentStatus.ON_HOLD:
            raise CallConflict("the call is not on hold")
        if call_id in self._consults:
            raise CallConflict("a transfer is in progress: complete or cancel it")
        await self._bridge(call.call_id, call.agent_leg)
        self._service.hold(call_id, False)
        self._event(agent_id, call_id, "resume")

    async def _bridge(self, first: str, second: str) -> None:
        await self._send("Bridge", {"Channel1": first, "Channel2": second, "Tone": "no"})

    async def hangup(self, agent_id: str, call_id: str) -> None:
        _, call = self._call(agent_id, call_id)
        consult = self._consults.pop(call_id, None)
        if consult is not None:
            await self._hangup_quietly(consult.channel_id)
        if call.kind == "voice":
            await self._send("Hangup", {"Channel": call.call_id, "Cause": "16"})
        # The agent's leg goes too (the customer's hang-up would end it a moment later).
        await self._hangup_quietly(call.agent_leg)
        self._event(agent_id, call_id, "hangup")

    async def _hangup_quietly(self, channel: str) -> None:
        # CallConflict: the channel is already gone, which is what we wanted.
        with contextlib.suppress(CallConflict):
            await self._send("Hangup", {"Channel": channel, "Cause": "16"})

    # -- transfers ---------------------------------------------------------------------------

    def _target(self, kind: object, target: object) -> tuple[TransferKind, str, str]:
        """(kind, target as given, what to dial: number or endpoint)."""
        if kind == "number":
            number = check_number(target)
            return "number", number, number
        if kind == "agent":
            if not isinstance(target, str) or target not in self._service.agents:
                raise InvalidCallRequest("no such agent to transfer to")
            other = self._service.agents[target]
            if other.status is AgentStatus.LOGGED_OUT:
                raise CallConflict(f"agent {target} is logged out")
            if other.call_id is not None or other.status in _BUSY:
                raise CallConflict(f"agent {target} is busy")
            return "agent", target, check_endpoint(other.endpoint or other.config.endpoint)
        if kind == "queue":
            if not isinstance(target, str) or target not in self._service.config.queues:
                raise InvalidCallRequest("no such queue to transfer to")
            return "queue", target, target
        raise InvalidCallRequest("transfer kind is agent, queue or number")

    async def transfer(
        self, agent_id: str, call_id: str, mode: object, kind: object, target: object
    ) -> None:
        if mode not in ("blind", "attended"):
            raise InvalidCallRequest("transfer mode is blind or attended")
        if kind == "agent" and target == agent_id:
            raise InvalidCallRequest("an agent cannot transfer a call to themselves")
        checked_kind, name, dial = self._target(kind, target)
        agent, call = self._voice(agent_id, call_id)
        if call_id in self._consults:
            raise CallConflict("a transfer is already in progress")
        if mode == "blind":
            await self._blind(call, checked_kind, name, dial)
        else:
            if checked_kind == "queue":
                raise InvalidCallRequest("an attended transfer goes to an agent or a number")
            await self._consult(agent, call, checked_kind, name, dial)
        self._event(agent_id, call_id, "transfer", str(mode), checked_kind, name)

    async def _blind(self, call: AcdCall, kind: TransferKind, name: str, dial: str) -> None:
        if kind == "number":
            context, exten = self._outbound, dial
        elif kind == "agent":
            await self._setvar(call.call_id, "CTI_XFER_TARGET", dial)
            await self._setvar(call.call_id, "CTI_XFER_RING", str(self._ring))
            context, exten = XFER_CONTEXT, "agent"
        else:
            entered = await self._set_waiting(call, name)
            context, exten = WAIT_CONTEXT, "s"
        await self._send(
            "Redirect",
            {
                "Channel": call.call_id,
                "Context": context,
                "Exten": exten,
                "Priority": "1",
                "ExtraChannel": call.agent_leg,
                "ExtraContext": XFER_CONTEXT,
                "ExtraExten": "done",
                "ExtraPriority": "1",
            },
        )
        # The agent's part ends now (wrap-up); the Hangup event that follows finds nothing.
        self._service.hangup(call.agent_leg)
        if kind == "queue":
            self._service.enqueue(
                call.call_id,
                call.channel,
                name,
                priority=call.priority,
                entered_at=entered,
                ani=call.number,
            )

    async def _set_waiting(self, call: AcdCall, queue: str) -> float:
        """The caller's place in ``queue`` on their channel, as the IVR's queue node sets it."""
        # Milliseconds, what the channel variable keeps (acd/gateway.py).
        entered = round(self._clock(), 3)
        waiting = AcdCall(
            call.call_id,
            queue,
            entered,
            call.priority,
            {},  # the queue's own requirements apply (its spec)
            number=call.number,
        )
        for name, value in waiting_variables(self._service.config, waiting).items():
            await self._setvar(call.call_id, name, value)
        return entered

    async def _consult(
        self, agent: AgentRuntime, call: AcdCall, kind: TransferKind, name: str, dial: str
    ) -> None:
        await self._park(agent, call)
        channel_id = str(uuid.uuid4())
        channel = f"Local/{dial}@{self._outbound}" if kind == "number" else dial
        try:
            await self._send(
                "Originate",
                {
                    "Channel": channel,
                    "Context": CONSULT_CONTEXT,
                    "Exten": "s",
                    "Priority": "1",
                    "Timeout": str(self._ring * 1000),
                    "CallerID": f"Transfer <{call.number}>" if call.number else "Transfer",
                    "Variable": [f"CTI_CONSULT_AGENT={call.agent_leg}"],
                    "ChannelId": channel_id,
                    "Async": "true",
                },
            )
        except CallControlError:
            # Nobody to consult: the customer is not left on hold without the agent knowing.
            await self._bridge(call.call_id, call.agent_leg)
            self._service.hold(call.call_id, False)
            raise
        self._consults[call.call_id] = _Consult(channel_id, kind, name)

    async def complete_transfer(self, agent_id: str, call_id: str) -> None:
        _, call = self._voice(agent_id, call_id)
        consult = self._consults.get(call_id)
        if consult is None:
            raise CallConflict("no attended transfer in progress")
        # The customer now watches the target, not the agent, while they talk.
        await self._setvar(call.call_id, "CTI_HOLD_PEER", consult.channel_id)
        await self._bridge(call.call_id, consult.channel_id)
        del self._consults[call_id]
        await self._hangup_quietly(call.agent_leg)
        self._service.hangup(call.agent_leg)
        self._event(
            agent_id, call_id, "transfer-complete", "attended", consult.kind, consult.target
        )

    async def cancel_transfer(self, agent_id: str, call_id: str) -> None:
        _, call = self._voice(agent_id, call_id)
        consult = self._consults.pop(call_id, None)
        if consult is None:
            raise CallConflict("no attended transfer in progress")
        # Back to the customer first (the Bridge moves the agent out of the consult bridge,
        # main/bridge.c ``ast_bridge_add_channel``), then the target is let go.
        await self._bridge(call.call_id, call.agent_leg)
        self._service.hold(call_id, False)
        await self._hangup_quietly(consult.channel_id)
        self._event(agent_id, call_id, "transfer-cancel", "attended", consult.kind, consult.target)

    # -- calls the agent or a supervisor starts ----------------------------------------------

    async def dial(self, agent_id: str, number: object, customer_ref: str = "") -> str:
        """Ring the agent's phone, then ``number``; the new channel's Uniqueid."""
        checked = check_number(number)
        agent = self._agent(agent_id)
        if agent.status not in (AgentStatus.READY, AgentStatus.NOT_READY):
            raise CallConflict(f"agent {agent_id} is {agent.status.value}")
        endpoint = check_endpoint(agent.endpoint or agent.config.endpoint)
        reasons = self._service.config.not_ready_reasons
        if agent.status is AgentStatus.READY:
            if OUTBOUND_REASON not in reasons:
                raise CallConflict("go not ready before dialing out")
            # No ACD offer while the agent is on the phone.
            self._service.not_ready(agent_id, OUTBOUND_REASON)
        channel_id = str(uuid.uuid4())
        variables = [f"CTI_DIAL_AGENT={agent_id}"]
        if customer_ref:
            variables.append(f"CTI_DIAL_CUSTOMER={urllib.parse.quote(customer_ref, safe='')}")
        await self._send(
            "Originate",
            {
                "Channel": endpoint,
                "Context": self._outbound,
                "Exten": checked,
                "Priority": "1",
                "Timeout": str(self._ring * 1000),
                "CallerID": f"Dial <{checked}>",
                "Variable": variables,
                "ChannelId": channel_id,
                "Async": "true",
            },
        )
        self._event(agent_id, channel_id, "dial", "", "number", checked)
        return channel_id

    async def spy(self, supervisor_endpoint: object, agent_id: str, mode: object) -> str:
        """Ring the supervisor's phone into ChanSpy on the agent's phone; the channel id."""
        endpoint = check_endpoint(supervisor_endpoint)
        if mode not in _SPY_OPTIONS:
            raise InvalidCallRequest("spy mode is listen, whisper or barge")
        agent = self._agent(agent_id)
        if agent.status not in (AgentStatus.ON_CALL, AgentStatus.ON_HOLD):
            raise CallConflict(f"agent {agent_id} is not on a call")
        spied = check_endpoint(agent.endpoint or agent.config.endpoint)
        if spied == endpoint:
            raise InvalidCallRequest("cannot spy from the agent's own phone")
        channel_id = str(uuid.uuid4())
        # "<endpoint>-": the agent's channels (PJSIP/agent1001-0000002a), not agent10010's.
        await self._send(
            "Originate",
            {
                "Channel": endpoint,
                "Application": "ChanSpy",
                "Data": f"{spied}-,{_SPY_OPTIONS[str(mode)]}",
                "Timeout": str(self._ring * 1000),
                "CallerID": f"Spy <{agent_id}>" if _NAME.fullmatch(agent_id) else "Spy",
                "ChannelId": channel_id,
                "Async": "true",
            },
        )
        self._event(agent_id, agent.call_id or "", "spy", str(mode), "", endpoint)
        return channel_id
