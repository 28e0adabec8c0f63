"""The ACD's HTTP API (aiohttp): agent control, and what is waiting.

    GET  /acd/agents                        every agent: state, reason, since, phone, queues
    GET  /acd/agents/{id}
    POST /acd/agents/{id}/login             {"endpoint": "PJSIP/agent1001"} (optional)
    POST /acd/agents/{id}/ready
    POST /acd/agents/{id}/not-ready         {"reason": "break"}
    POST /acd/agents/{id}/logout
    POST /acd/agents/{id}/end-wrap-up
    GET  /acd/queues                        live figures of every queue (acd.figures)
    GET  /acd/calls                         waiting calls and callbacks, in the order served
    GET  /acd/callbacks/failed              callbacks given up on

Errors are JSON ``{"error": "..."}`` with 404 (no such agent), 409 (not allowed in the agent's
state, e.g. not ready while on a call), 422 (unknown reason, bad phone, bad JSON). Like the
admin endpoints, these listen where ``http.host`` says (loopback by default); the console issue
adds accounts and permissions in front of them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

from aiohttp import web

from acd.service import AcdCall, AcdService, AgentControlError, AgentRuntime

__all__ = ["ACD_KEY", "AGENT_ACTIONS", "add_acd_routes", "queue_figures", "read_json_object"]

ACD_KEY = web.AppKey("acd", AcdService)
_MAX_BODY = 4096


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body ({} when empty); ``AgentControlError`` 413/422."""
    if not request.can_read_body:
        return {}
    raw = await request.content.read(_MAX_BODY + 1)
    if len(raw) > _MAX_BODY:
        raise AgentControlError("request body too large", 413)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise AgentControlError(f"body is not JSON: {exc}", 422) from exc
    if not isinstance(data, dict):
        raise AgentControlError("body must be a JSON object", 422)
    return data


def _text(data: dict[str, Any], key: str, required: bool) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise AgentControlError(f"{key!r} is required", 422)
        return None
    if not isinstance(value, str):
        raise AgentControlError(f"{key!r} must be a string", 422)
    return value


def _call_view(call: AcdCall, position: int) -> dict[str, object]:
    return {
        "position": position,
        "call_id": call.call_id,
        "kind": call.kind,
        "queue": call.queue,
        "priority": call.priority,
        "entered_at": call.entered_at,
        "state": call.state,
        "agent_id": call.agent_id,
        "channel": call.channel,
        "number": call.number,
        "attempts": call.attempts,
        "retry_at": call.retry_at or None,
    }


Action = Callable[[AcdService, str, dict[str, Any]], AgentRuntime]

#: agent control by URL verb: what the ACD API and the console's API both offer
AGENT_ACTIONS: Mapping[str, Action] = MappingProxyType(
    {
        "login": lambda s, a, d: s.login(a, _text(d, "endpoint", False)),
        "ready": lambda s, a, d: s.ready(a),
        "not-ready": lambda s, a, d: s.not_ready(a, _text(d, "reason", True) or ""),
        "logout": lambda s, a, d: s.logout(a),
        "end-wrap-up": lambda s, a, d: s.end_wrap_up(a),
    }
)


def queue_figures(service: AcdService) -> list[dict[str, Any]]:
    """Every queue's live figures, JSON-ready."""
    return [dataclasses.asdict(stats) for stats in service.figures.all_stats(service.clock())]


def _agent_action(action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        service = request.app[ACD_KEY]
        try:
            data = await read_json_object(request)
            agent = action(service, request.match_info["agent_id"], data)
        except AgentControlError as exc:
            return _error(str(exc), exc.status)
        return web.json_response(agent.view())

    return handler


async def _agents(request: web.Request) -> web.Response:
    service = request.app[ACD_KEY]
    return web.json_response([agent.view() for agent in service.agents.values()])


async def _agent(request: web.Request) -> web.Response:
    agent = request.app[ACD_KEY].agents.get(request.match_info["agent_id"])
    if agent is None:
        return _error("no such agent", 404)
    return web.json_response(agent.view())


async def _queues(request: web.Request) -> web.Response:
    return web.json_response(queue_figures(request.app[ACD_KEY]))


async def _calls(request: web.Request) -> web.Response:
    service = request.app[ACD_KEY]
    waiting = service.waiting()
    busy = [c for c in service.calls.values() if c.state != "waiting"]
    return web.json_response(
        [_call_view(call, n) for n, call in enumerate(waiting, 1)]
        + [_call_view(call, 0) for call in busy]
    )


async def _failed(request: web.Request) -> web.Response:
    service = request.app[ACD_KEY]
    return web.json_response([dataclasses.asdict(r) for r in service.failed_callbacks()])


def add_acd_routes(app: web.Application, service: AcdService) -> None:
    app[ACD_KEY] = service
    router = app.router
    router.add_get("/acd/agents", _agents)
    router.add_get("/acd/agents/{agent_id}", _agent)
    for verb, action in AGENT_ACTIONS.items():
        router.add_post(f"/acd/agents/{{agent_id}}/{verb}", _agent_action(action))
    router.add_get("/acd/queues", _queues)
    router.add_get("/acd/calls", _calls)
    router.add_get("/acd/callbacks/failed", _failed)
