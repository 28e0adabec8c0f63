"""The OpenAPI description matches the routes the server really registers: every route
described, nothing described that does not exist (so it cannot drift from the handlers)."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from agent_console.openapi import OPENAPI_PATH, openapi
from app.server import Server
from app.settings import load_settings
from sandbox.fake_ami import FakeAsterisk

ROOT = Path(__file__).resolve().parents[2]
# The pages and their files are not API: described in docs/console.md.
PAGES = {"/", "/login", "/agent", "/supervisor", "/admin", "/static/{name}"}
_METHODS = {"get", "post", "patch", "put", "delete"}


def _described() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in openapi()["paths"].items()
        for method in operations
        if method in _METHODS
    }


async def test_every_route_is_described_and_nothing_else(tmp_path: Path) -> None:
    async with FakeAsterisk() as fake:
        settings = load_settings(
            environ={},
            overrides=(
                f"ami.port={fake.port}",
                f"ami.username={fake.username}",
                f"ami.secret={fake.secret}",
                "agi.port=0",
                "http.port=0",
                f"acd.state_dir={tmp_path / 'state'}",
                f"crm.url=sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}",
                f"config_dir={ROOT / 'config'}",
            ),
        )
        async with Server(settings) as server, aiohttp.ClientSession() as http:
            assert server._web_runner is not None
            app = server._web_runner.app
            registered = {
                (route.method, re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", route.resource.canonical))
                for route in app.router.routes()
                if route.method in {m.upper() for m in _METHODS} and route.resource is not None
            }
            registered = {(m, p) for m, p in registered if p not in PAGES}
            assert registered - _described() == set(), "routes missing from the description"
            assert _described() - registered == set(), "described routes that do not exist"
            async with http.get(f"http://127.0.0.1:{server.http_port}{OPENAPI_PATH}") as response:
                assert response.status == 200
                served = await response.json()
    assert served["openapi"] == "3.1.0"
    assert served["paths"].keys() == openapi()["paths"].keys()


def test_every_reference_resolves() -> None:
    document = openapi()
    schemas = document["components"]["schemas"]
    text = repr(document)
    for name in re.findall(r"#/components/schemas/(\w+)", text):
        assert name in schemas
