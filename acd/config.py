"""The ACD configuration file: queues, agents, not-ready reasons and callbacks, as frozen values.

Admins describe the contact center in one YAML file (the demo is ``config/acd.yaml``)::

    timezone: Europe/Berlin          # "today" for the live figures (an IANA zone)
    fallback_after: 90               # the dialplan gives up on a silent server after this (s);
                                     # must exceed every queue's announce.every (the heartbeat)
    reconcile_every: 30              # seconds between reconciliations with Asterisk
    not_ready_reasons: [break, lunch]  # "no answer" and "login" are built in
    callbacks:                       # all optional
      attempts: 3                    # dial attempts per callback (>= 1)
      retry_after: 300               # seconds between attempts
      ring_customer: 30              # seconds the customer's phone rings
      dial_context: cti-originate    # dialplan context the customer's number is dialed in
      hours: {timezone: Europe/Berlin, weekly: {mon-fri: "09:00-18:00"}, holidays: []}
    defaults:                        # per-queue settings every queue starts from
      ring_timeout: 15               # seconds an agent's phone rings before "no answer"
      wrap_up: 10                    # seconds of after-call work
      music_class: default           # musiconhold.conf class
      callback_offer_after: null     # offer a callback above this estimated wait (s)
      announce: {every: 30, position: true, estimated_wait: true}     # every >= 5
      service_level: {threshold: 20, goal: 0.8, variant: abandons_ignored, short_abandon: 0}
    queues:
      sales:                         # name: [A-Za-z0-9_-]{1,64}
        skills: {sales: 1}           # skill -> minimum level 1..10
        strategy: longest_idle       # longest_idle | most_skilled | round_robin | fewest_calls
        aging_rate: 0.05             # priority points per second waited
        relaxation: [{after: 60, lower_by: 1}, {after: 120, drop: [spanish]}]
        max_wait: 120                # seconds, then overflow
        overflow: {to: queue, target: support}  # to: queue | voicemail | callback | dialplan
        overflow_when_empty: true
        # ... and any key of ``defaults`` (announce/service_level merge key by key)
    agents:
      agent1001:                     # id: [A-Za-z0-9_.-]{1,40}
        name: Ada Agent              # default: the id
        endpoint: PJSIP/agent1001    # default: PJSIP/<id>
        skills: {sales: 5}
        queues: [sales]
        wrap_up: 5                   # optional, overrides the queue's

Overflow targets: ``queue`` names another queue (no cycles); ``voicemail`` a ``mailbox@context``;
``dialplan`` a ``context,exten,priority``; ``callback`` optionally a queue whose turn places the
call back (default: this queue). Top-level keys starting ``x-`` are ignored (YAML anchors).

Every problem is collected and reported at once, as "file:line: queue Q: what is wrong (what
was expected)"; the YAML file is read as ``ivr.loader`` reads IVR files, so keys given twice and
numbers YAML 1.1 rewrites (``0123`` octal, ``1:30`` base 60) are caught too. A queue that no
configured agent could serve even with its relaxation fully applied is only a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from acd.agent_state import LOGIN_REASON, NO_ANSWER_REASON
from acd.engine import effective_requirements
from acd.model import OverflowKind, QueueSpec, RelaxStep, Strategy, WaitingCall
from cti.config import KeyPath, YamlDocument, did_you_mean, read_yaml
from cti.errors import ConfigError
from ivr.model import Calendar
from ivr.schema import parse_calendar

__all__ = [
    "AcdConfig",
    "AgentConfig",
    "AnnounceSpec",
    "CallbackPolicy",
    "QueueConfig",
    "ServiceLevelSpec",
    "SlVariant",
    "check_acd_config",
    "describe_acd_config",
    "load_acd_config",
]

SlVariant = Literal["abandons_ignored", "abandons_negative", "abandons_positive", "answered_only"]


@dataclass(frozen=True)
class AnnounceSpec:
    """Periodic announcements to a waiting caller."""

    every: float = 30.0  # seconds between them (also the dialplan's heartbeat tick); >= 5
    position: bool = True  # "you are caller number N"
    estimated_wait: bool = True


@dataclass(frozen=True)
class ServiceLevelSpec:
    """Which service-level formula the queue reports (see ``shared/notes/kpi.md``)."""

    threshold: float = 20.0  # seconds
    goal: float = 0.8  # 0..1
    variant: SlVariant = "abandons_ignored"
    short_abandon: float = 0.0  # abandons within this many seconds are not counted


@dataclass(frozen=True)
class QueueConfig:
    spec: QueueSpec
    ring_timeout: float = 15.0  # seconds an agent's phone rings before "no answer"
    wrap_up: float = 10.0  # seconds of after-call work per call (an agent may override)
    announce: AnnounceSpec = AnnounceSpec()
    service_level: ServiceLevelSpec = ServiceLevelSpec()
    music_class: str = "default"
    #: offer a callback that keeps the caller's place when the estimated wait exceeds this
    callback_offer_after: float | None = None


@dataclass(frozen=True)
class AgentConfig:
    agent_id: str
    name: str
    endpoint: str  # Tech/resource, e.g. PJSIP/agent1001
    skills: Mapping[str, int]  # level 1..10
    queues: frozenset[str]
    wrap_up: float | None = None  # overrides the queue's


@dataclass(frozen=True)
class CallbackPolicy:
    attempts: int = 3
    retry_after: float = 300.0
    ring_customer: float = 30.0
    dial_context: str = "cti-originate"
    hours: Calendar | None = None  # calling-hours window; None = any time


@dataclass(frozen=True)
class AcdConfig:
    queues: Mapping[str, QueueConfig]
    agents: Mapping[str, AgentConfig]
    not_ready_reasons: tuple[str, ...]
    callbacks: CallbackPolicy = field(default_factory=CallbackPolicy)
    fallback_after: float = 90.0
    reconcile_every: float = 30.0
    timezone: str = "UTC"
    source: str = ""  # the file it was loaded from

    def queue_specs(self) -> Mapping[str, QueueSpec]:
        """What the routing engine needs: queue name -> ``QueueSpec``."""
        return {name: queue.spec for name, queue in self.queues.items()}


def load_acd_config(path: Path) -> AcdConfig:
    """The configuration in ``path``; raises one ``ConfigError`` naming every problem."""
    config, problems = check_acd_config(path)
    errors = [p for p in problems if not p.startswith(_WARNING)]
    if config is None or errors:
        if len(errors) == 1:
            raise ConfigError(errors[0])
        lines = "\n  ".join(errors)
        raise ConfigError(f"{len(errors)} problems in the ACD configuration:\n  {lines}")
    return config


def check_acd_config(path: Path) -> tuple[AcdConfig | None, list[str]]:
    """The configuration (``None`` if it has errors) and every problem, sorted by line;
    warnings start with "warning:" and do not stop the configuration from loading."""
    document, problems = _read(path)
    if document is None:
        return None, [str(p) for p in problems]
    reader = _Reader(document.at, problems)
    config = reader.config(document.data, str(path))
    errors = sorted((p for p in reader.problems if not p.warning), key=_line)
    warnings = sorted((p for p in reader.problems if p.warning), key=_line)
    found = [str(p) for p in dict.fromkeys(errors + warnings)]
    return (None if errors else config), found


def describe_acd_config(config: AcdConfig) -> str:
    """A short human summary for ``ctiserver check-config``."""
    lines = [f"ACD configuration from {config.source or '?'} (timezone {config.timezone})"]
    lines.append(f"queues: {len(config.queues)}")
    for name, queue in config.queues.items():
        spec = queue.spec
        skills = ", ".join(f"{s}>={lvl}" for s, lvl in sorted(spec.skills.items())) or "any"
        serving = sum(1 for a in config.agents.values() if name in a.queues)
        overflow = (
            f"; overflow to {spec.overflow} {spec.overflow_target}".rstrip()
            if spec.overflow
            else ""
        )
        lines.append(
            f"  {name}: skills {skills}, {spec.strategy}, {serving} agents, "
            f"{len(spec.relaxation)} relaxation steps{overflow}"
        )
    lines.append(f"agents: {len(config.agents)}")
    for agent in config.agents.values():
        skills = ", ".join(f"{s} {lvl}" for s, lvl in sorted(agent.skills.items()))
        lines.append(
            f"  {agent.agent_id} ({agent.name}) at {agent.endpoint}: {skills}; "
            f"queues {', '.join(sorted(agent.queues))}"
        )
    reasons = ", ".join(config.not_ready_reasons) or "none"
    lines.append(f"not-ready reasons: {reasons} (+ built in: {NO_ANSWER_REASON}, {LOGIN_REASON})")
    cb = config.callbacks
    hours = f"hours {cb.hours.timezone}" if cb.hours else "any time"
    lines.append(f"callbacks: {cb.attempts} attempts, {cb.retry_after:g} s apart, {hours}")
    return "\n".join(lines)


# -- problems -------------------------------------------------------------------------------

_WARNING = "warning: "
_TOP = (
    "timezone",
    "fallback_after",
    "reconcile_every",
    "not_ready_reasons",
    "callbacks",
    "defaults",
    "queues",
    "agents",
)
_QUEUE_DEFAULTS = (
    "ring_timeout",
    "wrap_up",
    "announce",
    "service_level",
    "music_class",
    "callback_offer_after",
)
_QUEUE_KEYS = (
    "skills",
    "strategy",
    "aging_rate",
    "relaxation",
    "max_wait",
    "overflow",
    "overflow_when_empty",
    *_QUEUE_DEFAULTS,
)
_AGENT_KEYS = ("name", "endpoint", "skills", "queues", "wrap_up")
_CALLBACK_KEYS = ("attempts", "retry_after", "ring_customer", "dial_context", "hours")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_AGENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_ENDPOINT = re.compile(r"[A-Za-z][A-Za-z0-9_]*/[A-Za-z0-9_.@:+-]+")
_MAILBOX = re.compile(r"[A-Za-z0-9_*#+-]+@[A-Za-z0-9_-]+")
_DIALPLAN = re.compile(r"[A-Za-z0-9_-]+,[^,\s]+,([1-9][0-9]*|[A-Za-z_][A-Za-z0-9_-]*)")
_MAX_REASON = 40
_MIN_ANNOUNCE = 5.0  # seconds; shorter would make the heartbeat (and the caller) frantic


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
        return _WARNING + text if self.warning else text


def _line(problem: _Problem) -> tuple[int, str]:
    _, _, line = problem.origin.rpartition(":")
    return (int(line) if line.isdigit() else 0), str(problem)


def _read(path: Path) -> tuple[YamlDocument | None, list[_Problem]]:
    expected = f"expected a mapping with {', '.join(_TOP)}"
    document, found = read_yaml(path)
    problems = [_Problem(p.path, p.message, p.origin) for p in found]
    if document is None:
        return None, problems
    if not isinstance(document.data, Mapping):
        got = "empty" if document.data is None else f"a {type(document.data).__name__}"
        return None, [*problems, _Problem((), f"the file is {got} ({expected})", str(path))]
    return document, problems


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- reading --------------------------------------------------------------------------------


class _Reader:
    """Builds the configuration from plain YAML data, collecting every problem on the way."""

    def __init__(self, locate: Callable[[KeyPath], str], problems: list[_Problem]) -> None:
        self.locate = locate
        self.problems = problems

    def report(self, path: KeyPath, message: str, *, warning: bool = False) -> None:
        self.problems.append(_Problem(path, message, self.locate(path), warning))

    def mapping(
        self, raw: object, path: KeyPath, what: str, allowed: Iterable[str] | None = None
    ) -> Mapping[str, Any]:
        """``raw`` as a mapping (empty with a problem if it is not one); unknown keys reported."""
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.report(path, f"{_short(raw)} is not {what} (expected a mapping)")
            return {}
        if allowed is not None:
            keys = tuple(allowed)
            for key in raw:
                if str(key) not in keys and not str(key).startswith("x-"):
                    hint = did_you_mean(str(key), keys)
                    self.report(
                        (*path, str(key)),
                        f"unknown key {key!r} ({what} takes {', '.join(keys)}){hint}",
                    )
        return {str(k): v for k, v in raw.items()}

    def number(
        self,
        raw: Mapping[str, Any],
        key: str,
        path: KeyPath,
        default: float,
        *,
        above: float | None = None,
        at_least: float | None = None,
        at_most: float | None = None,
    ) -> float:
        if key not in raw:
            return default
        value = raw[key]
        bounds = [
            f"> {above:g}" if above is not None else "",
            f">= {at_least:g}" if at_least is not None else "",
            f"<= {at_most:g}" if at_most is not None else "",
        ]
        expected = f"expected a number {' and '.join(b for b in bounds if b)}".rstrip()
        if (
            not _is_number(value)
            or (above is not None and value <= above)
            or (at_least is not None and value < at_least)
            or (at_most is not None and value > at_most)
        ):
            self.report((*path, key), f"{key}: {_short(value)} is not allowed ({expected})")
            return default
        return float(value)

    def optional_number(
        self, raw: Mapping[str, Any], key: str, path: KeyPath, default: float | None
    ) -> float | None:
        """A positive number of seconds, or null for "never"."""
        if key in raw and raw[key] is None:
            return None
        missing = -1.0
        value = self.number(raw, key, path, missing if default is None else default, above=0)
        return None if value == missing else value

    def flag(self, raw: Mapping[str, Any], key: str, path: KeyPath, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            self.report(
                (*path, key), f"{key}: {_short(value)} is not allowed (expected true or false)"
            )
            return default
        return value

    def text(
        self,
        raw: Mapping[str, Any],
        key: str,
        path: KeyPath,
        default: str,
        pattern: re.Pattern[str],
        expected: str,
    ) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            self.report(
                (*path, key), f"{key}: {_short(value)} is not allowed (expected {expected})"
            )
            return default
        return value

    def name(self, value: object, path: KeyPath, what: str) -> bool:
        if isinstance(value, str) and _NAME.fullmatch(value):
            return True
        expected = "1 to 64 letters, digits, _ or -"
        self.report(path, f"{_short(value)} is not a valid {what} name (expected {expected})")
        return False

    def skills(self, raw: object, path: KeyPath) -> dict[str, int]:
        skills: dict[str, int] = {}
        for skill, level in self.mapping(raw, path, "a skill mapping").items():
            here = (*path, skill)
            if not self.name(skill, here, "skill"):
                continue
            if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 10:
                message = f"skill {skill}: level {_short(level)} (expected a whole number 1..10)"
                self.report(here, message)
                continue
            skills[skill] = level
        return skills

    # -- sections -------------------------------------------------------------------------

    def config(self, data: Mapping[str, Any], source: str) -> AcdConfig:
        top = self.mapping(data, (), "the ACD configuration", _TOP)
        timezone = top.get("timezone", "UTC")
        if "timezone" in top:
            self._timezone(timezone)
        defaults = self.queue_settings(
            self.mapping(top.get("defaults"), ("defaults",), "defaults", _QUEUE_DEFAULTS),
            ("defaults",),
            QueueConfig(QueueSpec("")),
        )
        raw_queues = self.mapping(top.get("queues"), ("queues",), "the queues section")
        if not raw_queues:
            self.report(("queues",), "no queues (expected at least one queue)")
        queues: dict[str, QueueConfig] = {}
        for name, raw in raw_queues.items():
            if self.name(name, ("queues", name), "queue"):
                queues[name] = self.queue(name, raw, defaults)
        agents = self.agents(top.get("agents"), queues)
        self.overflows(queues)
        reasons = self.reasons(top.get("not_ready_reasons", []))
        callbacks = self.callbacks(top.get("callbacks"))
        fallback = self.number(top, "fallback_after", (), 90.0, above=0)
        for name, queue in queues.items():
            if "fallback_after" in top and fallback <= queue.announce.every:
                self.report(
                    ("fallback_after",),
                    f"{fallback:g} is not above queue {name}'s announce every "
                    f"{queue.announce.every:g} (expected more than every announce interval: "
                    "that is the heartbeat, so callers would fall back while the server is up)",
                )
        reconcile = self.number(top, "reconcile_every", (), 30.0, above=0)
        self.unservable(queues, agents)
        return AcdConfig(
            queues=queues,
            agents=agents,
            not_ready_reasons=reasons,
            callbacks=callbacks,
            fallback_after=fallback,
            reconcile_every=reconcile,
            timezone=timezone if isinstance(timezone, str) else "UTC",
            source=source,
        )

    def _timezone(self, value: object) -> None:
        # ivr.schema checks time zones inside calendars: borrow it with a calendar's shape.
        _, found = parse_calendar("", {"timezone": value, "weekly": {}}, ("timezone",), self.locate)
        for problem in found:
            self.report(("timezone",), problem.message)

    def queue_settings(
        self, raw: Mapping[str, Any], path: KeyPath, base: QueueConfig
    ) -> QueueConfig:
        """The settings a queue shares with ``defaults``, each falling back to ``base``."""
        announce_raw = self.mapping(
            raw.get("announce"),
            (*path, "announce"),
            "announce",
            ("every", "position", "estimated_wait"),
        )
        here = (*path, "announce")
        a = base.announce
        announce = AnnounceSpec(
            every=self.number(announce_raw, "every", here, a.every, at_least=_MIN_ANNOUNCE),
            position=self.flag(announce_raw, "position", here, a.position),
            estimated_wait=self.flag(announce_raw, "estimated_wait", here, a.estimated_wait),
        )
        variants = get_args(SlVariant)
        here = (*path, "service_level")
        sl_raw = self.mapping(
            raw.get("service_level"),
            here,
            "service_level",
            ("threshold", "goal", "variant", "short_abandon"),
        )
        s = base.service_level
        variant = sl_raw.get("variant", s.variant)
        if variant not in variants:
            hint = did_you_mean(str(variant), variants)
            expected = f"expected one of {', '.join(variants)}"
            message = f"variant: {_short(variant)} is not allowed ({expected}){hint}"
            self.report((*here, "variant"), message)
            variant = s.variant
        service_level = ServiceLevelSpec(
            threshold=self.number(sl_raw, "threshold", here, s.threshold, above=0),
            goal=self.number(sl_raw, "goal", here, s.goal, above=0, at_most=1),
            variant=variant,
            short_abandon=self.number(sl_raw, "short_abandon", here, s.short_abandon, at_least=0),
        )
        return QueueConfig(
            spec=base.spec,
            ring_timeout=self.number(raw, "ring_timeout", path, base.ring_timeout, above=0),
            wrap_up=self.number(raw, "wrap_up", path, base.wrap_up, at_least=0),
            announce=announce,
            service_level=service_level,
            music_class=self.text(
                raw, "music_class", path, base.music_class, _NAME, "a musiconhold.conf class name"
            ),
            callback_offer_after=self.optional_number(
                raw, "callback_offer_after", path, base.callback_offer_after
            ),
        )

    def queue(self, name: str, raw: object, defaults: QueueConfig) -> QueueConfig:
        path = ("queues", name)
        q = self.mapping(raw, path, "a queue", _QUEUE_KEYS)
        strategies = get_args(Strategy)
        strategy = q.get("strategy", "longest_idle")
        if strategy not in strategies:
            hint = did_you_mean(str(strategy), strategies)
            expected = f"expected one of {', '.join(strategies)}"
            self.report(
                (*path, "strategy"),
                f"strategy: {_short(strategy)} is not allowed ({expected}){hint}",
            )
            strategy = "longest_idle"
        max_wait = self.optional_number(q, "max_wait", path, None)
        when_empty = self.flag(q, "overflow_when_empty", path, False)
        kind, target = self.overflow(q.get("overflow"), (*path, "overflow"))
        if "overflow" not in q and (max_wait is not None or when_empty):
            key = "max_wait" if max_wait is not None else "overflow_when_empty"
            self.report(
                (*path, key),
                f"{key} without an overflow (expected overflow: {{to: ..., target: ...}})",
            )
        if kind is not None and max_wait is None and not when_empty and "overflow" in q:
            self.report(
                (*path, "overflow"),
                "overflow is never used (expected max_wait or overflow_when_empty: true)",
                warning=True,
            )
        spec = QueueSpec(
            name=name,
            skills=self.skills(q.get("skills"), (*path, "skills")),
            strategy=strategy,
            aging_rate=self.number(q, "aging_rate", path, 0.0, at_least=0),
            relaxation=self.relaxation(q.get("relaxation", []), (*path, "relaxation")),
            max_wait=max_wait,
            overflow_when_empty=when_empty,
            overflow=kind,
            overflow_target=target,
        )
        return replace(self.queue_settings(q, path, defaults), spec=spec)

    def relaxation(self, raw: object, path: KeyPath) -> tuple[RelaxStep, ...]:
        if not isinstance(raw, list):
            self.report(
                path, f"{_short(raw)} (expected a list of steps like {{after: 60, lower_by: 1}})"
            )
            return ()
        steps: list[RelaxStep] = []
        previous = 0.0
        for i, item in enumerate(raw):
            here = (*path, str(i))
            step = self.mapping(item, here, "a relaxation step", ("after", "lower_by", "drop"))
            if "after" not in step:
                self.report(here, "no after (a relaxation step needs after, and lower_by or drop)")
                continue
            after = step["after"]
            if not _is_number(after) or after <= previous:
                what = "> 0" if not steps else f"> {previous:g}, the step before"
                message = (
                    f"after: {_short(after)} is not allowed "
                    f"(expected a number {what}: steps in increasing order)"
                )
                self.report((*here, "after"), message)
                continue
            lower_by = step.get("lower_by", 0)
            if (
                not isinstance(lower_by, int)
                or isinstance(lower_by, bool)
                or not 0 <= lower_by <= 9
            ):
                self.report(
                    (*here, "lower_by"),
                    f"lower_by: {_short(lower_by)} is not allowed (expected a whole number 0..9)",
                )
                lower_by = 0
            drop_raw = step.get("drop", [])
            drop: set[str] = set()
            if not isinstance(drop_raw, list):
                self.report(
                    (*here, "drop"),
                    f"drop: {_short(drop_raw)} is not allowed (expected a list of skills)",
                )
            else:
                drop = {
                    s
                    for j, s in enumerate(drop_raw)
                    if self.name(s, (*here, "drop", str(j)), "skill")
                }
            if not lower_by and not drop and "lower_by" not in step and "drop" not in step:
                self.report(here, "the step does nothing (expected lower_by or drop)")
            previous = float(after)
            steps.append(RelaxStep(float(after), lower_by, frozenset(drop)))
        return tuple(steps)

    def overflow(self, raw: object, path: KeyPath) -> tuple[OverflowKind | None, str]:
        if raw is None:
            return None, ""
        o = self.mapping(raw, path, "an overflow", ("to", "target"))
        kinds: tuple[OverflowKind, ...] = get_args(OverflowKind)
        written = o.get("to")
        kind = next((k for k in kinds if k == written), None)
        if kind is None:
            hint = did_you_mean(str(written), kinds) if written is not None else ""
            self.report(
                (*path, "to"),
                f"to: {_short(written)} is not allowed (expected one of {', '.join(kinds)}){hint}",
            )
            return None, ""
        target = o.get("target", "")
        if _is_number(target):
            target = str(target)  # target: 100 for a mailbox is written without quotes
        checks: dict[str, tuple[re.Pattern[str], str]] = {
            "queue": (_NAME, "the name of another queue"),
            "voicemail": (_MAILBOX, "a mailbox like 100@default"),
            "dialplan": (_DIALPLAN, "context,exten,priority like support-menu,s,1"),
            "callback": (
                re.compile(f"({_NAME.pattern})?"),
                "nothing, or the queue whose turn places the call",
            ),
        }
        pattern, expected = checks[kind]
        if not isinstance(target, str) or not pattern.fullmatch(target):
            self.report(
                (*path, "target"),
                f"target: {_short(target)} is not allowed for to: {kind} (expected {expected})",
            )
            return None, ""
        return kind, target

    def overflows(self, queues: Mapping[str, QueueConfig]) -> None:
        """Queue targets exist, and following them never comes back to where it started."""
        for name, queue in queues.items():
            spec = queue.spec
            target = spec.overflow_target
            if spec.overflow in ("queue", "callback") and target and target not in queues:
                hint = did_you_mean(target, queues)
                self.report(
                    ("queues", name, "overflow", "target"),
                    f"overflow to unknown queue {target!r} (expected one of "
                    f"{', '.join(queues)}){hint}",
                )
        reported: set[frozenset[str]] = set()
        for start in queues:
            chain = [start]
            while True:
                spec = queues[chain[-1]].spec
                nxt = spec.overflow_target if spec.overflow == "queue" else ""
                if nxt not in queues:
                    break
                if nxt in chain:
                    cycle = chain[chain.index(nxt) :]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        first = min(cycle)
                        at = cycle.index(first)
                        ring = [*cycle[at:], *cycle[:at], first]
                        self.report(
                            ("queues", first, "overflow"),
                            f"overflow cycle {' -> '.join(ring)} (expected overflows to end "
                            "somewhere other than a queue already passed)",
                        )
                    break
                chain.append(nxt)

    def agents(self, raw: object, queues: Mapping[str, QueueConfig]) -> dict[str, AgentConfig]:
        agents: dict[str, AgentConfig] = {}
        endpoints: dict[str, str] = {}
        for agent_id, raw_agent in self.mapping(raw, ("agents",), "the agents section").items():
            path = ("agents", agent_id)
            if not _AGENT_ID.fullmatch(agent_id):
                self.report(
                    path,
                    f"{agent_id!r} is not a valid agent id "
                    "(expected 1 to 40 letters, digits, _, . or -)",
                )
                continue
            a = self.mapping(raw_agent, path, "an agent", _AGENT_KEYS)
            name = a.get("name", agent_id)
            if not isinstance(name, str) or not name.strip():
                self.report((*path, "name"), f"name: {_short(name)} is not allowed (expected text)")
                name = agent_id
            endpoint = self.text(
                a,
                "endpoint",
                path,
                f"PJSIP/{agent_id}",
                _ENDPOINT,
                "Tech/resource like PJSIP/agent1001",
            )
            if endpoint in endpoints:
                self.report(
                    (*path, "endpoint"),
                    f"endpoint {endpoint} is also agent {endpoints[endpoint]}'s "
                    "(expected one endpoint per agent)",
                )
            endpoints.setdefault(endpoint, agent_id)
            served: set[str] = set()
            raw_queues = a.get("queues")
            if not isinstance(raw_queues, list) or not raw_queues:
                self.report(
                    (*path, "queues"),
                    f"queues: {_short(raw_queues)} is not allowed "
                    "(expected a list of the queues the agent serves)",
                )
                raw_queues = []
            for i, queue in enumerate(raw_queues):
                if queue in queues:
                    served.add(queue)
                else:
                    hint = did_you_mean(str(queue), queues)
                    self.report(
                        (*path, "queues", str(i)),
                        f"unknown queue {_short(queue)} "
                        f"(expected one of {', '.join(queues)}){hint}",
                    )
            wrap_up = self.number(a, "wrap_up", path, -1.0, at_least=0)
            agents[agent_id] = AgentConfig(
                agent_id=agent_id,
                name=name,
                endpoint=endpoint,
                skills=self.skills(a.get("skills"), (*path, "skills")),
                queues=frozenset(served),
                wrap_up=None if wrap_up < 0 else wrap_up,
            )
        return agents

    def unservable(
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

    def reasons(self, raw: object) -> tuple[str, ...]:
        path = ("not_ready_reasons",)
        if not isinstance(raw, list):
            self.report(path, f"{_short(raw)} is not allowed (expected a list of reason codes)")
            return ()
        reasons: list[str] = []
        for i, reason in enumerate(raw):
            here = (*path, str(i))
            if not isinstance(reason, str) or not reason.strip() or len(reason) > _MAX_REASON:
                self.report(
                    here,
                    f"{_short(reason)} is not a reason "
                    f"(expected text of 1 to {_MAX_REASON} characters)",
                )
            elif reason in (NO_ANSWER_REASON, LOGIN_REASON):
                self.report(
                    here,
                    f"{reason!r} is built in (expected a reason other than "
                    f"{NO_ANSWER_REASON!r} and {LOGIN_REASON!r})",
                )
            elif reason in reasons:
                self.report(here, f"{reason!r} is given twice (expected each reason once)")
            else:
                reasons.append(reason)
        return tuple(reasons)

    def callbacks(self, raw: object) -> CallbackPolicy:
        path = ("callbacks",)
        c = self.mapping(raw, path, "the callbacks section", _CALLBACK_KEYS)
        base = CallbackPolicy()
        attempts = c.get("attempts", base.attempts)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            self.report(
                (*path, "attempts"),
                f"attempts: {_short(attempts)} is not allowed (expected a whole number >= 1)",
            )
            attempts = base.attempts
        hours: Calendar | None = None
        if c.get("hours") is not None:
            hours, found = parse_calendar("callbacks", c["hours"], (*path, "hours"), self.locate)
            for problem in found:
                self.report(problem.path, problem.message)
        return CallbackPolicy(
            attempts=attempts,
            retry_after=self.number(c, "retry_after", path, base.retry_after, above=0),
            ring_customer=self.number(c, "ring_customer", path, base.ring_customer, above=0),
            dial_context=self.text(
                c, "dial_context", path, base.dial_context, _NAME, "a dialplan context name"
            ),
            hours=hours,
        )
