"""One exception tree for the whole server.

    CtiError
    ├── ConfigError                 a configuration file or value is wrong (names file and key)
    ├── ProtocolError               a protocol rule was broken
    │   ├── RemoteProtocolError     ... by the peer (Asterisk sent something malformed or too big)
    │   └── LocalProtocolError      ... by us (an action or command we cannot send as asked)
    ├── AmiError                    the manager interface refused or lost an action
    │   ├── AmiAuthError            login refused
    │   ├── AmiActionError          the action was answered ``Response: Error``
    │   ├── AmiConnectionLost       the connection dropped before the answer came; the action
    │   │                           was NOT re-sent (it may or may not have run)
    │   ├── AmiNotConnected         no connection to send the action on
    │   └── AmiTimeout              no answer within the deadline
    ├── AgiError                    a FastAGI command failed
    │   ├── AgiHangup               the channel is gone (511, or HANGUP then EOF)
    │   └── AgiCommandError         Asterisk answered 510 (unknown) or 520 (usage)
    ├── SandboxError                the Asterisk sandbox cannot be built, started or reached
    ├── HttpProblem                 an HTTP request wrong as HTTP, before any domain rule:
    │   ├── BodyTooLarge            ... its body is over the limit
    │   ├── BodyNotJson             ... its body is not JSON (or not UTF-8)
    │   ├── UnsupportedMediaType    ... its body is declared as something else than JSON
    │   ├── InvalidBody             ... its JSON does not fit the body's model (field paths)
    │   ├── InvalidQuery            ... a query parameter is wrong (names the key)
    │   ├── NotLoggedIn             ... it has no live session
    │   ├── Forbidden               ... its user may not do that (role, CSRF token, Origin)
    │   ├── NotFound                ... what its URL names does not exist (a customer, an item)
    │   └── Unavailable             ... the part of the server it needs is switched off
    └── (defined next to the code they belong to, to keep those modules self-contained)
        ├── acd.agent_state.IllegalAgentTransition   an agent event not allowed in its state
        ├── acd.errors.AcdError                      a request the ACD cannot carry out
        │   └── acd.errors.AgentControlError         an agent request refused (one class a reason)
        │       └── agent_console.calls.CallControlError   a call-control request refused
        ├── agent_console.accounts.AccountError      a user request refused
        ├── acd.ports.DeliveryError                  Asterisk could not start an offer
        ├── cti.calls.model.IllegalTransition         an AMI event the call model refuses
        ├── crm_bridge.writer.BufferFull              the interaction log's buffer is full
        └── crm_bridge.external.ExternalCrmError      an external CRM refused or stayed down

Errors of lower layers (OSError, asyncio.TimeoutError, yaml errors) are translated into these at
the boundary with ``raise ... from exc`` so callers handle one family.

No error here carries an HTTP status: the class says *why*, and the HTTP layer alone decides
which status and machine id that is, in one table (``agent_console.http``).
"""

from __future__ import annotations

__all__ = [
    "AgiCommandError",
    "AgiError",
    "AgiHangup",
    "AmiActionError",
    "AmiAuthError",
    "AmiConnectionLost",
    "AmiError",
    "AmiNotConnected",
    "AmiTimeout",
    "BodyNotJson",
    "BodyTooLarge",
    "ConfigError",
    "CtiError",
    "Forbidden",
    "HttpProblem",
    "InvalidBody",
    "InvalidQuery",
    "LocalProtocolError",
    "NotFound",
    "NotLoggedIn",
    "ProtocolError",
    "RemoteProtocolError",
    "SandboxError",
    "Unavailable",
    "UnsupportedMediaType",
]


class CtiError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(CtiError):
    """A configuration file or value is invalid.

    ``source`` is the file (or "environment"/"command line"), ``key`` the dotted path of the
    offending value; both are part of the message so an admin can find the mistake.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        self.source = source
        self.key = key
        where = ": ".join(part for part in (source, key) if part)
        super().__init__(f"{where}: {message}" if where else message)


class ProtocolError(CtiError):
    """A protocol rule was broken."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes we cannot accept (malformed, oversized, out of order)."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol cannot carry."""


class AmiError(CtiError):
    """An AMI action failed."""


class AmiAuthError(AmiError):
    """Asterisk refused the login."""


class AmiActionError(AmiError):
    """Asterisk answered an action with ``Response: Error``."""

    def __init__(self, action: str, message: str) -> None:
        self.action = action
        self.message = message
        super().__init__(f"{action}: {message}")


class AmiConnectionLost(AmiError):
    """The connection dropped while the action was in flight.

    The action is never re-sent on the next connection: an ``Originate`` sent twice is two
    phone calls. Whoever sent it decides whether a retry is safe.
    """


class AmiNotConnected(AmiError):
    """There is no logged-in manager connection to send the action on."""


class AmiTimeout(AmiError):
    """No answer came within the deadline."""


class AgiError(CtiError):
    """A FastAGI command failed."""


class AgiHangup(AgiError):
    """The channel hung up; commands that need a live channel can no longer run."""


class AgiCommandError(AgiError):
    """Asterisk answered 510 (invalid command) or 520 (usage)."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code} {message}")


class SandboxError(CtiError):
    """The Asterisk sandbox cannot be built, started or reached; the message says why and
    what to do instead (e.g. point the server at an existing Asterisk)."""


class HttpProblem(CtiError):
    """An HTTP request wrong as HTTP (its body, its session, its rights), found by the HTTP
    layer before any domain rule runs. Not a domain refusal: the ACD never raises these."""


class BodyTooLarge(HttpProblem):
    """The request body is over the limit of the endpoint."""


class BodyNotJson(HttpProblem):
    """The request body is not JSON text (or not UTF-8)."""


class UnsupportedMediaType(HttpProblem):
    """The request body is declared (``Content-Type``) as something else than JSON."""


class InvalidBody(HttpProblem):
    """The JSON body does not fit the endpoint's model.

    ``fields`` are the paths of the values at fault (``to.kind``, ``phones.2``; ``""`` for the
    body as a whole), so a tool can point at them without parsing the message.
    """

    def __init__(self, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields = fields


class InvalidQuery(HttpProblem):
    """A query parameter is wrong; ``key`` names it."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class NotLoggedIn(HttpProblem):
    """The request needs a live session and has none."""


class Forbidden(HttpProblem):
    """The session's user may not do this (role, own agent only, CSRF token, Origin)."""


class NotFound(HttpProblem):
    """What the request's URL names does not exist (a customer, a worklist item)."""


class Unavailable(HttpProblem):
    """The part of the server the request needs is switched off or not answering (e.g. no
    customer store)."""
