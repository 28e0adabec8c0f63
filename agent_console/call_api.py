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

All answer 202 ``{"ok": true}`` (dial and spy add ``call_id``: the new channel's Uniqueid);
errors are ``{"error"}`` with 404/409/422/503 from ``CallControlError``. An agent acts only
on their own current call: the agent is the session user's ``agent_id``, never one taken
from the request. Spy is audited as ``SupervisorAction`` (who listened to whom, how).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from acd.api import read_json_object
from acd.service import AgentControlError
from agent_console.auth import require
from agent_console.calls import CallControl, CallControlError
from cti.contracts.console import SupervisorAction

__all__ = ["CALLS_KEY", "add_call_routes"]

CALLS_KEY = web.AppKey("console_calls", CallControl)
_PUBLISH_KEY: web.AppKey[Callable[[object], None]] = web.AppKey("console_calls_publish")
_PHONES_KEY: web.AppKey[Callable[[str], str | None]] = web.AppKey("console_supervisor_phone")
_MAX_REF = 64

_Handler = Callable[[web.Request], Awaitable[web.Response]]


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _accepted(**extra: object) -> web.Response:
    return web.json_response({"ok": True, **extra}, status=202)


def _own_agent(request: web.Request) -> str:
    user = require(request, "agent").user
    if not user.agent_id:
        raise web.HTTPForbidden(
            text=json.dumps({"error": "this account does not work as an agent"}),
            content_type="application/json",
        )
    return user.agent_id


def _guarded(
    run: Callable[[web.Request, str, dict[str, Any]], Awaitable[web.Response]],
) -> _Handler:
    """Log-in and agent checks first (401/403), then the body, then ``CallControlError``."""

    async def handler(request: web.Request) -> web.Response:
        agent_id = _own_agent(request)
        try:
            data = await read_json_object(request)
            return await run(request, agent_id, data)
        except AgentControlError as exc:  # CallControlError included
            return _error(str(exc), exc.status)

    return handler


def _simple(name: str) -> _Handler:
    async def run(request: web.Request, agent_id: str, data: dict[str, Any]) -> web.Response:
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

    return _guarded(run)


async def _transfer(request: web.Request, agent_id: str, data: dict[str, Any]) -> web.Response:
    to = data.get("to")
    if not isinstance(to, dict):
        raise CallControlError('"to" must be {"kind", "target"}', 422)
    await request.app[CALLS_KEY].transfer(
        agent_id, request.match_info["call_id"], data.get("mode"), to.get("kind"), to.get("target")
    )
    return _accepted()


async def _dial(request: web.Request, agent_id: str, data: dict[str, Any]) -> web.Response:
    ref = data.get("customer_ref", "")
    if not isinstance(ref, str) or len(ref) > _MAX_REF:
        raise CallControlError(f'"customer_ref" must be a string of at most {_MAX_REF}', 422)
    call_id = await request.app[CALLS_KEY].dial(agent_id, data.get("number"), ref)
    return _accepted(call_id=call_id)


async def _spy(request: web.Request) -> web.Response:
    user = require(request, "supervisor").user
    agent_id = request.match_info["agent_id"]
    try:
        data = await read_json_object(request)
        mode = data.get("mode", "listen")
        endpoint = data.get("endpoint") or request.app[_PHONES_KEY](user.username)
        if endpoint is None:
            raise CallControlError("no phone: give an endpoint or configure one", 422)
        call_id = await request.app[CALLS_KEY].spy(endpoint, agent_id, mode)
    except AgentControlError as exc:
        return _error(str(exc), exc.status)
    request.app[_PUBLISH_KEY](
        SupervisorAction(user.username, user.role, str(mode), agent_id, str(endpoint), time.time())
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
    router.add_post("/api/calls/{call_id}/transfer", _guarded(_transfer))
    router.add_post("/api/calls/{call_id}/transfer/complete", _simple("complete"))
    router.add_post("/api/calls/{call_id}/transfer/cancel", _simple("cancel"))
    router.add_post("/api/dial", _guarded(_dial))
    router.add_post("/api/agents/{agent_id}/spy", _spy)
