"""The JSON Schema of an IVR flow file, put together from ``ivr.schema``'s node specs.

An IVR file is checked piece by piece (``ivr.schema``) rather than by one model, so its schema
is assembled here: each node kind's spec becomes one alternative, told apart by its ``kind``.
Calendars are hand-checked (``parse_calendar``) and described here by hand.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cti.config.schema import finish
from ivr.node_specs import NODE_KINDS, FlowSpec, RouteSpec

__all__ = ["ivr_file_schema"]

_DEFS = "#/$defs/{model}"
_CALENDAR: dict[str, Any] = {
    "type": "object",
    "description": "business hours: an IANA time zone, hours per day, closed dates",
    "properties": {
        "timezone": {"type": "string", "examples": ["Europe/Berlin"]},
        "weekly": {
            "type": "object",
            "description": 'day or range of days -> "HH:MM-HH:MM" or a list of them',
            "examples": [{"mon-fri": "09:00-18:00", "sat": ["10:00-12:00"]}],
        },
        "holidays": {"type": "array", "items": {"type": ["string"], "format": "date"}},
    },
    "required": ["timezone", "weekly"],
    "additionalProperties": False,
}


def ivr_file_schema() -> dict[str, Any]:
    """The schema of one IVR flow file (``config/ivr/*.yaml``)."""
    defs: dict[str, Any] = {}

    def add(model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(mode="validation", ref_template=_DEFS)
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
        return schema

    nodes = []
    for kind, spec in NODE_KINDS.items():
        add(spec)["properties"]["kind"] = {"const": kind}
        nodes.append({"$ref": _DEFS.format(model=spec.__name__)})
    flow = add(FlowSpec)
    flow["properties"]["nodes"]["additionalProperties"] = {"oneOf": nodes}
    add(RouteSpec)
    defs["Calendar"] = _CALENDAR
    schema = {
        "type": "object",
        "properties": {
            "default_flow": {"type": "string", "description": "the flow no route matches"},
            "routes": {"type": "array", "items": {"$ref": _DEFS.format(model="RouteSpec")}},
            "calendars": {
                "type": "object",
                "additionalProperties": {"$ref": _DEFS.format(model="Calendar")},
            },
            "flows": {
                "type": "object",
                "additionalProperties": {"$ref": _DEFS.format(model="FlowSpec")},
            },
        },
        "additionalProperties": False,
        "$defs": defs,
    }
    return finish(schema, title="IVR flow file", description=__doc__ or "")
