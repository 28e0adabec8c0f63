"""The HTTP side of the server (aiohttp): health and metrics now, the consoles later.

``/healthz`` answers 200 when the PBX is connected and 503 otherwise, with the same JSON body,
so both a load balancer (status code) and a person (body) can read it. ``/metrics`` is the
Prometheus text format.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from cti.health import Health

__all__ = ["HEALTH_KEY", "build_web_app"]

HEALTH_KEY = web.AppKey("health", Health)
_REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)


async def _healthz(request: web.Request) -> web.Response:
    health = request.app[HEALTH_KEY]
    return web.json_response(health.report(), status=200 if health.healthy else 503)


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[_REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_web_app(health: Health, registry: CollectorRegistry) -> web.Application:
    app = web.Application()
    app[HEALTH_KEY] = health
    app[_REGISTRY_KEY] = registry
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    return app
