"""The manager login as a generator: it yields actions and receives their results.

The exchange (manager.c, ``action_challenge`` and ``authenticate``):

    -> Action: Challenge / AuthType: MD5
    <- Response: Success / Challenge: 840164437
    -> Action: Login / AuthType: MD5 / Username: u / Key: md5hex(challenge + secret) / Events: on
    <- Response: Success / Message: Authentication accepted
       (or Response: Error / Message: Authentication failed, then a 1 s pause and a disconnect)

Written as a generator (the httpx ``auth_flow`` pattern) so it can be stepped by hand in tests
and driven by any transport. The plain ``Secret:`` login exists for servers configured without
MD5 support, but is only used when asked for: falling back to it silently after a refused
challenge would let anyone in the middle downgrade us to sending the secret in clear.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator
from typing import Literal

from cti.ami.actions import Action
from cti.ami.protocol import ActionResult
from cti.errors import AmiAuthError, RemoteProtocolError

__all__ = ["AuthMethod", "LoginFlow", "login_flow", "md5_key"]

AuthMethod = Literal["md5", "plain"]
LoginFlow = Generator[Action, ActionResult, ActionResult]


def md5_key(challenge: str, secret: str) -> str:
    """``Key:`` for an MD5 login: hex MD5 of the challenge followed by the secret."""
    digest = hashlib.md5((challenge + secret).encode("utf-8"), usedforsecurity=False)
    return digest.hexdigest()


def login_flow(
    username: str, secret: str, *, events: str = "on", method: AuthMethod = "md5"
) -> LoginFlow:
    """Yield the actions of a login; return the accepted ``Login`` result.

    Raises ``AmiAuthError`` when Asterisk refuses, ``RemoteProtocolError`` when a challenge
    reply carries no challenge.
    """
    login: list[tuple[str, str]] = [("Username", username)]
    if method == "md5":
        challenge = yield Action("Challenge", (("AuthType", "MD5"),))
        if not challenge.ok:
            raise AmiAuthError(f"MD5 challenge refused: {challenge.error_text}")
        token = challenge.response.get("Challenge")
        if not token:
            raise RemoteProtocolError("Challenge reply without a Challenge header")
        login += [("AuthType", "MD5"), ("Key", md5_key(token, secret))]
    else:
        login.append(("Secret", secret))
    login.append(("Events", events))
    result = yield Action("Login", tuple(login))
    if not result.ok:
        raise AmiAuthError(f"login as {username!r} refused: {result.error_text}")
    return result
