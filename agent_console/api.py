"""The console's agent and supervisor API, behind log-in (``agent_console.auth``).

    GET  /api/agents                       supervisor: every agent's state
    GET  /api/agents/{id}                  the agent themselves, or a supervisor
    POST /api/agents/{id}/login            {"endpoint"?}   the agent, or a supervisor
    POST /api/agents/{id}/ready
    POST /api/agents/{id}/not-ready        {"reason"}
    POST /api/agents/{id}/logout
    POST /api/agents/{id}/end-wrap-up
    GET  /api/queues                       supervisor: live figures of every queue

Permissions are checked here, on the server: an agent acts only as the ACD agent their account
works as; a supervisor (or admin) may act for anyone, and every such action on another agent
is audited: published on the bus as ``SupervisorAction`` (who, what, for whom, when), which the
interaction log keeps.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from acd.service import AcdService, AgentControlError, AgentRuntime
from agent_console.auth import require
from agent_console.events import SupervisorAction

__all__ = ["add_console_routes"]

ACD_KEY = web.AppKey("console_acd", AcdService)
PUBLISH_KEY: web.AppKey[Callable[[object], None]] = web.AppKey("console_publish")
_MAX_BODY = 4096


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.content.read(_MAX_BODY + 1)
    if len(raw) > _MAX_BODY:
        raise AgentControlError("request body too large", 413)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise AgentControlError("body is not JSON", 422) from exc
    if not isinstance(data, dict):
        raise AgentControlError("body must be a JSON object", 422)
    return data


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise AgentControlError(f"{key!r} must be a string", 422)
    return value


Action = Callable[[AcdService, str, dict[str, Any]], AgentRuntime]

_ACTIONS: dict[str, Action] = {
    "login": lambda s, a, d: s.login(a, _text(d, "endpoint")),
    "ready": lambda s, a, d: s.ready(a),
    "not-ready": lambda s, a, d: s.not_ready(a, _text(d, "reason") or ""),
    "logout": lambda s, a, d: s.logout(a),
    "end-wrap-up": lambda s, a, d: s.end_wrap_up(a),
}


def _control(name: str, action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        session = require(request, "agent")
        user = session.user
        agent_id = request.match_info["agent_id"]
        own = user.agent_id == agent_id
        if not own and not user.at_least("supervisor"):
            return _error("an agent acts only as their own agent", 403)
        try:
            data = await _body(request)
            agent = action(request.app[ACD_KEY], agent_id, data)
        except AgentControlError as exc:
            return _error(str(exc), exc.status)
        if not own:
            detail = json.dumps(data, sort_keys=True) if data else ""
            request.app[PUBLISH_KEY](
                SupervisorAction(user.username, user.role, name, agent_id, detail, time.time())
            )
        return web.json_response(agent.view())

    return handler


async def _agents(request: web.Request) -> web.Response:
    require(request, "supervisor")
    service = request.app[ACD_KEY]
    return web.json_response([agent.view() for agent in service.agents.values()])


async def _agent(request: web.Request) -> web.Response:
    session = require(request, "agent")
    agent_id = request.match_info["agent_id"]
    if session.user.agent_id != agent_id and not session.user.at_least("supervisor"):
        return _error("an agent sees only their own state", 403)
    agent = request.app[ACD_KEY].agents.get(agent_id)
    if agent is None:
        return _error("no such agent", 404)
    return web.json_response(agent.view())


async def _queues(request: web.Request) -> web.Response:
    require(request, "supervisor")
    service = request.app[ACD_KEY]
    stats = service.figures.all_stats(service.clock())
    return web.json_response([dataclasses.asdict(s) for s in stats])


def add_console_routes(
    app: web.Application, service: AcdService, publish: Callable[[object], None]
) -> None:
    app[ACD_KEY] = service
    app[PUBLISH_KEY] = publish
    router = app.router
    router.add_get("/api/agents", _agents)
    router.add_get("/api/agents/{agent_id}", _agent)
    for name, action in _ACTIONS.items():
        router.add_post(f"/api/agents/{{agent_id}}/{name}", _control(name, action))
    router.add_get("/api/queues", _queues)
