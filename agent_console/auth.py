"""Log-in, sessions and request checks for the console's HTTP API (aiohttp).

    POST /api/login   {"username", "password"}  -> 200 {"user", "csrf"} + session cookie
    POST /api/logout                             -> 200, cookie cleared, session deleted
    GET  /api/me                                 -> 200 {"user", "csrf"} | 401

Rules every request under ``/api/`` goes through (``security_middleware``; its refusals are
raised, and answered like every other by ``agent_console.http``):

- The session cookie (``cti_session``) is ``HttpOnly`` (no script reads it), ``SameSite=Strict``
  (no other site's page sends it), ``Secure`` on HTTPS, and a new one is issued at every login
  (a token set before log-in is never promoted: no session fixation).
- A state-changing request (anything but GET/HEAD/OPTIONS) must carry the session's CSRF token
  in ``X-CSRF-Token``, and, when the browser sends an ``Origin`` (all current ones do on such
  requests), it must be the console's own origin or one configured. The log-in itself has no
  session yet: only the Origin check applies to it.
- ``require(request, role)`` gives the session or answers 401 (not logged in) / 403 (role too
  low); handlers call it first, so a permission is checked on the server, never only in the page.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from acd.api import read_body
from agent_console.accounts import AccountStore, Role, SessionInfo, UserInfo
from agent_console.schemas import Credentials
from cti.errors import Forbidden, NotLoggedIn

__all__ = [
    "ACCOUNTS_KEY",
    "CSRF_HEADER",
    "ON_LOGOUT_KEY",
    "ORIGINS_KEY",
    "PROTECTED_PREFIXES",
    "SESSION_COOKIE",
    "add_auth_routes",
    "current_session",
    "origin_allowed",
    "require",
    "security_middleware",
    "session_of",
    "user_view",
]

SESSION_COOKIE = "cti_session"
CSRF_HEADER = "X-CSRF-Token"
ACCOUNTS_KEY = web.AppKey("accounts", AccountStore)
ORIGINS_KEY: web.AppKey[frozenset[str]] = web.AppKey("origins")
#: Told (user name, session token) when a session logs out: the live pages of it close.
ON_LOGOUT_KEY: web.AppKey[Callable[[str, str], None]] = web.AppKey("on_logout")
_SESSION: web.RequestKey[SessionInfo | None] = web.RequestKey(
    "cti.session",
    SessionInfo | None,  # type: ignore[arg-type]
)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def origin_allowed(request: web.Request, origin: str | None) -> bool:
    """The request's own origin, or one of the configured ones. No Origin header: allowed
    (non-browser clients; browsers always send it on cross-site and state-changing requests)."""
    if origin is None:
        return True
    own = f"{request.scheme}://{request.host}"
    return origin == own or origin in request.app.get(ORIGINS_KEY, frozenset())


#: Paths outside /api/ that are for supervisors and admins only: the ACD's control API, the
#: reports and the admin actions. With log-in on, nothing there answers without a session.
PROTECTED_PREFIXES: dict[str, Role] = {
    "/acd/": "supervisor",
    "/reports/": "supervisor",
    "/admin/": "admin",
}


@web.middleware
async def security_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    needed = next(
        (role for prefix, role in PROTECTED_PREFIXES.items() if request.path.startswith(prefix)),
        None,
    )
    if not request.path.startswith("/api/") and needed is None:
        return await handler(request)
    session = await current_session(request)
    request[_SESSION] = session
    if request.method not in _SAFE_METHODS:
        if not origin_allowed(request, request.headers.get("Origin")):
            raise Forbidden("cross-origin request refused")
        if request.path != "/api/login":
            if session is None:
                raise NotLoggedIn("not logged in")
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
                raise Forbidden("missing or wrong CSRF token")
    if needed is not None:
        require(request, needed)
    return await handler(request)


async def current_session(request: web.Request) -> SessionInfo | None:
    """The live session of the request's cookie (None: no cookie, unknown, expired)."""
    token = request.cookies.get(SESSION_COOKIE, "")
    return await request.app[ACCOUNTS_KEY].session(token) if token else None


def session_of(request: web.Request) -> SessionInfo | None:
    return request.get(_SESSION)


def require(request: web.Request, role: Role = "agent") -> SessionInfo:
    """The request's session if its user has at least ``role``; else ``NotLoggedIn`` /
    ``Forbidden`` (401/403, answered by ``agent_console.http``)."""
    session = session_of(request)
    if session is None:
        raise NotLoggedIn("not logged in")
    if not session.user.at_least(role):
        raise Forbidden(f"needs the {role} role")
    return session


def user_view(user: UserInfo) -> dict[str, object]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "agent_id": user.agent_id,
    }


async def _login(request: web.Request) -> web.Response:
    body = await read_body(request, Credentials)
    accounts = request.app[ACCOUNTS_KEY]
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await accounts.logout(old)  # a new session at every login, whatever came before
    found = await accounts.login(body.username, body.password)
    if found is None:
        raise NotLoggedIn("wrong user name or password")
    token, session = found
    response = web.json_response({"user": user_view(session.user), "csrf": session.csrf_token})
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
        max_age=int(accounts.ttl),
    )
    return response


async def _logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        session = session_of(request)
        await request.app[ACCOUNTS_KEY].logout(token)
        on_logout = request.app.get(ON_LOGOUT_KEY)
        if on_logout is not None and session is not None:
            on_logout(session.user.username, token)  # its open pages close now
    response = web.json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def _me(request: web.Request) -> web.Response:
    session = require(request)
    return web.json_response({"user": user_view(session.user), "csrf": session.csrf_token})


def add_auth_routes(
    app: web.Application, accounts: AccountStore, *, origins: Iterable[str] = ()
) -> None:
    """Accounts on ``app``; add ``security_middleware`` to its middlewares too (at creation)."""
    app[ACCOUNTS_KEY] = accounts
    app[ORIGINS_KEY] = frozenset(origins)
    app.router.add_post("/api/login", _login)
    app.router.add_post("/api/logout", _logout)
    app.router.add_get("/api/me", _me)
