"""Phone endpoints, dialable numbers and the normal form of phone numbers: one home
(cti/phones.py) for what four modules used to spell four ways."""

from __future__ import annotations

import pytest

from cti.phones import (
    ENDPOINT_PATTERN,
    check_dialable,
    check_endpoint,
    is_dialable,
    is_endpoint,
    normalise_phone,
)


@pytest.mark.parametrize(
    "endpoint",
    [
        "PJSIP/agent1001",
        "SIP/1001",
        "IAX2/office-7",
        "DAHDI/g1",  # a technology the console's old list did not know
        "Local/1001@agents/n",  # "/" inside the resource (agent log-in allowed it)
        "PJSIP/trunk/sip:1001@pbx.example.com",
        "PJSIP/+4930123456@trunk",  # "+" (the console allowed it, call control did not)
        "PJSIP/agent_1.a-b",
    ],
)
def test_real_endpoints_are_accepted(endpoint: str) -> None:
    assert is_endpoint(endpoint)
    assert check_endpoint(endpoint) == endpoint


@pytest.mark.parametrize(
    "endpoint",
    [
        "",
        "agent1001",  # no technology
        "PJSIP/",  # no resource
        "/agent1001",
        "1PJSIP/agent",  # a technology starts with a letter
        "PJ_SIP/agent",  # acd.yaml's old pattern let "_" in; no Asterisk technology has one
        "PJSIP//agent",  # the resource starts with a letter, digit or +
        "PJSIP/a,b",  # would split Dial()'s arguments
        "PJSIP/a&PJSIP/b",  # would dial two phones
        "PJSIP/a|b",  # would split our agent|endpoint|ring offer string
        "PJSIP/a b",
        "PJSIP/a\r\nAction: Originate",  # an AMI header injection
        "PJSIP/$(SHELL(id))",
        "PJSIP/" + "a" * 81,
        None,
        1001,
    ],
)
def test_anything_that_could_break_a_dialplan_argument_is_refused(endpoint: object) -> None:
    assert not is_endpoint(endpoint)
    with pytest.raises(ValueError, match="not like PJSIP/agent1001"):
        check_endpoint(endpoint)


def test_the_pattern_serves_pydantic_and_json_schema_too() -> None:
    import re

    assert re.fullmatch(f"^{ENDPOINT_PATTERN}$", "PJSIP/agent1001")
    assert not re.fullmatch(f"^{ENDPOINT_PATTERN}$", "PJSIP/a,b")


@pytest.mark.parametrize("number", ["5551234", "+4930123", "*72#", "1" * 32])
def test_dialable_numbers(number: str) -> None:
    assert is_dialable(number)
    assert check_dialable(number) == number


@pytest.mark.parametrize(
    "number",
    ["", "555 1234", "55+5", "1" * 33, "٣٣٣", "5²", "anonymous", None],
)
def test_not_dialable(number: object) -> None:
    # Non-ASCII digits pass str.isdigit (acd.core's old check) but Asterisk cannot dial them.
    assert not is_dialable(number)
    with pytest.raises(ValueError, match="1-32 of 0-9"):
        check_dialable(number)


@pytest.mark.parametrize(
    ("number", "country", "expected"),
    [
        ("+49 (30) 123-45", None, "+493012345"),
        ("004930123", None, "+4930123"),
        ("030 1234", "49", "+49301234"),
        ("030 1234", None, "0301234"),
        ("5551234", "49", "5551234"),
        ("anonymous", None, ""),
        ("unknown", "49", ""),
        ("+", None, ""),
        ("٣٣٣", None, ""),
    ],
)
def test_normal_form(number: str, country: str | None, expected: str) -> None:
    assert normalise_phone(number, country) == expected


def test_the_ivr_still_offers_the_same_function() -> None:
    from ivr import services

    assert services.normalise_phone is normalise_phone
