"""From a checked ``acd.yaml`` to ``AcdConfig``: the checks that need the whole file.

``acd.config_file``'s models check each value on its own; this module builds the frozen values
(a queue's settings fall back, key by key, to ``defaults``) and adds what only the whole file
tells: overflow targets that exist and never loop, the queues agents serve, one endpoint per
agent, a fallback above every heartbeat, and (as warnings) queues nobody could ever serve.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from acd.config_file import (
    AGENT_ID,
    TOP_KEYS,
    AcdFile,
    QueueFile,
    QueueSettingsFile,
    valid_name,
)
from acd.config_types import (
    AcdConfig,
    AgentConfig,
    AnnounceSpec,
    CallbackPolicy,
    QueueConfig,
    ServiceLevelSpec,
)
from acd.engine import effective_requirements
from acd.model import QueueSpec, RelaxStep, WaitingCall
from cti.config import (
    KeyPath,
    YamlDocument,
    check_keys,
    did_you_mean,
    read_yaml,
    short,
    validation_problems,
)
from cti.config.validation import EXTENSION_PREFIX
from ivr.model import Calendar
from ivr.schema import parse_calendar

__all__ = ["WARNING", "build", "line_order", "read"]


WARNING = "warning: "


@dataclass(frozen=True)
class _Problem:
    path: KeyPath
    message: str
    origin: str  # "file:line"
    warning: bool = False

    @property
    def where(self) -> str:
        p = self.path
        if len(p) >= 2 and p[0] in ("queues", "agents"):
            return f"{p[0][:-1]} {p[1]}"
        if len(p) >= 2 and p[0] == "defaults":
            return "defaults"
        return p[0] if p else ""

    def __str__(self) -> str:
        parts = (self.origin, self.where, self.message)
        text = ": ".join(part for part in parts if part)
        return WARNING + text if self.warning else text


def line_order(problem: _Problem) -> tuple[int, str]:
    _, _, line = problem.origin.rpartition(":")
    return (int(line) if line.isdigit() else 0), str(problem)


def read(path: Path) -> tuple[YamlDocument | None, list[_Problem]]:
    expected = f"expected a mapping with {', '.join(TOP_KEYS)}"
    document, found = read_yaml(path)
    problems = [_Problem(p.path, p.message, p.origin) for p in found]
    if document is None:
        return None, problems
    if not isinstance(document.data, Mapping):
        got = "empty" if document.data is None else f"a {type(document.data).__name__}"
        return None, [*problems, _Problem((), f"the file is {got} ({expected})", str(path))]
    return document, problems


def build(document: YamlDocument, problems: list[_Problem], source: str) -> AcdConfig | None:
    """The configuration in ``document`` (``None`` when a value is wrong); every problem is
    appended to ``problems``."""
    return _Builder(document, problems).config(source)


# -- building -------------------------------------------------------------------------------


class _Builder:
    """From the checked file to ``AcdConfig``, adding every problem that needs the whole file."""

    def __init__(self, document: YamlDocument, problems: list[_Problem]) -> None:
        self.document = document
        self.problems = problems

    def report(self, path: KeyPath, message: str, *, warning: bool = False) -> None:
        self.problems.append(_Problem(path, message, self.document.at(path), warning))

    def config(self, source: str) -> AcdConfig | None:
        data, unknown = check_keys(self._named(dict(self.document.data)), AcdFile)
        for p in unknown:
            self.report(p.path, p.message)
        # Time zones and calling hours are IVR calendars, checked by ivr.schema on the raw
        # data, so they are reported even when some other value is wrong.
        hours = self._calendars(data if isinstance(data, Mapping) else {})
        try:
            file = AcdFile.model_validate(data)
        except ValidationError as exc:
            for p in validation_problems(exc, self.document.at, self.document.traps):
                self.report(p.path, p.message)
            return None
        defaults = _settings(file.defaults, QueueConfig(QueueSpec("")))
        queues = {name: _queue(name, q, defaults) for name, q in file.queues.items()}
        if not self.document.top().get("queues"):
            self.report(("queues",), "no queues (expected at least one queue)")
        self._overflows(file, queues)
        agents = self._agents(file, queues)
        for name, queue in queues.items():
            if "fallback_after" in file.model_fields_set and (
                file.fallback_after <= queue.announce.every
            ):
                self.report(
                    ("fallback_after",),
                    f"{file.fallback_after:g} is not above queue {name}'s announce every "
                    f"{queue.announce.every:g} (expected more than every announce interval: "
                    "that is the heartbeat, so callers would fall back while the server is up)",
                )
        self._unservable(queues, agents)
        cb = file.callbacks
        return AcdConfig(
            queues=queues,
            agents=agents,
            not_ready_reasons=tuple(file.not_ready_reasons),
            callbacks=CallbackPolicy(
                cb.attempts, cb.retry_after, cb.ring_customer, cb.dial_context, hours
            ),
            fallback_after=file.fallback_after,
            reconcile_every=file.reconcile_every,
            timezone=file.timezone,
            source=source,
        )

    def _named(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` without the queues and agents whose names are refused (their contents are
        not looked at: every problem in them would follow from the name)."""
        rules = (
            (
                "queues",
                valid_name,
                "is not a valid queue name (expected 1 to 64 letters, digits, _ or -)",
            ),
            (
                "agents",
                lambda n: isinstance(n, str) and AGENT_ID.fullmatch(n) is not None,
                "is not a valid agent id (expected 1 to 40 letters, digits, _, . or -)",
            ),
        )
        for section, valid, message in rules:
            entries = data.get(section)
            if not isinstance(entries, Mapping):
                continue
            kept = {}
            for name, value in entries.items():
                if valid(name) or str(name).startswith(EXTENSION_PREFIX):
                    kept[name] = value
                else:
                    self.report((section, str(name)), f"{short(name)[:60]} {message}")
            data[section] = kept
        return data

    def _calendars(self, data: Mapping[str, Any]) -> Calendar | None:
        if "timezone" in data:
            # ivr.schema checks time zones inside calendars: borrow it with a calendar's shape.
            raw = {"timezone": data["timezone"], "weekly": {}}
            _, found = parse_calendar("", raw, ("timezone",), self.document.at)
            for problem in found:
                self.report(("timezone",), problem.message)
        callbacks = data.get("callbacks")
        if not isinstance(callbacks, Mapping) or callbacks.get("hours") is None:
            return None
        path = ("callbacks", "hours")
        hours, found = parse_calendar("callbacks", callbacks["hours"], path, self.document.at)
        for problem in found:
            self.report(problem.path, problem.message)
        return hours

    def _overflows(self, file: AcdFile, queues: Mapping[str, QueueConfig]) -> None:
        """Queue targets exist, overflows are used, and following them never comes back to
        where it started."""
        for name, queue in queues.items():
            raw = file.queues[name]
            spec = queue.spec
            path = ("queues", name)
            if raw.overflow is None and (spec.max_wait is not None or spec.overflow_when_empty):
                key = "max_wait" if spec.max_wait is not None else "overflow_when_empty"
                self.report(
                    (*path, key),
                    f"{key} without an overflow (expected overflow: {{to: ..., target: ...}})",
                )
            if raw.overflow is not None and spec.max_wait is None and not spec.overflow_when_empty:
                self.report(
                    (*path, "overflow"),
                    "overflow is never used (expected max_wait or overflow_when_empty: true)",
                    warning=True,
                )
            target = spec.overflow_target
            if spec.overflow in ("queue", "callback") and target and target not in queues:
                hint = did_you_mean(target, queues)
                self.report(
                    (*path, "overflow", "target"),
                    f"overflow to unknown queue {target!r} (expected one of "
                    f"{', '.join(queues)}){hint}",
                )
        for cycle in _cycles(queues):
            first = min(cycle)
            at = cycle.index(first)
            ring = [*cycle[at:], *cycle[:at], first]
            self.report(
                ("queues", first, "overflow"),
                f"overflow cycle {' -> '.join(ring)} (expected overflows to end "
                "somewhere other than a queue already passed)",
            )

    def _agents(self, file: AcdFile, queues: Mapping[str, QueueConfig]) -> dict[str, AgentConfig]:
        agents: dict[str, AgentConfig] = {}
        endpoints: dict[str, str] = {}
        for agent_id, raw in file.agents.items():
            path = ("agents", agent_id)
            endpoint = raw.endpoint or f"PJSIP/{agent_id}"
            if endpoint in endpoints:
                self.report(
                    (*path, "endpoint"),
                    f"endpoint {endpoint} is also agent {endpoints[endpoint]}'s "
                    "(expected one endpoint per agent)",
                )
            endpoints.setdefault(endpoint, agent_id)
            if "queues" not in raw.model_fields_set:
                self.report(
                    (*path, "queues"),
                    "queues: None is not allowed (expected a list of the queues the agent serves)",
                )
            for i, queue in enumerate(raw.queues):
                if queue not in queues:
                    hint = did_you_mean(str(queue), queues)
                    self.report(
                        (*path, "queues", str(i)),
                        f"unknown queue {short(queue)} (expected one of {', '.join(queues)}){hint}",
                    )
            agents[agent_id] = AgentConfig(
                agent_id=agent_id,
                name=raw.name or agent_id,
                endpoint=endpoint,
                skills=dict(raw.skills),
                queues=frozenset(q for q in raw.queues if q in queues),
                wrap_up=raw.wrap_up,
            )
        return agents

    def _unservable(
        self, queues: Mapping[str, QueueConfig], agents: Mapping[str, AgentConfig]
    ) -> None:
        for name, queue in queues.items():
            serving = [a for a in agents.values() if name in a.queues]
            least = effective_requirements(queue.spec, WaitingCall("", name, 0.0), None)
            able = [
                a for a in serving if all(a.skills.get(s, 0) >= lvl for s, lvl in least.items())
            ]
            if able:
                continue
            why = (
                "no agent lists it"
                if not serving
                else (
                    "every agent serving it lacks a required skill even after full relaxation "
                    f"(needs {', '.join(f'{s} {lvl}' for s, lvl in sorted(least.items()))})"
                )
            )
            self.report(("queues", name), f"no agent can ever take its calls: {why}", warning=True)


def _settings(raw: QueueSettingsFile, base: QueueConfig) -> QueueConfig:
    """The settings a queue shares with ``defaults``, each falling back to ``base``."""
    a, s = base.announce, base.service_level
    ra, rs = raw.announce, raw.service_level
    offer = base.callback_offer_after
    if "callback_offer_after" in raw.model_fields_set:
        offer = raw.callback_offer_after
    return QueueConfig(
        spec=base.spec,
        ring_timeout=_given(raw.ring_timeout, base.ring_timeout),
        wrap_up=_given(raw.wrap_up, base.wrap_up),
        announce=AnnounceSpec(
            every=_given(ra.every, a.every),
            position=_given(ra.position, a.position),
            estimated_wait=_given(ra.estimated_wait, a.estimated_wait),
        ),
        service_level=ServiceLevelSpec(
            threshold=_given(rs.threshold, s.threshold),
            goal=_given(rs.goal, s.goal),
            variant=_given(rs.variant, s.variant),
            short_abandon=_given(rs.short_abandon, s.short_abandon),
        ),
        music_class=_given(raw.music_class, base.music_class),
        callback_offer_after=offer,
    )


def _queue(name: str, raw: QueueFile, defaults: QueueConfig) -> QueueConfig:
    overflow = raw.overflow
    spec = QueueSpec(
        name=name,
        skills=dict(raw.skills),
        strategy=raw.strategy,
        aging_rate=raw.aging_rate,
        relaxation=tuple(
            RelaxStep(step.after, step.lower_by, frozenset(step.drop)) for step in raw.relaxation
        ),
        max_wait=raw.max_wait,
        overflow_when_empty=raw.overflow_when_empty,
        overflow=overflow.to if overflow else None,
        overflow_target=overflow.target if overflow else "",
    )
    return replace(_settings(raw, defaults), spec=spec)


def _cycles(queues: Mapping[str, QueueConfig]) -> list[list[str]]:
    """Every loop of queue-to-queue overflows, once each."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for start in queues:
        chain = [start]
        while True:
            spec = queues[chain[-1]].spec
            nxt = spec.overflow_target if spec.overflow == "queue" else ""
            if nxt not in queues:
                break
            if nxt in chain:
                cycle = chain[chain.index(nxt) :]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    found.append(cycle)
                break
            chain.append(nxt)
    return found


_T = TypeVar("_T")


def _given(value: _T | None, default: _T) -> _T:
    return default if value is None else value
