"""Reloading the live configuration files over HTTP.

    POST /admin/config/reload   re-read acd.yaml and console.yaml (as SIGHUP does); answers
                                {"acd": {"ok", "applied", ...}, "console": {...}}, 200 when
                                every file was applied, 422 when one was refused (its "error"
                                names file:line and why; the running configuration is kept)

Admin only (``/admin/`` is protected by ``agent_console.auth`` when log-in is on), as
``POST /admin/ivr/reload`` is. The reloading itself is the server's (``app.config_reload``);
this module only speaks HTTP.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

__all__ = ["CONFIG_RELOAD_KEY", "ReloadConfig", "add_config_routes"]

ReloadConfig = Callable[[], Awaitable[Mapping[str, Mapping[str, object]]]]

CONFIG_RELOAD_KEY: web.AppKey[ReloadConfig] = web.AppKey("config_reload")


async def _reload(request: web.Request) -> web.Response:
    answers = await request.app[CONFIG_RELOAD_KEY]()
    ok = all(bool(answer.get("ok")) for answer in answers.values())
    return web.json_response(
        {name: dict(answer) for name, answer in answers.items()}, status=200 if ok else 422
    )


def add_config_routes(app: web.Application, reload: ReloadConfig) -> None:
    app[CONFIG_RELOAD_KEY] = reload
    app.router.add_post("/admin/config/reload", _reload)
