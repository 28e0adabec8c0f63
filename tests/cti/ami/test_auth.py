"""The login generator, stepped by hand (no I/O at all)."""

from __future__ import annotations

import hashlib

import pytest

from cti.ami.actions import Action
from cti.ami.auth import login_flow, md5_key
from cti.ami.messages import Response
from cti.ami.protocol import ActionResult
from cti.errors import AmiAuthError, RemoteProtocolError


def result(action: str, *headers: tuple[str, str]) -> ActionResult:
    return ActionResult(action, "id", Response(headers))


def test_md5_key_is_md5_of_challenge_then_secret() -> None:
    assert md5_key("840164437", "s3cret") == hashlib.md5(b"840164437s3cret").hexdigest()


def test_md5_login_steps() -> None:
    flow = login_flow("cti", "s3cret", events="call,agent")
    challenge = next(flow)
    assert challenge == Action("Challenge", (("AuthType", "MD5"),))
    login = flow.send(result("Challenge", ("Response", "Success"), ("Challenge", "123456789")))
    assert login == Action(
        "Login",
        (
            ("Username", "cti"),
            ("AuthType", "MD5"),
            ("Key", md5_key("123456789", "s3cret")),
            ("Events", "call,agent"),
        ),
    )
    assert login.get("Secret") is None  # the secret never goes on the wire
    accepted = result("Login", ("Response", "Success"), ("Message", "Authentication accepted"))
    with pytest.raises(StopIteration) as stop:
        flow.send(accepted)
    assert stop.value.value is accepted


def test_refused_login_raises_auth_error() -> None:
    flow = login_flow("cti", "wrong")
    next(flow)
    flow.send(result("Challenge", ("Response", "Success"), ("Challenge", "1")))
    with pytest.raises(AmiAuthError, match="Authentication failed"):
        flow.send(result("Login", ("Response", "Error"), ("Message", "Authentication failed")))


def test_refused_challenge_raises_auth_error_without_falling_back_to_plain() -> None:
    flow = login_flow("cti", "s3cret")
    next(flow)
    with pytest.raises(AmiAuthError, match="challenge refused"):
        flow.send(result("Challenge", ("Response", "Error"), ("Message", "Must specify AuthType")))


def test_challenge_reply_without_challenge_is_a_protocol_error() -> None:
    flow = login_flow("cti", "s3cret")
    next(flow)
    with pytest.raises(RemoteProtocolError):
        flow.send(result("Challenge", ("Response", "Success")))


def test_plain_login_when_asked() -> None:
    flow = login_flow("cti", "s3cret", method="plain", events="off")
    login = next(flow)
    assert login == Action("Login", (("Username", "cti"), ("Secret", "s3cret"), ("Events", "off")))
    with pytest.raises(StopIteration):
        flow.send(result("Login", ("Response", "Success")))
