"""The OpenAPI 3.1 description of the HTTP API: everything the pages do, for a center's own tools.

Served at ``GET /api/openapi.json``. It is written here as data, next to the handlers, and a
test compares it with the routes the application actually registers (every route described,
nothing described that does not exist), so the description cannot drift from the server.

Authentication for tools is the pages' own: ``POST /api/login`` gives the session cookie and
the CSRF token; every state-changing request sends the token as ``X-CSRF-Token``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from aiohttp import web

from acd.agent_state import AgentStatus
from agent_console.accounts import ROLES
from agent_console.auth import CSRF_HEADER, SESSION_COOKIE
from cti import __version__

__all__ = ["OPENAPI_PATH", "add_openapi_route", "openapi"]

OPENAPI_PATH: Final = "/api/openapi.json"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str] | None = None, **props: Schema) -> Schema:
    schema: Schema = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


STR: Final[Schema] = {"type": "string"}
NUM: Final[Schema] = {"type": "number"}
INT: Final[Schema] = {"type": "integer"}
BOOL: Final[Schema] = {"type": "boolean"}
OPT_STR: Final[Schema] = {"type": ["string", "null"]}
OPT_NUM: Final[Schema] = {"type": ["number", "null"]}


def _list(item: Schema) -> Schema:
    return {"type": "array", "items": item}


_SCHEMAS: Final[dict[str, Schema]] = {
    "Error": _obj(["error"], error=STR),
    "User": _obj(
        ["username", "role"],
        username=STR,
        display_name=STR,
        role={"enum": list(ROLES)},
        agent_id=OPT_STR,
    ),
    "Agent": _obj(
        ["agent_id", "status"],
        agent_id=STR,
        name=STR,
        status={"enum": [status.value for status in AgentStatus]},
        reason=STR,
        since=NUM,
        endpoint=STR,
        queues=_list(STR),
        skills={"type": "object", "additionalProperties": INT},
        call_id=OPT_STR,
        calls_today=INT,
        wrap_until=OPT_NUM,
    ),
    "QueueFigures": _obj(
        ["queue", "waiting"],
        queue=STR,
        at=NUM,
        waiting=INT,
        longest_wait=NUM,
        agents={"type": "object", "additionalProperties": INT},
        offered=INT,
        answered=INT,
        abandoned=INT,
        service_level=OPT_NUM,
        sl_threshold=NUM,
        sl_goal=NUM,
        asa=OPT_NUM,
        abandon_rate=OPT_NUM,
        aht=OPT_NUM,
        estimated_wait=OPT_NUM,
    ),
    "Customer": _obj(
        ["ref", "name"],
        ref=STR,
        name=STR,
        email=OPT_STR,
        account=OPT_STR,
        segment=OPT_STR,
        tier=OPT_STR,
        language=OPT_STR,
        notes=OPT_STR,
        phones=_list(_obj(number=STR, kind=STR)),
    ),
    "Interaction": _obj(
        key=STR,
        started_at=NUM,
        direction=STR,
        queue=OPT_STR,
        agent_id=OPT_STR,
        outcome=OPT_STR,
        disposition=OPT_STR,
        talk_seconds=OPT_NUM,
    ),
    "Case": _obj(id=INT, subject=STR, status=STR, opened_at=NUM),
    "Insight": _obj(
        vip=BOOL,
        repeat_caller=BOOL,
        churn_warning=BOOL,
        reasons=_list(STR),
        contacts_7d=INT,
        last_outcome=OPT_STR,
    ),
    "Abandoned": _obj(key=STR, number=STR, queue=STR, at=NUM, wait=NUM, customer_name=OPT_STR),
    "Ok": _obj(["ok"], ok=BOOL, call_id=STR),
}


def _body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _answers(ok: Schema | None, *errors: int, status: int = 200) -> Schema:
    responses: Schema = {
        str(status): {
            "description": "done",
            **({"content": {"application/json": {"schema": ok}}} if ok is not None else {}),
        }
    }
    reasons = {
        401: "not logged in",
        403: "not allowed (role, CSRF token or Origin)",
        404: "not found",
        409: "not allowed in the current state",
        422: "invalid input",
        503: "the CRM store is off",
    }
    for code in (401, 403, *errors):
        responses[str(code)] = {
            "description": reasons[code],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    return responses


def _op(
    summary: str,
    role: str,
    ok: Schema | None = None,
    *errors: int,
    body: Schema | None = None,
    status: int = 200,
    params: list[Schema] | None = None,
) -> Schema:
    op: Schema = {
        "summary": summary,
        "description": f"Needs the {role} role or higher." if role else "No log-in needed.",
        "responses": _answers(ok, *errors, status=status),
    }
    if body is not None:
        op["requestBody"] = _body(body)
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": STR}


def _query(name: str, description: str, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": STR,
        "description": description,
    }


_CALL: Final = [_path_param("call_id")]
_AGENT: Final = [_path_param("agent_id")]
_REPORT_PARAMS: Final = [
    _query("from", "first day (YYYY-MM-DD) or ISO time", required=True),
    _query("to", "end (exclusive)"),
    _query("interval", "15, 30, 60 or day"),
    _query("tz", "IANA time zone"),
    _query("queue", "one queue"),
    _query("agent", "one agent"),
    _query("sl_threshold", "seconds"),
    _query("sl_variant", "service level variant"),
    _query("short_abandon", "seconds"),
    _query("format", "csv for CSV"),
]


def _agent_actions(prefix: str, role: str) -> dict[str, Schema]:
    bodies = {
        "login": _obj(endpoint=STR),
        "ready": _obj(),
        "not-ready": _obj(["reason"], reason=STR),
        "logout": _obj(),
        "end-wrap-up": _obj(),
    }
    return {
        f"{prefix}/agents/{{agent_id}}/{verb}": {
            "post": _op(
                f"agent {verb}",
                role,
                _ref("Agent"),
                404,
                409,
                422,
                body=body,
                params=_AGENT,
            )
        }
        for verb, body in bodies.items()
    }


def _paths() -> dict[str, Schema]:
    transfer = _obj(
        ["mode", "to"],
        mode={"enum": ["blind", "attended"]},
        to=_obj(["kind", "target"], kind={"enum": ["agent", "queue", "number"]}, target=STR),
    )
    paths: dict[str, Schema] = {
        "/healthz": {"get": _op("health: PBX connection, store, version", "", _obj())},
        "/metrics": {"get": _op("Prometheus metrics (text format)", "")},
        OPENAPI_PATH: {"get": _op("this description", "")},
        "/api/login": {
            "post": _op(
                "log in: session cookie and CSRF token",
                "",
                _obj(user=_ref("User"), csrf=STR),
                422,
                body=_obj(["username", "password"], username=STR, password=STR),
            )
        },
        "/api/logout": {"post": _op("log out (closes this session's live pages)", "agent")},
        "/api/me": {"get": _op("who is logged in", "agent", _obj(user=_ref("User"), csrf=STR))},
        "/api/ws": {
            "get": _op(
                "live push websocket: snapshot then deltas, by role (see docs/console.md)",
                "agent",
                None,
                status=101,
            )
        },
        "/api/console/config": {"get": _op("dispositions, reasons, queues, agents", "agent")},
        "/api/me/figures": {"get": _op("the agent's own figures today", "agent", _obj())},
        "/api/agents": {"get": _op("every agent", "supervisor", _list(_ref("Agent")))},
        "/api/agents/{agent_id}": {
            "get": _op(
                "one agent (own, or any for a supervisor)",
                "agent",
                _ref("Agent"),
                404,
                params=_AGENT,
            )
        },
        **_agent_actions("/api", "agent"),
        "/api/agents/{agent_id}/spy": {
            "post": _op(
                "listen, whisper or barge on the agent's call (rings the supervisor's phone)",
                "supervisor",
                _ref("Ok"),
                404,
                409,
                422,
                body=_obj(["mode"], mode={"enum": ["listen", "whisper", "barge"]}, endpoint=STR),
                status=202,
                params=_AGENT,
            )
        },
        "/api/queues": {
            "get": _op("live figures of every queue", "supervisor", _list(_ref("QueueFigures")))
        },
        "/api/calls/{call_id}/hold": {
            "post": _op("hold the call", "agent", _ref("Ok"), 404, 409, status=202, params=_CALL)
        },
        "/api/calls/{call_id}/resume": {
            "post": _op(
                "resume a held call", "agent", _ref("Ok"), 404, 409, status=202, params=_CALL
            )
        },
        "/api/calls/{call_id}/hangup": {
            "post": _op("hang up", "agent", _ref("Ok"), 404, 409, status=202, params=_CALL)
        },
        "/api/calls/{call_id}/transfer": {
            "post": _op(
                "blind or attended transfer to an agent, queue or number",
                "agent",
                _ref("Ok"),
                404,
                409,
                422,
                body=transfer,
                status=202,
                params=_CALL,
            )
        },
        "/api/calls/{call_id}/transfer/complete": {
            "post": _op(
                "attended: connect the customer and the target",
                "agent",
                _ref("Ok"),
                404,
                409,
                status=202,
                params=_CALL,
            )
        },
        "/api/calls/{call_id}/transfer/cancel": {
            "post": _op(
                "attended: back to the customer",
                "agent",
                _ref("Ok"),
                404,
                409,
                status=202,
                params=_CALL,
            )
        },
        "/api/calls/{call_id}/wrap-up": {
            "post": _op(
                "disposition and notes, saved on the interaction",
                "agent",
                _ref("Ok"),
                409,
                422,
                body=_obj(["disposition"], disposition=STR, notes=STR, end=BOOL),
                params=_CALL,
            )
        },
        "/api/dial": {
            "post": _op(
                "click-to-dial from the agent's phone",
                "agent",
                _ref("Ok"),
                409,
                422,
                body=_obj(["number"], number=STR, customer_ref=STR),
                status=202,
            )
        },
        "/api/customers": {
            "get": _op(
                "search by name, phone or account",
                "agent",
                _obj(customers=_list(_ref("Customer"))),
                503,
                params=[_query("q", "text to search", required=True)],
            ),
            "post": _op(
                "quick-create a customer",
                "agent",
                _ref("Customer"),
                422,
                503,
                body=_obj(["name"], name=STR, phone=STR, email=STR, account=STR, notes=STR),
                status=201,
            ),
        },
        "/api/customers/{ref}": {
            "get": _op(
                "record, history, open cases, insight",
                "agent",
                _obj(
                    customer=_ref("Customer"),
                    history=_list(_ref("Interaction")),
                    cases=_list(_ref("Case")),
                    insight=_ref("Insight"),
                ),
                404,
                503,
                params=[_path_param("ref")],
            ),
            "patch": _op(
                "edit a customer",
                "agent",
                _ref("Customer"),
                404,
                422,
                503,
                body=_obj(
                    name=STR,
                    email=STR,
                    account=STR,
                    segment=STR,
                    tier=STR,
                    language=STR,
                    notes=STR,
                    phones=_list(STR),
                ),
                params=[_path_param("ref")],
            ),
        },
        "/api/worklist/abandoned": {
            "get": _op(
                "today's abandoned callers not yet called back",
                "supervisor",
                _obj(calls=_list(_ref("Abandoned"))),
            )
        },
        "/api/worklist/abandoned/{key}/callback": {
            "post": _op(
                "schedule an ACD callback for the caller",
                "supervisor",
                _ref("Ok"),
                404,
                422,
                status=202,
                params=[_path_param("key")],
            )
        },
        "/api/admin/config": {
            "get": _op("the loaded configuration (secrets hidden)", "admin", _obj())
        },
        "/api/admin/reload": {
            "post": _op("re-read the IVR flows and the console file", "admin", _obj(), 422)
        },
        "/api/admin/users": {
            "get": _op("every user", "admin", _obj(users=_list(_ref("User")))),
            "post": _op(
                "add a user",
                "admin",
                _ref("User"),
                409,
                422,
                body=_obj(
                    ["username", "password", "role"],
                    username=STR,
                    password=STR,
                    role=STR,
                    display_name=STR,
                    agent_id=STR,
                ),
                status=201,
            ),
        },
        "/api/admin/users/{username}": {
            "patch": _op(
                "change a user (ends their sessions and pages)",
                "admin",
                _ref("User"),
                404,
                422,
                body=_obj(password=STR, role=STR, disabled=BOOL, display_name=STR, agent_id=STR),
                params=[_path_param("username")],
            )
        },
        "/admin/ivr/reload": {"post": _op("re-read the IVR flows", "admin", _obj(), 422)},
        "/acd/agents": {"get": _op("every agent (ACD API)", "supervisor", _list(_ref("Agent")))},
        "/acd/agents/{agent_id}": {
            "get": _op("one agent (ACD API)", "supervisor", _ref("Agent"), 404, params=_AGENT)
        },
        **_agent_actions("/acd", "supervisor"),
        "/acd/queues": {
            "get": _op("live figures (ACD API)", "supervisor", _list(_ref("QueueFigures")))
        },
        "/acd/calls": {
            "get": _op(
                "waiting calls in service order, then connected ones", "supervisor", _list(_obj())
            )
        },
        "/acd/callbacks/failed": {"get": _op("callbacks given up on", "supervisor", _list(_obj()))},
    }
    for kind in ("queues", "agents", "abandoned"):
        paths[f"/reports/{kind}"] = {
            "get": _op(
                f"{kind} report from the store (JSON or CSV)",
                "supervisor",
                _obj(),
                422,
                params=_REPORT_PARAMS,
            )
        }
    return paths


def openapi() -> dict[str, Any]:
    """The whole description (its schemas are shared module data: read, do not change)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ctiserver",
            "version": __version__,
            "description": __doc__ or "",
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
                "csrf": {"type": "apiKey", "in": "header", "name": CSRF_HEADER},
            },
        },
        "security": [{"session": [], "csrf": []}],
        "paths": _paths(),
    }


def add_openapi_route(app: web.Application) -> None:
    # The description does not change while the server runs: serialised once.
    body = json.dumps(openapi())

    async def serve(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/json")

    app.router.add_get(OPENAPI_PATH, serve)
