"""Render the Asterisk config templates of ``config/asterisk/`` for one instance.

Asterisk config uses ``${VAR}`` itself (dialplan variables, functions), so the templates
mark their blanks as ``@@name@@`` instead, a sequence Asterisk never gives a meaning to.
Rendering is strict: a template naming a placeholder nobody supplies, or containing a
stray ``@@``, is an error naming the file, never a config file with a hole in it.

Substitution is a single pass: a value is never scanned for placeholders itself.

Repeated blocks (one PJSIP endpoint, one dialplan extension, one queue member per agent)
are small templates in ``config/asterisk/partials/``, rendered once per agent and joined into
a placeholder of the main file. Everything here is pure: text in, text out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from cti.errors import ConfigError
from sandbox.config import AgentPhone, SandboxConfig

__all__ = [
    "DEFAULT_TEMPLATE_DIR",
    "PLACEHOLDER_RE",
    "load_templates",
    "render_instance",
    "render_template",
    "template_values",
]

DEFAULT_TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "config" / "asterisk"

PLACEHOLDER_RE = re.compile(r"@@([a-z][a-z0-9_]*)@@")


def render_template(text: str, values: Mapping[str, str], *, source: str) -> str:
    """Fill every ``@@name@@`` of ``text`` from ``values``.

    Raises ``ConfigError`` (source = the template's name) for a placeholder without a value
    and for a ``@@`` that is not part of a well-formed placeholder.
    """
    unknown = sorted({name for name in PLACEHOLDER_RE.findall(text) if name not in values})
    if unknown:
        raise ConfigError(
            f"unknown placeholder(s) {', '.join('@@' + n + '@@' for n in unknown)}; "
            f"known: {', '.join(sorted(values))}",
            source=source,
        )
    leftover = PLACEHOLDER_RE.sub("", text)
    if "@@" in leftover:
        line = next(
            number
            for number, content in enumerate(text.splitlines(), start=1)
            if "@@" in PLACEHOLDER_RE.sub("", content)
        )
        raise ConfigError(f"line {line}: malformed placeholder (a stray '@@')", source=source)
    return PLACEHOLDER_RE.sub(lambda match: values[match.group(1)], text)


def template_values(config: SandboxConfig) -> dict[str, str]:
    """The scalar placeholders every template may use."""
    layout = config.layout
    values = {
        "instance": config.instance,
        "instance_dir": str(layout.inner_dir),
        "ami_port": str(config.ami_port),
        "ami_username": config.ami_username,
        "ami_secret": config.ami_secret,
        "sip_port": str(config.sip_port),
        "rtp_start": str(config.rtp_start),
        "rtp_end": str(config.rtp_end),
        "agi_host": config.agi_host,
        "agi_port": str(config.agi_port),
        "fallback_timeout": str(config.fallback_timeout),
    }
    for name in layout.subdirs:
        values[f"{name}_dir"] = str(layout.inner(name))
    return values


def _agent_values(agent: AgentPhone) -> dict[str, str]:
    contact_line = (
        f"contact = {agent.contact}"
        if agent.contact is not None
        else "; No static contact: the phone registers."
    )
    return {
        "endpoint": agent.endpoint,
        "password": agent.password,
        "display_name": agent.name,
        "number": agent.number,
        "contact_line": contact_line,
    }


def _render_partial(
    partials: Mapping[str, str],
    name: str,
    base: Mapping[str, str],
    agents: tuple[AgentPhone, ...],
    empty: str,
) -> str:
    if not agents:
        return empty
    try:
        text = partials[name]
    except KeyError:
        raise ConfigError("partial template is missing", source=f"partials/{name}") from None
    blocks = [
        render_template(text, {**base, **_agent_values(agent)}, source=f"partials/{name}")
        for agent in agents
    ]
    return "\n".join(block.rstrip("\n") for block in blocks)


def render_instance(
    config: SandboxConfig, templates: Mapping[str, str], partials: Mapping[str, str]
) -> dict[str, str]:
    """Render every main template for ``config``: file name -> content."""
    values = template_values(config)
    agents = config.agents
    values["agent_endpoints"] = _render_partial(
        partials, "pjsip-agent.conf", values, agents, "; No agent phones configured."
    )
    values["agent_extensions"] = _render_partial(
        partials, "extensions-agent.conf", values, agents, "; No agent phones configured."
    )
    values["queue_members"] = _render_partial(
        partials,
        "queues-member.conf",
        values,
        agents,
        "; No agent phones configured: callers wait until the timeout.",
    )
    return {name: render_template(text, values, source=name) for name, text in templates.items()}


def load_templates(template_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Read ``*.conf`` templates and ``partials/*.conf`` from ``template_dir``."""
    if not (template_dir / "asterisk.conf").is_file():
        raise ConfigError(
            "no asterisk.conf template here; expected the repository's config/asterisk",
            source=str(template_dir),
        )

    def read(folder: Path) -> dict[str, str]:
        return {
            path.name: path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.conf"))
        }

    partial_dir = template_dir / "partials"
    return read(template_dir), read(partial_dir) if partial_dir.is_dir() else {}
