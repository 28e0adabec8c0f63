"""The FastAGI route that runs IVR flows: ``agi://host:port/ivr`` in the dialplan.

One call: read who called what from the AGI environment, take the registry's current
configuration (the call keeps that version to the end), run the flow engine over the session,
and end. What the dialplan does next follows from how the handler ends:

- normal return (the flow hung up, queued, transferred, took a message, or the caller left):
  the handler hangs up a call still up (see ``_end_call`` for why it does not leave that to
  the dialplan), and the AGI server marks a call it finds live handled (``CTI_HANDLED=1``);
- ``IvrFlowFailed`` raised (a node failed with no error exit): the AGI server answers
  ``FAILURE`` and the dialplan's fallback queue takes the caller: never a dead line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable

from cti.agi import AgiSession
from cti.errors import AgiHangup, CtiError
from ivr.agi_control import AgiCallControl
from ivr.engine import FlowEngine
from ivr.ports import CallbackStore, CallInfo, CustomerDirectory, PromptResolver, QueueGateway
from ivr.registry import FlowRegistry

__all__ = ["IvrFlowFailed", "IvrHandler", "call_info"]

_log = logging.getLogger(__name__)


class IvrFlowFailed(CtiError):
    """A flow ended on an error it had no exit for; the dialplan fallback takes the call."""


def call_info(session: AgiSession) -> CallInfo:
    env = session.env
    # The dialplan passes the DNIS as the first argument (config/asterisk/extensions.conf);
    # agi_extension is the same unless the call was redirected into another extension.
    dnis = env.args[0] if env.args and env.args[0] else env.extension
    return CallInfo(
        ani=env.callerid if env.callerid not in ("", "unknown") else "",
        dnis=dnis,
        channel=env.channel,
        uniqueid=env.uniqueid,
        caller_name=env.calleridname if env.calleridname not in ("", "unknown") else "",
    )


class IvrHandler:
    def __init__(
        self,
        registry: FlowRegistry,
        *,
        prompts: PromptResolver,
        customers: CustomerDirectory,
        queues: QueueGateway,
        callbacks: CallbackStore,
        clock: Callable[[], float],
        publish: Callable[[object], None],
    ) -> None:
        self._registry = registry
        self._prompts = prompts
        self._customers = customers
        self._queues = queues
        self._callbacks = callbacks
        self._clock = clock
        self._publish = publish

    async def __call__(self, session: AgiSession) -> None:
        engine = FlowEngine(
            self._registry.current,
            prompts=self._prompts,
            customers=self._customers,
            queues=self._queues,
            callbacks=self._callbacks,
            clock=self._clock,
            publish=self._publish,
        )
        call = call_info(session)
        # The AGI environment has no linkedid; the call model and the CRM log key calls by it.
        linkedid = await session.get_full_variable("${CHANNEL(linkedid)}")
        if linkedid:
            call = dataclasses.replace(call, linkedid=linkedid)
        path = await engine.run(AgiCallControl(session), call)
        _log.info(
            "IVR %s on %s ended: %s %s",
            path.flow,
            call.channel,
            path.outcome,
            path.detail,
            extra={"uniqueid": call.uniqueid, "outcome": path.outcome, "flow": path.flow},
        )
        if path.outcome == "error":
            raise IvrFlowFailed(f"flow {path.flow!r} failed: {path.detail}")
        if not path.handed_over:
            await _end_call(session)


async def _end_call(session: AgiSession) -> None:
    """Hang up a call whose flow is over (a queue or transfer that ended, a message left).

    Left to the dialplan, such a call could be served twice: it hangs up a handled call only
    while ``AGISTATUS`` is not ``FAILURE`` (config/asterisk/extensions.conf), and res_agi
    ends the AGI with ``FAILURE`` once any command of the call failed (res_agi.c,
    ``run_agi``), a missing prompt the flow recovered from included. The caller who has just
    talked to the operator would then be queued again in the fallback.
    """
    if session.hung_up or session.closed:
        return
    with contextlib.suppress(AgiHangup):  # gone meanwhile: nothing left to end
        await session.hangup()
