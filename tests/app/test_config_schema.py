"""``ctiserver config schema`` (app/config_schema.py): one JSON Schema per kind of file, made
from the models that check the files; each accepts the shipped file and refuses a typo."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from support.json_schema_check import schema_errors

from app.cli import main
from app.config_schema import SCHEMAS

CONFIG = Path(__file__).resolve().parents[2] / "config"
SHIPPED = {
    "ctiserver": [CONFIG / "ctiserver.yaml"],
    "acd": [CONFIG / "acd.yaml"],
    "console": [CONFIG / "console.yaml"],
    "users": [CONFIG / "users.yaml"],
    "customers": [CONFIG / "customers.yaml"],
    "ivr": sorted((CONFIG / "ivr").glob("*.yaml")),
}


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    out = tmp_path_factory.mktemp("schema")
    assert main(["config", "schema", "--out", str(out)]) == 0
    return {
        path.name.removesuffix(".schema.json"): json.loads(path.read_text())
        for path in out.glob("*.schema.json")
    }


def test_one_schema_per_kind_of_file(schemas: dict[str, dict[str, object]]) -> None:
    assert set(schemas) == set(SCHEMAS) == set(SHIPPED)
    for schema in schemas.values():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["type"] == "object"


@pytest.mark.parametrize(
    ("kind", "path"), [(kind, path) for kind, paths in SHIPPED.items() for path in paths]
)
def test_the_schema_accepts_the_shipped_file(
    schemas: dict[str, dict[str, object]], kind: str, path: Path
) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert schema_errors(data, schemas[kind]) == []


@pytest.mark.parametrize(
    ("kind", "change", "expected"),
    [
        ("acd", lambda d: d["queues"]["sales"].update(strategy="fastest"), "strategy"),
        ("acd", lambda d: d["queues"]["sales"].update(ring_timout=5), "ring_timout"),
        ("acd", lambda d: d["defaults"]["service_level"].update(goal=80), "goal"),
        ("console", lambda d: d["alerts"].update(long_wait=0), "long_wait"),
        ("ctiserver", lambda d: d.setdefault("http", {}).update(port=70000), "port"),
        ("users", lambda d: d["users"][0].update(role="boss"), "role"),
        ("customers", lambda d: d["customers"][0].update(phone=5551234), "phone"),
        ("ivr", lambda d: d["flows"]["main"]["nodes"]["welcome"].update(kind="ply"), "welcome"),
    ],
)
def test_the_schema_refuses_what_the_server_refuses(
    schemas: dict[str, dict[str, object]], kind: str, change: object, expected: str
) -> None:
    path = SHIPPED[kind][0] if kind != "ivr" else CONFIG / "ivr" / "demo.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)  # type: ignore[operator]
    errors = schema_errors(data, schemas[kind])
    assert errors
    assert any(expected in error for error in errors), errors


def test_x_keys_are_allowed_where_the_loaders_ignore_them(
    schemas: dict[str, dict[str, object]],
) -> None:
    data = yaml.safe_load((CONFIG / "acd.yaml").read_text(encoding="utf-8"))
    data["x-common"] = {"ring_timeout": 10}
    assert schema_errors(data, schemas["acd"]) == []


def test_the_shipped_schemas_are_up_to_date(schemas: dict[str, dict[str, object]]) -> None:
    # The files in config/ name these (yaml-language-server modeline); regenerate them with
    # `ctiserver config schema` after changing a model.
    for kind, schema in schemas.items():
        shipped = json.loads((CONFIG / "schema" / f"{kind}.schema.json").read_text())
        assert shipped == schema, f"config/schema/{kind}.schema.json is stale"


@pytest.mark.parametrize(
    ("kind", "path"), [(kind, path) for kind, paths in SHIPPED.items() for path in paths]
)
def test_every_shipped_file_names_its_schema(kind: str, path: Path) -> None:
    schema = os.path.relpath(CONFIG / "schema" / f"{kind}.schema.json", path.parent)
    assert f"# yaml-language-server: $schema={schema}" in path.read_text()
