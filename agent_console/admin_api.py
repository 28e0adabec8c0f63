"""The admin API: the loaded configuration, reloading it, and console users.

    GET   /api/admin/config            everything loaded: settings (secrets hidden), IVR, ACD,
                                       console
    POST  /api/admin/reload            re-read the IVR flows and the console file; the ACD's
                                       file is read at start (queues and agents hold live
                                       calls): the answer says so instead of pretending
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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, SecretStr

from acd.api import read_json_object
from acd.service import AgentControlError
from agent_console.accounts import AccountError, AccountStore, UserInfo, check_password
from agent_console.auth import require, user_view

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
    #: part name -> a callable reloading it, giving {"ok": bool, ...}
    reloads: Mapping[str, Callable[[], Mapping[str, object]]]
    #: ends the open pages of a user (their rights changed)
    close_pages: Callable[[str], None]


ADMIN_KEY = web.AppKey("console_admin", AdminPorts)


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _user(user: UserInfo) -> dict[str, object]:
    return {**user_view(user), "disabled": user.disabled}


async def _config(request: web.Request) -> web.Response:
    require(request, "admin")
    ports = request.app[ADMIN_KEY]
    return web.json_response({name: plain(view()) for name, view in ports.views.items()})


async def _reload(request: web.Request) -> web.Response:
    require(request, "admin")
    ports = request.app[ADMIN_KEY]
    results = {name: dict(reload()) for name, reload in ports.reloads.items()}
    results["acd"] = {
        "ok": True,
        "applied": False,
        "note": "the ACD configuration is read at start: restart the server to apply changes",
    }
    ok = all(bool(r.get("ok")) for r in results.values())
    return web.json_response(results, status=200 if ok else 422)


async def _users(request: web.Request) -> web.Response:
    require(request, "admin")
    users = await request.app[ADMIN_KEY].accounts.users()
    return web.json_response({"users": [_user(u) for u in users]})


def _opt_text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise AccountError(f"{name} must be text")
    return value


async def _add_user(request: web.Request) -> web.Response:
    require(request, "admin")
    ports = request.app[ADMIN_KEY]
    try:
        body = await read_json_object(request)
        username = _opt_text(body, "username") or ""
        password = _opt_text(body, "password") or ""
        role = _opt_text(body, "role") or ""
        user = await ports.accounts.add_user(
            username,
            password,
            role,
            agent_id=_opt_text(body, "agent_id") or None,
            display_name=_opt_text(body, "display_name") or None,
        )
    except AgentControlError as exc:
        return _error(str(exc), exc.status)
    except AccountError as exc:
        return _error(str(exc), 409 if "exists already" in str(exc) else 422)
    return web.json_response(_user(user), status=201)


async def _change_user(request: web.Request) -> web.Response:
    session = require(request, "admin")
    ports = request.app[ADMIN_KEY]
    username = request.match_info["username"]
    try:
        body = await read_json_object(request)
        unknown = sorted(set(body) - {"password", "role", "disabled", "display_name", "agent_id"})
        if unknown:
            raise AccountError(f"cannot change: {', '.join(unknown)}")
        disabled = body.get("disabled")
        if disabled is not None and not isinstance(disabled, bool):
            raise AccountError("disabled must be true or false")
        role = _opt_text(body, "role")
        if username == session.user.username and (disabled or (role and role != "admin")):
            raise AccountError("an admin cannot disable or demote their own account")
        if await ports.accounts.get(username) is None:
            return _error(f"no user {username!r}", 404)
        # Everything checked before anything is written: a refused change changes nothing.
        password = _opt_text(body, "password")
        if password is not None:
            check_password(password)
        user = await ports.accounts.update(
            username,
            role=role,
            display_name=_opt_text(body, "display_name"),
            agent_id=_opt_text(body, "agent_id"),
        )
        if password is not None:
            await ports.accounts.set_password(username, password)
        if disabled is not None:
            await ports.accounts.set_disabled(username, disabled)
            user = dataclasses.replace(user, disabled=disabled)
    except AgentControlError as exc:
        return _error(str(exc), exc.status)
    except AccountError as exc:
        return _error(str(exc), 422)
    if body:
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
