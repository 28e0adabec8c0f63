"""The waiting state kept on the caller's channel (``CTI_ACD``): the codec, and nothing else.

A waiting caller's place in line must survive the server (a restart, a ``kill -9``): it is
stored on the caller's channel in Asterisk, as one URL-encoded variable value, and read back by
the reconciliation (``acd.reconcile``) to adopt the call again.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = ["WAITING_VERSION", "WaitingPlace", "WaitingState", "decode_waiting", "encode_waiting"]

WAITING_VERSION = "1"


class WaitingPlace(Protocol):
    """What ``encode_waiting`` reads from a call (``acd.runtime.AcdCall`` has it)."""

    @property
    def queue(self) -> str: ...
    @property
    def entered_at(self) -> float: ...
    @property
    def priority(self) -> int: ...
    @property
    def skills(self) -> Mapping[str, int]: ...
    @property
    def number(self) -> str: ...


def encode_waiting(call: WaitingPlace) -> str:
    """The call's place as one channel variable value (``CTI_ACD``), URL-encoded so that no
    comma, quote or pipe in it can split a dialplan argument list."""
    skills = ",".join(f"{skill}:{level}" for skill, level in sorted(call.skills.items()))
    return urllib.parse.urlencode(
        {
            "v": WAITING_VERSION,
            "queue": call.queue,
            "entered": f"{call.entered_at:.3f}",
            "priority": str(call.priority),
            "skills": skills,
            "ani": call.number,
        }
    )


@dataclass(frozen=True)
class WaitingState:
    queue: str
    entered_at: float
    priority: int
    skills: Mapping[str, int]
    ani: str


def decode_waiting(text: str | None) -> WaitingState | None:
    """``encode_waiting`` reversed; None for anything that is not a complete, valid value."""
    if not text:
        return None
    try:
        data = dict(urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True))
        if data.get("v") != WAITING_VERSION or not data.get("queue"):
            return None
        skills: dict[str, int] = {}
        for item in filter(None, data.get("skills", "").split(",")):
            name, _, level = item.partition(":")
            skills[name] = int(level)
        entered = float(data["entered"])
        if not math.isfinite(entered):
            return None
        return WaitingState(
            queue=data["queue"],
            entered_at=entered,
            priority=int(data.get("priority", "0")),
            skills=skills,
            ani=data.get("ani", ""),
        )
    except (KeyError, ValueError):
        return None
