"""The OpenAPI description matches the routes the server really registers: every route
described, nothing described that does not exist (so it cannot drift from the handlers)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from acd.agent_state import AgentStatus
from acd.api import AGENT_ACTIONS
from agent_console.accounts import ROLES
from agent_console.http import ERRORS
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


def _refs(node: object) -> list[str]:
    """Every ``$ref`` in ``node``, at any depth."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> object:
    assert ref.startswith("#/"), ref
    node: object = document
    for part in ref[2:].split("/"):
        assert isinstance(node, dict), ref
        assert part in node, f"dangling reference {ref}"
        node = node[part]
    return node


def _check_references(document: dict[str, Any]) -> None:
    refs = set(_refs(document))
    # The bodies are generated as components: a description without references has lost them.
    assert len(refs) >= 10, f"only {len(refs)} references"
    for ref in refs:
        assert isinstance(_resolve(document, ref), dict), ref
    # ... and no component is left unreferenced (a model described but used by no route).
    names = {ref.rsplit("/", 1)[1] for ref in refs}
    assert names == set(document["components"]["schemas"])


def test_every_reference_resolves() -> None:
    _check_references(openapi())


def test_the_reference_check_cannot_pass_vacuously() -> None:
    document = openapi()
    answer = document["paths"]["/api/me"]["get"]["responses"]["200"]
    answer["content"]["application/json"] = {"schema": {"$ref": "#/components/schemas/Nowhere"}}
    with pytest.raises(AssertionError, match="dangling reference"):
        _check_references(document)
    with pytest.raises(AssertionError, match="only 0 references"):
        _check_references({"paths": {}, "components": {"schemas": {}}})


def test_bodies_are_the_models_the_handlers_validate_with() -> None:
    paths = openapi()["paths"]
    schemas = openapi()["components"]["schemas"]

    def body_of(path: str, method: str = "post") -> dict[str, Any]:
        schema = paths[path][method]["requestBody"]["content"]["application/json"]["schema"]
        resolved = _resolve(openapi(), schema["$ref"])
        assert isinstance(resolved, dict)
        return resolved

    for verb, action in AGENT_ACTIONS.items():
        for prefix in ("/api", "/acd"):
            body = body_of(f"{prefix}/agents/{{agent_id}}/{verb}")
            assert body == schemas[action.body.__name__]
            assert body.get("required", []) == [
                name for name, field in action.body.model_fields.items() if field.is_required()
            ]
    transfer = body_of("/api/calls/{call_id}/transfer")
    assert transfer["required"] == ["mode", "to"]
    assert schemas["TransferTarget"]["properties"]["kind"]["enum"] == ["agent", "queue", "number"]
    assert body_of("/api/admin/users/{username}", "patch")["additionalProperties"] is False
    assert schemas["AgentView"]["properties"]["status"] == {
        "$ref": "#/components/schemas/AgentStatus"
    }
    assert schemas["AgentStatus"]["enum"] == [status.value for status in AgentStatus]
    assert schemas["UserView"]["properties"]["role"]["enum"] == list(ROLES)


def test_every_error_answer_names_its_ids() -> None:
    for path, operations in openapi()["paths"].items():
        for method, op in operations.items():
            for code, answer in op["responses"].items():
                if int(code) < 400:
                    continue
                assert answer["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorBody"
                }, (method, path, code)
                ids = [a.error for a in ERRORS.values() if a.status == int(code)]
                for error in ids:
                    assert error in answer["description"], (method, path, code, error)
