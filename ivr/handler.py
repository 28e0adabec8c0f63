"""The FastAGI route that runs IVR flows: ``agi://host:port/ivr`` in the dialplan.

One call: read who called what from the AGI environment, take the registry's current
configuration (the call keeps that version to the end), run the flow engine over the session,
and end. What the dialplan does next follows from how the handler ends:

- normal return (the flow hung up, queued, transferred, took a message, or the caller left):
  the AGI server marks the call handled (``CTI_HANDLED=1``) and the dialplan hangs up;
- ``IvrFlowFailed`` raised (a node failed with no error exit): the AGI server answers
  ``FAILURE`` and the dialplan's fallback queue takes the caller: never a dead line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cti.agi import AgiSession
from cti.errors import CtiError
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
