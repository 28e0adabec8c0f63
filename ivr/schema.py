"""The YAML shape of IVR flow files, and its translation into ``ivr.model`` values.

Each piece (a node, a flow, a route, a calendar, a condition) is checked on its own here: keys,
types and values. Whether the pieces fit together (references, reachability, loops) is
``ivr.validate``'s job. Nothing here reads files: the loader hands in the parsed YAML, the key
path of each piece and a ``Locate`` that turns a key path into "file:line".

Every problem is collected rather than raised, so an admin sees all mistakes of a file at once.
A piece with a problem is left out of the result (``None``); the loader remembers that it was
declared, so references to it are not reported a second time as dangling.

Node specs are pydantic models with ``extra="forbid"``; numbers are checked strictly (YAML
already gives typed values, and ``retries: yes`` turning into 1 would hide a mistake), but a
number is accepted where text is expected (``to: 1001``, ``dnis: 8000``, menu key ``1``).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
import zoneinfo
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    ValidationError,
    model_validator,
)

from ivr.model import (
    AllOf,
    AnyOf,
    Branch,
    Calendar,
    Callback,
    Case,
    Compare,
    CompareOp,
    Condition,
    Flow,
    Goto,
    Hangup,
    Input,
    Lookup,
    Menu,
    Node,
    Not,
    Open,
    Play,
    Prompt,
    Queue,
    Return,
    Route,
    Say,
    Subflow,
    Transfer,
    Voicemail,
)
from ivr.validate import KeyPath, Locate, Problem, did_you_mean

__all__ = [
    "DTMF_KEYS",
    "NODE_KINDS",
    "OPERATORS",
    "parse_calendar",
    "parse_condition",
    "parse_flow",
    "parse_node",
    "parse_route",
]

DTMF_KEYS = "0123456789*#"
_OPERATOR: Mapping[str, CompareOp] = {
    op: op for op in ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "matches", "exists")
}
OPERATORS: tuple[CompareOp, ...] = tuple(_OPERATOR.values())
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Extensions Asterisk reads (formats/format_*.c); a name given with one was meant without it.
_SOUND_EXTENSIONS = frozenset(
    [
        ".gsm",
        ".wav",
        ".wav49",
        ".ulaw",
        ".alaw",
        ".sln",
        ".sln16",
        ".g722",
        ".g729",
        ".mp3",
        ".ogg",
        ".siren7",
        ".siren14",
        ".ilbc",
    ]
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INTERVAL = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")
_Report = Callable[[KeyPath, str], None]


# -- field types ----------------------------------------------------------------------------


def _number_as_text(value: object) -> object:
    # ``to: 1001`` and ``{1: sales}`` are numbers in YAML but keys and extensions here.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _name(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a name (expected text without spaces)")
    return value


def _dtmf_key(value: str) -> str:
    if len(value) != 1 or value not in DTMF_KEYS:
        raise ValueError(f"{value!r} is not a key (expected one of 0-9, * or #)")
    return value


def _dtmf_keys(value: str) -> str:
    for key in value:
        _dtmf_key(key)
    return value


def _identifier(value: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError(f"{value!r} is not a variable name (expected letters, digits and _)")
    return value


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{value!r} is not a valid regular expression ({exc})") from exc
    return value


def _lookup_by(value: str) -> str:
    namespace, _, name = value.partition(".")
    if value != "ani" and (namespace != "var" or not _IDENTIFIER.fullmatch(name)):
        raise ValueError(f"{value!r} is not a key to look up by (expected ani or var.NAME)")
    return value


def _voicemail_box(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+(@[A-Za-z0-9_.+-]+)?", value):
        raise ValueError(f"{value!r} is not a mailbox (expected MAILBOX or MAILBOX@CONTEXT)")
    return value


def _queue_name(value: str) -> str:
    # Queue() takes its arguments comma-separated (apps/app_queue.c, queue_exec): a comma or a
    # parenthesis in the name would be read as another argument.
    if not value or re.search(r"[\s,|()]", value):
        raise ValueError(f"{value!r} is not a queue name (expected no spaces, commas, | or ())")
    return value


def _prompt(value: object) -> Prompt:
    if isinstance(value, str):
        if any(c.isspace() for c in value):
            raise ValueError(
                f"{_short(value)} is not a sound name (expected a name like hello-world, "
                'or {tts: "text"} for speech)'
            )
        return Prompt(sound=_sound(value))
    if isinstance(value, Mapping) and len(value) == 1:
        ((key, text),) = value.items()
        if key in ("sound", "tts") and isinstance(text, str) and text.strip():
            return Prompt(sound=_sound(text)) if key == "sound" else Prompt(tts=text)
    raise ValueError(
        f"{_short(value)} is not a prompt "
        '(expected a sound name, {sound: NAME} or {tts: "text to speak"})'
    )


def _sound(name: str) -> str:
    if not name:
        raise ValueError("an empty sound name (expected a name like hello-world)")
    stem, dot, ext = name.rpartition(".")
    if dot and f".{ext.lower()}" in _SOUND_EXTENSIONS:
        raise ValueError(f"sound {name!r} has an extension (expected {stem!r}: Asterisk adds it)")
    return name


def _listed(value: object) -> object:
    # One prompt may be written without the list around it.
    return [value] if isinstance(value, str | Mapping) else value


Text = Annotated[str, BeforeValidator(_number_as_text)]
NameText = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_name)]
NodeRef = NameText
Key = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_dtmf_key)]
Seconds = Annotated[float, Strict(), Field(gt=0)]
Count = Annotated[int, Strict(), Field(ge=1)]
Level = Annotated[int, Strict(), Field(ge=0)]
Flag = Annotated[bool, Strict()]
Prompts = Annotated[
    tuple[Annotated[Prompt, PlainValidator(_prompt)], ...], BeforeValidator(_listed)
]


# -- node specs -----------------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _NodeSpec(_Spec):
    #: the model class the spec builds; its fields are the spec's fields, minus ``kind``
    node_class: ClassVar[type[Node]]
    kind: str

    def build(self, node_id: str, origin: str) -> Node:
        values = {name: getattr(self, name) for name in type(self).model_fields if name != "kind"}
        return self.node_class(id=node_id, origin=origin, **values)


class PlaySpec(_NodeSpec):
    node_class = Play
    prompts: Annotated[Prompts, Field(min_length=1)]
    next: NodeRef
    interrupt: Annotated[Text, AfterValidator(_dtmf_keys)] = ""


class MenuSpec(_NodeSpec):
    node_class = Menu
    prompts: Annotated[Prompts, Field(min_length=1)]
    options: Annotated[dict[Key, NodeRef], Field(min_length=1)]
    timeout: Seconds = 5.0
    no_input: Prompts = ()
    invalid: Prompts = ()
    retries: Count = 3
    on_exceeded: NodeRef
    repeat: Key | None = None

    @model_validator(mode="after")
    def _repeat_is_not_an_option(self) -> MenuSpec:
        if self.repeat is not None and self.repeat in self.options:
            raise ValueError(
                f"repeat key {self.repeat!r} is also an option (expected a key that no option uses)"
            )
        return self


class InputSpec(_NodeSpec):
    node_class = Input
    prompts: Annotated[Prompts, Field(min_length=1)]
    variable: Annotated[str, AfterValidator(_identifier)]
    next: NodeRef
    min_length: Count = 1
    max_length: Count = 20
    # "" means no terminator: the input ends at max_length keys or after the timeout.
    terminator: Annotated[Text, AfterValidator(lambda v: _dtmf_key(v) if v else v)] = "#"
    timeout: Seconds = 5.0
    pattern: Annotated[str, AfterValidator(_regex)] | None = None
    retries: Count = 3
    no_input: Prompts = ()
    invalid: Prompts = ()
    on_exceeded: NodeRef
    sensitive: Flag = False

    @model_validator(mode="after")
    def _lengths(self) -> InputSpec:
        if self.min_length > self.max_length:
            raise ValueError(
                f"min_length {self.min_length} is above max_length {self.max_length} "
                "(expected min_length <= max_length)"
            )
        return self


class LookupSpec(_NodeSpec):
    node_class = Lookup
    by: Annotated[str, AfterValidator(_lookup_by)]
    field: Annotated[str, AfterValidator(_identifier)] = "phone"
    next: NodeRef
    not_found: NodeRef
    on_error: NodeRef | None = None
    timeout: Seconds = 3.0


class CaseSpec(_Spec):
    when: Any
    next: NodeRef


class BranchSpec(_NodeSpec):
    node_class = Branch
    cases: Annotated[tuple[CaseSpec, ...], Field(min_length=1)]
    otherwise: NodeRef


class SaySpec(_NodeSpec):
    node_class = Say
    value: Annotated[Text, Field(min_length=1)]
    say_as: Literal["number", "digits", "date", "amount", "duration"] = Field(alias="as")
    next: NodeRef
    prompts_before: Prompts = ()
    prompts_after: Prompts = ()


class QueueSpec(_NodeSpec):
    node_class = Queue
    queue: Annotated[str, AfterValidator(_queue_name)]
    skills: dict[Annotated[str, AfterValidator(_name)], Level] = {}
    priority: Level = 0
    data: dict[str, Text] = {}
    on_failure: NodeRef | None = None


class TransferSpec(_NodeSpec):
    node_class = Transfer
    to: NameText
    timeout: Seconds = 30.0
    on_failure: NodeRef | None = None


class VoicemailSpec(_NodeSpec):
    node_class = Voicemail
    mailbox: Annotated[Text, AfterValidator(_voicemail_box)]
    on_failure: NodeRef | None = None


class CallbackSpec(_NodeSpec):
    node_class = Callback
    number: NameText = "${call.ani}"
    queue: Annotated[str, AfterValidator(_queue_name)] | None = None
    prompts: Prompts = ()
    next: NodeRef


class HangupSpec(_NodeSpec):
    node_class = Hangup
    prompts: Prompts = ()


class GotoSpec(_NodeSpec):
    node_class = Goto
    next: NodeRef


class SubflowSpec(_NodeSpec):
    node_class = Subflow
    flow: NameText
    next: NodeRef


class ReturnSpec(_NodeSpec):
    node_class = Return


NODE_KINDS: Mapping[str, type[_NodeSpec]] = {
    "play": PlaySpec,
    "menu": MenuSpec,
    "input": InputSpec,
    "lookup": LookupSpec,
    "branch": BranchSpec,
    "say": SaySpec,
    "queue": QueueSpec,
    "transfer": TransferSpec,
    "voicemail": VoicemailSpec,
    "callback": CallbackSpec,
    "hangup": HangupSpec,
    "goto": GotoSpec,
    "subflow": SubflowSpec,
    "return": ReturnSpec,
}


class FlowSpec(_Spec):
    start: NodeRef
    on_error: NodeRef | None = None
    nodes: Annotated[dict[NameText, Any], Field(min_length=1)]


class RouteSpec(_Spec):
    flow: NameText
    # exact number, or a regular expression when it starts with "^"
    dnis: Annotated[Text, Field(min_length=1)] | None = None
    ani: Annotated[Text, Field(min_length=1), AfterValidator(_regex)] | None = None

    @model_validator(mode="after")
    def _dnis_pattern(self) -> RouteSpec:
        if self.dnis is not None and self.dnis.startswith("^"):
            try:
                re.compile(self.dnis)
            except re.error as exc:
                raise ValueError(
                    f"dnis {self.dnis!r} is not a valid regular expression ({exc})"
                ) from exc
        return self


# -- parsing entry points -------------------------------------------------------------------


def parse_node(
    node_id: str, raw: object, path: KeyPath, locate: Locate
) -> tuple[Node | None, list[Problem]]:
    """One node from its YAML mapping (``path``: flows.F.nodes.N)."""
    if not isinstance(raw, Mapping):
        return None, [_problem(path, f"{_short(raw)} is not a node (expected a mapping)", locate)]
    kind = raw.get("kind")
    if kind is None:
        return None, [_problem(path, f"no kind (expected one of: {_kinds()})", locate)]
    spec_class = NODE_KINDS.get(kind) if isinstance(kind, str) else None
    if spec_class is None:
        hint = did_you_mean(str(kind), NODE_KINDS)
        message = f"unknown node kind {_short(kind)} (expected one of: {_kinds()}){hint}"
        return None, [_problem((*path, "kind"), message, locate)]
    problems: list[Problem] = []
    # A branch's conditions are parsed from the raw cases, so their problems are reported
    # even when the node has other mistakes too.
    conditions = _branch_conditions(raw, path, locate, problems) if kind == "branch" else []
    try:
        spec = spec_class.model_validate(raw)
    except ValidationError as exc:
        return None, _translate(exc, path, spec_class, f"a {kind} node", locate) + problems
    origin = locate(path)
    if not isinstance(spec, BranchSpec):
        return spec.build(node_id, origin), []
    if problems:
        return None, problems
    cases = tuple(
        Case(when=when, next=case.next)
        for when, case in zip(conditions, spec.cases, strict=True)
        if when is not None
    )
    branch = Branch(id=node_id, origin=origin, cases=cases, otherwise=spec.otherwise)
    return branch, []


def _branch_conditions(
    raw: Mapping[Any, Any], path: KeyPath, locate: Locate, problems: list[Problem]
) -> list[Condition | None]:
    cases = raw.get("cases")
    if not isinstance(cases, list):
        return []  # the spec reports it
    return [
        parse_condition(case["when"], (*path, "cases", str(i), "when"), locate, problems)
        if isinstance(case, Mapping) and "when" in case
        else None
        for i, case in enumerate(cases)
    ]


def parse_flow(
    name: str, raw: object, path: KeyPath, locate: Locate
) -> tuple[Flow | None, list[Problem]]:
    """A flow and its nodes; the flow is built with the nodes that are valid (``None`` only
    when the flow's own keys are wrong)."""
    if not isinstance(raw, Mapping):
        return None, [_problem(path, f"{_short(raw)} is not a flow (expected a mapping)", locate)]
    problems: list[Problem] = []
    nodes: dict[str, Node] = {}
    raw_nodes = raw.get("nodes")
    if isinstance(raw_nodes, Mapping):
        for node_id, raw_node in raw_nodes.items():
            node, found = parse_node(str(node_id), raw_node, (*path, "nodes", str(node_id)), locate)
            problems += found
            if node is not None:
                nodes[node.id] = node
    try:
        spec = FlowSpec.model_validate(raw)
    except ValidationError as exc:
        return None, problems + _translate(exc, path, FlowSpec, "a flow", locate)
    flow = Flow(name, spec.start, nodes, on_error=spec.on_error, origin=locate(path))
    return flow, problems


def parse_route(raw: object, path: KeyPath, locate: Locate) -> tuple[Route | None, list[Problem]]:
    if not isinstance(raw, Mapping):
        message = f"{_short(raw)} is not a route (expected a mapping with dnis, ani, flow)"
        return None, [_problem(path, message, locate)]
    try:
        spec = RouteSpec.model_validate(raw)
    except ValidationError as exc:
        return None, _translate(exc, path, RouteSpec, "a route", locate)
    return Route(spec.flow, dnis=spec.dnis, ani=spec.ani, origin=locate(path)), []


def parse_calendar(
    name: str, raw: object, path: KeyPath, locate: Locate
) -> tuple[Calendar | None, list[Problem]]:
    """A business-hours calendar. Written by hand rather than as a pydantic model so each
    problem points at its own day or interval."""
    problems: list[Problem] = []

    def report(where: KeyPath, message: str) -> None:
        problems.append(_problem(where, message, locate))

    if not isinstance(raw, Mapping):
        report(path, f"{_short(raw)} is not a calendar (expected timezone, weekly, holidays)")
        return None, problems
    allowed = ("timezone", "weekly", "holidays")
    for key in raw:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed)
            report((*path, str(key)), f"unknown key {key!r} (expected {', '.join(allowed)}){hint}")
    for key in ("timezone", "weekly"):
        if key not in raw:
            report(path, f"no {key} (a calendar needs timezone and weekly)")
    timezone = raw.get("timezone")
    if "timezone" in raw:
        _check_timezone(timezone, (*path, "timezone"), report)
    weekly = _parse_weekly(raw.get("weekly", {}), (*path, "weekly"), report)
    holidays = _parse_holidays(raw.get("holidays", []), (*path, "holidays"), report)
    if problems or not isinstance(timezone, str):
        return None, problems
    return Calendar(name, timezone, weekly, holidays), problems


def parse_condition(
    raw: object, path: KeyPath, locate: Locate, problems: list[Problem]
) -> Condition | None:
    """A branch condition: a mapping with one key (``open``, ``all``, ``any``, ``not``, or a
    reference compared with a value). Reference names are checked by ``ivr.validate``."""
    expected = "expected a mapping with one key: open, all, any, not, or a reference like var.X"
    if not isinstance(raw, Mapping) or len(raw) != 1:
        problems.append(_problem(path, f"{_short(raw)} is not a condition ({expected})", locate))
        return None
    ((key, value),) = raw.items()
    key = str(key)
    here = (*path, key)
    if key == "open":
        if isinstance(value, str) and value:
            return Open(value)
        message = f"open: {_short(value)} (expected the name of a calendar)"
        problems.append(_problem(here, message, locate))
        return None
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            message = f"{key}: {_short(value)} (expected a list of conditions)"
            problems.append(_problem(here, message, locate))
            return None
        parts = [parse_condition(c, (*here, str(i)), locate, problems) for i, c in enumerate(value)]
        conditions = tuple(c for c in parts if c is not None)
        if len(conditions) != len(parts):
            return None
        return AllOf(conditions) if key == "all" else AnyOf(conditions)
    if key == "not":
        inner = parse_condition(value, here, locate, problems)
        return Not(inner) if inner is not None else None
    if not isinstance(value, Mapping):
        return _comparison(key, "eq", value, here, locate, problems)
    if not value:
        message = f"no operator (expected one of: {', '.join(OPERATORS)})"
        problems.append(_problem(here, message, locate))
        return None
    # Several operators on one reference all have to hold: {gt: 0, lt: 60}.
    compares = [
        _comparison(key, str(op), v, (*here, str(op)), locate, problems) for op, v in value.items()
    ]
    done = tuple(c for c in compares if c is not None)
    if len(done) != len(compares):
        return None
    return done[0] if len(done) == 1 else AllOf(done)


# -- helpers --------------------------------------------------------------------------------


def _comparison(
    ref: str, op: str, value: object, path: KeyPath, locate: Locate, problems: list[Problem]
) -> Compare | None:
    problem = _comparison_problem(op, value)
    if problem is not None:
        problems.append(_problem(path, f"{ref}: {problem}", locate))
        return None
    if isinstance(value, dt.date):
        value = value.isoformat()  # references hold text; YAML turned 2026-12-24 into a date
    if isinstance(value, list):
        value = tuple(v.isoformat() if isinstance(v, dt.date) else v for v in value)
    return Compare(ref, _OPERATOR[op], value)


def _comparison_problem(op: str, value: object) -> str | None:
    """What is wrong with comparing by ``op`` with ``value``, or None."""
    single = (str, int, float, bool, dt.date, type(None))
    if op not in _OPERATOR:
        return f"unknown operator {op!r} (expected one of: {', '.join(OPERATORS)})"
    if op in ("eq", "ne") and not isinstance(value, single):
        hint = " or {in: [...]} for a list" if isinstance(value, list) else ""
        return f"{op}: {_short(value)} (expected a single value{hint})"
    if op in ("lt", "le", "gt", "ge") and (
        not isinstance(value, int | float | str | dt.date) or isinstance(value, bool)
    ):
        # Text orders too (ivr.conditions compares as numbers when both sides read as one).
        return f"{op}: {_short(value)} (expected a number or text)"
    if op in ("in", "not_in") and (
        not isinstance(value, list) or not value or not all(isinstance(v, single) for v in value)
    ):
        return f"{op}: {_short(value)} (expected a list of single values)"
    if op == "matches":
        if not isinstance(value, str):
            return f"matches: {_short(value)} (expected a regular expression in quotes)"
        try:
            _regex(value)
        except ValueError as exc:
            return f"matches: {exc}"
    if op == "exists" and not isinstance(value, bool):
        return f"exists: {_short(value)} (expected true or false)"
    return None


def _check_timezone(value: object, path: KeyPath, report: _Report) -> None:
    expected = "expected an IANA time zone like Europe/Berlin"
    if not isinstance(value, str) or not value:
        report(path, f"timezone {_short(value)} ({expected})")
        return
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        hint = did_you_mean(value, _timezones())
        report(path, f"unknown timezone {value!r} ({expected}){hint}")


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _parse_weekly(
    raw: object, path: KeyPath, report: _Report
) -> dict[int, tuple[tuple[dt.time, dt.time], ...]]:
    weekly: dict[int, tuple[tuple[dt.time, dt.time], ...]] = {}
    if not isinstance(raw, Mapping):
        report(path, f"{_short(raw)} (expected days mapped to opening hours, e.g. mon-fri)")
        return weekly
    for key, hours in raw.items():
        here = (*path, str(key))
        days = _days(str(key))
        if days is None:
            report(
                here,
                f"{key!r} is not a day or range of days "
                "(expected mon, tue, wed, thu, fri, sat, sun or a range like mon-fri)",
            )
            continue
        intervals = _intervals(hours, here, report)
        for day in days:
            if day in weekly:
                report(here, f"{_DAYS[day]} is given twice (expected each day once)")
            weekly[day] = intervals
    return weekly


def _days(key: str) -> list[int] | None:
    first, dash, last = key.strip().lower().partition("-")
    if first not in _DAYS or (dash and last not in _DAYS):
        return None
    start = _DAYS.index(first)
    end = _DAYS.index(last) if dash else start
    return list(range(start, end + 1)) if start <= end else None


def _intervals(raw: object, path: KeyPath, report: _Report) -> tuple[tuple[dt.time, dt.time], ...]:
    # "sun:" with nothing after it: closed that day, like "sun: []".
    items = [raw] if isinstance(raw, str) else [] if raw is None else raw
    if not isinstance(items, list):
        report(path, f'{_short(raw)} (expected a list of intervals like "08:00-18:00")')
        return ()
    intervals: list[tuple[dt.time, dt.time]] = []
    for item in items:
        interval = _interval(item)
        if isinstance(interval, str):
            report(path, interval)
        else:
            intervals.append(interval)
    intervals.sort()
    for (_, end), (start, _) in itertools.pairwise(intervals):
        if start < end:
            report(path, f"intervals overlap at {start:%H:%M} (expected separate intervals)")
    return tuple(intervals)


def _interval(item: object) -> tuple[dt.time, dt.time] | str:
    """(start, end) or what is wrong. "24:00" ends the day: the model's end is exclusive and a
    ``time`` cannot be 24:00, so it becomes ``time.max``."""
    expected = '(expected "HH:MM-HH:MM" with the end after the start, e.g. "08:00-18:00")'
    match = _INTERVAL.fullmatch(item.replace(" ", "")) if isinstance(item, str) else None
    if match is None:
        return f"{_short(item)} is not an interval {expected}"
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        return f"{item!r} is not a time of day {expected}"
    start = dt.time(h1, m1)
    end = dt.time.max if h2 == 24 else dt.time(h2, m2)
    if end <= start:
        return f"{item!r} ends before it starts {expected}"
    return start, end


def _parse_holidays(raw: object, path: KeyPath, report: _Report) -> frozenset[dt.date]:
    if not isinstance(raw, list):
        report(path, f"{_short(raw)} (expected a list of dates like 2026-12-25)")
        return frozenset()
    days: set[dt.date] = set()
    for i, item in enumerate(raw):
        if isinstance(item, dt.date) and not isinstance(item, dt.datetime):
            days.add(item)
            continue
        try:
            days.add(dt.date.fromisoformat(str(item)))
        except ValueError:
            report((*path, str(i)), f"{_short(item)} is not a date (expected YYYY-MM-DD)")
    return frozenset(days)


def _translate(
    exc: ValidationError, path: KeyPath, spec: type[BaseModel], what: str, locate: Locate
) -> list[Problem]:
    """pydantic's errors as problems in the house wording: what is wrong (what was expected)."""
    fields = [f.alias or name for name, f in spec.model_fields.items()]
    required = [f.alias or name for name, f in spec.model_fields.items() if f.is_required()]
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(str(part) for part in err["loc"])
        key = loc[-1] if loc else ""
        label = _label(loc)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            message = f"no {key} ({what} needs {', '.join(required)})"
            loc = loc[:-1]
        elif err["type"] == "extra_forbidden":
            allowed = [f for f in fields if f != "kind"]
            hint = did_you_mean(key, allowed)
            listed = ", ".join(allowed) if allowed else "no other keys"
            message = f"unknown key {key!r} ({what} takes {listed}){hint}"
        elif loc and loc[-1] == "[key]":
            loc = loc[:-1]
            message = f"{_label(loc[:-1])}: {message}"
        elif err["type"] == "too_short":
            message = f"{label} is empty (expected at least one)"
        elif err["type"] == "value_error":
            message = f"{label}: {message}" if label else message
        else:
            got = _short(err.get("input"))
            message = (
                f"{label}: {got} is not allowed ({message.replace('Input should be', 'expected')})"
            )
        problems.append(_problem((*path, *loc), message, locate))
    return problems


def _label(loc: tuple[str, ...]) -> str:
    parts = [p for p in loc if p != "[key]"]
    text = ""
    for part in parts:
        text += f"[{part}]" if part.isdigit() and text else (f".{part}" if text else part)
    return text


def _problem(path: KeyPath, message: str, locate: Locate) -> Problem:
    return Problem(path, message, locate(path))


def _kinds() -> str:
    return ", ".join(NODE_KINDS)


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
