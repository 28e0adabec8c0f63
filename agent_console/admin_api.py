"""The admin API: the loaded configuration, reloading it, and console users.

    GET   /api/admin/config            everything loaded: settings (secrets hidden), IVR, ACD,
                                       console
    POST  /api/admin/reload            re-read the IVR flows, acd.yaml and console.yaml (the
                                       last two as SIGHUP does, with check-config's verdict,
                                       off the event loop); a refused file keeps the running one
    GET   /api/admin/users             every user
    POST  /api/admin/users             {"username","password","role","display_name"?,"agent_id"?}
    PATCH /api/admin/users/{username}  {"password"?,"role"?,"disabled"?,"display_name"?,
                                        "agent_id"?}

Admin only. A change to a user (password, role, disabled) ends their sessions and closes
their open pages at once (close code 4401): rights taken away are gone now, not at their next
log-in. An admin cannot disable or demote their own account (a center must not lock itself
out by one click).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, SecretStr

from acd.api import read_body
from agent_console.accounts import AccountError, AccountStore, UnknownUser, UserInfo, check_password
from agent_console.auth import require, user_view
from agent_console.schemas import UserChange, UserCreate
from ivr.registry import IvrReloaded

__all__ = ["AdminPorts", "add_admin_routes", "plain"]


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses and models as objects, sets sorted, secrets
    hidden, anything else unknown as its text."""
    if isinstance(value, SecretStr):
        return "***"
    if isinstance(value, BaseModel):
        return {k: plain(getattr(value, k)) for k in type(value).model_fields}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@dataclasses.dataclass(frozen=True)
class AdminPorts:
    accounts: AccountStore
    #: section name -> a callable giving what is loaded now (read at each request)
    views: Mapping[str, Callable[[], object]]
    #: re-reads the IVR flows off the event loop (``ivr.registry.IvrReloaded``)
    reload_ivr: Callable[[], Awaitable[IvrReloaded]]
    #: re-reads acd.yaml and console.yaml off the event loop (as SIGHUP does), giving
    #: {file kind: {"ok": bool, ...}}
    reload_config: Callable[[], Awaitable[Mapping[str, Mapping[str, object]]]]
    #: ends the open pages of a user (their rights changed)
    close_pages: Callable[[str], None]


ADMIN_KEY = web.AppKey("console_admin", AdminPorts)


def _user(user: UserInfo) -> dict[str, object]:
    return {**user_view(user), "disabled": user.disabled}


async def _config(request: web.Request) -> web.Response:
    require(request, "admin")
    ports = request.app[ADMIN_KEY]
    return web.json_response({name: plain(view()) for name, view in ports.views.items()})


async def _reload(request: web.Request) -> web.Response:
    require(request, "admin")
    ports = request.app[ADMIN_KEY]
    results = {"ivr": (await ports.reload_ivr()).view()}
    results.update({name: dict(answer) for name, answer in (await ports.reload_config()).items()})
    ok = all(bool(r.get("ok")) for r in results.values())
    return web.json_response(results, status=200 if ok else 422)


async def _users(request: web.Request) -> web.Response:
    require(request, "admin")
    users = await request.app[ADMIN_KEY].accounts.users()
    return web.json_response({"users": [_user(u) for u in users]})


async def _add_user(request: web.Request) -> web.Response:
    require(request, "admin")
    ports = request.app[ADMIN_KEY]
    body = await read_body(request, UserCreate)
    user = await ports.accounts.add_user(
        body.username,
        body.password,
        body.role,
        agent_id=body.agent_id or None,
        display_name=body.display_name or None,
    )
    return web.json_response(_user(user), status=201)


async def _change_user(request: web.Request) -> web.Response:
    session = require(request, "admin")
    ports = request.app[ADMIN_KEY]
    username = request.match_info["username"]
    body = await read_body(request, UserChange)
    if username == session.user.username and (
        body.disabled or (body.role and body.role != "admin")
    ):
        raise AccountError("an admin cannot disable or demote their own account")
    if await ports.accounts.get(username) is None:
        raise UnknownUser(f"no user {username!r}")
    # Everything checked before anything is written: a refused change changes nothing.
    if body.password is not None:
        check_password(body.password)
    user = await ports.accounts.update(
        username, role=body.role, display_name=body.display_name, agent_id=body.agent_id
    )
    if body.password is not None:
        await ports.accounts.set_password(username, body.password)
    if body.disabled is not None:
        await ports.accounts.set_disabled(username, body.disabled)
        user = dataclasses.replace(user, disabled=body.disabled)
    if body.model_fields_set:
        ports.close_pages(username)
    return web.json_response(_user(user))


def add_admin_routes(app: web.Application, ports: AdminPorts) -> None:
    app[ADMIN_KEY] = ports
    router = app.router
    router.add_get("/api/admin/config", _config)
    router.add_post("/api/admin/reload", _reload)
    router.add_get("/api/admin/users", _users)
    router.add_post("/api/admin/users", _add_user)
    router.add_patch("/api/admin/users/{username}", _change_user)
