"""The HTTP side of the server (aiohttp): health, metrics, the consoles' pages and API.

``/healthz`` answers 200 when the PBX is connected and 503 otherwise, with the same JSON body,
so both a load balancer (status code) and a person (body) can read it. ``/metrics`` is the
Prometheus text format.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from acd.api import add_acd_routes
from acd.service import AcdService
from agent_console.accounts import AccountStore
from agent_console.admin_api import AdminPorts, add_admin_routes
from agent_console.api import add_console_routes
from agent_console.auth import ON_LOGOUT_KEY, add_auth_routes, security_middleware
from agent_console.call_api import add_call_routes
from agent_console.calls import CallControl
from agent_console.config_api import ReloadConfig, add_config_routes
from agent_console.console_api import ConsolePorts, add_console_api_routes
from agent_console.http import error_middleware
from agent_console.live import ConsoleLive, add_live_routes
from agent_console.openapi import add_openapi_route
from agent_console.pages import add_page_routes, security_headers
from crm_bridge.report_api import add_routes as add_report_routes
from cti.health import Health
from ivr.registry import IvrReloaded

__all__ = ["HEALTH_KEY", "ConsoleWeb", "build_web_app"]

ReloadIvr = Callable[[], Awaitable[IvrReloaded]]

HEALTH_KEY = web.AppKey("health", Health)
_REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)
_RELOAD_KEY: web.AppKey[ReloadIvr] = web.AppKey("reload_ivr")


@dataclass(frozen=True)
class ConsoleWeb:
    """The consoles' parts the HTTP side serves (built by the server)."""

    live: ConsoleLive
    ports: ConsolePorts
    admin: AdminPorts
    calls: CallControl
    supervisor_phone: Callable[[str], str | None]
    heartbeat: float = 20.0


async def _healthz(request: web.Request) -> web.Response:
    health = request.app[HEALTH_KEY]
    return web.json_response(health.report(), status=200 if health.healthy else 503)


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[_REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _reload_ivr(request: web.Request) -> web.Response:
    # Needs an admin session when accounts exist (agent_console.auth.PROTECTED_PREFIXES).
    result = await request.app[_RELOAD_KEY]()
    return web.json_response(result.view(), status=200 if result.ok else 422)


def build_web_app(
    health: Health,
    registry: CollectorRegistry,
    *,
    reload_ivr: ReloadIvr | None = None,
    reload_config: ReloadConfig | None = None,
    acd: AcdService | None = None,
    crm: AsyncEngine | None = None,
    accounts: AccountStore | None = None,
    origins: tuple[str, ...] = (),
    publish: Callable[[object], None] | None = None,
    console: ConsoleWeb | None = None,
) -> web.Application:
    # Outermost: every answer (pages, API, errors) carries the CSP and friends. Then the one
    # error path: every refusal raised below it, the security checks' included, becomes
    # {"error", "detail"} there. Innermost: the console's API (/api/...) checks sessions, CSRF
    # tokens and origins in one place.
    middlewares: list[Middleware] = [security_headers, error_middleware]
    if accounts is not None:
        middlewares.append(security_middleware)
    app = web.Application(middlewares=middlewares)
    app[HEALTH_KEY] = health
    app[_REGISTRY_KEY] = registry
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    add_openapi_route(app)
    if reload_ivr is not None:
        app[_RELOAD_KEY] = reload_ivr
        app.router.add_post("/admin/ivr/reload", _reload_ivr)
    if reload_config is not None:
        add_config_routes(app, reload_config)  # POST /admin/config/reload
    if acd is not None:
        add_acd_routes(app, acd)
    if crm is not None:
        add_report_routes(app, crm)
    if accounts is not None:
        add_auth_routes(app, accounts, origins=origins)
        if acd is not None:
            add_console_routes(app, acd, publish or (lambda _event: None))
        if console is not None:
            add_page_routes(app)
            add_live_routes(app, console.live, heartbeat=console.heartbeat)
            add_console_api_routes(app, console.ports)
            add_call_routes(
                app,
                console.calls,
                console.ports.publish,
                supervisor_phone=console.supervisor_phone,
            )
            add_admin_routes(app, console.admin)
            app[ON_LOGOUT_KEY] = console.live.close_session
    return app
