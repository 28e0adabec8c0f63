"""The console API's request and response bodies, as pydantic models.

Each handler reads its body with ``acd.api.read_body(request, Model)`` (strict JSON types,
422 ``invalid_body`` naming the field path at fault) and ``agent_console.openapi`` generates
``/api/openapi.json`` from these same classes, so validation and documentation are one thing.
Response models say what the handlers answer (``extra="forbid"``: a test checks real answers
against them, so a key added to an answer without its model fails there).

The agent actions' bodies and the agent and waiting-call views are the ACD's
(``acd.schemas``), shared by the ACD API and the console's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from acd.schemas import Body
from agent_console.accounts import Role
from agent_console.calls import SpyMode, TransferKind, TransferMode

__all__ = [
    "MAX_NOTES",
    "MAX_REF",
    "Abandoned",
    "Case",
    "Credentials",
    "CustomerCreate",
    "CustomerEdit",
    "CustomerFound",
    "CustomerList",
    "CustomerView",
    "DialBody",
    "ErrorBody",
    "Insight",
    "Interaction",
    "Me",
    "Ok",
    "Phone",
    "SpyBody",
    "TransferBody",
    "TransferTarget",
    "UserChange",
    "UserCreate",
    "UserList",
    "UserView",
    "Worklist",
    "WrapUpBody",
]

MAX_NOTES = 4000
MAX_REF = 64


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_View):
    """Every refusal (``agent_console.http``)."""

    error: str = Field(description="stable machine id, e.g. unknown_agent, invalid_body")
    detail: str = Field(description="human text, for a person to read")
    fields: list[str] | None = Field(None, description="invalid_body: paths of the values at fault")
    key: str | None = Field(None, description="bad_parameter: the query parameter at fault")


# -- requests ---------------------------------------------------------------------------------


class Credentials(Body):
    username: str
    password: str


class TransferTarget(Body):
    kind: TransferKind
    target: str = Field(description="agent id, queue name or number", examples=["agent1002"])


class TransferBody(Body):
    mode: TransferMode
    to: TransferTarget


class DialBody(Body):
    number: str = Field(description="1-32 of 0-9 * # with an optional leading +")
    customer_ref: str = Field("", max_length=MAX_REF)


class SpyBody(Body):
    mode: SpyMode = "listen"
    endpoint: str | None = Field(
        None,
        description="the supervisor's phone; their console.yaml supervisor_phones one if not given",
        examples=["PJSIP/super2001"],
    )


class WrapUpBody(Body):
    disposition: str = Field(description="one of console.yaml's disposition codes")
    notes: str = Field("", max_length=MAX_NOTES)
    end: bool = Field(False, description="end the wrap-up now (the agent goes ready or not ready)")


class CustomerCreate(Body):
    name: str
    phone: str | None = None
    email: str | None = None
    account: str | None = None
    segment: str | None = None
    tier: str | None = None
    language: str | None = None
    notes: str | None = None


class CustomerEdit(Body):
    """Only the keys given change (``null`` clears a text field); any other key is refused."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    email: str | None = None
    account: str | None = None
    segment: str | None = None
    tier: str | None = None
    language: str | None = None
    notes: str | None = None
    phones: list[str] = Field(default_factory=list, description="all the numbers, replacing them")


class UserCreate(Body):
    username: str
    password: str
    role: Role
    display_name: str | None = None
    agent_id: str | None = None


class UserChange(Body):
    """Only the keys given change; any other key is refused."""

    model_config = ConfigDict(extra="forbid")

    password: str | None = None
    role: Role | None = None
    disabled: bool | None = None
    display_name: str | None = None
    agent_id: str | None = Field(None, description='the ACD agent the user works as ("" for none)')


# -- answers ----------------------------------------------------------------------------------


class Ok(_View):
    ok: Literal[True]
    call_id: str | None = Field(None, description="dial, spy, call-back: the new call's id")


class UserView(_View):
    username: str
    display_name: str
    role: Role
    agent_id: str | None
    disabled: bool | None = None


class Me(_View):
    user: UserView
    csrf: str = Field(description="send it as X-CSRF-Token on every state-changing request")


class UserList(_View):
    users: list[UserView]


class Phone(_View):
    number: str
    kind: str


class CustomerView(_View):
    ref: str
    name: str
    email: str | None
    account: str | None
    segment: str | None
    tier: str | None
    language: str | None
    notes: str | None
    phones: list[Phone]


class CustomerList(_View):
    customers: list[CustomerView]


class Interaction(_View):
    key: str
    started_at: float
    direction: str
    queue: str | None
    agent_id: str | None
    outcome: str | None
    disposition: str | None
    talk_seconds: float | None
    notes: str | None


class Case(_View):
    id: int
    subject: str
    status: str
    opened_at: float | None = None


class Insight(_View):
    vip: bool
    repeat_caller: bool
    churn_warning: bool
    reasons: list[str]
    contacts_7d: int
    last_outcome: str | None


class CustomerFound(_View):
    customer: CustomerView
    history: list[Interaction]
    cases: list[Case]
    insight: Insight


class Abandoned(_View):
    key: str
    number: str
    queue: str
    at: float
    wait: float
    customer_name: str | None


class Worklist(_View):
    calls: list[Abandoned]
