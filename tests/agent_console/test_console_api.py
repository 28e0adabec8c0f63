"""The console's HTTP API (agent_console/console_api.py) through the real server with a fake
Asterisk: permissions, the console configuration, wrap-up validation, customers, figures and
the abandoned-calls worklist."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.console import ConsoleServer, console_server, cookie_session

from acd.events import CallAnswered, CallEnded, CallOffered, CallQueued
from agent_console.auth import CSRF_HEADER
from agent_console.schemas import CustomerFound, CustomerView, Ok, Worklist
from cti.contracts.console import SupervisorAction, WrapUpRecorded

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0


Running = ConsoleServer


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with console_server(tmp_path) as server:
        yield server


def handled(running: Running, call_id: str, agent_id: str) -> None:
    """A call ``agent_id`` answered and ended (as the ACD tells the bus)."""
    for event in (
        CallQueued(call_id, "sales", "voice", 0, T0, T0),
        CallOffered(call_id, "sales", agent_id, f"PJSIP/{agent_id}", T0 + 5),
        CallAnswered(call_id, "sales", agent_id, 5.0, T0 + 6),
        CallEnded(call_id, "sales", agent_id, 40.0, 0.0, T0 + 46),
    ):
        running.server.bus.publish(event)


async def _json(response: aiohttp.ClientResponse) -> Any:
    return await response.json()


# -- permissions ------------------------------------------------------------------------------


async def test_nothing_answers_without_a_session(running: Running) -> None:
    async with cookie_session() as http:
        for path in (
            "/api/console/config",
            "/api/customers?q=ada",
            "/api/customers/C1001",
            "/api/worklist/abandoned",
            "/api/me/figures",
        ):
            async with http.get(f"{running.base}{path}") as response:
                assert response.status == 401, path
                assert await _json(response) == {
                    "error": "not_logged_in",
                    "detail": "not logged in",
                }
        async with http.post(f"{running.base}/api/customers", json={"name": "X"}) as response:
            assert response.status == 401


async def test_an_agent_cannot_see_the_worklist(running: Running) -> None:
    async with cookie_session() as http:
        csrf = await running.user(http, "ann", "agent", "agent1001")
        async with http.get(f"{running.base}/api/worklist/abandoned") as response:
            assert response.status == 403
        async with http.post(
            f"{running.base}/api/worklist/abandoned/x/callback", headers={CSRF_HEADER: csrf}
        ) as response:
            assert response.status == 403


async def test_a_post_without_the_csrf_token_or_from_another_origin_is_refused(
    running: Running,
) -> None:
    async with cookie_session() as http:
        csrf = await running.user(http, "ann", "agent", "agent1001")
        async with http.post(f"{running.base}/api/customers", json={"name": "X"}) as response:
            assert response.status == 403
        async with http.post(
            f"{running.base}/api/customers",
            json={"name": "X"},
            headers={CSRF_HEADER: "wrong"},
        ) as response:
            assert response.status == 403
        async with http.post(
            f"{running.base}/api/customers",
            json={"name": "X"},
            headers={CSRF_HEADER: csrf, "Origin": "http://evil.example"},
        ) as response:
            assert response.status == 403
        async with http.get(f"{running.base}/api/customers?q=X") as response:
            assert (await _json(response))["customers"] == []  # nothing was created


# -- configuration and figures ----------------------------------------------------------------


async def test_the_console_configuration_for_building_the_ui(running: Running) -> None:
    async with cookie_session() as http:
        await running.user(http, "ann", "agent", "agent1001")
        async with http.get(f"{running.base}/api/console/config") as response:
            assert response.status == 200
            config = await _json(response)
    assert {"code": "resolved", "label": "Resolved"} in config["dispositions"]
    assert "break" in config["not_ready_reasons"]
    assert config["queues"] == ["sales", "support"]
    assert {"agent_id": "agent1001", "name": config["agents"][0]["name"]} in config["agents"]
    assert config["alerts"]["long_wait"] == 60
    assert config["mask"] == "•"


async def test_an_agent_sees_their_own_figures(running: Running) -> None:
    handled(running, "F1", "agent1001")
    async with cookie_session() as http:
        await running.user(http, "ann", "agent", "agent1001")
        async with http.get(f"{running.base}/api/me/figures") as response:
            figures = await _json(response)
    assert figures["answered"] == 1
    assert figures["talk_seconds"] == 40.0
    assert figures["dispositions_missing"] == 1
    async with cookie_session() as http:
        await running.user(http, "sam", "supervisor")
        async with http.get(f"{running.base}/api/me/figures") as response:
            assert response.status == 403


# -- wrap-up ----------------------------------------------------------------------------------


async def test_wrap_up_validation(running: Running) -> None:
    handled(running, "W1", "agent1001")
    handled(running, "W2", "agent1002")
    async with cookie_session() as http:
        csrf = await running.user(http, "ann", "agent", "agent1001")
        url = f"{running.base}/api/calls/W1/wrap-up"
        headers = {CSRF_HEADER: csrf}
        for body, field in (
            ({"disposition": "no_such_code", "notes": ""}, "disposition"),
            ({"disposition": "resolved", "notes": "x" * 4001}, "notes"),
            ({"disposition": "resolved", "notes": 42}, "notes"),
            ({"disposition": "resolved", "end": "yes"}, "end"),
        ):
            async with http.post(url, json=body, headers=headers) as response:
                assert response.status == 422, body
                answer = await _json(response)
                assert (answer["error"], answer["fields"]) == ("invalid_body", [field])
                assert answer["detail"].startswith(f"{field}: ")
        async with http.post(
            f"{running.base}/api/calls/W2/wrap-up",
            json={"disposition": "resolved"},
            headers=headers,
        ) as response:
            assert response.status == 409
        async with http.post(
            url, json={"disposition": "resolved", "notes": "x" * 4000}, headers=headers
        ) as response:
            assert response.status == 200
    wraps = [e for e in running.published if isinstance(e, WrapUpRecorded)]
    assert [(w.call_id, w.agent_id, w.username, w.disposition) for w in wraps] == [
        ("W1", "agent1001", "ann", "resolved")
    ]


async def test_a_supervisor_without_an_agent_cannot_wrap_up(running: Running) -> None:
    handled(running, "W3", "agent1001")
    async with cookie_session() as http:
        csrf = await running.user(http, "sam", "supervisor")
        async with http.post(
            f"{running.base}/api/calls/W3/wrap-up",
            json={"disposition": "resolved"},
            headers={CSRF_HEADER: csrf},
        ) as response:
            assert response.status == 403


# -- customers --------------------------------------------------------------------------------


async def test_customers_search_get_create_and_edit(running: Running) -> None:
    async with cookie_session() as http:
        csrf = await running.user(http, "ann", "agent", "agent1001")
        headers = {CSRF_HEADER: csrf}
        # The demo customers are imported at start.
        async with http.get(f"{running.base}/api/customers", params={"q": "lovelace"}) as r:
            found = (await _json(r))["customers"]
        assert [c["ref"] for c in found] == ["C1001"]
        async with http.get(f"{running.base}/api/customers", params={"q": "5551234"}) as r:
            assert [c["ref"] for c in (await _json(r))["customers"]] == ["C1001"]
        async with http.get(f"{running.base}/api/customers", params={"q": "100200"}) as r:
            assert [c["ref"] for c in (await _json(r))["customers"]] == ["C1001"]
        async with http.get(f"{running.base}/api/customers/C1001") as r:
            assert r.status == 200
            record = await _json(r)
        CustomerFound.model_validate(record)  # the answer is what the description says
        assert record["customer"]["name"] == "Ada Lovelace"
        assert record["insight"]["vip"] is True
        assert [c["subject"] for c in record["cases"]] == ["Invoice question"]
        async with http.get(f"{running.base}/api/customers/NOPE") as r:
            assert r.status == 404

        async with http.post(
            f"{running.base}/api/customers",
            json={"name": "<img src=x onerror=alert(1)>", "phone": "5557777"},
            headers=headers,
        ) as r:
            assert r.status == 201, await r.text()
            created = await _json(r)
        CustomerView.model_validate(created)
        ref = created["ref"]
        assert created["name"] == "<img src=x onerror=alert(1)>"
        assert created["phones"] == [{"number": "5557777", "kind": "phone"}]

        async with http.patch(
            f"{running.base}/api/customers/{ref}",
            json={"email": "new@example.com", "tier": "gold", "notes": "called twice"},
            headers=headers,
        ) as r:
            assert r.status == 200, await r.text()
            edited = await _json(r)
        assert (edited["email"], edited["tier"], edited["notes"]) == (
            "new@example.com",
            "gold",
            "called twice",
        )
        assert edited["name"] == "<img src=x onerror=alert(1)>"
        assert edited["phones"] == [{"number": "5557777", "kind": "phone"}]
        async with http.get(f"{running.base}/api/customers/{ref}") as r:
            assert (await _json(r))["customer"] == edited


async def test_customer_writes_that_are_refused(running: Running) -> None:
    async with cookie_session() as http:
        csrf = await running.user(http, "ann", "agent", "agent1001")
        headers = {CSRF_HEADER: csrf}
        async with http.post(
            f"{running.base}/api/customers",
            json={"name": "Bad Mail", "email": "not-an-address"},
            headers=headers,
        ) as r:
            assert r.status == 422
            answer = await _json(r)
            assert answer["error"] == "invalid_body"
            assert "email" in answer["detail"]
        async with http.post(
            f"{running.base}/api/customers", json={"name": 7}, headers=headers
        ) as r:
            assert r.status == 422
        async with http.patch(
            f"{running.base}/api/customers/C1001", json={"ref": "C9"}, headers=headers
        ) as r:
            assert r.status == 422
            answer = await _json(r)
            assert (answer["error"], answer["fields"]) == ("invalid_body", ["ref"])
            assert answer["detail"].startswith("ref: ")
        async with http.patch(
            f"{running.base}/api/customers/C1001", json={"email": "nope"}, headers=headers
        ) as r:
            assert r.status == 422
        async with http.patch(
            f"{running.base}/api/customers/NOPE", json={"name": "X"}, headers=headers
        ) as r:
            assert r.status == 404
        async with http.get(f"{running.base}/api/customers/C1001") as r:
            customer = (await _json(r))["customer"]
        assert customer["ref"] == "C1001"
        assert customer["email"] is None or "nope" not in customer["email"]


# -- the worklist -----------------------------------------------------------------------------


async def test_a_call_back_from_the_worklist_is_scheduled_removed_and_audited(
    running: Running,
) -> None:
    acd = running.server.acd
    assert acd is not None
    acd.service.enqueue("AB1", "PJSIP/trunk-AB1", "sales", ani="5551234")
    acd.service.hangup("AB1")  # nobody was ready: the caller gave up
    async with cookie_session() as http:
        csrf = await running.user(http, "sam", "supervisor")
        async with http.get(f"{running.base}/api/worklist/abandoned") as r:
            worklist = await _json(r)
        Worklist.model_validate(worklist)
        calls = worklist["calls"]
        assert [(c["key"], c["number"], c["queue"]) for c in calls] == [("AB1", "5551234", "sales")]
        async with http.post(
            f"{running.base}/api/worklist/abandoned/AB1/callback", headers={CSRF_HEADER: csrf}
        ) as r:
            assert r.status == 202, await r.text()
            body = await _json(r)
        Ok.model_validate(body)
        call = acd.service.calls[body["call_id"]]
        assert (call.kind, call.number, call.queue) == ("callback", "5551234", "sales")
        async with http.get(f"{running.base}/api/worklist/abandoned") as r:
            assert (await _json(r))["calls"] == []
        async with http.post(
            f"{running.base}/api/worklist/abandoned/AB1/callback", headers={CSRF_HEADER: csrf}
        ) as r:
            assert r.status == 404
    audit = [e for e in running.published if isinstance(e, SupervisorAction)]
    assert [(a.username, a.action) for a in audit] == [("sam", "call-back")]
    assert "5551234" in audit[0].detail
