"""The ACD's Asterisk side: actions that carry out its decisions, and AMI events fed back.

The dialplan the ACD relies on (config/asterisk/extensions.conf, contexts ``cti-acd-*``):

- ``cti-acd-wait``: the caller hears music on hold; every ``CTI_ACD_TICK`` seconds a short
  FastAGI visit (route ``acd-wait``, ``acd.gateway.WaitTick``) plays the announcements and sets
  ``CTI_ACD_ALIVE``; when no visit has succeeded for ``CTI_ACD_FALLBACK_AFTER`` seconds (the
  server is down) the dialplan sends the caller to ``cti-fallback`` by itself.
- ``cti-acd-deliver``: ``Dial(<agent endpoint>, <ring timeout>, m)``; the caller keeps the
  music while the phone rings, Dial bridges on answer, and a phone that does not answer (or is
  busy, or unreachable) sends the caller back to ``cti-acd-wait`` with their place unchanged.
  A Dial that fails at once says nothing on AMI: ``dial_status`` asks (``dial_checks``).
- ``cti-acd-callback``: the agent's leg of a callback (AMI Originate); when the agent answers,
  the customer's number is dialed.
- ``cti-acd-overflow``: voicemail, a dialplan destination, or the goodbye after a callback.

How an offer reaches the phone: two ``Setvar`` (``CTI_ACD_OFFER`` = ``agent|endpoint|ring``,
and ``DIALSTATUS`` cleared) and one ``Redirect`` of the caller's channel, sent back to back on
the AMI session (Asterisk runs a session's actions in order, manager.c ``session_do``), so the
offer costs one round trip. A Redirect interrupts whatever the channel was doing (the music,
or an announcement in the FastAGI visit) at once: no polling anywhere between "agent ready"
and "phone rings".

Events (``AcdFeed.on_event``): ``DialBegin`` names the agent's leg; ``DialState RINGING`` and,
for callback legs, ``Newstate`` say it rings; ``DialEnd`` gives the verdict (ANSWER, or
NOANSWER / BUSY / CHANUNAVAIL / CONGESTION, or CANCEL when the caller hung up);
``Hangup`` ends calls; ``Hold``/``Unhold`` time the agent's holds; a failed
``OriginateResponse`` is a callback the agent did not pick up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from acd.ports import AcdPbx, DeliveryError
from acd.runtime import CALLBACK_CONTEXT, DELIVER_CONTEXT, WAIT_CONTEXT, ChannelView
from acd.service import AcdService
from acd.waiting import decode_waiting
from cti.ami import AmiClient, Event
from cti.errors import AmiActionError, AmiError

__all__ = ["AcdFeed", "AsteriskPbx", "list_channels"]

_log = logging.getLogger(__name__)

OVERFLOW_CONTEXT = "cti-acd-overflow"
WAITING_VARIABLE = "CTI_ACD"
_ACD_CONTEXTS = frozenset({WAIT_CONTEXT, DELIVER_CONTEXT, CALLBACK_CONTEXT})
_CHANNEL_STATE_RINGING = "5"
_CHANNEL_STATE_UP = "6"


class AsteriskPbx(AcdPbx):
    def __init__(
        self,
        ami: AmiClient,
        *,
        callback_dial_context: str = "cti-originate",
        callback_ring: float = 30.0,
    ) -> None:
        self._ami = ami
        self._dial_context = callback_dial_context
        self._callback_ring = callback_ring

    async def _actions(self, *actions: tuple[str, dict[str, str]]) -> None:
        # Sent back to back, answered in order: one round trip for all of them.
        try:
            results = await asyncio.gather(
                *(self._ami.action(name, headers) for name, headers in actions),
                return_exceptions=True,
            )
        except AmiError as exc:  # pragma: no cover - gather returns exceptions instead
            raise DeliveryError(str(exc)) from exc
        for result in results:
            if isinstance(result, AmiError):
                raise DeliveryError(str(result)) from result
            if isinstance(result, BaseException):
                raise result

    async def deliver(
        self, channel: str, endpoint: str, ring_timeout: float, agent_id: str
    ) -> None:
        offer = f"{agent_id}|{endpoint}|{max(1, round(ring_timeout))}"
        await self._actions(
            ("Setvar", {"Channel": channel, "Variable": "CTI_ACD_OFFER", "Value": offer}),
            # Cleared so that ``dial_status`` tells this Dial's end, not an earlier offer's.
            ("Setvar", {"Channel": channel, "Variable": "DIALSTATUS", "Value": ""}),
            (
                "Redirect",
                {"Channel": channel, "Context": DELIVER_CONTEXT, "Exten": "s", "Priority": "1"},
            ),
        )

    async def originate_callback(
        self,
        call_id: str,
        endpoint: str,
        agent_id: str,
        number: str,
        ring_timeout: float,
        variables: Mapping[str, str],
    ) -> str:
        values = {
            **{f"__{key}": value for key, value in variables.items()},
            "CTI_ACD_CALLBACK": call_id,
            "CTI_ACD_AGENT": agent_id,
            "CTI_CB_NUMBER": number,
            "CTI_CB_CONTEXT": self._dial_context,
            "CTI_CB_RING": str(max(1, round(self._callback_ring))),
        }
        try:
            result = await self._ami.originate(
                endpoint,
                context=CALLBACK_CONTEXT,
                exten="s",
                caller_id=f'"Callback" <{number}>',
                variables=values,
                timeout=ring_timeout,
            )
        except AmiError as exc:
            raise DeliveryError(str(exc)) from exc
        return result.channel_id

    async def overflow(self, channel: str, kind: str, target: str) -> None:
        await self._actions(
            # No longer waiting: a reconciliation running before the Redirect lands must not
            # adopt the caller again (the place stays readable in CTI_ACD_LEFT).
            ("Setvar", {"Channel": channel, "Variable": "CTI_ACD_LEFT", "Value": kind}),
            ("Setvar", {"Channel": channel, "Variable": WAITING_VARIABLE, "Value": ""}),
            (
                "Setvar",
                {"Channel": channel, "Variable": "CTI_ACD_OVERFLOW_TARGET", "Value": target},
            ),
            (
                "Redirect",
                {"Channel": channel, "Context": OVERFLOW_CONTEXT, "Exten": kind, "Priority": "1"},
            ),
        )

    async def update_waiting(self, channel: str, state: str) -> None:
        await self._actions(
            ("Setvar", {"Channel": channel, "Variable": WAITING_VARIABLE, "Value": state})
        )

    # A Dial whose every channel request fails at once (no such endpoint, no RTP port free,
    # "Everyone is busy/congested") publishes no DialBegin and no DialEnd (app_dial.c creates
    # the dial's stasis messages only for a channel it could request and call): the caller is
    # back in cti-acd-wait with DIALSTATUS set and nothing said. So until DialBegin names the
    # agent's leg, the ACD asks. Normally DialBegin arrives within milliseconds and no
    # question is sent.
    dial_checks: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)

    async def dial_status(self, channel: str) -> str:
        try:
            result = await self._ami.action(
                "Getvar", {"Channel": channel, "Variable": "DIALSTATUS"}
            )
        except AmiError as exc:
            raise DeliveryError(str(exc)) from exc
        return (result.response.get("Value") or "").upper()


class AcdFeed:
    """AMI events -> ``AcdService``; rebuild and periodic reconciliation from channels."""

    def __init__(self, service: AcdService, ami: AmiClient) -> None:
        self._service = service
        self._ami = ami
        self.reconciliations = 0

    def on_event(self, event: Event) -> None:
        name = event.name
        service = self._service
        if name == "Hangup":
            service.hangup(event.get("Uniqueid") or "")
        elif name == "DialBegin":
            service.dial_began(event.get("Uniqueid") or "", event.get("DestUniqueid") or "")
        elif name == "DialState":
            if (event.get("DialStatus") or "").upper() == "RINGING":
                service.ringing(event.get("DestUniqueid") or "")
        elif name == "DialEnd":
            self._dial_end(event)
        elif name == "Newstate":
            state = event.get("ChannelState")
            uniqueid = event.get("Uniqueid") or ""
            if (event.get("Context") or "") == CALLBACK_CONTEXT or service.is_agent_leg(uniqueid):
                if state == _CHANNEL_STATE_RINGING:
                    service.ringing(uniqueid)
                elif state == _CHANNEL_STATE_UP:
                    service.answered(uniqueid)
        elif name in ("Hold", "Unhold"):
            service.hold(event.get("Uniqueid") or "", name == "Hold")
        elif name == "OriginateResponse" and (event.get("Response") or "").lower() == "failure":
            service.offer_failed(event.get("Uniqueid") or "", "NOANSWER")

    def _dial_end(self, event: Event) -> None:
        service = self._service
        uniqueid = event.get("Uniqueid") or ""
        status = (event.get("DialStatus") or "").upper()
        call = service.calls.get(uniqueid)
        if call is not None and call.kind == "voice":
            if status == "ANSWER":
                service.answered(uniqueid)
            else:
                service.offer_failed(uniqueid, status or "UNKNOWN")
            return
        # The agent leg of a callback dialing the customer.
        service.callback_dialed(uniqueid, status or "UNKNOWN")

    async def reconcile(self, client: AmiClient | None = None) -> None:
        """Compare with Asterisk's channels and repair (a resync hook, and periodic)."""
        ami = client or self._ami
        # Events handled while the list is read are newer than it (acd.reconcile).
        taken_at = self._service.clock()
        views = await list_channels(ami)
        self.reconciliations += 1
        self._service.reconcile(views, taken_at=taken_at)

    async def run_periodic(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            if not self._ami.connected:
                continue
            try:
                await self.reconcile()
            except AmiError as exc:
                _log.warning("ACD reconciliation skipped: %s", exc)


async def list_channels(ami: AmiClient) -> list[ChannelView]:
    """Every channel, with the ACD's variables read for those in the ACD's contexts."""
    result = await ami.action("CoreShowChannels")
    views: list[ChannelView] = []
    for item in result.events:
        if item.name != "CoreShowChannel":
            continue
        uniqueid = item.get("Uniqueid") or ""
        channel = item.get("Channel") or ""
        context = item.get("Context") or ""
        view = ChannelView(
            uniqueid,
            channel,
            context,
            bridge_id=item.get("BridgeId") or "",
            state_desc=item.get("ChannelStateDesc") or "",
            application=item.get("Application") or "",
        )
        if context in _ACD_CONTEXTS:
            waiting, agent, callback = await asyncio.gather(
                _getvar(ami, channel, WAITING_VARIABLE),
                _getvar(ami, channel, "CTI_ACD_AGENT"),
                _getvar(ami, channel, "CTI_ACD_CALLBACK"),
            )
            view = ChannelView(
                uniqueid,
                channel,
                context,
                bridge_id=view.bridge_id,
                state_desc=view.state_desc,
                application=view.application,
                waiting=decode_waiting(waiting),
                agent_id=agent,
                callback_id=callback,
            )
        views.append(view)
    return views


async def _getvar(ami: AmiClient, channel: str, name: str) -> str:
    try:
        result = await ami.action("Getvar", {"Channel": channel, "Variable": name})
    except AmiActionError:
        return ""  # the channel went away meanwhile
    return result.response.get("Value") or ""
