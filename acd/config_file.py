"""The shape of ``acd.yaml`` as pydantic models: types, bounds and names of every key.

These models check each value on its own and give the JSON Schema editors use
(``ctiserver config schema``); ``acd.config`` builds the ACD's frozen values from them and adds
the checks that need the whole file (overflow targets and cycles, agents' queues, one
endpoint per agent, the fallback above every heartbeat, queues nobody can serve).

Settings a queue shares with ``defaults`` are optional here (``None``: not written, so the
default applies); ``callback_offer_after: null`` is told apart from "not written" by
``model_fields_set``. Each check raises ``cti.config``'s ``not_allowed``/``problem`` so a
mistake reads "key: value is not allowed (expected ...)" as it always has.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from acd.agent_state import LOGIN_REASON, NO_ANSWER_REASON
from acd.model import OverflowKind, Strategy
from cti.config import not_allowed, problem, short
from cti.kpi import SlVariant
from cti.phones import ENDPOINT_PATTERN

__all__ = [
    "AGENT_ID",
    "ENDPOINT",
    "NAME",
    "AcdFile",
    "AgentFile",
    "AnnounceFile",
    "CallbacksFile",
    "OverflowFile",
    "QueueFile",
    "QueueSettingsFile",
    "RelaxFile",
    "ServiceLevelFile",
    "SlVariant",
    "valid_name",
]


NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
AGENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}")
# One endpoint pattern for every role (cti.phones).
ENDPOINT = re.compile(ENDPOINT_PATTERN)
MAILBOX = re.compile(r"[A-Za-z0-9_*#+-]+@[A-Za-z0-9_-]+")
DIALPLAN = re.compile(r"[A-Za-z0-9_-]+,[^,\s]+,([1-9][0-9]*|[A-Za-z_][A-Za-z0-9_-]*)")
MAX_REASON = 40
MIN_ANNOUNCE = 5.0  # seconds; shorter would make the heartbeat (and the caller) frantic
_NAME_RULE = "1 to 64 letters, digits, _ or -"


def valid_name(value: object) -> bool:
    return isinstance(value, str) and NAME.fullmatch(value) is not None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bounds(
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    nullable: bool = False,
    whole: bool = False,
    note: str = "",
    expected: str = "",
) -> Any:
    """Checks a number against all its bounds, naming them all when one is broken (pydantic
    would name only the one broken, and take "5" or true for a number)."""
    bounds = [
        f"> {gt:g}" if gt is not None else "",
        f">= {ge:g}" if ge is not None else "",
        f"<= {le:g}" if le is not None else "",
    ]
    kind = "a whole number" if whole else "a number"
    expected = expected or f"expected {kind} {' and '.join(b for b in bounds if b)}".rstrip() + note

    def check(value: object) -> object:
        if value is None and nullable:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise not_allowed(expected)
        if (
            (whole and not isinstance(value, int))
            or (gt is not None and value <= gt)
            or (ge is not None and value < ge)
            or (le is not None and value > le)
        ):
            raise not_allowed(expected)
        return value

    return BeforeValidator(check)


def _text(pattern: re.Pattern[str], expected: str) -> Any:
    def check(value: object) -> object:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise not_allowed(f"expected {expected}")
        return value

    return BeforeValidator(check)


def _flag(value: object) -> object:
    if not isinstance(value, bool):
        raise not_allowed("expected true or false")
    return value


def _skills(value: object) -> object:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise problem(f"{short(value)} is not a skill mapping (expected a mapping)")
    for skill, level in value.items():
        if not valid_name(skill):
            raise problem(f"{short(skill)} is not a valid skill name (expected {_NAME_RULE})")
        if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 10:
            raise problem(f"skill {skill}: level {short(level)} (expected a whole number 1..10)")
    return value


Flag = Annotated[bool, BeforeValidator(_flag)]
# Settings given per queue or in defaults; None in a model means "not written".
Positive = Annotated[Annotated[float, Field(gt=0)] | None, _bounds(gt=0)]
NonNegative = Annotated[Annotated[float, Field(ge=0)] | None, _bounds(ge=0)]
PositiveOrNever = Annotated[Annotated[float, Field(gt=0)] | None, _bounds(gt=0, nullable=True)]
NonNegativeOrNone = Annotated[Annotated[float, Field(ge=0)] | None, _bounds(ge=0, nullable=True)]
Name = Annotated[str, Field(pattern=f"^{NAME.pattern}$")]
SkillName = Name
Skills = Annotated[dict[SkillName, Annotated[int, Field(ge=1, le=10)]], BeforeValidator(_skills)]


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnnounceFile(_File):
    """Periodic announcements to a waiting caller; ``every`` is also the heartbeat."""

    every: Annotated[Annotated[float, Field(ge=MIN_ANNOUNCE)] | None, _bounds(ge=MIN_ANNOUNCE)] = (
        None
    )
    position: Flag | None = None
    estimated_wait: Flag | None = None


class ServiceLevelFile(_File):
    """Which service-level formula the queue reports (see docs/kpi.md)."""

    threshold: Positive = None
    goal: Annotated[Annotated[float, Field(gt=0, le=1)] | None, _bounds(gt=0, le=1)] = None
    variant: SlVariant | None = None
    short_abandon: NonNegative = None


class QueueSettingsFile(_File):
    """What a queue shares with ``defaults``; ``None`` means "as in defaults"."""

    ring_timeout: Positive = None
    wrap_up: NonNegative = None
    announce: AnnounceFile = AnnounceFile()
    service_level: ServiceLevelFile = ServiceLevelFile()
    music_class: Annotated[Name | None, _text(NAME, "a musiconhold.conf class name")] = None
    #: offer a callback above this estimated wait (s); null: never
    callback_offer_after: PositiveOrNever = None

    @model_validator(mode="before")
    @classmethod
    def _empty(cls, value: object) -> object:
        return {} if value is None else value


def _relax_drop(value: object) -> object:
    if not isinstance(value, list):
        raise not_allowed("expected a list of skills")
    for skill in value:
        if not valid_name(skill):
            raise problem(f"{short(skill)} is not a valid skill name (expected {_NAME_RULE})")
    return value


class RelaxFile(_File):
    after: Annotated[float, Field(gt=0), _bounds(gt=0, note=": steps in increasing order")]
    lower_by: Annotated[
        int,
        Field(ge=0, le=9),
        _bounds(ge=0, le=9, whole=True, expected="expected a whole number 0..9"),
    ] = 0
    drop: Annotated[list[SkillName], BeforeValidator(_relax_drop)] = []

    @model_validator(mode="before")
    @classmethod
    def _needs_after(cls, value: object) -> object:
        if isinstance(value, dict) and "after" not in value:
            raise problem("no after (a relaxation step needs after, and lower_by or drop)")
        return value

    @model_validator(mode="after")
    def _does_something(self) -> RelaxFile:
        if not self.lower_by and not self.drop and not {"lower_by", "drop"} & self.model_fields_set:
            raise problem("the step does nothing (expected lower_by or drop)")
        return self


def _target(value: object) -> object:
    return str(value) if _is_number(value) else value  # "target: 100" for a mailbox


_TARGETS: dict[str, tuple[re.Pattern[str], str]] = {
    "queue": (NAME, "the name of another queue"),
    "voicemail": (MAILBOX, "a mailbox like 100@default"),
    "dialplan": (DIALPLAN, "context,exten,priority like support-menu,s,1"),
    "callback": (
        re.compile(f"({NAME.pattern})?"),
        "nothing, or the queue whose turn places the call",
    ),
}


class OverflowFile(_File):
    """Where a call goes after ``max_wait`` or when nobody could take it."""

    to: OverflowKind
    target: Annotated[str, BeforeValidator(_target)] = ""

    @model_validator(mode="after")
    def _target_fits(self) -> OverflowFile:
        pattern, expected = _TARGETS[self.to]
        if not pattern.fullmatch(self.target):
            raise problem(
                f"target: {short(self.target)} is not allowed for to: {self.to} "
                f"(expected {expected})"
            )
        return self


class QueueFile(QueueSettingsFile):
    skills: Skills = {}
    strategy: Strategy = "longest_idle"
    aging_rate: Annotated[float, Field(ge=0), _bounds(ge=0)] = 0.0
    relaxation: list[RelaxFile] = []
    max_wait: PositiveOrNever = None
    overflow: OverflowFile | None = None
    overflow_when_empty: Flag = False

    @field_validator("relaxation", mode="before")
    @classmethod
    def _a_list(cls, value: object) -> object:
        if not isinstance(value, list):
            raise problem(
                f"{short(value)} (expected a list of steps like {{after: 60, lower_by: 1}})"
            )
        return value

    @field_validator("relaxation")
    @classmethod
    def _increasing(cls, steps: list[RelaxFile]) -> list[RelaxFile]:
        previous = 0.0
        for step in steps:
            if step.after <= previous:
                raise problem(
                    f"after: {step.after:g} is not allowed (expected a number > {previous:g}, "
                    "the step before: steps in increasing order)"
                )
            previous = step.after
        return steps


class AgentFile(_File):
    name: Annotated[str, Field(min_length=1)] | None = None  # default: the id
    endpoint: Annotated[
        Annotated[str, Field(pattern=f"^{ENDPOINT.pattern}$")] | None,
        _text(ENDPOINT, "Tech/resource like PJSIP/agent1001"),
    ] = None
    skills: Skills = {}
    queues: list[str] = []
    wrap_up: NonNegativeOrNone = None

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: object) -> object:
        if not isinstance(value, str) or not value.strip():
            raise not_allowed("expected text")
        return value

    @field_validator("queues", mode="before")
    @classmethod
    def _queues(cls, value: object) -> object:
        if not isinstance(value, list) or not value:
            raise not_allowed("expected a list of the queues the agent serves")
        return value


def _reason(value: object) -> object:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_REASON:
        raise problem(
            f"{short(value)} is not a reason (expected text of 1 to {MAX_REASON} characters)"
        )
    if value in (NO_ANSWER_REASON, LOGIN_REASON):
        raise problem(
            f"{value!r} is built in (expected a reason other than "
            f"{NO_ANSWER_REASON!r} and {LOGIN_REASON!r})"
        )
    return value


class CallbacksFile(_File):
    attempts: Annotated[int, Field(ge=1), _bounds(ge=1, whole=True)] = 3
    retry_after: Annotated[float, Field(gt=0), _bounds(gt=0)] = 300.0
    ring_customer: Annotated[float, Field(gt=0), _bounds(gt=0)] = 30.0
    dial_context: Annotated[Name, _text(NAME, "a dialplan context name")] = "cti-originate"
    #: calling hours: {timezone, weekly, holidays}, as an IVR calendar (checked there)
    hours: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty(cls, value: object) -> object:
        return {} if value is None else value


class AcdFile(_File):
    """The whole of ``acd.yaml``."""

    timezone: str = "UTC"
    fallback_after: Annotated[float, Field(gt=0), _bounds(gt=0)] = 90.0
    reconcile_every: Annotated[float, Field(gt=0), _bounds(gt=0)] = 30.0
    not_ready_reasons: list[Annotated[str, BeforeValidator(_reason)]] = []
    callbacks: CallbacksFile = CallbacksFile()
    defaults: QueueSettingsFile = QueueSettingsFile()
    queues: dict[str, QueueFile] = {}
    agents: dict[str, AgentFile] = {}

    @field_validator("not_ready_reasons", mode="before")
    @classmethod
    def _reasons_list(cls, value: object) -> object:
        if not isinstance(value, list):
            raise problem(f"{short(value)} is not allowed (expected a list of reason codes)")
        return value

    @field_validator("not_ready_reasons")
    @classmethod
    def _once(cls, reasons: list[str]) -> list[str]:
        seen: set[str] = set()
        for reason in reasons:
            if reason in seen:
                raise problem(f"{reason!r} is given twice (expected each reason once)")
            seen.add(reason)
        return reasons

    @field_validator("queues", "agents", mode="before")
    @classmethod
    def _sections(cls, value: object) -> object:
        return {} if value is None else value


TOP_KEYS: tuple[str, ...] = tuple(AcdFile.model_fields)
