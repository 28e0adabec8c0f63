"""The console's web pages: four HTML shells and their static CSS/JS, plus security headers.

    GET /              -> 302 /login, or the page of the logged-in user's role
    GET /login /agent /supervisor /admin   -> the HTML shells (no-store)
    GET /static/<name> -> a file of ``agent_console/static/`` named in a fixed allow-list

The pages are plain ES modules with no build step; every piece of data is put in the DOM with
``textContent``, so a caller name such as ``<img src=x onerror=...>`` stays text. The
Content-Security-Policy below forbids inline script and style, which is what makes that a
guarantee rather than a habit: even a slip in the JS could not run injected markup.

Static files are served from an allow-list built once at start (names matched exactly against
the directory's own listing), so there is no path to resolve, no traversal and no listing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from agent_console.auth import current_session

__all__ = ["CSP", "STATIC_DIR", "add_page_routes", "page_for_role", "security_headers"]

STATIC_DIR = Path(__file__).parent / "static"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
}
_PAGES = {
    "/login": "login.html",
    "/agent": "agent.html",
    "/supervisor": "supervisor.html",
    "/admin": "admin.html",
}
_ROLE_PAGES = {"agent": "/agent", "supervisor": "/supervisor", "admin": "/supervisor"}


def page_for_role(role: str) -> str:
    """Where a user of ``role`` lands after log-in (admins watch the monitor too)."""
    return _ROLE_PAGES.get(role, "/login")


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Add the contract's headers to every response, errors included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        # aiohttp raises redirects and errors; they are responses too and need the headers.
        _apply(exc)
        raise
    _apply(response)
    return response


def _apply(response: web.StreamResponse) -> None:
    if response.prepared:  # websocket upgrades and streamed bodies: headers already sent
        return
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)


def _load_static() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for path in sorted(STATIC_DIR.iterdir()):
        content_type = _TYPES.get(path.suffix)
        if path.is_file() and content_type is not None:
            files[path.name] = (path.read_bytes(), content_type)
    return files


def _file_response(body: bytes, content_type: str) -> web.Response:
    response = web.Response(body=body, content_type=content_type, charset="utf-8")
    # HTML is never cached (a stale page after an upgrade would talk to a changed API);
    # CSS/JS are revalidated each load for the same reason, they are small.
    response.headers["Cache-Control"] = "no-store" if content_type == "text/html" else "no-cache"
    return response


def add_page_routes(app: web.Application) -> None:
    """Register ``/``, the pages and ``/static/{name}`` on ``app``; add ``security_headers``
    to the app's middlewares as well (at creation)."""
    files = _load_static()

    async def root(request: web.Request) -> web.Response:
        session = await current_session(request)
        target = "/login" if session is None else page_for_role(session.user.role)
        raise web.HTTPFound(target)

    def page(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            body, content_type = files[name]
            return _file_response(body, content_type)

        return handler

    async def static(request: web.Request) -> web.Response:
        found = files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(text="not found")
        return _file_response(*found)

    app.router.add_get("/", root)
    for route, name in _PAGES.items():
        app.router.add_get(route, page(name))
    app.router.add_get("/static/{name}", static)
