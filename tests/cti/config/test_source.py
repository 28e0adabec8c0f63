"""Tests for the shared configuration source (cti/config): lines, repeated keys, YAML 1.1
traps, and pydantic errors as "file:line: where: what (expected ...)"."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from cti.config import Problem, load_model, read_yaml, validate_document
from cti.errors import ConfigError


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    weight: int = 1


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    country: str = "de"
    items: list[_Item] = []
    limits: dict[str, int] = {}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_key_and_item_has_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "# top\ncountry: fr\nitems:\n  - code: a\n  - {code: b}\n")
    document, problems = read_yaml(path)
    assert problems == []
    assert document is not None
    assert document.lines == {
        ("country",): 2,
        ("items",): 3,
        ("items", "0"): 4,
        ("items", "0", "code"): 4,
        ("items", "1"): 5,
        ("items", "1", "code"): 5,
    }
    assert document.at(("items", "1", "weight")) == f"{path}:5"  # nearest enclosing key


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "country: fr\nitems: []\ncountry: de\n")
    _, problems = read_yaml(path)
    assert [str(p) for p in problems] == [
        f"{path}:3: country: 'country' is given twice here (lines 1 and 3); YAML would keep "
        "only the last (expected each key once)"
    ]


@pytest.mark.parametrize(("written", "value"), [("0755", 493), ("1:30", 90), ("1_000", 1000)])
def test_numbers_yaml_11_rewrites_are_errors(tmp_path: Path, written: str, value: int) -> None:
    path = _write(tmp_path, f"limits:\n  x: {written}\n")
    _, problems = read_yaml(path)
    assert [(p.origin, p.where) for p in problems] == [(f"{path}:2", "limits.x")]
    assert problems[0].message.startswith(f"YAML reads {written} as the number {value}")


def test_the_no_trap_is_named_where_text_was_expected(tmp_path: Path) -> None:
    path = _write(tmp_path, "country: no\n")
    with pytest.raises(ConfigError) as info:
        load_model(path, _File, what="test file")
    assert str(info.value) == (
        f"{path}:1: country: False is not allowed (input should be a valid string); "
        'YAML 1.1 reads an unquoted no as false: write "no" in quotes'
    )


def test_a_quoted_no_is_text(tmp_path: Path) -> None:
    path = _write(tmp_path, 'country: "no"\n')
    assert load_model(path, _File, what="test file").country == "no"


def test_an_empty_value_is_named_as_such(tmp_path: Path) -> None:
    path = _write(tmp_path, "country:\n")
    with pytest.raises(ConfigError, match="YAML reads an empty value as null"):
        load_model(path, _File, what="test file")


def test_a_wrong_type_names_file_line_and_dotted_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "items:\n  - code: a\n  - code: b\n    weight: heavy\n")
    with pytest.raises(ConfigError) as info:
        load_model(path, _File, what="test file")
    assert (info.value.source, info.value.key) == (f"{path}:4", "items.1.weight")
    assert "'heavy' is not allowed (input should be a valid integer" in str(info.value)


def test_unknown_keys_are_named_with_a_did_you_mean_and_x_keys_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path, "x-anchor: &a {code: z}\nitems:\n  - {code: a, wieght: 2}\n")
    document, _ = read_yaml(path)
    assert document is not None
    value, problems = validate_document(document, _File)
    assert value is None
    assert problems == [
        Problem(
            ("items", "0", "wieght"),
            "unknown key 'wieght' (expected one of code, weight); did you mean 'weight'?",
            f"{path}:3",
        )
    ]


def test_every_problem_at_once_sorted_by_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "limits: {a: x}\ncountry: 5\n")
    with pytest.raises(ConfigError) as info:
        load_model(path, _File, what="test file")
    lines = str(info.value).splitlines()
    assert lines[0] == "2 problems in the test file:"
    assert lines[1].startswith(f"  {path}:1: limits.a: 'x' is not allowed")
    assert lines[2].startswith(f"  {path}:2: country: 5 is not allowed")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [\n", ":2: invalid YAML"),
        ("- a\n", ": the top level is a list (expected a mapping (test file))"),
    ],
)
def test_unreadable_yaml(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_model(path, _File, what="test file")
    assert str(info.value).startswith(f"{path}{expected}")


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_model(tmp_path / "nope.yaml", _File, what="test file")


class _Counts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    retries: int = 1
    label: str = ""


def test_a_yes_where_a_number_belongs_is_not_blamed_on_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, "retries: [yes]\nlabel: [on]\n")
    document, _ = read_yaml(path)
    assert document is not None
    _, problems = validate_document(document, _Counts)
    retries, label = problems
    assert "YAML 1.1" not in retries.message
    assert label.message.endswith('YAML 1.1 reads an unquoted on as true: write "on" in quotes')
