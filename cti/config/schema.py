"""JSON Schemas of the configuration files, for editors (yaml-language-server, VS Code, ...).

Made from the same pydantic models that check the files, so what an editor completes and flags
is what the server accepts; ``x-`` keys (homes for YAML anchors) are allowed wherever the model
forbids unknown keys, as the loaders ignore them there.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cti.config.validation import EXTENSION_PREFIX

__all__ = ["SCHEMA_DIALECT", "allow_extensions", "finish", "model_schema"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def model_schema(model: type[BaseModel], *, title: str, description: str = "") -> dict[str, Any]:
    """The JSON Schema of ``model`` (as validated from YAML) under ``title``."""
    schema = model.model_json_schema(mode="validation")
    return finish(schema, title=title, description=description or (model.__doc__ or "").strip())


def finish(schema: dict[str, Any], *, title: str, description: str = "") -> dict[str, Any]:
    """``schema`` with the dialect, title and description set and ``x-`` keys allowed."""
    allow_extensions(schema)
    head: dict[str, Any] = {"$schema": SCHEMA_DIALECT, "title": title}
    if description:
        head["description"] = description.split("\n\n")[0]
    return {**head, **{k: v for k, v in schema.items() if k not in ("title", "description")}}


def allow_extensions(schema: object) -> None:
    """Add ``patternProperties: {"^x-": {}}`` to every object schema closed to other keys."""
    if isinstance(schema, dict):
        if schema.get("additionalProperties") is False:
            schema.setdefault("patternProperties", {})[f"^{EXTENSION_PREFIX}"] = {}
        for value in schema.values():
            allow_extensions(value)
    elif isinstance(schema, list):
        for item in schema:
            allow_extensions(item)
