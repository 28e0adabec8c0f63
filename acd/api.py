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

Bodies are the models of ``acd.schemas`` (checked on the way in: 422 naming the field at
fault). Refusals are raised, never answered here: the ACD's errors (``acd.errors``) and the
HTTP layer's own problems become ``{"error": id, "detail": text}`` in one middleware
(``agent_console.http``), e.g. 404 ``unknown_agent``, 409 ``agent_conflict`` (not ready while
on a call), 422 ``invalid_agent_request`` (unknown reason, bad phone). Like the admin
endpoints, these listen where ``http.host`` says (loopback by default); with accounts on, they
need a supervisor's session (``agent_console.auth``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from aiohttp import web

from acd.errors import UnknownAgent
from acd.schemas import Body, LoginBody, NoBody, NotReadyBody
from acd.service import AcdCall, AcdService, AgentRuntime
from cti.http import MAX_BODY, parse_body

__all__ = [
    "ACD_KEY",
    "AGENT_ACTIONS",
    "AgentAction",
    "add_acd_routes",
    "queue_figures",
    "read_body",
]

ACD_KEY = web.AppKey("acd", AcdService)
M = TypeVar("M", bound=Body)


async def read_body(request: web.Request, model: type[M], *, limit: int = MAX_BODY) -> M:
    """The request's body as ``model`` (no body: the model of ``{}``), or an ``HttpProblem``
    (``cti.http.parse_body``): only ``limit + 1`` bytes are ever read."""
    raw = bytearray()
    # read(n) gives what has arrived so far (a body may come in several segments): read until
    # the end of the body, or one byte past the limit.
    while request.can_read_body and len(raw) <= limit:
        chunk = await request.content.read(limit + 1 - len(raw))
        if not chunk:
            break
        raw += chunk
    return parse_body(bytes(raw), request.headers.get("Content-Type"), model, limit=limit)


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


@dataclass(frozen=True)
class AgentAction:
    """One agent action: the body it takes, and what it does with it."""

    body: type[Body]
    run: Callable[[AcdService, str, Any], AgentRuntime]


#: agent control by URL verb: what the ACD API and the console's API both offer
AGENT_ACTIONS: Mapping[str, AgentAction] = MappingProxyType(
    {
        "login": AgentAction(LoginBody, lambda s, a, b: s.login(a, b.endpoint)),
        "ready": AgentAction(NoBody, lambda s, a, b: s.ready(a)),
        "not-ready": AgentAction(NotReadyBody, lambda s, a, b: s.not_ready(a, b.reason)),
        "logout": AgentAction(NoBody, lambda s, a, b: s.logout(a)),
        "end-wrap-up": AgentAction(NoBody, lambda s, a, b: s.end_wrap_up(a)),
    }
)


def queue_figures(service: AcdService) -> list[dict[str, Any]]:
    """Every queue's live figures, JSON-ready."""
    return [dataclasses.asdict(stats) for stats in service.figures.all_stats(service.clock())]


def _agent_action(action: AgentAction) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        body = await read_body(request, action.body)
        agent = action.run(request.app[ACD_KEY], request.match_info["agent_id"], body)
        return web.json_response(agent.view())

    return handler


async def _agents(request: web.Request) -> web.Response:
    service = request.app[ACD_KEY]
    return web.json_response([agent.view() for agent in service.agents.values()])


async def _agent(request: web.Request) -> web.Response:
    agent = request.app[ACD_KEY].agents.get(request.match_info["agent_id"])
    if agent is None:
        raise UnknownAgent("no such agent")
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
    # The store reads one file per callback from a directory: not on the event loop.
    failed = await asyncio.to_thread(service.failed_callbacks)
    return web.json_response([dataclasses.asdict(r) for r in failed])


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
