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
what the pages need. Unknown keys are errors (a typo must not silently do nothing); every
problem is reported at once as ``file: key: what``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cti.errors import ConfigError

__all__ = ["AlertSettings", "ConsoleConfig", "Disposition", "load_console_config"]

_CODE = re.compile(r"[a-z0-9_-]{1,40}")
_ENDPOINT = re.compile(r"(PJSIP|SIP|IAX2|Local)/[A-Za-z0-9_.@+-]{1,80}")


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
    supervisor_phones: dict[str, str] = {}
    mask: Annotated[str, Field(min_length=1, max_length=4)] = "•"

    @field_validator("dispositions")
    @classmethod
    def _unique(cls, value: tuple[Disposition, ...]) -> tuple[Disposition, ...]:
        codes = [d.code for d in value]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"codes listed twice: {', '.join(twice)}")
        return value

    @field_validator("supervisor_phones")
    @classmethod
    def _phones(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(user for user, endpoint in value.items() if not _ENDPOINT.fullmatch(endpoint))
        if bad:
            raise ValueError(
                f"not a channel like PJSIP/name for: {', '.join(bad)} (technology/resource)"
            )
        return value

    def disposition_codes(self) -> frozenset[str]:
        return frozenset(d.code for d in self.dispositions)

    def view(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def load_console_config(path: Path | None) -> ConsoleConfig:
    """The configuration in ``path`` (``None``: the built-in defaults); one ``ConfigError``
    naming every problem otherwise."""
    if path is None:
        return ConsoleConfig()
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source=source) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=source) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the file must be a mapping of settings", source=source)
    try:
        return ConsoleConfig.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigError(
            f"{len(problems)} problem(s):\n  " + "\n  ".join(problems), source=source
        ) from exc
