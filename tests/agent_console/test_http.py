"""The one HTTP error path (agent_console/http.py): the table, the answers' shape, a bug's 500
without its traceback, and the headers every answer keeps."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from acd.errors import AcdError, AgentConflict, AgentControlError, InvalidAgentRequest, UnknownAgent
from agent_console.accounts import AccountError, UnknownUser, UserExists
from agent_console.calls import CallConflict, CallNotFound, InvalidCallRequest, PbxUnavailable
from agent_console.http import ERRORS, Answer, answer_for, error_middleware
from agent_console.pages import CSP, security_headers
from cti.errors import CtiError, InvalidBody, NotFound

Client = TestClient[web.Request, web.Application]


class _Bug(Exception):
    pass


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async def refuse(request: web.Request) -> web.Response:
        raise {
            "agent": UnknownAgent("no agent 'zz'"),
            "call": CallConflict("the call is already on hold"),
            "body": InvalidBody("to.kind: Input should be 'agent'", ("to.kind",)),
            "bug": _Bug("secret internals at /srv/x.py line 3"),
            "found": web.HTTPFound("/login"),
        }[request.match_info["what"]]

    app = web.Application(middlewares=[security_headers, error_middleware])
    app.router.add_get("/x/{what}", refuse)
    async with TestClient(TestServer(app)) as client:
        yield client


def test_no_domain_error_carries_a_status() -> None:
    for cls in (AgentControlError, UnknownAgent, CallConflict, AccountError, UserExists):
        assert not hasattr(cls("x"), "status")


@pytest.mark.parametrize(
    ("error", "answer"),
    [
        (UnknownAgent("x"), Answer(404, "unknown_agent")),
        (AgentConflict("x"), Answer(409, "agent_conflict")),
        (InvalidAgentRequest("x"), Answer(422, "invalid_agent_request")),
        (AcdError("x"), Answer(422, "acd_refused")),
        (CallNotFound("x"), Answer(404, "call_not_found")),
        (CallConflict("x"), Answer(409, "call_conflict")),
        (InvalidCallRequest("x"), Answer(422, "invalid_call_request")),
        (PbxUnavailable("x"), Answer(503, "pbx_unavailable")),
        (UnknownUser("x"), Answer(404, "unknown_user")),
        (UserExists("x"), Answer(409, "user_exists")),
        (AccountError("x"), Answer(422, "invalid_account")),
        (NotFound("x"), Answer(404, "not_found")),
    ],
)
def test_the_most_specific_entry_wins(error: Exception, answer: Answer) -> None:
    assert answer_for(error) == answer


def test_a_plain_error_has_no_entry() -> None:
    # CtiError itself is not a refusal: a handler letting one escape is a bug (500).
    assert answer_for(CtiError("x")) is None
    assert answer_for(ValueError("x")) is None
    assert len({answer.error for answer in ERRORS.values()}) == len(ERRORS)  # ids are unique


async def test_a_domain_error_is_answered_with_its_id_and_detail(client: Client) -> None:
    response = await client.get("/x/agent")
    assert (response.status, await response.json()) == (
        404,
        {"error": "unknown_agent", "detail": "no agent 'zz'"},
    )
    assert response.headers["Content-Security-Policy"] == CSP
    response = await client.get("/x/call")
    assert (response.status, (await response.json())["error"]) == (409, "call_conflict")


async def test_an_invalid_body_names_its_fields(client: Client) -> None:
    response = await client.get("/x/body")
    assert (response.status, await response.json()) == (
        422,
        {
            "error": "invalid_body",
            "detail": "to.kind: Input should be 'agent'",
            "fields": ["to.kind"],
        },
    )


async def test_a_bug_is_500_internal_logged_and_not_shown(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="agent_console.http"):
        response = await client.get("/x/bug")
    assert response.status == 500
    body = await response.json()
    assert body["error"] == "internal"
    assert "secret" not in await response.text()
    assert "Traceback" not in body["detail"]
    assert response.headers["Content-Security-Policy"] == CSP
    [record] = [r for r in caplog.records if r.name == "agent_console.http"]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], _Bug)


async def test_aiohttp_answers_pass_through(client: Client) -> None:
    response = await client.get("/x/found", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (302, "/login")
    response = await client.get("/nowhere")
    assert response.status == 404
