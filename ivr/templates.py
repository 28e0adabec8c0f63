"""References and ``${ref}`` templates: how flow text reads what the call has learned so far.

A *reference* is a dotted name in one of four namespaces:

    var.NAME                               a variable collected by an ``input`` node
    customer.FIELD[.SUB...]                the record a ``lookup`` found (nested mappings too)
    call.ani|dnis|channel|uniqueid|linkedid|caller_name
    queue.NAME.agents_available|estimated_wait      live figures from the queue gateway

``resolve`` turns one into a value (``None`` when missing); ``render`` fills ``${ref}`` into text.
A missing or unknown reference renders as ``""`` so a caller never hears "None"; the engine is
told which ones were missing (the ``missing`` list) and notes them in the caller's path, because
an empty balance usually means a typo in the flow file. ``$${`` writes a literal ``${``.

Pure: no I/O and no clock. Queue figures come from a callable the caller supplies, which must
answer at once (``QueueGateway.figures``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from ivr.ports import CallInfo, QueueFigures

__all__ = [
    "CALL_FIELDS",
    "QUEUE_FIGURES",
    "Scope",
    "ref_problem",
    "render",
    "resolve",
    "template_refs",
    "text_of",
]

CALL_FIELDS = frozenset({"ani", "dnis", "channel", "uniqueid", "linkedid", "caller_name"})
QUEUE_FIGURES = frozenset({"agents_available", "estimated_wait"})

# "$${" first, so an escaped opener is never read as the start of a reference. An unterminated
# "${" matches neither alternative and stays in the text as written.
_TEMPLATE = re.compile(r"\$\$\{|\$\{([^{}]*)\}")


def _no_figures(queue: str) -> QueueFigures:
    return QueueFigures(agents_available=0, estimated_wait=None)


@dataclass
class Scope:
    """What templates and conditions can see during one call. Mutable on purpose: the engine
    adds variables as the caller enters them and the customer once a lookup finds one."""

    call: CallInfo
    variables: dict[str, str] = field(default_factory=dict)
    customer: Mapping[str, object] | None = None
    queue_figures: Callable[[str], QueueFigures] = _no_figures


def ref_problem(ref: str) -> str | None:
    """Why ``ref`` is not a valid reference, or None if it is (for the loader's checks)."""
    namespace, _, rest = ref.partition(".")
    if namespace in ("var", "customer"):
        if not rest or "" in rest.split("."):
            return f"{ref!r}: {namespace}.NAME expected"
        return None
    if namespace == "call":
        if rest not in CALL_FIELDS:
            return f"{ref!r}: call.{'|'.join(sorted(CALL_FIELDS))} expected"
        return None
    if namespace == "queue":
        queue, _, figure = rest.rpartition(".")
        if not queue or figure not in QUEUE_FIGURES:
            return f"{ref!r}: queue.NAME.{'|'.join(sorted(QUEUE_FIGURES))} expected"
        return None
    return f"{ref!r}: unknown namespace {namespace!r} (var, customer, call or queue expected)"


def resolve(ref: str, scope: Scope) -> object | None:
    """The value ``ref`` names in ``scope``, or None when it is missing or not a reference."""
    namespace, _, rest = ref.strip().partition(".")
    if namespace == "var":
        return scope.variables.get(rest)
    if namespace == "customer":
        value: object | None = scope.customer
        for part in rest.split("."):
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value
    if namespace == "call":
        return getattr(scope.call, rest) if rest in CALL_FIELDS else None
    if namespace == "queue":
        queue, _, figure = rest.rpartition(".")
        if not queue or figure not in QUEUE_FIGURES:
            return None
        figures = scope.queue_figures(queue)
        result: object | None = getattr(figures, figure)
        return result
    return None


def text_of(value: object) -> str:
    """How a value reads in text: integral floats without ".0" (a wait of 30.0 seconds is said
    "thirty"), booleans as YAML writes them, None as nothing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def render(template: str, scope: Scope, missing: list[str] | None = None) -> str:
    """``template`` with each ``${ref}`` replaced by its value (``""`` when missing; the ref is
    then appended to ``missing`` if given)."""
    if "$" not in template:  # the common case: plain text, no work
        return template

    def fill(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref is None:
            return "${"
        value = resolve(ref, scope)
        if value is None and missing is not None:
            missing.append(ref.strip())
        return text_of(value)

    return _TEMPLATE.sub(fill, template)


def template_refs(template: str) -> tuple[str, ...]:
    """The references a template uses, in order (escaped ``$${`` excluded)."""
    return tuple(m.group(1).strip() for m in _TEMPLATE.finditer(template) if m.group(1) is not None)
