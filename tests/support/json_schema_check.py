"""A small JSON Schema checker for the tests of ``ctiserver config schema``.

``jsonschema`` is not a dependency; the schemas we write use a small part of draft 2020-12
(what pydantic emits plus our IVR assembly), and this checks exactly that part. A keyword it
does not know fails the check, so the schemas cannot grow past what is tested.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

__all__ = ["schema_errors"]

_IGNORED = {
    "$schema",
    "title",
    "description",
    "default",
    "examples",
    "format",
    "writeOnly",
    "readOnly",
    "deprecated",
    "$defs",
}
_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": (str, dt.date),  # YAML reads 2026-12-25 as a date; JSON would have a string
    "boolean": bool,
    "null": type(None),
}


def schema_errors(value: object, schema: dict[str, Any]) -> list[str]:
    """What in ``value`` does not match ``schema`` (empty: it matches)."""
    errors: list[str] = []
    _check(value, schema, schema, "$", errors)
    return errors


def _is(value: object, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def _check(value: object, schema: Any, root: dict[str, Any], at: str, errors: list[str]) -> None:
    if schema is True or schema == {}:
        return
    for key, rule in schema.items():
        if key in _IGNORED or key in ("additionalProperties", "patternProperties"):
            continue
        if key == "$ref":
            name = rule.removeprefix("#/$defs/")
            _check(value, root["$defs"][name], root, at, errors)
        elif key == "type":
            kinds = rule if isinstance(rule, list) else [rule]
            if not any(_is(value, k) for k in kinds):
                errors.append(f"{at}: {value!r} is not {rule}")
        elif key in ("anyOf", "oneOf"):
            matches = sum(1 for option in rule if not schema_errors_in(value, option, root))
            if matches == 0 or (key == "oneOf" and matches > 1):
                errors.append(f"{at}: {value!r} matches {matches} of {key}")
        elif key == "allOf":
            for option in rule:
                _check(value, option, root, at, errors)
        elif key == "const":
            if value != rule:
                errors.append(f"{at}: {value!r} is not {rule!r}")
        elif key == "enum":
            if value not in rule:
                errors.append(f"{at}: {value!r} not in {rule}")
        elif key == "properties":
            if isinstance(value, dict):
                for name, sub in rule.items():
                    if name in value:
                        _check(value[name], sub, root, f"{at}.{name}", errors)
                _check_extra(value, schema, root, at, errors)
        elif key == "required":
            if isinstance(value, dict):
                errors += [f"{at}: {name} missing" for name in rule if name not in value]
        elif key == "items":
            if isinstance(value, list):
                for i, item in enumerate(value):
                    _check(item, rule, root, f"{at}.{i}", errors)
        elif key == "propertyNames":
            if isinstance(value, dict):
                for name in value:
                    _check(name, rule, root, f"{at}.{name}(key)", errors)
        elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if _is(value, "number") and not _bound(key, value, rule):  # type: ignore[arg-type]
                errors.append(f"{at}: {value!r} breaks {key} {rule}")
        elif key in ("minLength", "maxLength", "minItems", "maxItems", "minProperties"):
            if isinstance(value, str | list | dict):
                n = len(value)
                if (key.startswith("min") and n < rule) or (key.startswith("max") and n > rule):
                    errors.append(f"{at}: length {n} breaks {key} {rule}")
        elif key == "pattern":
            if isinstance(value, str) and not re.search(rule, value):
                errors.append(f"{at}: {value!r} does not match {rule}")
        else:
            errors.append(f"{at}: schema keyword {key!r} not understood by this checker")
    open_ended = "additionalProperties" in schema or "patternProperties" in schema
    if "properties" not in schema and open_ended and isinstance(value, dict):
        _check_extra(value, schema, root, at, errors)


def _check_extra(
    value: dict[Any, Any], schema: dict[str, Any], root: dict[str, Any], at: str, errors: list[str]
) -> None:
    known = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in known:
            continue
        matched = [sub for pattern, sub in patterns.items() if re.search(pattern, str(name))]
        for sub in matched:
            _check(item, sub, root, f"{at}.{name}", errors)
        if matched:
            continue
        if extra is False:
            errors.append(f"{at}: unknown key {name!r}")
        elif isinstance(extra, dict):
            _check(item, extra, root, f"{at}.{name}", errors)


def _bound(key: str, value: float, rule: float) -> bool:
    return {
        "minimum": value >= rule,
        "maximum": value <= rule,
        "exclusiveMinimum": value > rule,
        "exclusiveMaximum": value < rule,
    }[key]


def schema_errors_in(value: object, schema: Any, root: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    _check(value, schema, root, "$", errors)
    return errors
