"""The console's HTTP API beyond agent state: configuration, wrap-up, customers, figures, the
abandoned-calls worklist.

    GET   /api/console/config                    any user: dispositions, reasons, queues, agents
    GET   /api/me/figures                        an agent: their own figures today
    POST  /api/calls/{call_id}/wrap-up           the call's agent: {"disposition","notes","end"}
    GET   /api/customers?q=                      any user: search by name, phone or account
    GET   /api/customers/{ref}                   any user: record, history, open cases, insight
    POST  /api/customers                         any user: quick-create {"name","phone",...}
    PATCH /api/customers/{ref}                   any user: edit
    GET   /api/worklist/abandoned                supervisor: today's abandoned, not called back
    POST  /api/worklist/abandoned/{key}/callback supervisor: schedule an ACD callback

Permissions are checked here; the security middleware has already checked the session, the
CSRF token and the Origin of every state-changing request. Bodies are bounded and validated
(the models of ``agent_console.schemas``); an invalid one answers 422 naming what is wrong,
and nothing is written. Refusals are raised and answered by ``agent_console.http``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from acd.agent_state import AgentStatus
from acd.api import read_body
from acd.service import AcdService
from agent_console.auth import require
from agent_console.calls import CallConflict
from agent_console.config import ConsoleConfig
from agent_console.live import ConsoleLive
from agent_console.schemas import CustomerCreate, CustomerEdit, WrapUpBody
from agent_console.screenpop import cases_json, customer_json, history_json, insight_json
from crm_bridge.customers import (
    CustomerStore,
    customer_fields,
    store_customers,
    validate_customer,
)
from cti.contracts.console import SupervisorAction, WrapUpRecorded
from cti.errors import CtiError, Forbidden, InvalidBody, NotFound, Unavailable

__all__ = ["ConsolePorts", "add_console_api_routes"]


class ConsolePorts:
    """What the handlers need, held in one place on the app."""

    def __init__(
        self,
        service: AcdService,
        live: ConsoleLive,
        engine: AsyncEngine | None,
        config: Callable[[], ConsoleConfig],
        publish: Callable[[object], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.live = live
        self.engine = engine
        self.store = CustomerStore(engine) if engine is not None else None
        self.config = config
        self.publish = publish
        self.clock = clock


PORTS_KEY = web.AppKey("console_ports", ConsolePorts)


async def _config(request: web.Request) -> web.Response:
    require(request, "agent")
    ports = request.app[PORTS_KEY]
    config = ports.config()
    acd = ports.service.config
    return web.json_response(
        {
            "dispositions": [d.model_dump() for d in config.dispositions],
            "not_ready_reasons": list(acd.not_ready_reasons),
            "queues": sorted(acd.queues),
            "agents": [{"agent_id": a.agent_id, "name": a.name} for a in acd.agents.values()],
            "alerts": config.alerts.model_dump(),
            "mask": config.mask,
        }
    )


async def _figures(request: web.Request) -> web.Response:
    session = require(request, "agent")
    agent_id = session.user.agent_id
    if agent_id is None:
        raise Forbidden("this account works as no agent")
    return web.json_response(request.app[PORTS_KEY].live.figures_of(agent_id))


async def _wrap_up(request: web.Request) -> web.Response:
    session = require(request, "agent")
    ports = request.app[PORTS_KEY]
    user = session.user
    agent_id = user.agent_id
    call_id = request.match_info["call_id"]
    if agent_id is None:
        raise Forbidden("this account works as no agent")
    body = await read_body(request, WrapUpBody)
    if body.disposition not in ports.config().disposition_codes():
        raise InvalidBody(f"disposition: unknown code {body.disposition!r}", ("disposition",))
    if not ports.live.is_agents_call(agent_id, call_id):
        raise CallConflict("not a call this agent handled today")
    ports.publish(
        WrapUpRecorded(
            call_id, agent_id, user.username, body.disposition, body.notes, ports.clock()
        )
    )
    if body.end:
        agent = ports.service.agents.get(agent_id)
        if agent is not None and agent.status is AgentStatus.WRAP_UP:
            ports.service.end_wrap_up(agent_id)
    return web.json_response({"ok": True})


# -- customers -------------------------------------------------------------------------------


def _store(request: web.Request) -> CustomerStore:
    store = request.app[PORTS_KEY].store
    if store is None:
        raise Unavailable("no customer store (crm.enabled is false)")
    return store


async def _search(request: web.Request) -> web.Response:
    require(request, "agent")
    store = _store(request)
    q = request.query.get("q", "").strip()[:200]
    if not q:
        return web.json_response({"customers": []})
    found = {}
    if any(ch.isdigit() for ch in q):
        for view in await store.by_phone(q):
            found[view.customer.ref] = view
        account = await store.by_account(q)
        if account is not None:
            found[account.customer.ref] = account
    for view in await store.search_name(q, mode="contains"):
        found.setdefault(view.customer.ref, view)
    by_ref = await store.by_ref(q)
    if by_ref is not None:
        found.setdefault(by_ref.customer.ref, by_ref)
    customers = [customer_json(v) for v in list(found.values())[:20]]
    return web.json_response({"customers": customers})


async def _customer(request: web.Request) -> web.Response:
    require(request, "agent")
    store = _store(request)
    ports = request.app[PORTS_KEY]
    view = await store.by_ref(request.match_info["ref"])
    if view is None or ports.engine is None:
        raise NotFound("no such customer")
    return web.json_response(
        {
            "customer": customer_json(view),
            "history": history_json(view),
            "cases": cases_json(view),
            "insight": await insight_json(ports.engine, view, ports.clock()),
        }
    )


async def _write(request: web.Request, fields: Mapping[str, object], status: int) -> web.Response:
    ports = request.app[PORTS_KEY]
    store = _store(request)
    checked = validate_customer(fields)
    if isinstance(checked, list):
        raise InvalidBody("; ".join(checked))
    try:
        result = await store_customers(store.engine, [(None, checked)], clock=ports.clock)
    except CtiError as exc:
        raise Unavailable(str(exc)) from exc
    if result.rejected:
        raise InvalidBody("; ".join(result.rejected[0].reasons))
    view = await store.by_ref(checked.ref)
    if view is None:
        raise RuntimeError(f"customer {checked.ref} was stored but cannot be read back")
    return web.json_response(customer_json(view), status=status)


async def _create(request: web.Request) -> web.Response:
    require(request, "agent")
    _store(request)
    body = await read_body(request, CustomerCreate)
    fields: dict[str, object] = body.model_dump(exclude_unset=True, exclude={"phone"})
    # A ref the center did not choose: "W" (web) and random hex, never guessable or reused.
    fields["ref"] = f"W{secrets.token_hex(5).upper()}"
    if body.phone:
        fields["phones"] = [body.phone]
    return await _write(request, fields, 201)


async def _edit(request: web.Request) -> web.Response:
    require(request, "agent")
    store = _store(request)
    body = await read_body(request, CustomerEdit)
    view = await store.by_ref(request.match_info["ref"])
    if view is None:
        raise NotFound("no such customer")
    c = view.customer
    fields: dict[str, object] = {**dict(c.custom), **customer_fields(c)}
    # Only the keys given change (null clears a text field).
    fields.update(body.model_dump(include=body.model_fields_set))
    return await _write(request, fields, 200)


# -- worklist --------------------------------------------------------------------------------


async def _worklist(request: web.Request) -> web.Response:
    require(request, "supervisor")
    return web.json_response({"calls": request.app[PORTS_KEY].live.abandoned.view()})


async def _call_back(request: web.Request) -> web.Response:
    session = require(request, "supervisor")
    ports = request.app[PORTS_KEY]
    key = request.match_info["key"]
    item = ports.live.abandoned.get(key)
    if item is None:
        raise NotFound("not on the worklist (called back already, or unknown)")
    call = ports.service.request_callback(item.number, item.queue)  # AcdError: 422
    ports.live.abandoned_called_back(key)
    user = session.user
    ports.publish(
        SupervisorAction(
            user.username, user.role, "call-back", "", f"{item.number} ({key})", ports.clock()
        )
    )
    return web.json_response({"ok": True, "call_id": call.call_id}, status=202)


def add_console_api_routes(app: web.Application, ports: ConsolePorts) -> None:
    app[PORTS_KEY] = ports
    router = app.router
    router.add_get("/api/console/config", _config)
    router.add_get("/api/me/figures", _figures)
    router.add_post("/api/calls/{call_id}/wrap-up", _wrap_up)
    router.add_get("/api/customers", _search)
    router.add_post("/api/customers", _create)
    router.add_get("/api/customers/{ref}", _customer)
    router.add_patch("/api/customers/{ref}", _edit)
    router.add_get("/api/worklist/abandoned", _worklist)
    router.add_post("/api/worklist/abandoned/{key}/callback", _call_back)
