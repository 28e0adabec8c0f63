"""The body rules every HTTP endpoint shares, without I/O: bytes in, a validated model out.

A request body is read by the web adapter (at most ``limit + 1`` bytes, so an oversized one is
noticed without reading it all) and handed to ``parse_body`` with its ``Content-Type``. The
answer is the endpoint's pydantic model, or one ``HttpProblem``:

    over the limit                          BodyTooLarge
    empty or blank                          the model built from ``{}`` (no arguments)
    declared as something else than JSON    UnsupportedMediaType
    not JSON, not UTF-8                     BodyNotJson
    JSON but not an object                  InvalidBody (field "")
    an object the model refuses             InvalidBody (the field paths at fault)

No ``Content-Type`` at all is read as JSON: a tool that sends none still means JSON here. The
same models generate the OpenAPI description (``agent_console.openapi``), so what is checked
and what is documented are one thing.
"""

from __future__ import annotations

import json
from typing import Final, TypeVar

from pydantic import BaseModel, ValidationError

from cti.errors import BodyNotJson, BodyTooLarge, InvalidBody, UnsupportedMediaType

__all__ = ["MAX_BODY", "parse_body", "validation_problem"]

#: The default limit of a request body, in bytes: every body of the API is a few fields.
MAX_BODY: Final = 4096

M = TypeVar("M", bound=BaseModel)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def validation_problem(exc: ValidationError) -> InvalidBody:
    """``exc`` as the HTTP layer's 422: each fault as ``path: message``, paths listed."""
    fields: list[str] = []
    parts: list[str] = []
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"])
        fields.append(path)
        parts.append(f"{path}: {error['msg']}" if path else str(error["msg"]))
    return InvalidBody("; ".join(parts), tuple(fields))


def parse_body(raw: bytes, content_type: str | None, model: type[M], *, limit: int = MAX_BODY) -> M:
    """``raw`` as ``model``, or the ``HttpProblem`` that says what is wrong with it."""
    if len(raw) > limit:
        raise BodyTooLarge(f"the body is over {limit} bytes")
    if not raw.strip():
        data: object = {}
    else:
        if content_type is not None and not _is_json(content_type):
            raise UnsupportedMediaType(f"the body must be application/json, not {content_type}")
        try:
            data = json.loads(raw)
        except ValueError as exc:  # UnicodeDecodeError included
            raise BodyNotJson(f"the body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise InvalidBody("the body must be a JSON object", ("",))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from exc
