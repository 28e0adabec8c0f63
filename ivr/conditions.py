"""Branch conditions, evaluated against a call's scope at a given instant.

Comparison semantics (``Compare``), chosen because values arrive as text (keys pressed,
channel variables, CRM fields) while flow files write numbers:

- ``eq``/``ne``/``lt``/``le``/``gt``/``ge``: when both sides read as decimal numbers ("007",
  " 2.50", 3, 2.5) they compare as numbers, else as text (booleans read "true"/"false").
  Words like "nan" or "inf" are text, never numbers.
- A missing reference is ``None``: it equals only ``None`` (``eq: null`` tests "missing"), is
  unequal to everything else, and every ordering with it is false.
- ``in``/``not_in``: membership in a list, each element compared as ``eq`` does.
- ``matches``: ``re.search`` of the text, so patterns anchor themselves with ``^``/``$`` as
  route patterns do; a missing value never matches. Compiled patterns are cached.
- ``exists``: ``exists: true`` holds when the reference has a value (an empty string counts:
  the caller pressed the terminator at once, which is an answer).

Pure: ``now`` is passed in, calendars are looked up in the mapping given, nothing is eval'd.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from decimal import Decimal

from cti.errors import ConfigError
from ivr.calendar import is_open
from ivr.model import AllOf, AnyOf, Calendar, Compare, Condition, Not, Open
from ivr.templates import Scope, resolve, text_of

__all__ = ["compare", "compile_pattern", "evaluate"]

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            return float(text)
    return None


def _equal(left: object, right: object) -> bool:
    if left is None or right is None:
        return left is None and right is None
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return a == b
    return text_of(left) == text_of(right)


def _less(left: object, right: object) -> bool:
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return a < b
    return text_of(left) < text_of(right)


def _truth(value: object) -> bool:
    # "exists: true" from YAML is a bool; a flow built by hand may say "true".
    if isinstance(value, str):
        return value.strip().lower() in {"true", "yes", "on", "1"}
    return bool(value)


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled once (flows reuse a handful of patterns on every call)."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"invalid regular expression {pattern!r}: {exc}") from exc


def _members(value: object, op: str) -> tuple[object, ...]:
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(value)
    raise ConfigError(f"{op}: a list expected, got {value!r}")


_ORDERED: dict[str, Callable[[object, object], bool]] = {
    "lt": _less,
    "le": lambda a, b: _less(a, b) or _equal(a, b),
    "gt": lambda a, b: _less(b, a),
    "ge": lambda a, b: _less(b, a) or _equal(a, b),
}


def compare(left: object | None, op: str, right: object) -> bool:
    """``left OP right`` with the semantics in the module docstring."""
    if op == "eq":
        return _equal(left, right)
    if op == "ne":
        return not _equal(left, right)
    if op == "exists":
        return (left is not None) == _truth(right)
    if op == "in":
        return any(_equal(left, item) for item in _members(right, op))
    if op == "not_in":
        return not any(_equal(left, item) for item in _members(right, op))
    if op == "matches":
        pattern = compile_pattern(text_of(right))
        return left is not None and pattern.search(text_of(left)) is not None
    ordered = _ORDERED.get(op)
    if ordered is None:
        raise ConfigError(f"unknown comparison {op!r}")
    if left is None or right is None:
        return False
    return ordered(left, right)


def evaluate(
    condition: Condition, scope: Scope, calendars: Mapping[str, Calendar], now: float
) -> bool:
    """Whether ``condition`` holds for this call at ``now`` (epoch seconds).

    Raises ``ConfigError`` for what the loader should have refused (an unknown calendar, a bad
    pattern, ``in`` without a list): the engine then takes the node's error path.
    """
    if isinstance(condition, Compare):
        return compare(resolve(condition.ref, scope), condition.op, condition.value)
    if isinstance(condition, Open):
        calendar = calendars.get(condition.calendar)
        if calendar is None:
            raise ConfigError(f"unknown calendar {condition.calendar!r}", key="open")
        return is_open(calendar, now)
    if isinstance(condition, AllOf):
        return all(evaluate(c, scope, calendars, now) for c in condition.conditions)
    if isinstance(condition, AnyOf):
        return any(evaluate(c, scope, calendars, now) for c in condition.conditions)
    if isinstance(condition, Not):
        return not evaluate(condition.condition, scope, calendars, now)
    raise ConfigError(f"unknown condition {condition!r}")
