"""cti.codec: dataclasses to JSON and back, checked against the annotations."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pytest

from cti.codec import CodecError, decode, encode


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Leaf:
    name: str
    weight: float
    raw: bytes = b""


@dataclass(frozen=True)
class Tree:
    id: int
    colour: Colour
    leaves: tuple[Leaf, ...]
    pair: tuple[str, int]
    tags: Mapping[str, str] = field(default_factory=dict)
    parent: Tree | None = None
    kind: Literal["oak", "elm"] = "oak"
    flag: bool = False


def _round_trip(value: Tree) -> Tree:
    wire = json.loads(json.dumps(encode(value)))
    result = decode(Tree, wire)
    assert isinstance(result, Tree)
    return result


def test_a_nested_dataclass_survives_json() -> None:
    tree = Tree(
        id=7,
        colour=Colour.BLUE,
        leaves=(Leaf("a", 1.5, b"\x00\xff"), Leaf("b", 2.0)),
        pair=("x", 3),
        tags={"k": "v"},
        parent=Tree(1, Colour.RED, (), ("root", 0), kind="elm", flag=True),
    )
    assert _round_trip(tree) == tree


def test_encoding_is_plain_json_with_enum_values_and_base64_bytes() -> None:
    wire = encode(Leaf("a", 1.0, b"hi"))
    assert wire == {"name": "a", "weight": 1.0, "raw": "aGk="}


def test_an_integer_is_accepted_where_a_float_is_declared() -> None:
    assert decode(Leaf, {"name": "a", "weight": 2}) == Leaf("a", 2.0)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"name": "a"}, "weight: missing"),
        ({"name": 5, "weight": 1.0}, "name: expected a string"),
        ({"name": "a", "weight": True}, "weight: expected a number"),
        ({"name": "a", "weight": 1.0, "raw": "!!"}, "raw: not base64"),
        ([], "expected an object"),
    ],
)
def test_a_malformed_leaf_names_the_field(data: object, where: str) -> None:
    with pytest.raises(CodecError, match=where):
        decode(Leaf, data)


def test_errors_name_the_path_into_nested_values() -> None:
    wire = encode(Tree(1, Colour.RED, (Leaf("a", 1.0),), ("x", 1)))
    wire["leaves"][0]["weight"] = "heavy"
    with pytest.raises(CodecError, match=r"leaves\[0\]\.weight: expected a number"):
        decode(Tree, wire)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("colour", "green", "'green' is not a Colour"),
        ("kind", "pine", "expected one of"),
        ("pair", ["x"], "expected 2 items"),
        ("id", True, "expected an integer"),
        ("flag", 1, "expected true or false"),
        ("parent", "nobody", "fits none of"),
    ],
)
def test_each_annotation_is_checked(key: str, value: object, message: str) -> None:
    wire = encode(Tree(1, Colour.RED, (), ("x", 1)))
    wire[key] = value
    with pytest.raises(CodecError, match=message):
        decode(Tree, wire)


def test_a_type_the_codec_cannot_carry_is_refused_when_encoding() -> None:
    with pytest.raises(TypeError, match="cannot encode"):
        encode(object())
    with pytest.raises(TypeError, match="not a string"):
        encode({1: "a"})
