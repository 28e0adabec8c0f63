"""The one HTTP error path: every refusal of every endpoint leaves the server here.

Handlers do not build error answers. They raise: a domain error (the ACD refused, the call
cannot be held, the user exists already), or one of the HTTP layer's own problems (the body is
not JSON, nobody is logged in; ``cti.errors.HttpProblem``). ``error_middleware`` catches it and
answers JSON::

    {"error": "<stable machine id>", "detail": "<human text>"}

with the status and id taken from ``ERRORS``, the one table from error class to answer (looked
up along the class's MRO, so the most specific entry wins). A tool branches on ``error``; a
page shows ``detail``. Some answers add one key: ``fields`` (the paths of the body's values at
fault) for ``invalid_body``, ``key`` (the query parameter at fault) for ``bad_parameter``.

Anything else raised by a handler is a bug: it is logged with its traceback and answered 500
``{"error": "internal"}``, with nothing of the traceback in the body. aiohttp's own
``HTTPException`` (redirects, unknown routes) passes through untouched.

Order of the middlewares (``app.web``): ``security_headers`` outermost (every answer, errors
included, carries the CSP), then this one, then ``security_middleware`` (whose refusals are
problems raised like any other).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Final, NamedTuple

from aiohttp import web

from acd.errors import AcdError, AgentConflict, InvalidAgentRequest, UnknownAgent
from agent_console.accounts import AccountError, UnknownUser, UserExists
from agent_console.calls import CallConflict, CallNotFound, InvalidCallRequest, PbxUnavailable
from cti.errors import (
    BodyNotJson,
    BodyTooLarge,
    Forbidden,
    InvalidBody,
    InvalidQuery,
    NotFound,
    NotLoggedIn,
    Unavailable,
    UnsupportedMediaType,
)

__all__ = ["ERRORS", "Answer", "answer_for", "error_middleware"]

log = logging.getLogger(__name__)


class Answer(NamedTuple):
    status: int
    error: str  # the stable machine id


#: error class -> the answer; a subclass not listed takes its nearest listed base's.
ERRORS: Final[Mapping[type[Exception], Answer]] = MappingProxyType(
    {
        # the HTTP layer's own problems
        BodyNotJson: Answer(400, "body_not_json"),
        NotLoggedIn: Answer(401, "not_logged_in"),
        Forbidden: Answer(403, "forbidden"),
        NotFound: Answer(404, "not_found"),
        BodyTooLarge: Answer(413, "body_too_large"),
        UnsupportedMediaType: Answer(415, "unsupported_media_type"),
        InvalidBody: Answer(422, "invalid_body"),
        InvalidQuery: Answer(422, "bad_parameter"),
        Unavailable: Answer(503, "unavailable"),
        # the ACD
        UnknownAgent: Answer(404, "unknown_agent"),
        AgentConflict: Answer(409, "agent_conflict"),
        InvalidAgentRequest: Answer(422, "invalid_agent_request"),
        AcdError: Answer(422, "acd_refused"),  # unknown queue, bad number (a callback)
        # call control
        CallNotFound: Answer(404, "call_not_found"),
        CallConflict: Answer(409, "call_conflict"),
        InvalidCallRequest: Answer(422, "invalid_call_request"),
        PbxUnavailable: Answer(503, "pbx_unavailable"),
        # accounts
        UnknownUser: Answer(404, "unknown_user"),
        UserExists: Answer(409, "user_exists"),
        AccountError: Answer(422, "invalid_account"),
    }
)

_INTERNAL: Final = Answer(500, "internal")

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer_for(exc: BaseException) -> Answer | None:
    """The table's answer for ``exc``: its class's entry, or its nearest listed base's."""
    for cls in type(exc).__mro__:
        found = ERRORS.get(cls)
        if found is not None:
            return found
    return None


def _body(answer: Answer, exc: Exception) -> dict[str, object]:
    body: dict[str, object] = {"error": answer.error, "detail": str(exc)}
    if isinstance(exc, InvalidBody):
        body["fields"] = list(exc.fields)
    elif isinstance(exc, InvalidQuery):
        body["key"] = exc.key
    return body


@web.middleware
async def error_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        answer = answer_for(exc)
        if answer is not None:
            return web.json_response(_body(answer, exc), status=answer.status)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            # The socket may be open already: there is no HTTP answer left to give.
            raise
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response(
            {"error": _INTERNAL.error, "detail": "internal error (see the server log)"},
            status=_INTERNAL.status,
        )
