"""The body rules without I/O (cti/http.py): bytes and a Content-Type in, a model or the one
problem that says what is wrong out."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from cti.errors import BodyNotJson, BodyTooLarge, HttpProblem, InvalidBody, UnsupportedMediaType
from cti.http import parse_body


class _To(BaseModel):
    model_config = ConfigDict(strict=True)
    kind: Literal["agent", "number"]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True)
    to: _To | None = None
    tags: list[str] = []


JSON = "application/json"


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"", None),
        (b"  \n", "text/plain"),  # no body at all: no arguments, whatever it is declared as
        (b"{}", JSON),
        (b"{}", None),  # no Content-Type: read as JSON
        (b"{}", "application/json; charset=utf-8"),
        (b"{}", "application/merge-patch+json"),
    ],
)
def test_accepted(raw: bytes, content_type: str | None) -> None:
    assert parse_body(raw, content_type, _Body) == _Body()


def test_a_nested_value() -> None:
    body = parse_body(b'{"to": {"kind": "agent"}, "tags": ["a"]}', JSON, _Body)
    assert body == _Body(to=_To(kind="agent"), tags=["a"])


@pytest.mark.parametrize(
    ("raw", "content_type", "problem", "fields"),
    [
        (b"{" + b" " * 64 + b"}", JSON, BodyTooLarge, None),
        (b"{}", "text/plain", UnsupportedMediaType, None),
        (b"{}", "application/x-www-form-urlencoded", UnsupportedMediaType, None),
        (b"{nope", JSON, BodyNotJson, None),
        (b"\xff\xfe", JSON, BodyNotJson, None),
        (b"[1]", JSON, InvalidBody, ("",)),
        (b"null", None, InvalidBody, ("",)),
        (b'{"to": {"kind": "fax"}}', JSON, InvalidBody, ("to.kind",)),
        (b'{"tags": ["a", 2]}', JSON, InvalidBody, ("tags.1",)),
        (b'{"to": 1, "tags": "x"}', JSON, InvalidBody, ("to", "tags")),
    ],
)
def test_refused(
    raw: bytes,
    content_type: str | None,
    problem: type[HttpProblem],
    fields: tuple[str, ...] | None,
) -> None:
    with pytest.raises(problem) as refused:
        parse_body(raw, content_type, _Body, limit=64)
    assert type(refused.value) is problem
    if fields is not None:
        assert isinstance(refused.value, InvalidBody)
        assert refused.value.fields == fields
        for field in fields:
            assert field in str(refused.value)
