"""The server with its CRM store: facts from the bus reach the store, health and metrics show
it, and with an external CRM configured, lookups go there and finished interactions are
written back to it (an aiohttp test server plays the external CRM)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from support.console import cookie_session, sign_in
from support.server import eventually

from acd.events import CallAnswered, CallEnded, CallOffered, CallQueued
from app.server import Server
from app.settings import Settings, load_settings
from crm_bridge.schema import Interaction
from crm_bridge.webhooks import WebhookSettings, verify
from sandbox.fake_ami import FakeAsterisk

T0 = 1_800_000_000.0


@pytest.fixture
async def fake() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk() as fake:
        yield fake


class ExternalCrm:
    """The external CRM: one customer by phone, and every write-back recorded."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, dict[str, Any], str]] = []
        self.lookups: list[str] = []
        app = web.Application()
        app.router.add_get("/customers", self._lookup)
        app.router.add_post("/interactions/{key}", self._write)
        self.server = TestServer(app)

    async def _lookup(self, request: web.Request) -> web.Response:
        phone = request.query.get("phone", "")
        self.lookups.append(phone)
        if phone == "5551234":
            return web.json_response({"id": "X-77", "name": "Ada External", "tier": "gold"})
        return web.json_response({}, status=404)

    async def _write(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.writes.append((request.match_info["key"], body, request.headers["Idempotency-Key"]))
        return web.json_response({"ok": True})


def _settings(fake: FakeAsterisk, tmp_path: Path, *extra: str) -> Settings:
    return load_settings(
        environ={},
        overrides=(
            f"ami.port={fake.port}",
            f"ami.username={fake.username}",
            f"ami.secret={fake.secret}",
            "agi.port=0",
            "http.port=0",
            "acd.enabled=false",
            f"crm.url=sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}",
            *extra,
        ),
    )


def _answered_call(key: str) -> list[object]:
    return [
        CallQueued(key, "sales", "voice", 0, T0, T0),
        CallOffered(key, "sales", "a1", "PJSIP/a1", T0 + 5),
        CallAnswered(key, "sales", "a1", 6.0, T0 + 6),
        CallEnded(key, "sales", "a1", 40.0, 2.0, T0 + 48),
    ]


async def test_bus_facts_reach_the_store_and_health_shows_it(
    fake: FakeAsterisk, tmp_path: Path
) -> None:
    async with Server(_settings(fake, tmp_path)) as server, cookie_session() as http:
        await server.ami.wait_connected(5)
        for event in _answered_call("L1"):
            server.bus.publish(event)
        assert server.crm_writer is not None
        assert server.crm_engine is not None
        await server.crm_writer.flush(5)
        async with server.crm_engine.connect() as conn:
            row = (await conn.execute(select(Interaction))).one()
        assert (row.key, row.queue, row.agent_id, row.outcome, row.talk_seconds) == (
            "L1",
            "sales",
            "a1",
            "answered",
            40.0,
        )
        base = f"http://127.0.0.1:{server.http_port}"
        async with http.get(f"{base}/healthz") as response:
            health = await response.json()
        assert health["crm"] == {
            "ok": True,
            "buffered": 0,
            "unavailable_since": None,
            "last_error": "",
        }
        async with http.get(f"{base}/metrics") as response:
            metrics = await response.text()
        assert "ctiserver_crm_events_written_total 4.0" in metrics
        # Reports are for supervisors: refused without a session, served with one.
        async with http.get(f"{base}/reports/queues?from=2027-01-15") as response:
            assert response.status == 401
        assert server.accounts is not None
        await sign_in(http, base, server.accounts)
        async with http.get(f"{base}/reports/queues?from=2027-01-15") as response:
            assert response.status == 200
            report = await response.json()
        assert report["report"] == "queues"


async def test_the_external_crm_answers_lookups_and_receives_finished_interactions(
    fake: FakeAsterisk, tmp_path: Path
) -> None:
    crm = ExternalCrm()
    await crm.server.start_server()
    external = {
        "url_template": str(crm.server.make_url("/customers")) + "?phone={phone}",
        # Written by hand: yarl would percent-encode the braces of the placeholder.
        "write_url": f"http://127.0.0.1:{crm.server.port}/interactions/{{id}}",
        "headers": {"Authorization": "Bearer t0ken"},
    }
    try:
        config = tmp_path / "cti.yaml"
        settings = {
            "ami": {"port": fake.port, "username": fake.username, "secret": fake.secret},
            "agi": {"port": 0},
            "http": {"port": 0},
            "acd": {"enabled": False},
            "ivr": {
                "flows": [str(Path(__file__).parents[2] / "config" / "ivr")],
                "customers": None,
            },
            "crm": {"url": f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}", "external": external},
        }
        config.write_text(json.dumps(settings), encoding="utf-8")  # JSON is YAML
        async with Server(load_settings(config, environ={})) as server:
            await server.ami.wait_connected(5)
            # The IVR's lookups go to the external CRM.
            directory = server.external_crm
            assert directory is not None
            record = await directory.find("ani", "5551234")
            assert record is not None
            assert record["name"] == "Ada External"
            assert crm.lookups == ["5551234"]
            # A finished call is written back, once, with its idempotency key.
            for event in _answered_call("L9"):
                server.bus.publish(event)
            await eventually("the write-back", lambda: bool(crm.writes), within=10)
            key, body, idempotency = crm.writes[0]
            assert (key, idempotency, body["outcome"], body["agent_id"]) == (
                "L9",
                "L9",
                "answered",
                "a1",
            )
    finally:
        await crm.server.close()


async def test_console_accounts_log_in_through_the_server(
    fake: FakeAsterisk, tmp_path: Path
) -> None:
    # unsafe=True: aiohttp's client, unlike a browser, ignores cookies from an IP address.
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        Server(_settings(fake, tmp_path)) as server,
        aiohttp.ClientSession(cookie_jar=jar) as http,
    ):
        assert server.accounts is not None
        await server.accounts.add_user("sam", "sam-password", "supervisor")
        base = f"http://127.0.0.1:{server.http_port}"
        async with http.get(f"{base}/api/me") as response:
            assert response.status == 401
        login = {"username": "sam", "password": "sam-password"}
        async with http.post(f"{base}/api/login", json=login) as response:
            assert response.status == 200
            csrf = (await response.json())["csrf"]
        async with http.get(f"{base}/api/me") as response:
            assert (response.status, (await response.json())["user"]["role"]) == (
                200,
                "supervisor",
            )
        async with http.post(f"{base}/api/logout") as response:
            assert response.status == 403  # no CSRF token: refused
        async with http.post(f"{base}/api/logout", headers={"X-CSRF-Token": csrf}) as response:
            assert response.status == 200


@pytest.mark.parametrize("store", [True, False], ids=["with-store", "without-store"])
async def test_webhooks_receive_each_interaction_fact_once_signed(
    fake: FakeAsterisk, tmp_path: Path, store: bool
) -> None:
    received: list[tuple[str, str, bytes, dict[str, str]]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        received.append(
            (
                request.headers["X-CTI-Event"],
                request.headers["X-CTI-Delivery"],
                body,
                dict(request.headers),
            )
        )
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    secret = "a-webhook-secret-of-some-length"
    async with TestServer(app) as receiver:
        settings = _settings(fake, tmp_path, f"crm.enabled={str(store).lower()}")
        hook_settings = WebhookSettings(url=str(receiver.make_url("/hook")), secret=secret)
        settings = settings.model_copy(
            update={"crm": settings.crm.model_copy(update={"webhooks": [hook_settings]})}
        )
        async with Server(settings) as server:
            await server.ami.wait_connected(5)
            for event in _answered_call("W1"):
                server.bus.publish(event)
            await eventually("four deliveries", lambda: len(received) >= 4)
    assert [kind for kind, *_ in received] == ["queued", "offered", "answered", "ended"]
    assert len({delivery for _, delivery, *_ in received}) == 4  # each fact once
    for _, _, body, headers in received:
        assert verify(secret, headers, body, time.time())
