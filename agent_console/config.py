"""The console's own configuration file: wrap-up codes, alert thresholds, supervisors' phones.

The demo is ``config/console.yaml``::

    dispositions:                    # the wrap-up codes an agent chooses from (1-100 of them)
      - {code: sale, label: Sale made}          # code: [a-z0-9_-]{1,40}, label: 1-80 chars
      - {code: complaint, label: Complaint}     # "complaint" feeds the churn warning (insight)
    alerts:
      long_wait: 60                  # seconds: a caller waiting this long raises an alert
      service_level: true            # alert while a queue's last-30-minute service level is
                                     # below its goal (acd.yaml service_level.goal)
      min_calls: 5                   # ... once at least this many calls count in the window
    supervisor_phones:               # where listen/whisper/barge ring, by user name
      super: PJSIP/agent1005
    mask: "•"                        # how the IVR's masked values are shown (display only)

Queues, agents and not-ready reasons are the ACD's (``config/acd.yaml``); this file only adds
what the pages need. Read by the shared source (``cti.config``): unknown keys are errors (a
typo must not silently do nothing) and every problem is reported at once as
``file:line: key.path: what (expected ...)``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from cti.config import load_model
from cti.phones import is_endpoint

__all__ = ["AlertSettings", "ConsoleConfig", "Disposition", "load_console_config"]

_CODE = re.compile(r"[a-z0-9_-]{1,40}")


def _phone(endpoint: str) -> str:
    if not is_endpoint(endpoint):
        raise ValueError("not a channel like PJSIP/name (technology/resource)")
    return endpoint


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Disposition(_Strict):
    code: str
    label: Annotated[str, Field(min_length=1, max_length=80)]

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not _CODE.fullmatch(value):
            raise ValueError("a code is 1-40 characters of a-z, 0-9, _ and -")
        return value


class AlertSettings(_Strict):
    long_wait: Annotated[float, Field(gt=0)] = 60.0
    service_level: bool = True
    min_calls: Annotated[int, Field(ge=1)] = 5


class ConsoleConfig(_Strict):
    dispositions: Annotated[tuple[Disposition, ...], Field(min_length=1, max_length=100)] = (
        Disposition(code="resolved", label="Resolved"),
        Disposition(code="follow_up", label="Follow-up needed"),
    )
    alerts: AlertSettings = AlertSettings()
    supervisor_phones: dict[str, Annotated[str, AfterValidator(_phone)]] = {}
    mask: Annotated[str, Field(min_length=1, max_length=4)] = "•"

    @field_validator("dispositions")
    @classmethod
    def _unique(cls, value: tuple[Disposition, ...]) -> tuple[Disposition, ...]:
        codes = [d.code for d in value]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"codes listed twice: {', '.join(twice)}")
        return value

    def disposition_codes(self) -> frozenset[str]:
        return frozenset(d.code for d in self.dispositions)

    def view(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def load_console_config(path: Path | None) -> ConsoleConfig:
    """The configuration in ``path`` (``None``: the built-in defaults); one ``ConfigError``
    naming every problem otherwise, each as "file:line: key.path: what (expected ...)"."""
    if path is None:
        return ConsoleConfig()
    return load_model(
        path, ConsoleConfig, what="console configuration", expected="a mapping of settings"
    )
