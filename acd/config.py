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
was expected)". The pipeline: the shared source (``cti.config``) reads the file, catching keys
given twice and numbers YAML 1.1 rewrites (``0123`` octal, ``1:30`` base 60); the pydantic
models of ``acd.config_file`` check each value (and give the JSON Schema); ``acd.config_build``
builds the frozen values of ``acd.config_types`` and checks what needs the whole file. A queue
that no configured agent could serve even with its relaxation fully applied is only a warning.
This module is the public face: load, check, describe.
"""

from __future__ import annotations

from pathlib import Path

from acd.agent_state import LOGIN_REASON, NO_ANSWER_REASON
from acd.config_build import WARNING, build, line_order, read
from acd.config_file import SlVariant
from acd.config_types import (
    AcdConfig,
    AgentConfig,
    AnnounceSpec,
    CallbackPolicy,
    QueueConfig,
    ServiceLevelSpec,
)
from cti.errors import ConfigError

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


def load_acd_config(path: Path) -> AcdConfig:
    """The configuration in ``path``; raises one ``ConfigError`` naming every problem."""
    config, problems = check_acd_config(path)
    errors = [p for p in problems if not p.startswith(WARNING)]
    if config is None or errors:
        if len(errors) == 1:
            raise ConfigError(errors[0])
        lines = "\n  ".join(errors)
        raise ConfigError(f"{len(errors)} problems in the ACD configuration:\n  {lines}")
    return config


def check_acd_config(path: Path) -> tuple[AcdConfig | None, list[str]]:
    """The configuration (``None`` if it has errors) and every problem, sorted by line;
    warnings start with "warning:" and do not stop the configuration from loading."""
    document, problems = read(path)
    if document is None:
        return None, [str(p) for p in problems]
    config = build(document, problems, str(path))
    errors = sorted((p for p in problems if not p.warning), key=line_order)
    warnings = sorted((p for p in problems if p.warning), key=line_order)
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
