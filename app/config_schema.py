"""``ctiserver config schema``: one JSON Schema per kind of configuration file.

Each comes from the models that check the file (``cti.config.schema``), so an editor pointed at
it (``# yaml-language-server: $schema=schema/acd.schema.json`` at the top of a file) completes
keys and flags what the server would refuse. The whole-file checks (overflow cycles, unknown
queues, IVR reachability) stay ``ctiserver check-config``'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acd.config_file import AcdFile
from agent_console.config import ConsoleConfig
from agent_console.users_file import UsersFile
from app.settings import Settings
from cti.config.schema import model_schema
from ivr.customers_file import CustomersFile
from ivr.json_schema import ivr_file_schema

__all__ = ["SCHEMAS", "write_schemas"]

#: file kind -> its schema; written as <kind>.schema.json
SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "ctiserver": lambda: model_schema(Settings, title="ctiserver.yaml: server settings"),
    "acd": lambda: model_schema(AcdFile, title="acd.yaml: queues, agents, reasons, callbacks"),
    "console": lambda: model_schema(ConsoleConfig, title="console.yaml: the consoles' settings"),
    "ivr": ivr_file_schema,
    "users": lambda: model_schema(UsersFile, title="users.yaml: the demo's console users"),
    "customers": lambda: model_schema(CustomersFile, title="customers.yaml: demo customers"),
}


def write_schemas(out: Path) -> list[Path]:
    """Write every schema into ``out`` (created if needed); the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, make in SCHEMAS.items():
        path = out / f"{kind}.schema.json"
        path.write_text(json.dumps(make(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
