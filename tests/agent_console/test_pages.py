"""The console's pages: routes, security headers, role redirect, static allow-list, and a
scan of every shipped HTML/JS file for the things the CSP forbids or that would let hostile
CRM text become markup."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent_console.accounts import AccountStore
from agent_console.auth import SESSION_COOKIE, add_auth_routes, security_middleware
from agent_console.http import error_middleware
from agent_console.pages import CSP, STATIC_DIR, add_page_routes, page_for_role, security_headers
from crm_bridge.db import create_engine, migrate

Client = TestClient[web.Request, web.Application]

PAGES = {
    "/login": "login.html",
    "/agent": "agent.html",
    "/supervisor": "supervisor.html",
    "/admin": "admin.html",
}


async def _boom(request: web.Request) -> web.Response:
    raise web.HTTPConflict(text="no")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}")
    await migrate(engine)
    accounts = AccountStore(engine, log2_n=10, ttl=3600)
    await accounts.add_user("ann", "ann-password", "agent", agent_id="agent1001")
    await accounts.add_user("sam", "sam-password", "supervisor")
    await accounts.add_user("ada", "ada-password", "admin")
    app = web.Application(middlewares=[security_headers, error_middleware, security_middleware])
    add_auth_routes(app, accounts)
    add_page_routes(app)
    app.router.add_post("/api/boom", _boom)
    test_client = TestClient(TestServer(app))
    await test_client.start_server()
    try:
        yield test_client
    finally:
        await test_client.close()
        await engine.dispose()


def _assert_security_headers(headers: Mapping[str, str]) -> None:
    assert headers.get("Content-Security-Policy") == CSP
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert headers.get("Referrer-Policy") == "no-referrer"
    assert headers.get("X-Frame-Options") == "DENY"


def test_csp_is_the_contracts() -> None:
    assert "script-src 'self'" in CSP
    assert "unsafe-inline" not in CSP
    assert "unsafe-eval" not in CSP
    assert "frame-ancestors 'none'" in CSP
    assert "object-src 'none'" in CSP


@pytest.mark.parametrize(("route", "name"), sorted(PAGES.items()))
async def test_pages_are_served_with_headers(client: Client, route: str, name: str) -> None:
    response = await client.get(route)
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    _assert_security_headers(response.headers)
    assert await response.read() == (STATIC_DIR / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("console.css", "text/css"),
        ("common.js", "text/javascript"),
        ("agent.js", "text/javascript"),
    ],
)
async def test_static_files_are_served(client: Client, name: str, content_type: str) -> None:
    response = await client.get(f"/static/{name}")
    assert response.status == 200
    assert response.content_type == content_type
    _assert_security_headers(response.headers)
    assert await response.read() == (STATIC_DIR / name).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/static/../pages.py",
        "/static/%2e%2e/pages.py",
        "/static/..%2fpages.py",
        "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/static/",
        "/static",
        "/static/nothing.js",
        "/static/.hidden",
        "/static/pages.py",
    ],
)
async def test_traversal_and_listing_refused(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status == 404
    body = await response.text()
    assert "import" not in body
    assert "[project]" not in body
    _assert_security_headers(response.headers)


async def test_api_responses_and_errors_carry_headers(client: Client) -> None:
    me = await client.get("/api/me")
    assert me.status == 401
    _assert_security_headers(me.headers)
    refused = await client.post("/api/login", json={"username": "ann", "password": "wrong"})
    assert refused.status == 401
    _assert_security_headers(refused.headers)


async def test_raised_http_errors_carry_headers(client: Client) -> None:
    csrf = (
        await (
            await client.post("/api/login", json={"username": "ann", "password": "ann-password"})
        ).json()
    )["csrf"]
    response = await client.post("/api/boom", headers={"X-CSRF-Token": csrf})
    assert response.status == 409
    _assert_security_headers(response.headers)


async def test_root_without_session_goes_to_login(client: Client) -> None:
    response = await client.get("/", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/login"
    _assert_security_headers(response.headers)


async def test_root_with_unknown_session_goes_to_login(client: Client) -> None:
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: "forged-token"})
    response = await client.get("/", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/login"


@pytest.mark.parametrize(
    ("username", "password", "page"),
    [
        ("ann", "ann-password", "/agent"),
        ("sam", "sam-password", "/supervisor"),
        ("ada", "ada-password", "/supervisor"),
    ],
)
async def test_root_redirects_by_role(
    client: Client, username: str, password: str, page: str
) -> None:
    login = await client.post("/api/login", json={"username": username, "password": password})
    assert login.status == 200
    response = await client.get("/", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == page


async def test_root_after_logout_goes_to_login(client: Client) -> None:
    login = await client.post("/api/login", json={"username": "ann", "password": "ann-password"})
    csrf = (await login.json())["csrf"]
    token = client.session.cookie_jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE].value
    await client.post("/api/logout", headers={"X-CSRF-Token": csrf})
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: token})  # replay the old cookie
    response = await client.get("/", allow_redirects=False)
    assert response.headers["Location"] == "/login"


def test_page_for_role() -> None:
    assert page_for_role("agent") == "/agent"
    assert page_for_role("supervisor") == "/supervisor"
    assert page_for_role("admin") == "/supervisor"
    assert page_for_role("intruder") == "/login"


# ---- static scan of what the browser runs -------------------------------------------------

_FILES = sorted(p for p in STATIC_DIR.iterdir() if p.suffix in {".html", ".js", ".css"})
_HTML = [p for p in _FILES if p.suffix == ".html"]
_JS = [p for p in _FILES if p.suffix == ".js"]
_FORBIDDEN_JS = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function\b"
    r"|setTimeout\(\s*[\"'`]|setInterval\(\s*[\"'`]|javascript:"
)
_ON_ATTRIBUTE = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
_ON_PROPERTY = re.compile(r"\.on[a-z]+\s*=(?!=)")
_URL = re.compile(r"https?://", re.IGNORECASE)


def test_static_scan_found_the_pages() -> None:
    names = {p.name for p in _FILES}
    assert {"login.html", "agent.html", "supervisor.html", "admin.html", "common.js"} <= names
    assert len(_JS) >= 5


@pytest.mark.parametrize("path", _HTML, ids=lambda p: p.name)
def test_html_has_no_inline_code(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for tag in re.findall(r"<script\b[^>]*>", text, re.IGNORECASE):
        assert re.search(r'\bsrc="/static/[a-z_]+\.js"', tag), tag
        assert 'type="module"' in tag, tag
    # every <script> is empty: no inline code
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", text, re.IGNORECASE)
    assert not re.search(r"<style\b", text, re.IGNORECASE)
    assert not re.search(r"\sstyle\s*=", text, re.IGNORECASE)
    assert not _ON_ATTRIBUTE.search(text)
    assert not _URL.search(text)
    assert "javascript:" not in text.lower()


@pytest.mark.parametrize("path", _JS, ids=lambda p: p.name)
def test_js_builds_dom_as_text_only(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not _FORBIDDEN_JS.search(text), _FORBIDDEN_JS.search(text)
    assert not _ON_PROPERTY.search(text), _ON_PROPERTY.search(text)
    assert not re.search(r"\.style\b|setAttribute\(\s*[\"']style", text)
    assert not _URL.search(text)


@pytest.mark.parametrize("path", [p for p in _FILES if p.suffix == ".css"], ids=lambda p: p.name)
def test_css_loads_nothing_external(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not _URL.search(text)
    assert "@import" not in text
    assert "url(" not in text


def test_scan_would_catch_violations() -> None:
    # The patterns are tested against known-bad samples, so a passing scan means something.
    assert _FORBIDDEN_JS.search("node.innerHTML = name")
    assert _FORBIDDEN_JS.search("eval (code)")
    assert _FORBIDDEN_JS.search("new Function('x')")
    assert _ON_ATTRIBUTE.search('<img src=x onerror="alert(1)">')
    assert _ON_PROPERTY.search("button.onclick = go")
    assert not _ON_PROPERTY.search("a.onclick === b")
    assert _URL.search("https://cdn.example/x.js")
