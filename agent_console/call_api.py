"""The console's call-control API (behind log-in, ``agent_console.auth``).

    POST /api/calls/{call_id}/hold
    POST /api/calls/{call_id}/resume
    POST /api/calls/{call_id}/hangup
    POST /api/calls/{call_id}/transfer            {"mode": "blind"|"attended",
                                                   "to": {"kind": "agent"|"queue"|"number",
                                                          "target": str}}
    POST /api/calls/{call_id}/transfer/complete
    POST /api/calls/{call_id}/transfer/cancel
    POST /api/dial                                {"number", "customer_ref"?}
    POST /api/agents/{agent_id}/spy               supervisor: {"mode": "listen"|"whisper"|
                                                   "barge", "endpoint"?: "PJSIP/x"}

All answer 202 ``{"ok": true}`` (dial and spy add ``call_id``: the new channel's Uniqueid).
Bodies are the models of ``agent_console.schemas``; refusals (``CallControlError`` and its
reasons) are raised and answered by ``agent_console.http``. An agent acts only
on their own current call: the agent is the session user's ``agent_id``, never one taken
from the request. Spy is audited as ``SupervisorAction`` (who listened to whom, how).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from acd.api import read_body
from acd.schemas import Body, NoBody
from agent_console.auth import require
from agent_console.calls import CallControl, InvalidCallRequest
from agent_console.schemas import DialBody, SpyBody, TransferBody
from cti.contracts.console import SupervisorAction
from cti.errors import Forbidden

__all__ = ["CALLS_KEY", "add_call_routes"]

CALLS_KEY = web.AppKey("console_calls", CallControl)
_PUBLISH_KEY: web.AppKey[Callable[[object], None]] = web.AppKey("console_calls_publish")
_PHONES_KEY: web.AppKey[Callable[[str], str | None]] = web.AppKey("console_supervisor_phone")

_Handler = Callable[[web.Request], Awaitable[web.Response]]
B = TypeVar("B", bound=Body)


def _accepted(**extra: object) -> web.Response:
    return web.json_response({"ok": True, **extra}, status=202)


def _own_agent(request: web.Request) -> str:
    user = require(request, "agent").user
    if not user.agent_id:
        raise Forbidden("this account does not work as an agent")
    return user.agent_id


def _guarded(
    model: type[B], run: Callable[[web.Request, str, B], Awaitable[web.Response]]
) -> _Handler:
    """Log-in and agent checks first (401/403), then the body, then the action."""

    async def handler(request: web.Request) -> web.Response:
        agent_id = _own_agent(request)
        return await run(request, agent_id, await read_body(request, model))

    return handler


def _simple(name: str) -> _Handler:
    async def run(request: web.Request, agent_id: str, body: NoBody) -> web.Response:
        control = request.app[CALLS_KEY]
        call_id = request.match_info["call_id"]
        method = {
            "hold": control.hold,
            "resume": control.resume,
            "hangup": control.hangup,
            "complete": control.complete_transfer,
            "cancel": control.cancel_transfer,
        }[name]
        await method(agent_id, call_id)
        return _accepted()

    return _guarded(NoBody, run)


async def _transfer(request: web.Request, agent_id: str, body: TransferBody) -> web.Response:
    await request.app[CALLS_KEY].transfer(
        agent_id, request.match_info["call_id"], body.mode, body.to.kind, body.to.target
    )
    return _accepted()


async def _dial(request: web.Request, agent_id: str, body: DialBody) -> web.Response:
    call_id = await request.app[CALLS_KEY].dial(agent_id, body.number, body.customer_ref)
    return _accepted(call_id=call_id)


async def _spy(request: web.Request) -> web.Response:
    user = require(request, "supervisor").user
    agent_id = request.match_info["agent_id"]
    body = await read_body(request, SpyBody)
    endpoint = body.endpoint or request.app[_PHONES_KEY](user.username)
    if endpoint is None:
        raise InvalidCallRequest("no phone: give an endpoint or configure one")
    call_id = await request.app[CALLS_KEY].spy(endpoint, agent_id, body.mode)
    request.app[_PUBLISH_KEY](
        SupervisorAction(user.username, user.role, body.mode, agent_id, endpoint, time.time())
    )
    return _accepted(call_id=call_id)


def _no_phone(username: str) -> str | None:
    return None


def add_call_routes(
    app: web.Application,
    control: CallControl,
    publish: Callable[[object], None],
    *,
    supervisor_phone: Callable[[str], str | None] = _no_phone,
) -> None:
    """``supervisor_phone(username)``: the supervisor's own phone (console.yaml
    ``supervisor_phones``) when the spy request names none."""
    app[CALLS_KEY] = control
    app[_PUBLISH_KEY] = publish
    app[_PHONES_KEY] = supervisor_phone
    router = app.router
    for name in ("hold", "resume", "hangup"):
        router.add_post(f"/api/calls/{{call_id}}/{name}", _simple(name))
    router.add_post("/api/calls/{call_id}/transfer", _guarded(TransferBody, _transfer))
    router.add_post("/api/calls/{call_id}/transfer/complete", _simple("complete"))
    router.add_post("/api/calls/{call_id}/transfer/cancel", _simple("cancel"))
    router.add_post("/api/dial", _guarded(DialBody, _dial))
    router.add_post("/api/agents/{agent_id}/spy", _spy)
