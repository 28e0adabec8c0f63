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

import json
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from acd.api import AGENT_ACTIONS, AgentAction, queue_figures, read_body
from acd.errors import UnknownAgent
from acd.service import AcdService
from agent_console.auth import require
from cti.contracts.console import SupervisorAction
from cti.errors import Forbidden

__all__ = ["add_console_routes"]

ACD_KEY = web.AppKey("console_acd", AcdService)
PUBLISH_KEY: web.AppKey[Callable[[object], None]] = web.AppKey("console_publish")


def _control(name: str, action: AgentAction) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        session = require(request, "agent")
        user = session.user
        agent_id = request.match_info["agent_id"]
        own = user.agent_id == agent_id
        if not own and not user.at_least("supervisor"):
            raise Forbidden("an agent acts only as their own agent")
        body = await read_body(request, action.body)
        agent = action.run(request.app[ACD_KEY], agent_id, body)
        if not own:
            given = body.model_dump(mode="json", exclude_unset=True)
            detail = json.dumps(given, sort_keys=True) if given else ""
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
        raise Forbidden("an agent sees only their own state")
    agent = request.app[ACD_KEY].agents.get(agent_id)
    if agent is None:
        raise UnknownAgent("no such agent")
    return web.json_response(agent.view())


async def _queues(request: web.Request) -> web.Response:
    require(request, "supervisor")
    return web.json_response(queue_figures(request.app[ACD_KEY]))


def add_console_routes(
    app: web.Application, service: AcdService, publish: Callable[[object], None]
) -> None:
    app[ACD_KEY] = service
    app[PUBLISH_KEY] = publish
    router = app.router
    router.add_get("/api/agents", _agents)
    router.add_get("/api/agents/{agent_id}", _agent)
    for name, action in AGENT_ACTIONS.items():
        router.add_post(f"/api/agents/{{agent_id}}/{name}", _control(name, action))
    router.add_get("/api/queues", _queues)
