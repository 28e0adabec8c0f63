"""The OpenAPI 3.1 description of the HTTP API: everything the pages do, for a center's own tools.

Served at ``GET /api/openapi.json``. Every request and response body in it is generated from
the pydantic models the handlers themselves validate with (``acd.schemas``,
``agent_console.schemas``; the agent actions' bodies straight from ``acd.api.AGENT_ACTIONS``),
and every error answer from the one error table (``agent_console.http.ERRORS``; the builder
is ``agent_console.openapi_builder``), so what is checked and what is documented cannot
drift. What is written here by hand is the list of routes, their summaries and roles; a test
compares that list with the routes the application actually registers (every route described,
nothing described that does not exist).

Refusals are ``{"error": id, "detail": text}`` (component ``ErrorBody``); each status lists the
ids it can carry.

Authentication for tools is the pages' own: ``POST /api/login`` gives the session cookie and
the CSRF token; every state-changing request sends the token as ``X-CSRF-Token``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from aiohttp import web

from acd.api import AGENT_ACTIONS
from acd.figures import QueueStats
from acd.ports import CallbackRecord
from acd.schemas import AgentView, WaitingCallView
from agent_console.auth import CSRF_HEADER, SESSION_COOKIE
from agent_console.openapi_builder import OBJECT, Document, Schema, path_param, query
from agent_console.schemas import (
    Credentials,
    CustomerCreate,
    CustomerEdit,
    CustomerFound,
    CustomerList,
    CustomerView,
    DialBody,
    Me,
    Ok,
    SpyBody,
    TransferBody,
    UserChange,
    UserCreate,
    UserList,
    UserView,
    Worklist,
    WrapUpBody,
)
from cti import __version__

__all__ = ["OPENAPI_PATH", "add_openapi_route", "openapi"]

OPENAPI_PATH: Final = "/api/openapi.json"

_CALL: Final = [path_param("call_id")]
_AGENT: Final = [path_param("agent_id")]
_REPORT_PARAMS: Final = [
    query("from", "first day (YYYY-MM-DD) or ISO time", required=True),
    query("to", "end (exclusive)"),
    query("interval", "15, 30, 60 or day"),
    query("tz", "IANA time zone"),
    query("queue", "one queue"),
    query("agent", "one agent"),
    query("sl_threshold", "seconds"),
    query("sl_variant", "service level variant"),
    query("short_abandon", "seconds"),
    query("format", "csv for CSV"),
]


def _agent_actions(doc: Document, prefix: str, role: str) -> dict[str, Schema]:
    return {
        f"{prefix}/agents/{{agent_id}}/{verb}": {
            "post": doc.op(
                f"agent {verb}",
                role,
                doc.ref(AgentView),
                404,
                409,
                body=action.body,
                params=_AGENT,
            )
        }
        for verb, action in AGENT_ACTIONS.items()
    }


def _call_paths(doc: Document) -> dict[str, Schema]:
    ok = doc.ref(Ok)

    def simple(summary: str) -> Schema:
        return {"post": doc.op(summary, "agent", ok, 404, 409, 503, status=202, params=_CALL)}

    return {
        "/api/calls/{call_id}/hold": simple("hold the call"),
        "/api/calls/{call_id}/resume": simple("resume a held call"),
        "/api/calls/{call_id}/hangup": simple("hang up"),
        "/api/calls/{call_id}/transfer": {
            "post": doc.op(
                "blind or attended transfer to an agent, queue or number",
                "agent",
                ok,
                404,
                409,
                503,
                body=TransferBody,
                status=202,
                params=_CALL,
            )
        },
        "/api/calls/{call_id}/transfer/complete": simple(
            "attended: connect the customer and the target"
        ),
        "/api/calls/{call_id}/transfer/cancel": simple("attended: back to the customer"),
        "/api/calls/{call_id}/wrap-up": {
            "post": doc.op(
                "disposition and notes, saved on the interaction",
                "agent",
                ok,
                409,
                body=WrapUpBody,
                params=_CALL,
            )
        },
        "/api/dial": {
            "post": doc.op(
                "click-to-dial from the agent's phone",
                "agent",
                ok,
                409,
                503,
                body=DialBody,
                status=202,
            )
        },
        "/api/agents/{agent_id}/spy": {
            "post": doc.op(
                "listen, whisper or barge on the agent's call (rings the supervisor's phone)",
                "supervisor",
                ok,
                404,
                409,
                503,
                body=SpyBody,
                status=202,
                params=_AGENT,
            )
        },
    }


def _customer_paths(doc: Document) -> dict[str, Schema]:
    return {
        "/api/customers": {
            "get": doc.op(
                "search by name, phone or account",
                "agent",
                doc.ref(CustomerList),
                503,
                params=[query("q", "text to search", required=True)],
            ),
            "post": doc.op(
                "quick-create a customer",
                "agent",
                doc.ref(CustomerView),
                503,
                body=CustomerCreate,
                status=201,
            ),
        },
        "/api/customers/{ref}": {
            "get": doc.op(
                "record, history, open cases, insight",
                "agent",
                doc.ref(CustomerFound),
                404,
                503,
                params=[path_param("ref")],
            ),
            "patch": doc.op(
                "edit a customer",
                "agent",
                doc.ref(CustomerView),
                404,
                503,
                body=CustomerEdit,
                params=[path_param("ref")],
            ),
        },
        "/api/worklist/abandoned": {
            "get": doc.op(
                "today's abandoned callers not yet called back", "supervisor", doc.ref(Worklist)
            )
        },
        "/api/worklist/abandoned/{key}/callback": {
            "post": doc.op(
                "schedule an ACD callback for the caller",
                "supervisor",
                doc.ref(Ok),
                404,
                422,
                status=202,
                params=[path_param("key")],
            )
        },
    }


def _admin_paths(doc: Document) -> dict[str, Schema]:
    return {
        "/api/admin/config": {
            "get": doc.op("the loaded configuration (secrets hidden)", "admin", OBJECT)
        },
        "/api/admin/reload": {
            "post": doc.op("re-read the IVR flows and the console file", "admin", OBJECT, 422)
        },
        "/api/admin/users": {
            "get": doc.op("every user", "admin", doc.ref(UserList)),
            "post": doc.op(
                "add a user", "admin", doc.ref(UserView), 409, body=UserCreate, status=201
            ),
        },
        "/api/admin/users/{username}": {
            "patch": doc.op(
                "change a user (ends their sessions and pages)",
                "admin",
                doc.ref(UserView),
                404,
                body=UserChange,
                params=[path_param("username")],
            )
        },
        "/admin/ivr/reload": {"post": doc.op("re-read the IVR flows", "admin", OBJECT, 422)},
        "/admin/config/reload": {
            "post": doc.op(
                "re-read acd.yaml and console.yaml (as SIGHUP does); a refused file is kept out",
                "admin",
                OBJECT,
                422,
            )
        },
    }


def _acd_paths(doc: Document) -> dict[str, Schema]:
    return {
        "/acd/agents": {
            "get": doc.op("every agent (ACD API)", "supervisor", doc.list_of(AgentView))
        },
        "/acd/agents/{agent_id}": {
            "get": doc.op(
                "one agent (ACD API)", "supervisor", doc.ref(AgentView), 404, params=_AGENT
            )
        },
        **_agent_actions(doc, "/acd", "supervisor"),
        "/acd/queues": {
            "get": doc.op("live figures (ACD API)", "supervisor", doc.list_of(QueueStats))
        },
        "/acd/calls": {
            "get": doc.op(
                "waiting calls in service order, then connected ones",
                "supervisor",
                doc.list_of(WaitingCallView),
            )
        },
        "/acd/callbacks/failed": {
            "get": doc.op("callbacks given up on", "supervisor", doc.list_of(CallbackRecord))
        },
    }


def _paths(doc: Document) -> dict[str, Schema]:
    me = doc.ref(Me)
    paths: dict[str, Schema] = {
        "/healthz": {"get": doc.op("health: PBX connection, store, version", "", OBJECT)},
        "/metrics": {"get": doc.op("Prometheus metrics (text format)", "")},
        OPENAPI_PATH: {"get": doc.op("this description", "")},
        "/api/login": {
            "post": doc.op("log in: session cookie and CSRF token", "", me, body=Credentials)
        },
        "/api/logout": {"post": doc.op("log out (closes this session's live pages)", "agent")},
        "/api/me": {"get": doc.op("who is logged in", "agent", me)},
        "/api/ws": {
            "get": doc.op(
                "live push websocket: snapshot then deltas, by role (see docs/console.md)",
                "agent",
                None,
                status=101,
            )
        },
        "/api/console/config": {
            "get": doc.op("dispositions, reasons, queues, agents", "agent", OBJECT)
        },
        "/api/me/figures": {"get": doc.op("the agent's own figures today", "agent", OBJECT)},
        "/api/agents": {"get": doc.op("every agent", "supervisor", doc.list_of(AgentView))},
        "/api/agents/{agent_id}": {
            "get": doc.op(
                "one agent (own, or any for a supervisor)",
                "agent",
                doc.ref(AgentView),
                404,
                params=_AGENT,
            )
        },
        **_agent_actions(doc, "/api", "agent"),
        "/api/queues": {
            "get": doc.op("live figures of every queue", "supervisor", doc.list_of(QueueStats))
        },
        **_call_paths(doc),
        **_customer_paths(doc),
        **_admin_paths(doc),
        **_acd_paths(doc),
    }
    for kind in ("queues", "agents", "abandoned"):
        paths[f"/reports/{kind}"] = {
            "get": doc.op(
                f"{kind} report from the store (JSON or CSV)",
                "supervisor",
                OBJECT,
                422,
                params=_REPORT_PARAMS,
            )
        }
    return paths


def openapi() -> dict[str, Any]:
    """The whole description, built anew at each call (the server serialises it once)."""
    doc = Document()
    paths = _paths(doc)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ctiserver",
            "version": __version__,
            "description": __doc__ or "",
        },
        "components": {
            "schemas": dict(sorted(doc.schemas.items())),
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
                "csrf": {"type": "apiKey", "in": "header", "name": CSRF_HEADER},
            },
        },
        "security": [{"session": [], "csrf": []}],
        "paths": paths,
    }


def add_openapi_route(app: web.Application) -> None:
    # The description does not change while the server runs: serialised once.
    body = json.dumps(openapi())

    async def serve(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/json")

    app.router.add_get(OPENAPI_PATH, serve)
