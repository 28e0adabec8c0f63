"""From a YAML document to a validated pydantic model, every mistake as one line.

    YamlDocument ──► check_keys (unknown keys with "did you mean", ``x-`` keys dropped)
                 ──► Model.model_validate ──► ValidationError ──► validation_problems:
                     "file:line: where: what (expected ...)"

Unknown keys are found before pydantic sees the data (``extra="forbid"`` alone would say
"Extra inputs are not permitted" without naming the keys allowed); keys starting ``x-`` are a
home for YAML anchors (as docker compose does) and are dropped at every level.

Models give precise wording by raising the two custom error kinds made here:
``not_allowed(expected)`` ("key: value is not allowed (expected ...)") and ``problem(message)``
(the message as written). Any other pydantic error keeps pydantic's own text, with the value
shown when the model did not hide it (secrets). A value YAML 1.1 rewrote (``no`` -> false,
``~`` -> null) gets the trap noted on its error, so "expected text" comes with the reason.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from cti.config.source import (
    KeyPath,
    Locate,
    Problem,
    YamlDocument,
    did_you_mean,
    read_yaml,
    trap_note,
)
from cti.errors import ConfigError

__all__ = [
    "EXTENSION_PREFIX",
    "check_keys",
    "config_error",
    "describe_error",
    "load_model",
    "not_allowed",
    "problem",
    "short",
    "validate_document",
    "validation_problems",
]

EXTENSION_PREFIX = "x-"
_NOT_ALLOWED = "not_allowed"
_PROBLEM = "config_problem"
_LITERAL_CHOICE = re.compile(r"'((?:[^'\\]|\\.)*)'")

M = TypeVar("M", bound=BaseModel)
P = TypeVar("P", bound=Problem)


def not_allowed(expected: str) -> PydanticCustomError:
    """Raise from a validator: "key: value is not allowed (expected ``expected``)"."""
    return PydanticCustomError(_NOT_ALLOWED, "{expected}", {"expected": expected})


def problem(message: str) -> PydanticCustomError:
    """Raise from a validator: the message exactly as written (the place is added)."""
    return PydanticCustomError(_PROBLEM, "{message}", {"message": message})


def short(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_keys(
    data: object, model: type[BaseModel], path: KeyPath = ()
) -> tuple[object, list[Problem]]:
    """``data`` without its ``x-`` keys and unknown keys, and a problem per unknown key, for
    ``model`` and every model nested in it (fields, dict values, list items)."""
    found: list[Problem] = []
    return _strip(data, model, path, found), found


def describe_error(err: ErrorDetails, traps: Mapping[KeyPath, str] | None = None) -> str:
    """The "what (expected ...)" of one pydantic error."""
    loc = _path(err)
    key = loc[-1] if loc else ""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    shown = "input" in err and kind != "missing"
    value = err.get("input")
    if kind == _PROBLEM:
        text = str(ctx["message"])
    elif kind == _NOT_ALLOWED:
        text = f"{key}: {short(value)} is not allowed ({ctx['expected']})"
    elif kind == "literal_error" and shown:
        choices = _LITERAL_CHOICE.findall(str(ctx.get("expected", "")))
        hint = did_you_mean(str(value), choices) if isinstance(value, str) else ""
        text = f"{key}: {short(value)} is not allowed (expected one of {', '.join(choices)}){hint}"
    elif kind == "extra_forbidden":
        text = "unknown key (check its spelling and section)"
    else:
        msg = err["msg"].removeprefix("Value error, ")
        text = f"{short(value)} is not allowed ({msg[:1].lower()}{msg[1:]})" if shown else msg
    trap = trap_note(traps or {}, loc, text)
    return f"{text}; {trap}" if trap else text


def validation_problems(
    exc: ValidationError,
    locate: Locate,
    traps: Mapping[KeyPath, str] | None = None,
    make: Callable[[KeyPath, str, str], P] = Problem,  # type: ignore[assignment]
) -> list[P]:
    """One problem per error of ``exc``, placed by ``locate`` (key path -> "file:line")."""
    found: list[P] = []
    for err in exc.errors():
        path = _path(err)
        found.append(make(path, describe_error(err, traps), locate(path)))
    return found


def validate_document(
    document: YamlDocument, model: type[M], *, context: Mapping[str, Any] | None = None
) -> tuple[M | None, list[Problem]]:
    """``document`` checked against ``model``: the model (``None`` on any problem) and the
    problems, unknown keys included."""
    data, unknown = check_keys(document.data if document.data is not None else {}, model)
    problems = [Problem(p.path, p.message, document.at(p.path)) for p in unknown]
    try:
        value = model.model_validate(data, context=dict(context or {}))
    except ValidationError as exc:
        problems += validation_problems(exc, document.at, document.traps)
        return None, problems
    return (None if problems else value), problems


def load_model(path: Path, model: type[M], *, what: str, expected: str = "") -> M:
    """The model in the YAML file ``path``, or one ``ConfigError`` naming every problem."""
    document, problems = read_yaml(path, expected=expected or f"a mapping ({what})")
    if document is None:
        raise config_error(problems, what)
    value, found = validate_document(document, model)
    problems += found
    if value is None or problems:
        raise config_error(problems, what)
    return value


def config_error(problems: Sequence[Problem], what: str) -> ConfigError:
    """One ``ConfigError`` for ``problems``: the problem itself when alone, else a list."""
    ordered = sorted(dict.fromkeys(problems), key=_by_line)
    if len(ordered) == 1:
        (only,) = ordered
        return ConfigError(only.message, source=only.origin or None, key=only.where or None)
    lines = "\n  ".join(str(p) for p in ordered)
    return ConfigError(f"{len(ordered)} problems in the {what}:\n  {lines}")


# -- helpers ---------------------------------------------------------------------------------


def _path(err: ErrorDetails) -> KeyPath:
    return tuple(str(part) for part in err["loc"] if part != "[key]")


def _by_line(problem: Problem) -> tuple[str, int, str]:
    file, _, line = problem.origin.rpartition(":")
    if not line.isdigit():
        return problem.origin, 0, str(problem)
    return file, int(line), str(problem)


def _strip(data: object, annotation: object, path: KeyPath, found: list[Problem]) -> object:
    """``data`` as ``annotation`` would see it, minus extension and unknown keys."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _strip(data, args[0], path, found)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _strip(data, inner[0], path, found) if len(inner) == 1 else data
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not isinstance(data, Mapping):
            return data
        return _strip_model(data, annotation, path, found)
    if origin in (dict, Mapping) and isinstance(data, Mapping) and len(args) == 2:
        return {k: _strip(v, args[1], (*path, str(k)), found) for k, v in data.items()}
    if origin in (list, tuple, Sequence) and isinstance(data, list) and args:
        return [_strip(v, args[0], (*path, str(i)), found) for i, v in enumerate(data)]
    return data


def _strip_model(
    data: Mapping[Any, Any], model: type[BaseModel], path: KeyPath, found: list[Problem]
) -> dict[Any, Any]:
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    forbid = model.model_config.get("extra") == "forbid"
    kept: dict[Any, Any] = {}
    for key, value in data.items():
        name = str(key)
        if name.startswith(EXTENSION_PREFIX):
            continue
        field = fields.get(name)
        if field is None:
            if forbid:
                hint = did_you_mean(name, fields)
                found.append(
                    Problem(
                        (*path, name),
                        f"unknown key {name!r} (expected one of {', '.join(fields)}){hint}",
                    )
                )
                continue
            kept[key] = value
            continue
        kept[key] = _strip(value, field.annotation, (*path, name), found)
    return kept
