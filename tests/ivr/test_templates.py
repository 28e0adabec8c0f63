from __future__ import annotations

from decimal import Decimal

import pytest

from ivr.ports import CallInfo, QueueFigures
from ivr.templates import Scope, ref_problem, render, resolve, template_refs, text_of


def figures(queue: str) -> QueueFigures:
    live = {"support": QueueFigures(3, 45.0), "sales.eu": QueueFigures(1, None)}
    return live.get(queue, QueueFigures(0, None))


@pytest.fixture
def scope() -> Scope:
    return Scope(
        call=CallInfo(ani="5551234", dnis="8000", channel="PJSIP/trunk-1", caller_name="Ann"),
        variables={"account": "123456", "empty": ""},
        customer={"tier": "gold", "balance": Decimal("12.50"), "address": {"city": "Berlin"}},
        queue_figures=figures,
    )


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("var.account", "123456"),
        ("var.empty", ""),
        ("var.nope", None),
        ("customer.tier", "gold"),
        ("customer.balance", Decimal("12.50")),
        ("customer.address.city", "Berlin"),
        ("customer.address.zip", None),
        ("customer.tier.deeper", None),
        ("call.ani", "5551234"),
        ("call.dnis", "8000"),
        ("call.channel", "PJSIP/trunk-1"),
        ("call.caller_name", "Ann"),
        ("call.uniqueid", ""),
        ("call.secret_attr", None),
        ("queue.support.agents_available", 3),
        ("queue.support.estimated_wait", 45.0),
        ("queue.sales.eu.agents_available", 1),  # queue names may contain dots
        ("queue.nobody.agents_available", 0),
        ("queue.support.bogus", None),
        ("nonsense.x", None),
        ("", None),
    ],
)
def test_resolve(scope: Scope, ref: str, expected: object) -> None:
    assert resolve(ref, scope) == expected


def test_resolve_customer_without_lookup(scope: Scope) -> None:
    scope.customer = None
    assert resolve("customer.tier", scope) is None


def test_render_fills_refs_and_notes_missing(scope: Scope) -> None:
    missing: list[str] = []
    text = render(
        "Hello ${customer.tier} caller ${call.ani}, wait ${queue.support.estimated_wait} s;"
        " you owe ${customer.balance}. ${var.nope}${ customer.nothing }!",
        scope,
        missing,
    )
    assert text == "Hello gold caller 5551234, wait 45 s; you owe 12.50. !"
    assert missing == ["var.nope", "customer.nothing"]


def test_render_escape_and_unterminated(scope: Scope) -> None:
    assert (
        render("cost: $${var.account} = ${var.account}", scope) == "cost: ${var.account} = 123456"
    )
    assert render("price $5 and ${var.account", scope) == "price $5 and ${var.account"
    assert render("no templates here", scope) == "no templates here"


def test_render_without_missing_list_is_quiet(scope: Scope) -> None:
    assert render("[${var.nope}]", scope) == "[]"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (30.0, "30"),
        (2.5, "2.5"),
        (7, "7"),
        (Decimal("12.50"), "12.50"),
        ("x", "x"),
    ],
)
def test_text_of(value: object, text: str) -> None:
    assert text_of(value) == text


def test_template_refs() -> None:
    assert template_refs("a ${var.x} $${var.escaped} ${ customer.y }") == ("var.x", "customer.y")
    assert template_refs("plain") == ()


@pytest.mark.parametrize(
    "ref",
    [
        "var.account",
        "customer.tier",
        "customer.address.city",
        "call.ani",
        "call.caller_name",
        "queue.support.agents_available",
        "queue.sales.eu.estimated_wait",
    ],
)
def test_valid_refs(ref: str) -> None:
    assert ref_problem(ref) is None


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        ("var", "var.NAME expected"),
        ("var.", "var.NAME expected"),
        ("customer.a..b", "customer.NAME expected"),
        ("call.password", "call.ani|caller_name"),
        ("queue.support", "queue.NAME.agents_available|estimated_wait"),
        ("queue.agents_available", "queue.NAME"),
        ("queue.support.size", "queue.NAME"),
        ("vars.x", "unknown namespace 'vars'"),
    ],
)
def test_invalid_refs(ref: str, fragment: str) -> None:
    problem = ref_problem(ref)
    assert problem is not None
    assert fragment in problem
