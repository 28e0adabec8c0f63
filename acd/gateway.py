"""Where the IVR meets the ACD, and the waiting caller's periodic FastAGI visit.

- ``AcdQueueGateway`` is the IVR's ``QueueGateway``: the ``queue`` node's call is handed to the
  ACD. The screen-pop data and the call's waiting state (``CTI_ACD``: queue, time it entered,
  priority, skills, caller number) go on the caller's channel, the channel moves to
  ``cti-acd-wait`` (``EXEC Goto``: the dialplan resumes there when the FastAGI session ends), and
  the flow ends ``queued`` without hanging up. From then on the caller's place is on the
  channel, so a restart of the server loses nothing.
- ``AcdCallbacks`` is the IVR's ``CallbackStore``: a callback request becomes a callback in the
  ACD (a queue is required: the request's, else the configured default).
- ``WaitTick`` is the FastAGI route ``acd-wait`` that the wait loop visits every
  ``announce.every`` seconds: it proves the server alive (``CTI_ACD_ALIVE=1``, which the
  dialplan turns into its heartbeat), adopts a call it does not know from the channel's
  ``CTI_ACD`` (a restart that happened between two reconciliations), announces the caller's
  position and estimated wait, and, when the estimate is over the queue's
  ``callback_offer_after``, offers a callback that keeps the caller's place.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from acd.config import AcdConfig
from acd.service import (
    WAIT_CONTEXT,
    AcdCall,
    AcdError,
    AcdService,
    decode_waiting,
    encode_waiting,
)
from cti.agi import AgiSession
from cti.errors import AgiHangup, CtiError
from ivr.model import Prompt
from ivr.ports import (
    CallbackRequest,
    CallbackStore,
    CallControl,
    PromptResolver,
    QueueFigures,
    QueueGateway,
    QueueOutcome,
    QueueRequest,
)
from ivr.services import pop_variables

__all__ = ["AcdCallbacks", "AcdQueueGateway", "WaitTick"]

_log = logging.getLogger(__name__)

_OFFER_TEXT = (
    "To keep your place in line and have us call you back instead, press 1. "
    "To keep holding, stay on the line."
)
_CONFIRM_TEXT = "Thank you. You keep your place, and an agent will call you back. Goodbye."


class AcdQueueGateway(QueueGateway):
    def __init__(
        self, service: AcdService, *, clock: Callable[[], float], max_value: int = 256
    ) -> None:
        self._service = service
        self._clock = clock
        self._max_value = max_value

    def figures(self, queue: str) -> QueueFigures:
        if queue not in self._service.config.queues:
            return QueueFigures(agents_available=0, estimated_wait=None)
        stats = self._service.figures.stats(queue, self._clock())
        return QueueFigures(
            agents_available=stats.agents.get("ready", 0), estimated_wait=stats.estimated_wait
        )

    async def enqueue(self, request: QueueRequest, control: CallControl) -> QueueOutcome:
        config = self._service.config.queues.get(request.queue)
        if config is None:
            return QueueOutcome("unavailable", f"no ACD queue {request.queue!r}")
        call = request.call
        if not call.uniqueid or not call.channel:
            return QueueOutcome("unavailable", "the call has no channel to queue")
        try:
            variables = pop_variables(request.data, max_value=self._max_value)
            for name, value in variables.items():
                # "__": inherited by the agent's channel that Dial creates, so a consumer on
                # either side reads the screen-pop (main/channel.c, inherited variables).
                await control.set_variable(f"__{name}", value)
            keys = ",".join(name.removeprefix("CTI_POP_") for name in variables)
            await control.set_variable("__CTI_POPS", keys)
            # Milliseconds: what the channel variable keeps, so a rebuilt place is equal.
            entered = round(self._clock(), 3)
            waiting = AcdCall(
                call.uniqueid,
                request.queue,
                entered,
                request.priority,
                dict(request.skills),
                number=call.ani,
            )
            for name, value in waiting_variables(self._service.config, waiting).items():
                await control.set_variable(name, value)
            await control.exec("Goto", WAIT_CONTEXT, "s", "1")
        except AgiHangup as exc:
            return QueueOutcome("abandoned", f"caller hung up before queueing ({exc})")
        try:
            self._service.enqueue(
                call.uniqueid,
                call.channel,
                request.queue,
                priority=request.priority,
                skills=request.skills,
                entered_at=entered,
                ani=call.ani,
            )
        except AcdError as exc:
            return QueueOutcome("unavailable", str(exc))
        return QueueOutcome("queued", request.queue)


def waiting_variables(config: AcdConfig, waiting: AcdCall) -> dict[str, str]:
    """The channel variables that make a caller wait in ``waiting.queue`` (the dialplan's
    [cti-acd-wait] reads them), in the order they are set: the place itself, the heartbeat
    period, when the dialplan gives up on a silent server, the music."""
    queue = config.queues[waiting.queue]
    return {
        "CTI_ACD": encode_waiting(waiting),
        "CTI_ACD_TICK": str(max(1, round(queue.announce.every))),
        "CTI_ACD_FALLBACK_AFTER": str(max(1, round(config.fallback_after))),
        "CTI_ACD_MOH": queue.music_class,
    }


class AcdCallbacks(CallbackStore):
    def __init__(self, service: AcdService, *, default_queue: str | None = None) -> None:
        self._service = service
        self._default = default_queue

    async def add(self, request: CallbackRequest) -> None:
        queue = request.queue or self._default
        if queue is None:
            raise CtiError("callback request without a queue, and no default queue")
        data = pop_variables(request.data)
        self._service.request_callback(request.number, queue, data=data)


class WaitTick:
    """The ``acd-wait`` FastAGI route (see the module docstring)."""

    def __init__(self, service: AcdService, *, prompts: PromptResolver | None = None) -> None:
        self._service = service
        self._prompts = prompts
        self.visits = 0
        self.adopted = 0

    async def __call__(self, session: AgiSession) -> None:
        self.visits += 1
        uniqueid = session.env.uniqueid
        service = self._service
        call = service.calls.get(uniqueid)
        if call is None:
            state = decode_waiting(await session.get_variable("CTI_ACD"))
            if state is None or state.queue not in service.config.queues:
                _log.warning("ACD: %s waits with no usable CTI_ACD", session.env.channel)
                return  # no heartbeat: the dialplan's fallback takes the caller
            call = service.enqueue(
                uniqueid,
                session.env.channel,
                state.queue,
                priority=state.priority,
                skills=state.skills,
                entered_at=state.entered_at,
                ani=state.ani,
                restored=True,
            )
            self.adopted += 1
        await session.set_variable("CTI_ACD_ALIVE", "1")
        if call.state != "waiting":
            return
        config = service.config.queues[call.queue]
        place = service.position(uniqueid)
        if place is None:
            return
        position, ewt = place
        announce = config.announce
        if announce.position:
            if position == 1:
                await session.stream_file("queue-youarenext")
            else:
                await session.stream_file("queue-thereare")
                await session.say_number(position - 1)
                await session.stream_file("queue-callswaiting")
        if announce.estimated_wait and ewt is not None and ewt >= 60:
            await session.stream_file("queue-holdtime")
            await session.say_number(math.ceil(ewt / 60))
            await session.stream_file("queue-minutes")
        threshold = config.callback_offer_after
        if (
            threshold is not None
            and ewt is not None
            and ewt > threshold
            and call.number
            and self._prompts is not None
        ):
            await self._offer_callback(session, uniqueid)

    async def _offer_callback(self, session: AgiSession, uniqueid: str) -> None:
        assert self._prompts is not None
        offer = await self._prompts.resolve(Prompt(tts=_OFFER_TEXT), _OFFER_TEXT)
        key = await session.stream_file(offer, "1")
        if key is None:
            key = await session.wait_for_digit(3000)
        if key != "1":
            return
        callback = self._service.convert_to_callback(uniqueid)
        if callback is None:
            return
        confirm = await self._prompts.resolve(Prompt(tts=_CONFIRM_TEXT), _CONFIRM_TEXT)
        try:
            await session.stream_file(confirm)
            await session.hangup()
        except AgiHangup:
            pass
