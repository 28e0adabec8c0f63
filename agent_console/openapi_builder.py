"""Building blocks of the OpenAPI description (``agent_console.openapi`` lists the routes).

``Document`` builds operations while collecting every schema they reference: each body or
answer type is generated once, from its own pydantic model or dataclass
(``TypeAdapter(...).json_schema``), into ``components.schemas``; every error answer points at
``ErrorBody`` and names the ids its status can carry, taken from the one error table
(``agent_console.http.ERRORS``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import TypeAdapter

from agent_console.http import ERRORS
from agent_console.schemas import ErrorBody

__all__ = ["OBJECT", "Document", "Schema", "path_param", "query"]

_REF: Final = "#/components/schemas/{model}"

Schema = dict[str, Any]
_Mode = Literal["validation", "serialization"]

#: a free-form JSON object (health, figures, configuration: documented in docs/, not modelled)
OBJECT: Final[Schema] = {"type": "object"}

_REASONS: Final[Mapping[int, str]] = {
    400: "the body is not JSON",
    401: "not logged in",
    403: "not allowed (role, own agent only, CSRF token or Origin)",
    404: "not found",
    409: "not allowed in the current state",
    413: "the body is too large",
    415: "the body is not declared as JSON",
    422: "invalid input",
    503: "a part of the server is off or unreachable",
}


def _ids_by_status() -> dict[int, list[str]]:
    ids: dict[int, list[str]] = defaultdict(list)
    for answer in ERRORS.values():
        ids[answer.status].append(answer.error)
    return ids


class Document:
    """Builds the paths while collecting every schema they reference, generated once each."""

    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {}
        self._ids = _ids_by_status()

    def ref(self, kind: type, mode: _Mode = "serialization") -> Schema:
        name = kind.__name__
        if name not in self.schemas:
            schema = TypeAdapter(kind).json_schema(mode=mode, ref_template=_REF)
            for nested, definition in schema.pop("$defs", {}).items():
                self.schemas.setdefault(nested, definition)
            self.schemas[name] = schema
        return {"$ref": _REF.format(model=name)}

    def list_of(self, kind: type) -> Schema:
        return {"type": "array", "items": self.ref(kind)}

    def op(
        self,
        summary: str,
        role: str,
        ok: Schema | None = None,
        *errors: int,
        body: type | None = None,
        status: int = 200,
        params: list[Schema] | None = None,
    ) -> Schema:
        responses: Schema = {
            str(status): {
                "description": "done",
                **({"content": {"application/json": {"schema": ok}}} if ok is not None else {}),
            }
        }
        codes = {401, 403, *errors}
        if body is not None:
            codes |= {400, 413, 415, 422}
        for code in sorted(codes):
            ids = ", ".join(self._ids.get(code, []))
            responses[str(code)] = {
                "description": f"{_REASONS[code]} (error: {ids})" if ids else _REASONS[code],
                "content": {"application/json": {"schema": self.ref(ErrorBody)}},
            }
        op: Schema = {
            "summary": summary,
            "description": f"Needs the {role} role or higher." if role else "No log-in needed.",
            "responses": responses,
        }
        if body is not None:
            fields = getattr(body, "model_fields", {})
            op["requestBody"] = {
                # An empty body is the model of {}: required only when the model needs a field.
                "required": any(field.is_required() for field in fields.values()),
                "content": {"application/json": {"schema": self.ref(body, "validation")}},
            }
        if params:
            op["parameters"] = params
        return op


def path_param(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def query(name: str, description: str, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": {"type": "string"},
        "description": description,
    }
