from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti.errors import ConfigError
from ivr.conditions import compare, compile_pattern, evaluate
from ivr.model import AllOf, AnyOf, Calendar, Compare, CompareOp, Condition, Not, Open
from ivr.ports import CallInfo, QueueFigures
from ivr.templates import Scope

# Wednesday 2026-01-14 10:00 UTC = 11:00 in Berlin.
WEDNESDAY_11H = dt.datetime(2026, 1, 14, 10, 0, tzinfo=dt.UTC).timestamp()
CALENDARS = {
    "office": Calendar(
        name="office",
        timezone="Europe/Berlin",
        weekly={d: ((dt.time(9, 0), dt.time(17, 0)),) for d in range(5)},
    )
}


@pytest.fixture
def scope() -> Scope:
    return Scope(
        call=CallInfo(ani="+4930123456", dnis="8000"),
        variables={"choice": "2", "account": "007", "empty": ""},
        customer={"tier": "gold", "balance": 12.5, "vip": True, "name": "Nan"},
        queue_figures=lambda q: QueueFigures(2, 30.0) if q == "support" else QueueFigures(0, None),
    )


def holds(condition: Condition, scope: Scope, now: float = WEDNESDAY_11H) -> bool:
    return evaluate(condition, scope, CALENDARS, now)


@pytest.mark.parametrize(
    ("ref", "op", "value", "expected"),
    [
        # keys arrive as text, flow files write numbers
        ("var.choice", "eq", 2, True),
        ("var.choice", "eq", "2", True),
        ("var.choice", "eq", 2.0, True),
        ("var.account", "eq", 7, True),  # numerically equal
        ("var.account", "eq", "007", True),
        ("var.choice", "ne", 3, True),
        ("var.choice", "gt", 10, False),  # numeric, not "2" > "10" as text
        ("var.choice", "lt", 10, True),
        ("var.choice", "le", 2, True),
        ("var.choice", "ge", "2.0", True),
        ("customer.balance", "gt", "12.49", True),
        ("customer.balance", "lt", 12.5, False),
        ("customer.tier", "eq", "gold", True),
        ("customer.tier", "ne", "platinum", True),
        ("customer.tier", "lt", "platinum", True),  # text order when not both numbers
        ("customer.tier", "gt", 3, True),  # "gold" > "3" as text
        ("customer.vip", "eq", True, True),
        ("customer.vip", "eq", "true", True),
        ("customer.name", "eq", "nan", False),  # "nan" is a word, not a number
        ("customer.name", "eq", "Nan", True),
        ("queue.support.agents_available", "gt", 0, True),
        ("queue.support.estimated_wait", "le", 30, True),
        ("queue.sales.agents_available", "gt", 0, False),
        ("queue.sales.estimated_wait", "eq", None, True),  # unknown wait is None
        # missing references are None
        ("var.nope", "eq", None, True),
        ("var.nope", "eq", "", False),
        ("var.empty", "eq", None, False),
        ("var.empty", "eq", "", True),
        ("var.nope", "ne", "x", True),
        ("var.nope", "lt", 5, False),
        ("var.nope", "ge", 5, False),
        ("var.choice", "lt", None, False),
        # membership
        ("customer.tier", "in", ["gold", "platinum"], True),
        ("customer.tier", "in", ("silver",), False),
        ("var.choice", "in", [1, 2, 3], True),
        ("var.choice", "not_in", [1, 3], True),
        ("var.nope", "in", ["a"], False),
        ("var.nope", "not_in", ["a"], True),
        ("var.nope", "in", [None], True),
        # regular expressions: search, anchored by the pattern itself
        ("call.ani", "matches", r"^\+?49", True),
        ("call.ani", "matches", "123", True),
        ("call.ani", "matches", "^123", False),
        ("var.nope", "matches", ".*", False),
        # exists
        ("var.account", "exists", True, True),
        ("var.empty", "exists", True, True),
        ("var.nope", "exists", True, False),
        ("var.nope", "exists", False, True),
        ("var.account", "exists", "false", False),
    ],
)
def test_compare(scope: Scope, ref: str, op: CompareOp, value: object, expected: bool) -> None:
    condition = Compare(ref, op, value)
    assert holds(condition, scope) is expected


def test_open_follows_the_calendar(scope: Scope) -> None:
    assert holds(Open("office"), scope)
    assert not holds(Open("office"), scope, now=WEDNESDAY_11H + 7 * 3600)  # 18:00 local


def test_combinators(scope: Scope) -> None:
    gold = Compare("customer.tier", "eq", "gold")
    silver = Compare("customer.tier", "eq", "silver")
    assert holds(AllOf((gold, Open("office"))), scope)
    assert not holds(AllOf((gold, silver)), scope)
    assert holds(AllOf(()), scope)
    assert holds(AnyOf((silver, gold)), scope)
    assert not holds(AnyOf((silver,)), scope)
    assert not holds(AnyOf(()), scope)
    assert holds(Not(silver), scope)
    # the example from the flow format: all of [var.account exists, not call.ani == ""]
    assert holds(
        AllOf((Compare("var.account", "exists", True), Not(Compare("call.ani", "eq", "")))), scope
    )


def test_short_circuit_skips_what_is_not_needed(scope: Scope) -> None:
    # The unknown calendar would raise if it were evaluated.
    gold = Compare("customer.tier", "eq", "gold")
    assert holds(AnyOf((gold, Open("nowhere"))), scope)
    assert not holds(AllOf((Not(gold), Open("nowhere"))), scope)


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        (Open("nowhere"), "unknown calendar 'nowhere'"),
        (Compare("var.choice", "in", "12"), "a list expected"),
        (Compare("var.choice", "matches", "("), "invalid regular expression"),
        (Compare("var.choice", "like", "2"), "unknown comparison 'like'"),  # type: ignore[arg-type]  # deliberately invalid op
    ],
)
def test_what_the_loader_should_refuse_raises_config_error(
    scope: Scope, condition: Condition, fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        holds(condition, scope)


def test_patterns_are_compiled_once() -> None:
    assert compile_pattern("^8[0-9]+$") is compile_pattern("^8[0-9]+$")


numbers = st.one_of(
    st.integers(-10_000, 10_000),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(0, 99_999).map(lambda n: f"{n:05d}"),  # keys with leading zeros
)


@given(numbers, numbers)
def test_numbers_order_like_numbers_whatever_their_type(a: float | str, b: float | str) -> None:
    x, y = float(a), float(b)
    assert compare(a, "lt", b) is (x < y)
    assert compare(a, "eq", b) is (x == y)
    assert compare(a, "ge", b) is (x >= y)
    assert compare(a, "ne", b) is not compare(a, "eq", b)


@given(st.text(max_size=8), st.text(max_size=8))
def test_orderings_are_consistent_for_any_text(a: str, b: str) -> None:
    lt, eq, gt = compare(a, "lt", b), compare(a, "eq", b), compare(a, "gt", b)
    assert [lt, eq, gt].count(True) == 1
    assert compare(a, "le", b) is (lt or eq)
    assert compare(b, "gt", a) is lt
