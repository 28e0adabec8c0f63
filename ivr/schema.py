"""The YAML shape of IVR flow files, and its translation into ``ivr.model`` values.

Each piece (a node, a flow, a route, a calendar, a condition) is checked on its own here: keys,
types and values. Whether the pieces fit together (references, reachability, loops) is
``ivr.validate``'s job. Nothing here reads files: the loader hands in the parsed YAML, the key
path of each piece and a ``Locate`` that turns a key path into "file:line".

Every problem is collected rather than raised, so an admin sees all mistakes of a file at once.
A piece with a problem is left out of the result (``None``); the loader remembers that it was
declared, so references to it are not reported a second time as dangling.

The node, flow and route specs (pydantic models) are in ``ivr.node_specs``; calendars in
``ivr.calendar_schema``; this module runs them and turns their errors into problems.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)

from ivr.calendar_schema import parse_calendar
from ivr.model import (
    AllOf,
    AnyOf,
    Branch,
    Case,
    Compare,
    CompareOp,
    Condition,
    Flow,
    Node,
    Not,
    Open,
    Route,
)
from ivr.node_specs import DTMF_KEYS, NODE_KINDS, BranchSpec, FlowSpec, RouteSpec, regex
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

_OPERATOR: Mapping[str, CompareOp] = {
    op: op for op in ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "matches", "exists")
}
OPERATORS: tuple[CompareOp, ...] = tuple(_OPERATOR.values())
# Extensions Asterisk reads (formats/format_*.c); a name given with one was meant without it.
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
            regex(value)
        except ValueError as exc:
            return f"matches: {exc}"
    if op == "exists" and not isinstance(value, bool):
        return f"exists: {_short(value)} (expected true or false)"
    return None


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
