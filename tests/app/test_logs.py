"""Tests for structured logging (app/logs.py)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.logs import JsonFormatter, configure_logging
from app.settings import LogSettings


@contextmanager
def configured(fmt: str, level: str = "INFO") -> Iterator[io.StringIO]:
    """configure_logging into a buffer; the root logger's handlers (pytest's own, among them)
    and level are given back at the end of the block."""
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        configure_logging(LogSettings.model_validate({"format": fmt, "level": level}), stream)
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(root_level)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_ts_level_logger_msg() -> None:
    with configured("json") as stream:
        before = datetime.now(UTC)
        logging.getLogger("cti.test").info("call %s answered after %d s", "1.2", 4)
        after = datetime.now(UTC)

    [entry] = json_lines(stream)
    assert set(entry) == {"ts", "level", "logger", "msg"}
    assert (entry["level"], entry["logger"]) == ("INFO", "cti.test")
    assert entry["msg"] == "call 1.2 answered after 4 s"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["ts"])
    ts = datetime.fromisoformat(entry["ts"])
    assert before - timedelta(milliseconds=1) <= ts <= after


def test_extra_fields_become_json_fields() -> None:
    with configured("json") as stream:
        logging.getLogger("cti.calls").warning(
            "refused",
            extra={
                "channel": "PJSIP/trunk-00000001",
                "uniqueid": "1732300000.1",
                "count": 3,
                "where": Path("/tmp/x"),  # not JSON: written as text
                "caller": "Zoë",
            },
        )
    [entry] = json_lines(stream)
    assert entry == {
        "ts": entry["ts"],
        "level": "WARNING",
        "logger": "cti.calls",
        "msg": "refused",
        "channel": "PJSIP/trunk-00000001",
        "uniqueid": "1732300000.1",
        "count": 3,
        "where": "/tmp/x",
        "caller": "Zoë",
    }
    assert "Zoë" in stream.getvalue()  # ensure_ascii is off


def test_exceptions_are_included() -> None:
    with configured("json") as stream:
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("cti.test").exception("handler failed")
    [entry] = json_lines(stream)
    assert (entry["level"], entry["msg"]) == ("ERROR", "handler failed")
    assert entry["exc"].startswith("Traceback (most recent call last):")
    assert entry["exc"].rstrip().endswith("ValueError: boom")


def test_one_line_per_record_even_with_newlines() -> None:
    with configured("json") as stream:
        log = logging.getLogger("cti.test")
        log.info("first\nsecond")
        log.error("third")
    assert len(stream.getvalue().splitlines()) == 2
    assert [e["msg"] for e in json_lines(stream)] == ["first\nsecond", "third"]


def test_level_filters() -> None:
    with configured("json", level="WARNING") as stream:
        log = logging.getLogger("cti.test")
        log.info("hidden")
        log.warning("shown")
    assert [e["msg"] for e in json_lines(stream)] == ["shown"]


def test_text_format() -> None:
    with configured("text") as stream:
        logging.getLogger("cti.test").warning("AMI %s", "reconnected")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING cti\.test: AMI reconnected\n",
        stream.getvalue(),
    )


def test_configuring_again_replaces_the_handler() -> None:
    with configured("json") as first, configured("text") as second:
        logging.getLogger("cti.test").error("once")
        assert len(logging.getLogger().handlers) == 1
    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1


def test_formatter_alone() -> None:
    record = logging.LogRecord("cti.x", logging.DEBUG, __file__, 1, "n=%d", (5,), None)
    record.route = "ivr"
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["level"], entry["logger"], entry["msg"], entry["route"]) == (
        "DEBUG",
        "cti.x",
        "n=5",
        "ivr",
    )
